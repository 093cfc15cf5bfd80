"""Unit tests of lab 1's exercise check, ``exercise_checks.check_labeling_functions``.

Each wrong answer the lab warns about is fed to the check with the real dataset and real Snorkel LFs,
and the test asserts that the check fails with a message naming that mistake; the reference solution
and other sound answers pass. No notebook is executed: the lab's keyword, regex and heuristic LFs are
rebuilt here (its TextBlob and spaCy LFs are left out to keep these tests fast).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from snorkel.labeling import LabelingFunction, PandasLFApplier, labeling_function

import exercise_checks
import utils

ABSTAIN, HAM, SPAM = utils.ABSTAIN, utils.HAM, utils.SPAM


def text_of(x):
    return x.text if isinstance(x.text, str) else ""


def keyword_lookup(x, keywords, label):
    text = text_of(x).lower()
    return label if any(word in text for word in keywords) else ABSTAIN


def make_keyword_lf(name, keywords, label=SPAM):
    return LabelingFunction(name=f"keyword_{name}", f=keyword_lookup, resources=dict(keywords=keywords, label=label))


@labeling_function()
def regex_check_out(x):
    return SPAM if re.search(r"\bcheck\b.*\bout\b", text_of(x), flags=re.IGNORECASE) else ABSTAIN


@labeling_function()
def regex_link(x):
    return SPAM if re.search(r"https?://|www\.|\.com\b|youtu\.be/|/watch\?v=", text_of(x), re.IGNORECASE) else ABSTAIN


@labeling_function()
def short_comment(x):
    text = text_of(x)
    promotes = re.search(r"http|www|\.com|subscri|channel|check", text, re.IGNORECASE)
    return HAM if 0 < len(text.split()) < 5 and not promotes else ABSTAIN


LAB_LFS = [
    make_keyword_lf("my_channel", ["my channel", "my video", "my music", "my page", "my song", "my new",
                                   "my playlist", "my cover", "my youtube", "my website", "my blog"]),
    make_keyword_lf("subscribe", ["subscrib"]),
    make_keyword_lf("please", ["please", "plz", "pls"]),
    make_keyword_lf("money", ["money", "cash", "free", "gift card", "prize"]),
    make_keyword_lf("promote", ["follow", "share", "visit", "click", "vote", "like this comment", "thumbs up"]),
    make_keyword_lf("song", ["song"], label=HAM),
    make_keyword_lf("billion", ["billion"], label=HAM),
    make_keyword_lf("love", ["love", "<3", "&lt;3"], label=HAM),
    regex_check_out,
    regex_link,
    short_comment,
]  # fmt: skip


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The lab's splits and label matrices, as the notebook has them when the check runs."""
    train, dev, valid, _ = utils.load_spam_dataset(split_dev_valid=True)
    applier = PandasLFApplier(LAB_LFS)
    return dict(
        lfs=LAB_LFS,
        train=train,
        dev=dev,
        valid=valid,
        L_train=applier.apply(train, progress_bar=False),
        L_valid=applier.apply(valid, progress_bar=False),
    )


def check(my_lfs, lab):
    return exercise_checks.check_labeling_functions(my_lfs, **lab, seed=utils.SEED)


def assert_shown_as_one_verdict(error) -> None:
    """A notebook shows the failure as its verdict alone, wrapped between words, not as a traceback."""
    lines = error._render_traceback_()
    assert " ".join(lines).split() == f"{exercise_checks.CHECK_FAILED} {error}".split()  # wrapped, nothing lost
    assert all(len(line) <= exercise_checks.VERDICT_WIDTH or " " not in line for line in lines)


