"""Lab 3's exercise check: every wrong answer the lab warns about fails with a message naming it.

Fast: no notebook is run. The answers are real Snorkel slicing functions applied to small real
DataFrames shaped like the lab's splits (``text`` and ``label`` columns, comment-like index).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import labeling_function
from snorkel.preprocess import preprocessor
from snorkel.slicing import PandasSFApplier, SlicingFunction, slicing_function

import exercise_checks
from exercise_checks import CheckFailed, check_slicing_function

VALID = pd.DataFrame(
    {
        "text": [
            "CHECK OUT MY NEW CHANNEL PLEASE",
            "great song, love it",
            "subscribe to my channel for free gift cards!!!",
            "WOW THIS IS THE BEST SONG EVER",
            "Nice",
            "who is watching in 2015?",
            "visit bit.ly/win-a-phone now",
            "shakira is amazing",
        ],
        "label": [1, 0, 1, 0, 0, 0, 1, 0],
    },
    index=[10, 11, 12, 13, 14, 15, 16, 17],
)
TRAIN = pd.DataFrame(
    {"text": ["PLEASE SUBSCRIBE TO ME NOW", "lovely voice", "free iphone at adf.ly/x"], "label": [1, 0, 1]},
    index=[0, 1, 2],
)
#: A baseline's predictions on VALID: right everywhere except the shouted ham comment (row 13).
PREDS = np.array([1, 0, 1, 1, 0, 0, 1, 0])


@slicing_function()
def my_slice(x):
    # The lab's reference solution: shouting, at least ten letters, more than half of them capitals.
    letters = [c for c in x.text if c.isalpha()]
    return len(letters) >= 10 and sum(c.isupper() for c in letters) > len(letters) / 2


def assert_shown_as_one_verdict(error) -> None:
    """A notebook shows the failure as its verdict alone, wrapped between words, not as a traceback."""
    lines = error._render_traceback_()
    assert " ".join(lines).split() == f"{exercise_checks.CHECK_FAILED} {error}".split()  # wrapped, nothing lost
    assert all(len(line) <= exercise_checks.VERDICT_WIDTH or " " not in line for line in lines)


def fails_with(answer, pattern: str, capsys, **kwargs) -> str:
    kwargs = {"valid": VALID, "baseline_valid_preds": PREDS} | kwargs
    with pytest.raises(CheckFailed, match=pattern) as raised:
        check_slicing_function(answer, **kwargs)
    assert_shown_as_one_verdict(raised.value)
    assert isinstance(raised.value, AssertionError)  # nbgrader scores a test cell by whether it raises
    return str(raised.value)


def passes(answer, capsys, **kwargs) -> str:
    kwargs = {"valid": VALID, "baseline_valid_preds": PREDS} | kwargs
    check_slicing_function(answer, **kwargs)
    printed = capsys.readouterr().out
    assert exercise_checks.CHECK_PASSED in printed and exercise_checks.CHECK_FAILED not in printed
    assert max(map(len, printed.splitlines())) <= exercise_checks.VERDICT_WIDTH  # no line wraps inside a word
    return printed


# --- correct answers pass ---------------------------------------------------------------------------


def test_the_reference_solution_passes_and_reports_valid_only(capsys):
    printed = passes(my_slice, capsys, train=TRAIN)
    assert "my_slice: 2 of 8 valid comments (1 of them spam); 1 of 3 train comments" in printed
    assert "Baseline on the slice: F1 66.7% (overall: 85.7%), wrong on 1 of its 2 comments" in printed
    # The baseline's own counts on the slice (1 caught, 1 false alarm: F1 66.7), not a perfect score (100.0).
    assert (
        "It catches 1 of the slice's 1 spam comment (1 false alarm): one more missed spam\nwould cost 66.7" in printed
    )
    assert "by counting the comments they get wrong" in printed
    assert "test" not in printed.lower()


def test_f1_points_per_missed_spam_is_what_f1_score_loses():
    """The arithmetic the check prints and the lab's release rule rests on, checked against scikit-learn."""
    from sklearn.metrics import f1_score

    for spam in range(1, 60):
        golds = np.r_[np.ones(spam, dtype=int), np.zeros(5, dtype=int)]  # a slice: s spam, 5 ham
        perfect, one_missed = golds.copy(), golds.copy()
        one_missed[0] = 0
        lost = 100 * (f1_score(golds, perfect) - f1_score(golds, one_missed, zero_division=0))
        assert lost == pytest.approx(exercise_checks.f1_points_per_missed_spam(spam))
    # The point: one comment costs more than a 2-point tolerance on every slice up to 25 spam comments.
    assert max(s for s in range(1, 1000) if exercise_checks.f1_points_per_missed_spam(s) > 2) == 25


