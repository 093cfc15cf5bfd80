"""Lab 2's exercise check: every wrong answer the lab warns about fails with a message naming it.

Fast: no notebook is run, no trained spaCy model is loaded. The answers are real Snorkel
transformation functions applied to a small DataFrame of real training comments, shaped like the
lab's ``train`` (``text`` and ``label`` columns among others, the comments' own index).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from snorkel.augmentation import transformation_function
from snorkel.labeling import labeling_function
from snorkel.preprocess import preprocessor

import exercise_checks
import utils
from exercise_checks import CheckFailed, check_transformation_function

ROOT = Path(__file__).resolve().parents[1]

#: Comments of the lab's training split, with their labels and positions in it.
ROWS = pd.DataFrame(
    {
        "author": ["a", "b", "c", "d", "e", "f", "g", "h"],
        "text": [
            "Huh, anyway check out this you[tube] channel: kobyoshi02\ufeff",
            "if your like drones, plz subscribe to Kamal Tayara. He takes videos with  his drone that are "
            "absolutely beautiful.\ufeff",
            "go here to check the views :3\ufeff",
            "Came here to check the views, goodbye.\ufeff",
            "Loool nice song funny how no one understands (me) and we love it\ufeff",
            "Follow me on Twitter @mscalifornia95\ufeff",
            "Hey guys please check out my new Google+ page it has many funny pictures,  FunnyTortsPics  "
            "https://plus.google.com/112720997191206369631/post\ufeff",
            "2 billion views, wow\ufeff",
        ],
        "label": [1, 1, 0, 0, 0, 1, 1, 0],
        "video": [1] * 8,
    },
    index=[0, 1, 2, 3, 5, 8, 12, 13],
)


def assert_shown_as_one_verdict(error) -> None:
    """A notebook shows the failure as its verdict alone, wrapped between words, not as a traceback."""
    lines = error._render_traceback_()
    assert " ".join(lines).split() == f"{exercise_checks.CHECK_FAILED} {error}".split()  # wrapped, nothing lost
    assert all(len(line) <= exercise_checks.VERDICT_WIDTH or " " not in line for line in lines)


def fails_with(answer, pattern: str, capsys) -> str:
    with pytest.raises(CheckFailed, match=pattern) as raised:
        check_transformation_function(answer, ROWS)
    assert_shown_as_one_verdict(raised.value)
    assert isinstance(raised.value, AssertionError)  # nbgrader scores a test cell by whether it raises
    return str(raised.value)


def passes(answer, capsys, rows=ROWS) -> str:
    """What the check printed, with the verdict's line breaks (it wraps at 100 characters) as spaces."""
    check_transformation_function(answer, rows)
    printed = " ".join(capsys.readouterr().out.split())
    assert exercise_checks.CHECK_PASSED in printed and exercise_checks.CHECK_FAILED not in printed
    return printed


# --- correct answers pass -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def add_doc():
    import spacy

    nlp = spacy.blank("en")  # a tokenizer only: the reference solution reads tokens, not tags

    @preprocessor()
    def add_doc(x):
        x.doc = nlp(x.text)
        return x

    return add_doc