def fails_with(my_lfs, lab, capsys, *fragments):
    """Run the check, which must fail; return its message after asserting each fragment is in it."""
    with pytest.raises(AssertionError) as raised:
        check(my_lfs, lab)
    message = str(raised.value)
    assert_shown_as_one_verdict(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# ----------------------------------------------------------------- sound answers pass


@labeling_function()
def social_links(x):
    return SPAM if re.search(r"facebook|twitter|instagram", text_of(x), re.IGNORECASE) else ABSTAIN


@labeling_function()
def artist_name(x):  # ham: fans talk about the singer; spammers talk about themselves
    return (
        HAM if re.search(r"\b(psy|katy|perry|lmfao|eminem|rihanna|shakira)\b", text_of(x), re.IGNORECASE) else ABSTAIN
    )


@labeling_function()
def subscriber_count(x):  # spam: "I have 1030 subscribers", "help me get 100 subs"
    return SPAM if re.search(r"\b\d+\s*(subs|subscribers)\b", text_of(x), re.IGNORECASE) else ABSTAIN


def test_the_reference_solution_passes(lab, capsys):
    check([make_keyword_lf("views", ["views"], label=HAM), social_links], lab)
    out = capsys.readouterr().out
    assert "CHECK PASSED: 2 LF(s)" in out and "CHECK FAILED" not in out
    assert "label model accuracy on valid:" in out and "test" not in out.lower()


@pytest.mark.parametrize(
    "answer", [[artist_name], artist_name, (social_links, artist_name)], ids=["list", "lone LF", "tuple"]
)
def test_other_sound_answers_pass(lab, capsys, answer):
    check(answer, lab)
    assert "CHECK PASSED" in capsys.readouterr().out


# ----------------------------------------------------------------- what my_lfs is


def test_an_empty_list_fails(lab, capsys):
    fails_with([], lab, capsys, "my_lfs is empty", "@labeling_function()")


def test_not_a_list_fails(lab, capsys):
    fails_with("keyword_views", lab, capsys, "should be a list of LFs", "not a str")


def test_a_plain_function_fails(lab, capsys):
    def shouting(x):
        return SPAM if text_of(x).isupper() else ABSTAIN

    fails_with([shouting], lab, capsys, "shouting is a plain Python function", "@labeling_function()")


def test_votes_instead_of_an_lf_fail(lab, capsys):
    fails_with([np.array([1, -1, 0])], lab, capsys, "is not a labeling function", "not their votes")


def test_a_name_already_used_fails(lab, capsys):
    fails_with([make_keyword_lf("song", ["tune"], label=HAM)], lab, capsys, "'keyword_song' is already", "new name")


def test_two_lfs_with_one_name_fail(lab, capsys):
    twice = [make_keyword_lf("views", ["views"], label=HAM), make_keyword_lf("views", ["view"], label=HAM)]
    fails_with(twice, lab, capsys, "two of your LFs are named 'keyword_views'")


# ----------------------------------------------------------------- what an LF returns


def test_an_lf_that_returns_none_fails(lab, capsys):
    @labeling_function()
    def mentions_facebook(x):
        if "facebook" in text_of(x).lower():
            return SPAM

    fails_with([mentions_facebook], lab, capsys, "mentions_facebook returned None on train row 0", "else ABSTAIN")


def test_an_lf_that_raises_on_some_rows_names_the_row(lab, capsys):
    @labeling_function()
    def big_number(x):
        return SPAM if int(re.search(r"\d+", text_of(x)).group()) > 1000 else ABSTAIN

    train = lab["train"]
    first_bad = next(i for i, t in train.text.items() if not re.search(r"\d+", t))
    message = fails_with([big_number], lab, capsys, "big_number raised AttributeError", f"on train row {first_bad} ")
    assert repr(train.text[first_bad][:20])[:-1] in message  # the row's text is quoted


def test_an_lf_that_breaks_the_dask_run_fails(lab, capsys):
    @labeling_function()
    def shouting(x):
        return SPAM if x.text.isupper() else ABSTAIN  # x.text is pd.NA in Dask's placeholder row

    fails_with([shouting], lab, capsys, "shouting breaks the Dask run of section 7", "pd.NA", "text_of(x)")


def test_an_lf_that_returns_a_bool_fails(lab, capsys):
    @labeling_function()
    def free_stuff(x):
        return "free" in text_of(x).lower()

    fails_with([free_stuff], lab, capsys, "free_stuff returned False", "never abstains", "SPAM if ... else ABSTAIN")


def test_an_lf_that_returns_a_string_fails(lab, capsys):
    @labeling_function()
    def spam_word(x):
        return "SPAM" if "free" in text_of(x).lower() else ABSTAIN

    fails_with([spam_word], lab, capsys, "spam_word returned 'SPAM' (str)", "SPAM (1), HAM (0) or ABSTAIN (-1)")


def test_an_lf_that_never_abstains_fails(lab, capsys):
    @labeling_function()
    def long_is_spam(x):
        return SPAM if len(text_of(x)) > 100 else HAM

    fails_with([long_is_spam], lab, capsys, "long_is_spam votes on every train comment", "never abstains")


# ----------------------------------------------------------------- how well it votes


def test_an_lf_that_never_fires_fails(lab, capsys):
    fails_with([make_keyword_lf("xyzzy", ["xyzzy"])], lab, capsys, "keyword_xyzzy never votes on a train comment")


def test_an_lf_with_no_labelled_votes_fails(lab, capsys):
    train, dev, valid = lab["train"], lab["dev"], lab["valid"]
    labelled = set(dev.text) | set(valid.text)
    only_train = next(t for t in train.text if t not in labelled and len(t) > 30)

    @labeling_function()
    def one_comment(x):
        return SPAM if text_of(x) == only_train else ABSTAIN

    fails_with([one_comment], lab, capsys, "one_comment votes on no dev or valid comment", "broader")


def test_an_inaccurate_lf_fails(lab, capsys):
    @labeling_function()
    def laughing(x):  # ham, one would think; dev and valid disagree
        return HAM if re.search(r"\b(lol|haha\w*|lmao)\b", text_of(x), re.IGNORECASE) else ABSTAIN

    fails_with(
        [laughing], lab, capsys, "laughing is right on 3 of the 5 dev and valid comments", "(60%", "more precise"
    )


def test_an_exact_duplicate_of_a_lab_lf_fails(lab, capsys):
    copy = make_keyword_lf("subscribers", ["subscrib"])
    fails_with(
        [copy], lab, capsys, "keyword_subscribers votes like keyword_subscribe", "would count that evidence twice"
    )


def test_another_link_detector_fails(lab, capsys):
    @labeling_function()
    def has_link(x):
        return SPAM if re.search(r"http|www\.", text_of(x), re.IGNORECASE) else ABSTAIN

    fails_with([has_link], lab, capsys, "has_link votes like regex_link")


def test_an_lf_inside_an_existing_one_fails(lab, capsys):
    @labeling_function()
    def dot_com(x):  # all of its train votes fall on comments regex_link also calls spam
        return SPAM if re.search(r"\.com\b", text_of(x), re.IGNORECASE) else ABSTAIN

    message = fails_with([dot_com], lab, capsys, "dot_com lies inside regex_link", "(100%)", "evidence twice")
    assert "178 of its 178 train votes" in message


def test_a_narrower_phrase_inside_a_lab_lf_fails(lab, capsys):
    fails_with([make_keyword_lf("check_it_out", ["check it out"])], lab, capsys, "lies inside regex_check_out")


def test_an_lf_mostly_inside_another_fails(lab, capsys):
    # 27 of its 29 train votes (93%) fall on comments keyword_subscribe already calls spam
    fails_with([subscriber_count], lab, capsys, "subscriber_count lies inside keyword_subscribe", "(93%)")


def test_an_lf_that_overlaps_but_brings_its_own_votes_passes(lab, capsys):
    # social_links shares 78% of its votes with regex_link: below the 90% that counts as inside
    check([social_links], lab)
    assert "CHECK PASSED" in capsys.readouterr().out


def test_an_lf_that_repeats_several_lfs_together_fails(lab, capsys):
    # No single lab LF holds 90% of its votes, but together they cast the same vote on nearly all of them,
    # and the label model gets more valid comments wrong with it.
    @labeling_function()
    def links_or_subscribe(x):
        return SPAM if re.search(r"http|www|subscri|\.com", text_of(x)) else ABSTAIN

    message = fails_with(
        [links_or_subscribe], lab, capsys, "the label model is wrong on", "more valid comments than without them"
    )
    assert re.search(r"on (\d+) of the (\d+) train comments links_or_subscribe votes on", message), message
    shown = re.search(r"on (\d+) of the (\d+) train comments", message)
    assert int(shown[1]) >= exercise_checks.LF_MAX_INSIDE * int(shown[2]), message


def test_the_lab_states_the_thresholds_the_check_applies():
    import json
    from pathlib import Path

    notebook = json.loads((Path(__file__).resolve().parents[1] / "01_spam_tutorial.ipynb").read_text(encoding="utf-8"))
    exercise = next(
        "".join(cell["source"]) for cell in notebook["cells"] if "".join(cell["source"]).startswith("## 8. Exercise")
    )
    for share in (exercise_checks.LF_MIN_ACCURACY, exercise_checks.LF_MAX_SIMILARITY, exercise_checks.LF_MAX_INSIDE):
        assert f"{share:.0%}" in exercise, f"the exercise's instructions do not state {share:.0%}"
    assert f"more than {exercise_checks.LF_MAX_VALID_LOSS} " in exercise, "the exercise does not state the valid loss"
    assert "miss" not in exercise.split("Aim for")[1].split("Things")[0], "the check does not test new coverage"


def test_two_of_your_lfs_that_duplicate_each_other_fail(lab, capsys):
    @labeling_function()
    def singer(x):
        return HAM if re.search(r"\b(psy|katy|eminem|rihanna|shakira)\b", text_of(x), re.IGNORECASE) else ABSTAIN

    fails_with([artist_name, singer], lab, capsys, "singer votes like artist_name")


def test_lf_train_coverage_never_raises(lab):
    @labeling_function()
    def broken(x):
        return SPAM if x.text.missing else ABSTAIN

    coverage = exercise_checks.lf_train_coverage([social_links, broken, "not an LF"], lab["train"])
    assert list(coverage) == ["social_links"] and 0 < coverage["social_links"] < 0.1
    assert exercise_checks.lf_train_coverage([], lab["train"]) == {}


def test_an_lf_that_reads_the_label_fails(lab, capsys):
    # A red-team answer: vote the answer key on labelled rows, something harmless elsewhere. The check gives the
    # LFs the comments without their labels, as new comments come, so reading the label is named as the mistake.
    @labeling_function()
    def answer_key(x):
        if x.label in (HAM, SPAM):
            return int(x.label)
        return HAM if "lol" in text_of(x).lower() else ABSTAIN

    fails_with([answer_key], lab, capsys, "answer_key reads the comment's label", "decide from the text")