def test_f1_points_one_more_miss_is_what_f1_score_loses():
    """From a model's actual counts on a slice, checked against scikit-learn; a perfect score is the special case."""
    from sklearn.metrics import f1_score

    for tp in range(1, 12):
        for fp in range(4):
            for fn in range(4):
                golds = np.r_[np.ones(tp + fn, dtype=int), np.zeros(fp + 3, dtype=int)]
                preds = np.r_[
                    np.ones(tp, dtype=int), np.zeros(fn, dtype=int), np.ones(fp, dtype=int), np.zeros(3, dtype=int)
                ]
                one_more = preds.copy()
                one_more[0] = 0
                lost = 100 * (f1_score(golds, preds) - f1_score(golds, one_more, zero_division=0))
                assert lost == pytest.approx(exercise_checks.f1_points_one_more_miss(tp, fp, fn))
        assert exercise_checks.f1_points_one_more_miss(tp, 0, 0) == pytest.approx(
            exercise_checks.f1_points_per_missed_spam(tp)
        )


def test_the_cost_comes_from_the_baselines_counts_not_a_perfect_score(capsys):
    """The lab's case: 9 spam in the slice, the baseline misses 1 (F1 94.1): one more costs 6.6, not 5.9."""
    valid = pd.DataFrame(
        {"text": [f"SPAM NUMBER {i} HERE" for i in range(9)] + ["quiet ham"] * 3, "label": [1] * 9 + [0] * 3}
    )
    preds = np.array([1] * 8 + [0] + [0] * 3)

    @slicing_function()
    def shouting(x):
        return x.text.isupper()

    printed = passes(shouting, capsys, valid=valid, baseline_valid_preds=preds)
    assert "F1 94.1%" in printed
    assert (
        "It catches 8 of the slice's 9 spam comments (0 false alarms): one more missed spam\nwould cost 6.6" in printed
    )
    assert "5.9" not in printed


def test_a_slice_whose_spam_the_baseline_all_misses_reports_the_gain(capsys):
    preds = PREDS.copy()
    preds[10 - 10] = 0  # the baseline now misses the one spam comment of the reference slice

    printed = passes(my_slice, capsys, baseline_valid_preds=preds)
    assert "It catches none of the slice's 1 spam comment: a model that caught one would gain\n66.7 points" in printed


def test_without_predictions_the_cost_is_from_a_perfect_score(capsys):
    printed = passes(my_slice, capsys, baseline_valid_preds=None)
    assert "one missed spam costs 100.0 points of its F1 from a\nperfect score" in printed
    assert "Baseline on the slice" not in printed


def test_answers_unlike_the_reference_pass(capsys):
    def mentions(x, words):
        return any(word in x.text.lower() for word in words)

    keyword_sf = SlicingFunction(name="mentions_channel", f=mentions, resources={"words": ("channel",)})

    @preprocessor(memoize=True)
    def add_length(x):
        x.n_words = len(x.text.split())
        return x

    @slicing_function(pre=[add_length])
    def long_comment(x):
        return x.n_words >= 6

    @slicing_function(name="many_bangs")
    def exclamations(x):
        return np.sum(np.array(list(x.text)) == "!") >= 2  # a NumPy bool, as NumPy code returns

    for answer in (keyword_sf, long_comment, exclamations):
        assert f"`{answer.name}` is a valid SF" in passes(answer, capsys)


def test_a_slice_without_spam_reports_accuracy_instead_of_f1(capsys):
    @slicing_function()
    def mentions_song(x):
        return "song" in x.text.lower()

    printed = passes(mentions_song, capsys)
    assert "No spam in the slice, so F1 is undefined; the baseline's accuracy on it: 50.0%,\nwrong on 1 of" in printed
    assert "points of its F1" not in printed  # no spam: nothing for F1 to count


# --- wrong answers fail, naming the mistake -----------------------------------------------------------


def test_a_plain_function_is_not_an_sf(capsys):
    def shouting(x):
        return x.text.isupper()

    assert "@slicing_function()" in fails_with(shouting, "shouting is a plain Python function", capsys)


def test_a_labeling_function_is_not_an_sf(capsys):
    @labeling_function()
    def shouting(x):
        return 1 if x.text.isupper() else -1

    fails_with(shouting, r"shouting is a labeling function .*decorate it with @slicing_function\(\)", capsys)


@pytest.mark.parametrize("answer", [None, "my_slice", [my_slice]])
def test_other_things_are_not_an_sf(answer, capsys):
    fails_with(answer, "my_slice is (None|a str|a list)", capsys)


def test_an_sf_returning_none_on_some_comments(capsys):
    @slicing_function()
    def shouting(x):
        if x.text.isupper():
            return True  # forgot the False branch

    fails_with(shouting, r"returned None for valid row 11 \(text 'great song, love it'\).*every comment", capsys)


@pytest.mark.parametrize("score", [0.7, np.float64(0.25)])
def test_an_sf_returning_a_score_in_0_1_is_truncated_to_0(score, capsys):
    @slicing_function()
    def shouting_score(x):
        return score

    message = fails_with(shouting_score, r"silently truncates .* to 0", capsys)
    assert "row 10" in message and "score > 0.5" in message