@pytest.fixture(scope="module")
def reference_tf(add_doc):
    """The lab's own reference solution, run from the notebook's exercise cell (not a copy of it)."""
    notebook = json.loads((ROOT / "02_spam_data_augmentation_tutorial.ipynb").read_text(encoding="utf-8"))
    (source,) = [
        "".join(cell["source"])
        for cell in notebook["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "lab2-exercise"
    ]
    namespace = {"add_doc": add_doc, "random": random, "transformation_function": transformation_function}
    exec(source, namespace)
    return namespace["my_tf"]


def test_the_reference_solution_passes(reference_tf, capsys):
    printed = passes(reference_tf, capsys)
    # All but "2 billion views, wow" (3 words): the PASS line says what happened to every row.
    assert "my_tf changed 7 of 8 comments (88%) and returned None for the other 1; it kept every label." in printed
    assert "before" in printed and "after" in printed  # the examples are shown


#: What the exercise tells students to keep: the words and links spam is recognised by.
CUE = re.compile(r"\b(?:check|out|subscrib\w*|my|channel|please|pls|plz)\b|https?://\S+|www\.\S+", re.IGNORECASE)


def test_the_reference_solution_keeps_the_cue_words_and_links(reference_tf):
    # On the comments the check uses (real training comments, 75 per video): the instruction is
    # "change the text without changing its meaning for spam detection", so no cue may be deleted.
    random.seed(0)
    train, _ = utils.load_spam_dataset(load_train_labels=True)
    changed = 0
    for _, x in exercise_checks.tf_check_rows(train).iterrows():
        x_new = reference_tf(x)
        if x_new is None:
            continue
        changed += x_new.text != x.text
        before = [cue.group().lower() for cue in CUE.finditer(x.text)]
        after = [cue.group().lower() for cue in CUE.finditer(x_new.text)]
        assert sorted(after) == sorted(before), (x.text, x_new.text)
    assert changed > 150  # it does change most comments


def test_the_check_samples_every_training_video_with_a_seed():
    train, _ = utils.load_spam_dataset(load_train_labels=True)
    rows = exercise_checks.tf_check_rows(train)
    assert rows["video"].value_counts().to_dict() == {1: 75, 2: 75, 3: 75, 4: 75}
    assert rows.index.equals(exercise_checks.tf_check_rows(train).index)  # the same rows every time
    assert not rows.index.equals(train.head(300).index)


def test_a_different_correct_tf_passes(capsys):
    @transformation_function()
    def views_to_view_count(x):
        # No preprocessor; applies to some comments only; a new Series instead of x itself.
        if "views" not in x.text:
            return None
        y = x.copy()
        y["text"] = x.text.replace("views", "view count")
        return y

    assert "changed 3 of 8 comments (38%)" in passes(views_to_view_count, capsys)


def test_replacing_a_cue_word_with_a_synonym_passes(capsys):
    # What the lab's verb TF does ("check" -> "suss out"): the instruction allows it, only deleting is wrong.
    @transformation_function()
    def suss_out(x):
        if "check" not in x.text.lower():
            return None
        x.text = re.sub(r"\bcheck\b", "suss out", x.text, flags=re.IGNORECASE)
        return x

    assert "changed 4 of 8 comments (50%)" in passes(suss_out, capsys)


def test_a_tf_that_rarely_returns_its_row_unchanged_passes(capsys):
    one_repeat = pd.DataFrame({"author": ["i"], "text": ["ha ha ha so good"], "label": [0], "video": [1]})
    rows = pd.concat([ROWS] * 3 + [one_repeat], ignore_index=True)

    @transformation_function()
    def swap_first_two_words(x):
        words = x.text.split(" ")
        if len(words) < 2:
            return None
        words[0], words[1] = words[1], words[0]  # "ha ha" stays "ha ha": unchanged, but rightly returned
        x.text = " ".join(words)
        return x

    check_transformation_function(swap_first_two_words, rows)
    printed = " ".join(capsys.readouterr().out.split())  # the verdict is wrapped at 100 characters
    assert (
        "changed 24 of 25 comments (96%), returned 1 with the text unchanged (allowed: at most 10% of the rows "
        "it returns) and never returned None; it kept every label." in printed
    )


def test_the_examples_show_comments_without_their_html(capsys):
    rows = pd.DataFrame({"text": ['Party Rock<br />It&#39;s <a href="http://x.co">x.co</a>'], "label": [0]})

    @transformation_function()
    def shout(x):
        x.text = x.text + "!"
        return x

    printed = passes(shout, capsys, rows)
    assert "Party Rock ⏎ It's x.co [http://x.co]" in printed and "<br />" not in printed and "&#39;" not in printed


def test_the_check_is_repeatable(add_doc, capsys):
    @transformation_function()
    def swap_two_random_words(x):
        words = x.text.split()
        if len(words) < 4:
            return None
        i, j = random.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
        x.text = " ".join(words)
        return x

    assert passes(swap_two_random_words, capsys) == passes(swap_two_random_words, capsys)


# --- not a TF ------------------------------------------------------------------------------------


def test_no_answer_yet(capsys):
    assert "Define it in the exercise cell" in fails_with(None, "no `my_tf` yet", capsys)


def test_a_plain_function(capsys):
    def my_tf(x):
        x.text = x.text.upper()
        return x

    message = fails_with(my_tf, "plain Python function, not a TF", capsys)
    assert "@transformation_function()" in message


def test_a_labeling_function(capsys):
    @labeling_function()
    def my_tf(x):
        return 1 if "check" in x.text else -1

    assert "@transformation_function()" in fails_with(my_tf, "is a labeling function", capsys)


def test_something_else(capsys):
    fails_with("replace a word", "is a str, not a TF", capsys)


# --- wrong return values -------------------------------------------------------------------------


def test_returning_the_new_text_instead_of_the_row(capsys):
    @transformation_function()
    def my_tf(x):
        return x.text.upper()

    message = fails_with(my_tf, r"returned str 'HUH, ANYWAY.*for row 0 ", capsys)
    assert "must return the row `x`" in message and "Set `x.text = ...` and `return x`" in message


def test_returning_a_dict(capsys):
    @transformation_function()
    def my_tf(x):
        return {"text": x.text.upper(), "label": x.label}

    fails_with(my_tf, "returned dict", capsys)


def test_changing_the_label(capsys):
    @transformation_function()
    def my_tf(x):
        if "views" not in x.text:
            return None
        x.text = x.text.replace("views", "likes")
        x.label = 1  # "a comment about views is spam": not what a TF may decide
        return x

    message = fails_with(my_tf, r"changed the label of row 2 .* from 0 to 1", capsys)
    assert "change only `x.text`" in message


def test_returning_rows_unchanged_instead_of_none(capsys):
    @transformation_function()
    def my_tf(x):
        if "views" in x.text:
            x.text = x.text.replace("views", "likes")
        return x  # should be None when there is nothing to replace

    message = fails_with(my_tf, r"returned 5 of 8 rows with their text unchanged \(first: row 0 ", capsys)
    assert "return None" in message and "duplicates" in message


@pytest.mark.parametrize(
    ("cue", "row"),
    [
        ("check", 0),
        ("subscribe", 1),
        ("channel", 0),
        ("please", 12),
        ("https://plus.google.com/112720997191206369631/post", 12),
    ],
)
def test_deleting_a_cue_word_or_link(cue, row, capsys):
    # The instruction: "do not delete the words spam is recognised by (check out, subscribe, my channel,
    # please, links)". A TF that deletes one fails, naming the word and the row.
    @transformation_function()
    def my_tf(x):
        words = x.text.split()
        kept = [word for word in words if word.strip(".,!:\ufeff") != cue]
        if len(kept) == len(words):
            return None
        x.text = " ".join(kept)
        return x

    message = fails_with(my_tf, rf"deleted {re.escape(repr(cue))} from row {row} ", capsys)
    assert "replace them with a synonym instead" in message


#: A real training comment whose cue word is glued to punctuation ("please!"): deleting the word leaves the
#: number of words as it was, so only counting the cues themselves finds the loss.
GLUED = pd.DataFrame(
    {"text": ["Check my channel please! And listen to the best music ever :P\ufeff"], "label": [1]}, index=[48]
)


def test_deleting_a_cue_word_glued_to_punctuation(capsys):
    @transformation_function()
    def my_tf(x):
        new = re.sub(r"\b(?:please|pls|plz)\b(?=[!.,?])", "", x.text, flags=re.IGNORECASE)
        if new == x.text:
            return None
        x.text = new  # "Check my channel ! And ...": as many words as before
        return x

    with pytest.raises(CheckFailed, match=r"deleted 'please' from row 48 ") as raised:
        check_transformation_function(my_tf, GLUED)
    assert "(new in the text" not in str(raised.value)  # a plain deletion is called one


def test_replacing_a_link_with_a_word(capsys):
    @transformation_function()
    def my_tf(x):
        new = re.sub(r"https?://\S+", "link", x.text, count=1)
        if new == x.text:
            return None
        x.text = new
        return x

    message = fails_with(my_tf, r"deleted 'https://plus.google.com/112720997191206369631/post' from row 12 ", capsys)
    assert "or replaced it (new in the text: 'link')" in message and "links as they are" in message


def test_replacing_a_cue_word_with_a_word_that_is_no_synonym(capsys):
    @transformation_function()
    def my_tf(x):
        new = re.sub(r"\bsubscribe\b", "hello", x.text, count=1, flags=re.IGNORECASE)
        if new == x.text:
            return None
        x.text = new
        return x

    message = fails_with(my_tf, r"deleted 'subscribe' from row 1 ", capsys)
    assert "none of its WordNet synonyms (new in the text: 'hello')" in message


@pytest.mark.parametrize(
    ("old", "new"),
    [("subscribe", "sign"), ("plz", "please")],  # a WordNet synonym of "subscribe"; the same cue, spelt out
)
def test_replacing_a_cue_word_with_a_synonym_or_another_spelling_passes(old, new, capsys):
    @transformation_function()
    def my_tf(x):
        if old not in x.text:
            return None
        x.text = x.text.replace(old, new)
        return x

    assert "changed 1 of 8 comments" in passes(my_tf, capsys)


def test_the_examples_show_a_change_beyond_the_first_hundred_characters(capsys):
    # Row 12 ends in a link; its last word before the link is "FunnyTortsPics", 90 characters in.
    @transformation_function()
    def my_tf(x):
        if "FunnyTortsPics" not in x.text:
            return None
        x.text = x.text.replace("FunnyTortsPics", "FunnyTortsPictures")
        return x

    check_transformation_function(my_tf, ROWS)
    printed = capsys.readouterr().out
    assert "FunnyTortsPictures" in printed and "FunnyTortsPics" in printed
    assert "...many funny pictures" in printed  # cut before the change, at the start of a word


def test_a_deleted_word_that_is_no_cue_passes(capsys):
    @transformation_function()
    def drop_anyway(x):
        if "anyway" not in x.text:
            return None
        x.text = x.text.replace("anyway ", "")
        return x

    assert "changed 1 of 8 comments" in passes(drop_anyway, capsys)


def test_changing_only_the_case(capsys):
    # "Changing the case of a word would not do: the model lower-cases every comment."
    @transformation_function()
    def shout(x):
        x.text = x.text.upper()
        return x

    message = fails_with(shout, r"changed only the case of letters in 8 of 8 comments \(first: row 0 ", capsys)
    assert "lower-cases every comment" in message


def test_emptying_the_text(capsys):
    @transformation_function()
    def my_tf(x):
        x.text = " ".join(word for word in x.text.split() if len(word) > 20)  # keeps almost nothing
        return x

    assert "return None" in fails_with(my_tf, r"emptied the text of row 0 ", capsys)


def test_making_the_text_a_list(capsys):
    @transformation_function()
    def my_tf(x):
        words = x.text.split()
        words.reverse()
        x.text = words  # forgot " ".join(...)
        return x

    assert "Keep `x.text` a string" in fails_with(my_tf, r"made the text of row 0 .* a list", capsys)


def test_making_the_text_none(capsys):
    @transformation_function()
    def my_tf(x):
        x.text = None
        return x

    fails_with(my_tf, r"made the text of row 0 .* a NoneType", capsys)


def test_never_applying(capsys):
    @transformation_function()
    def my_tf(x):
        return None

    assert "`return x`" in fails_with(my_tf, "returned None for all 8 comments", capsys)


def test_raising_on_a_row_names_the_row(capsys):
    @transformation_function()
    def my_tf(x):
        number = int(x.text.split()[0])  # fails on the first comment that does not start with a number
        x.text = x.text.replace(str(number), str(number + 1), 1)
        return x

    message = fails_with(my_tf, r"raised ValueError: invalid literal .* on row 0 ", capsys)
    assert "my_tf(train.loc[0])" in message


def test_raising_on_a_later_row_names_that_row(capsys):
    @transformation_function()
    def my_tf(x):
        if "http" in x.text:
            raise KeyError("link")
        return None

    fails_with(my_tf, r"raised KeyError: 'link' on row 12 .*'Hey guys please", capsys)


def test_the_module_does_not_import_tensorflow_or_torch():
    # Every lab imports exercise_checks: importing it must stay cheap.
    code = "import sys, exercise_checks; print(sorted({'tensorflow', 'torch', 'snorkel'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