def test_snorkel_really_truncates_scores_below_1_to_0():
    """The fact the message above states, read from Snorkel itself (an int matrix, filled with the outputs)."""

    @slicing_function()
    def half(x):
        return 0.7

    assert PandasSFApplier([half]).apply(VALID, progress_bar=False)["half"].tolist() == [0] * len(VALID)


def test_an_sf_returning_0_or_1_instead_of_a_bool(capsys):
    @slicing_function()
    def shouting(x):
        return int(x.text.isupper())

    fails_with(shouting, r"returned the number 1 \(int\) for valid row 10 .*not True/False", capsys)


def test_an_sf_returning_a_negative_number(capsys):
    @slicing_function()
    def shouting(x):
        return 1 if x.text.isupper() else -1  # the LF habit of returning ABSTAIN

    fails_with(shouting, r"returned the number 1|returned -1", capsys)

    @slicing_function()
    def never(x):
        return -1

    fails_with(never, r"returned -1 \(int\) .*records -1", capsys)


def test_an_sf_returning_a_string_or_a_match(capsys):
    @slicing_function()
    def label_text(x):
        return "SPAM" if x.text.isupper() else "HAM"

    fails_with(label_text, r"returned 'SPAM' \(str\) for valid row 10.*must return True or False", capsys)

    @slicing_function()
    def has_capitals(x):
        return re.search(r"[A-Z]{3}", x.text)  # a match on valid row 10

    fails_with(has_capitals, r"match object .*is not None", capsys)

    @slicing_function()
    def has_link(x):
        return re.search(r"\w+\.ly\b", x.text)  # None on valid row 10: no link

    fails_with(has_link, r"returned None for valid row 10 .*re.search.*is not None", capsys)


def test_an_sf_that_raises_names_the_row(capsys):
    @slicing_function()
    def second_word_upper(x):
        return x.text.split()[1].isupper()

    message = fails_with(second_word_upper, r"raised IndexError: list index out of range on valid row 14", capsys)
    assert "'Nice'" in message and "my_slice(valid.loc[14])" in message


def test_an_sf_that_raises_on_train_names_the_train_row(capsys):
    @slicing_function()
    def no_adfly(x):
        if "adf.ly" in x.text:  # no valid comment has it; train row 2 does
            raise ValueError("unexpected comment")
        return x.text.islower()

    fails_with(
        no_adfly, r"raised ValueError: unexpected comment on train row 2 \(text 'free iphone", capsys, train=TRAIN
    )


@pytest.mark.parametrize("read", [lambda x: x.label, lambda x: x["label"]], ids=["attribute", "key"])
def test_an_sf_that_reads_the_label_fails(read, capsys):
    """SFs need no labels (they run on new comments): a slice defined by the true label is not one."""

    @slicing_function()
    def is_spam(x):
        return read(x) == 1

    message = fails_with(is_spam, r"is_spam reads the comment's label .*decide from the comment alone", capsys)
    assert "raised" not in message
    fails_with(is_spam, "reads the comment's label", capsys, train=TRAIN)


def test_the_sf_sees_every_column_but_the_label(capsys):
    seen = []

    @slicing_function()
    def shouting(x):
        seen.append(set(x.index))
        return x.text.isupper()

    passes(shouting, capsys, valid=VALID.assign(video=3), train=TRAIN.assign(video=1))
    assert seen and all(columns == {"text", "video"} for columns in seen)
    assert "label" in VALID.columns and "label" in TRAIN.columns  # the caller's frames are left as they were


def test_a_slice_with_no_valid_member(capsys):
    @slicing_function()
    def very_long(x):
        return len(x.text) > 500

    fails_with(very_long, "no valid comment is in the slice of very_long.*less strict", capsys)


def test_a_slice_with_every_valid_comment(capsys):
    @slicing_function()
    def has_text(x):
        return len(x.text) > 0

    fails_with(has_text, "every valid comment is in the slice of has_text.*stricter", capsys)


def test_the_notebooks_reference_solution_is_the_one_tested_here(capsys):
    """The solution cell of the lab is what the tests above call the reference: same slice on every comment."""
    import json
    from pathlib import Path

    notebook = Path(__file__).resolve().parents[1] / "03_spam_data_slicing_tutorial.ipynb"
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    (source,) = ["".join(c["source"]) for c in cells if "### BEGIN SOLUTION" in "".join(c["source"])]
    namespace = {"slicing_function": slicing_function}
    exec(source, namespace)
    reference = namespace["my_slice"]
    for frame in (VALID, TRAIN):
        assert [reference(row) for _, row in frame.iterrows()] == [my_slice(row) for _, row in frame.iterrows()]
    assert "`my_slice` is a valid SF" in passes(reference, capsys, train=TRAIN)
