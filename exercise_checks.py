"""The exercise checks of the three labs: one function per exercise, called by its lab's check cell.

Each check judges a student's answer on dev or valid data (never on test), prints what it found,
and ends with one verdict. ``CHECK PASSED: ...`` is printed when the answer is sound. A wrong answer
raises ``CheckFailed``, whose message names the mistake and how to fix it. In a notebook it shows as
one red ``CHECK FAILED: ...`` paragraph instead of a traceback (IPython draws an exception's
``_render_traceback_``), and it is still an error, so autograders that score a test cell by whether
it raises (nbgrader, ``python instructor.py grade``) see it fail.
"""

from __future__ import annotations

#: How a check's verdict line starts. ``instructor.py grade`` reads these in the check cell's output.
CHECK_PASSED, CHECK_FAILED = "CHECK PASSED:", "CHECK FAILED:"


#: Verdicts are wrapped at this width, between words: JupyterLab's output area breaks long lines inside words.
VERDICT_WIDTH = 100


def _wrapped(text: str) -> list[str]:
    """``text`` as lines of at most ``VERDICT_WIDTH`` characters, broken at spaces; its own line breaks kept."""
    import textwrap

    lines = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, VERDICT_WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
    return lines


class CheckFailed(AssertionError):
    """A student's answer is wrong; the message says what to change.

    IPython shows ``_render_traceback_()`` in place of a traceback: the verdict alone, where the eye lands,
    instead of twenty lines of this module's source. Outside IPython it is an ordinary ``AssertionError``.
    """

    def _render_traceback_(self) -> list[str]:
        return _wrapped(f"{CHECK_FAILED} {self}")


def passed(message: str) -> None:
    print("\n".join(_wrapped(f"{CHECK_PASSED} {message}")))


def failed(message: str) -> None:
    """Raise the verdict: a notebook shows it as one red paragraph, and autograders see the cell fail."""
    raise CheckFailed(message)


# --------------------------------------------------------------------------
# Lab 1: labeling functions
# --------------------------------------------------------------------------

#: An LF should be right on more than this share of the labelled (dev and valid) comments it votes on.
LF_MIN_ACCURACY = 0.6

#: Two LFs whose agreeing votes make up at least this share of the comments either votes on are near-duplicates.
LF_MAX_SIMILARITY = 0.8

#: A new LF that casts the same vote as one existing LF on at least this share of its own train votes lies (almost)
#: wholly inside that LF: it adds almost no evidence of its own (a `\.com\b` LF inside `regex_link`, for example).
LF_MAX_INSIDE = 0.9

#: New LFs that make the label model wrong on more than this many more valid comments than without them fail: a rule
#: whose votes repeat what several existing LFs already say together passes the pairwise tests above, yet the
#: model counts that evidence again (a spam regex for "http|www|subscri|.com" lowers it from 94.2% to 90.0%).
LF_MAX_VALID_LOSS = 2


def _row_text(df, index) -> str:
    text = df.at[index, "text"] if "text" in df.columns else ""
    text = text if isinstance(text, str) else repr(text)
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _raw_votes(lf, df, split: str):
    """Call ``lf`` on every row of ``df`` as Snorkel would; return its votes, or fail naming the first bad row."""
    import numpy as np

    name = getattr(lf, "name", repr(lf))
    votes = []
    for index, row in df.iterrows():
        where = f"{split} row {index!r} (text {_row_text(df, index)})"
        try:
            vote = lf(row)
        except Exception as error:  # the student's code: any error is the student's to fix
            if "label" not in df.columns and isinstance(error, AttributeError | KeyError) and "label" in str(error):
                failed(
                    f"{name} reads the comment's label ({type(error).__name__}: {error} on {where}). An LF labels "
                    "comments whose label nobody knows yet, so the check gives it none: decide from the text."
                )
            failed(
                f"{name} raised {type(error).__name__}: {error} on {where}. An LF must handle every comment: "
                "read the text with text_of(x) and return ABSTAIN when the comment is not what you expect."
            )
        if vote is None:
            failed(
                f"{name} returned None on {where}. Every path through an LF must return SPAM, HAM or ABSTAIN: "
                "end it with `else ABSTAIN` (or a final `return ABSTAIN`)."
            )
        if isinstance(vote, bool | np.bool_):
            failed(
                f"{name} returned {vote} on {where}. Snorkel reads True as 1 = SPAM and False as 0 = HAM, so this "
                "LF votes on every comment and never abstains. Return a label only when the condition holds, "
                "for example `return SPAM if ... else ABSTAIN`."
            )
        if not isinstance(vote, int | np.integer) or int(vote) not in (-1, 0, 1):
            failed(
                f"{name} returned {vote!r} ({type(vote).__name__}) on {where}. "
                "An LF returns SPAM (1), HAM (0) or ABSTAIN (-1), nothing else."
            )
        votes.append(int(vote))
    return np.array(votes, dtype=int)


def _check_dask_placeholder(lf, dev) -> None:
    """Run ``lf`` through Snorkel's DaskLFApplier on a few dev rows, as section 7 does; fail if Dask cannot."""
    import dask.dataframe as dd
    from snorkel.labeling.apply.dask import DaskLFApplier

    try:
        DaskLFApplier([lf]).apply(dd.from_pandas(dev.head(4), npartitions=1), scheduler="sync")
    except Exception as error:  # the student's code, run by Dask: report the original error
        message = str(error)
        if "Original error is below" in message:
            message = message.split("Original error is below:")[1].strip().strip("-").strip().splitlines()[0]
        failed(
            f"{lf.name} breaks the Dask run of section 7 ({message}). Before labelling any comment, Dask calls "
            "every LF on placeholder rows, one of which has no text (pd.NA, not a string). "
            'Read the text with text_of(x), which turns a missing text into "".'
        )


def _fit_label_model(L_train, seed: int):
    """The lab's label model, fitted on ``L_train``."""
    import torch  # imported by Snorkel anyway; deferred so that labs 2 and 3 do not pay for it
    from snorkel.labeling.model import LabelModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the lab: for so small a model one thread is many times faster
    try:
        model = LabelModel(cardinality=2, verbose=False)
        model.fit(L_train, n_epochs=500, log_freq=100, seed=seed, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return model


def check_labeling_functions(
    my_lfs, lfs, *, train, dev, valid, L_train, L_valid, label_model=None, seed: int = 123
) -> None:
    """Lab 1's exercise: judge the student's LFs ``my_lfs`` next to the lab's LFs ``lfs``.

    ``train`` (unlabelled), ``dev`` and ``valid`` (labelled) are the lab's splits; ``L_train`` and
    ``L_valid`` are the lab's label matrices for ``lfs``; ``label_model``, if given, is the lab's label model
    fitted on ``L_train`` (else it is fitted here, with ``seed``). Prints each new LF's coverage and accuracy
    on dev and valid, and what adding them changes for the label model on valid, then the verdict.
    Fails on: not a list, an empty list, something that is not a Snorkel LF, a name already used,
    an LF that raises, returns None, a bool or anything but SPAM/HAM/ABSTAIN on some comment, one
    that breaks the Dask run (missing text), one that never votes or never abstains on train, one
    that is right on at most 60% of the dev and valid comments it votes on, one that votes like an
    existing LF (the same vote on 80% of the train comments either votes on), one that lies inside
    an existing LF (90% of its own train votes cast the same way by that LF), and LFs that make the label
    model wrong on more than 2 more valid comments than without them.
    """
    import numpy as np
    import pandas as pd
    from snorkel.labeling import LabelingFunction

    if isinstance(my_lfs, LabelingFunction):
        my_lfs = [my_lfs]
    if not isinstance(my_lfs, list | tuple):
        failed(f"my_lfs should be a list of LFs, such as [my_lf], not a {type(my_lfs).__name__}.")
    if not my_lfs:
        failed(
            "my_lfs is empty. Write an LF with @labeling_function() (or make_keyword_lf) and put it in the "
            "list: my_lfs = [my_lf]."
        )
    for candidate in my_lfs:
        if isinstance(candidate, LabelingFunction):
            continue
        if callable(candidate):
            failed(
                f"{getattr(candidate, '__name__', repr(candidate))} is a plain Python function, not a Snorkel LF. "
                "Put @labeling_function() on the line above its `def` and run the cell again."
            )
        failed(
            f"{candidate!r} ({type(candidate).__name__}) is not a labeling function. my_lfs holds LFs "
            "made with @labeling_function() or make_keyword_lf, not their votes or names."
        )
    taken = {lf.name for lf in lfs}
    seen = set()
    for lf in my_lfs:
        if lf.name in taken:
            failed(f"an LF named {lf.name!r} is already in the lab's list. Give yours a new name.")
        if lf.name in seen:
            failed(f"two of your LFs are named {lf.name!r}. Give each one its own name.")
        seen.add(lf.name)

    # Every comment of every split, as PandasLFApplier would call the LF: the first bad row is named. The LFs
    # see the comments without their labels, as they would see new comments: an LF cannot read the answer.
    unlabelled = {
        split: df.drop(columns="label", errors="ignore")
        for split, df in [("train", train), ("dev", dev), ("valid", valid)]
    }
    votes = {split: np.column_stack([_raw_votes(lf, df, split) for lf in my_lfs]) for split, df in unlabelled.items()}
    for lf in my_lfs:
        _check_dask_placeholder(lf, unlabelled["dev"])

    labelled_votes = np.concatenate([votes["dev"], votes["valid"]])
    gold = np.concatenate([dev.label.to_numpy(), valid.label.to_numpy()])
    voted = labelled_votes != -1
    right = (labelled_votes == gold[:, None]) & voted
    report = pd.DataFrame(
        {
            "train coverage": (votes["train"] != -1).mean(axis=0).round(3),
            "dev/valid votes": voted.sum(axis=0),
            "right": right.sum(axis=0),
        },
        index=[lf.name for lf in my_lfs],
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        report["accuracy"] = (report["right"] / report["dev/valid votes"]).round(3)
    print(report.to_string(), end="\n\n")

    for j, lf in enumerate(my_lfs):
        column = votes["train"][:, j]
        if (column == -1).all():
            failed(
                f"{lf.name} never votes on a train comment. Test its condition on a few comments it should "
                "match, for example train.text[train.text.str.contains('...')]."
            )
        if (column != -1).all():
            failed(
                f"{lf.name} votes on every train comment: it never abstains. An LF should vote only when it "
                "sees evidence and return ABSTAIN otherwise."
            )
        votes_j, right_j = int(report["dev/valid votes"].iloc[j]), int(report["right"].iloc[j])
        if votes_j == 0:
            failed(
                f"{lf.name} votes on no dev or valid comment, so how often it is right cannot be measured. "
                "Make it a little broader."
            )
        if not right_j > LF_MIN_ACCURACY * votes_j:
            failed(
                f"{lf.name} is right on {right_j} of the {votes_j} dev and valid comments it "
                f"votes on ({right_j / votes_j:.0%}; aim for more than {LF_MIN_ACCURACY:.0%}). Look at the dev "
                "comments it gets wrong and make its condition more precise."
            )

    names = [lf.name for lf in lfs] + [lf.name for lf in my_lfs]
    L_all = np.hstack([L_train, votes["train"]])
    for j in range(L_train.shape[1], L_all.shape[1]):
        mine = L_all[:, j]
        for k in range(j):
            other = L_all[:, k]
            either = (mine != -1) | (other != -1)
            same = int(((mine == other) & (mine != -1)).sum())
            if same >= LF_MAX_SIMILARITY * either.sum():
                failed(
                    f"{names[j]} votes like {names[k]}: they cast the same vote on {same} of the {either.sum()} "
                    "train comments either one votes on. A near-duplicate adds no new evidence, and the label "
                    "model would count that evidence twice. Drop it, or make it catch comments "
                    f"{names[k]} misses."
                )
            own = int((mine != -1).sum())
            if same >= LF_MAX_INSIDE * own:
                failed(
                    f"{names[j]} lies inside {names[k]}: on {same} of its {own} train votes ({same / own:.0%}), "
                    f"{names[k]} already casts the same vote. It tells the label model almost nothing that "
                    f"{names[k]} does not, and the model would count that evidence twice. Drop it, or look for "
                    f"comments {names[k]} misses."
                )

    before = label_model if label_model is not None else _fit_label_model(L_train, seed)
    after = _fit_label_model(L_all, seed)
    L_valid_all = np.hstack([L_valid, votes["valid"]])
    valid_accuracy = [
        model.score(L, Y=valid.label.to_numpy(), tie_break_policy="random")["accuracy"]
        for model, L in [(before, L_valid), (after, L_valid_all)]
    ]
    coverage = [(L != -1).any(axis=1).mean() for L in (L_train, L_all)]
    print(f"train comments with at least one vote: {coverage[0]:.1%} -> {coverage[1]:.1%}")
    print(f"label model accuracy on valid:         {valid_accuracy[0]:.1%} -> {valid_accuracy[1]:.1%}", end="\n\n")
    lost = round((valid_accuracy[0] - valid_accuracy[1]) * len(valid))
    if lost > LF_MAX_VALID_LOSS:
        repeated = []
        for j in range(L_train.shape[1], L_all.shape[1]):
            mine = L_all[:, j]
            own = mine != -1
            same = (L_all[:, :j] == mine[:, None]) & own[:, None]
            repeated.append(
                f"on {int(same.any(axis=1).sum())} of the {int(own.sum())} train comments {names[j]} votes on, "
                "other LFs already cast the same vote"
            )
        failed(
            f"with your LFs the label model is wrong on {lost} more valid comments than without them "
            f"({valid_accuracy[0]:.1%} -> {valid_accuracy[1]:.1%}): {'; '.join(repeated)}. An LF that repeats "
            "what several existing LFs already say together makes the model count that evidence again. Look for "
            "comments the existing LFs get wrong or miss, and write an LF for those."
        )
    passed(
        f"{len(my_lfs)} LF(s) that vote on some train comments and abstain on others, are right on more than "
        f"{LF_MIN_ACCURACY:.0%} of the dev and valid comments they vote on, and neither duplicate nor lie inside "
        "another LF, and do not lower the label model's accuracy on valid by more than "
        f"{LF_MAX_VALID_LOSS} comments."
    )


def lf_train_coverage(my_lfs, train) -> dict:
    """{name: share of train comments it votes on} for each LF of ``my_lfs`` that runs; never raises.

    For the results cell, which must record something even when the exercise is unfinished.
    """
    from snorkel.labeling import LabelingFunction, PandasLFApplier

    coverage = {}
    for lf in my_lfs if isinstance(my_lfs, list | tuple) else [my_lfs]:
        if not isinstance(lf, LabelingFunction):
            continue
        try:
            L = PandasLFApplier([lf]).apply(train, progress_bar=False)
        except Exception:  # an unfinished answer: nothing to record for this LF
            continue
        coverage[lf.name] = float((L != -1).mean())
    return coverage


# --------------------------------------------------------------------------
# Lab 2: transformation functions
# --------------------------------------------------------------------------

#: A TF may return its row unchanged now and then (two equal words swapped); more often than this
#: share of the rows it returns, it is returning the row where it should return None.
TF_MAX_UNCHANGED_SHARE = 0.1

#: The cues the exercise tells students to keep (check out, subscribe, my channel, please, links), as the
#: check finds them: the words check, subscrib..., channel, please (or pls, plz) and links. The "out" of
#: "check out" and the "my" of "my channel" are not checked. A TF whose text has fewer of them than before
#: fails, unless a WordNet synonym of a lost word took its place.
TF_CUE_PATTERN = (
    r"\bcheck\b|\bsubscrib\w*|\bchannel\b|\bplease\b|\bpls\b|\bplz\b|https?://[^\s\"<>\ufeff]+|www\.[^\s\"<>\ufeff]+"
)

#: The tokens the model reads (lab 2's ``TOKEN``): runs of letters or digits, or single symbols.
TF_TOKEN_PATTERN = r"[a-z0-9]+|[^\sa-z0-9]"


def _cue_key(cue: str) -> str:
    """What a cue counts as: one key for every form of "subscribe", one for please/pls/plz."""
    cue = cue.lower()
    if cue.startswith("subscrib"):
        return "subscrib"
    return "please" if cue in ("pls", "plz") else cue


def _occurrences(tokens: list[str], phrase: list[str]) -> int:
    return sum(tokens[i : i + len(phrase)] == phrase for i in range(len(tokens) - len(phrase) + 1))


def _lost_cue(before: str, after: str) -> tuple[str, list[str]] | None:
    """The first cue word or link that ``after`` has fewer of than ``before`` and no WordNet synonym replaced.

    Counted on the whole text, whatever happened to the number of words: deleting "please" from "please!"
    loses it as surely as deleting a whole word. Returns the cue as ``before`` wrote it and the tokens
    ``after`` gained (none: a plain deletion), or None when every cue is still there or replaced by a synonym.
    WordNet is loaded only when a lost cue may have been replaced.
    """
    import difflib
    import re
    from collections import Counter

    found = [[m.group() for m in re.finditer(TF_CUE_PATTERN, text, re.IGNORECASE)] for text in (before, after)]
    lost = Counter(map(_cue_key, found[0])) - Counter(map(_cue_key, found[1]))
    if not lost:
        return None
    tokens = [re.findall(TF_TOKEN_PATTERN, text.lower()) for text in (before, after)]
    opcodes = difflib.SequenceMatcher(None, *tokens, autojunk=False).get_opcodes()
    added = [token for tag, _, _, j1, j2 in opcodes if tag in ("replace", "insert") for token in tokens[1][j1:j2]]
    for cue in dict.fromkeys(word for word in found[0] if _cue_key(word) in lost):
        if added and not re.match(r"https?://|www\.", cue, re.IGNORECASE):  # a link has no synonym
            from utils import load_wordnet  # cached: in lab 2 it is loaded already

            wordnet = load_wordnet()
            lemmas = {name for synset in wordnet.synsets(cue.lower()) for name in synset.lemma_names()}
            phrases = [re.findall(TF_TOKEN_PATTERN, name.replace("_", " ").lower()) for name in lemmas]
            if any(_occurrences(tokens[1], p) > _occurrences(tokens[0], p) for p in phrases if p):
                continue  # replaced by a synonym, as the lab's verb TF does ("check" -> "suss out")
        return cue, added
    return None


def _around_change(before: str, after: str, *, context: int = 30, width: int = 100) -> dict[str, str]:
    """``before`` and ``after``, ``width`` characters at most, cut so that the first difference shows even in a
    long comment ("..." marks what is cut)."""
    pairs = zip(before, after, strict=False)
    same = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(before), len(after)))
    # From the start, if the change is in sight; else from the start of a word about `context` characters before it.
    start = 0 if same <= width - context else before.rfind(" ", 0, same - context) + 1

    def cut(text: str) -> str:
        shown = text[start:]
        return ("..." if start else "") + (shown if len(shown) <= width else shown[: width - 3] + "...")

    return {"before": cut(before), "after": cut(after)}


def _tf_row(index, text) -> str:
    return f"row {index!r} of the comments it was given ({str(text)[:60]!r})"


def tf_check_rows(train, per_video: int = 75, *, seed: int = 123):
    """The training comments lab 2's check applies a TF to: ``per_video`` from each video, drawn with ``seed``.

    A sample from every video, not the first rows of the table (which all come from one video), so the
    check sees the variety of comments the policy will see.
    """
    return train.groupby("video", group_keys=False).sample(per_video, random_state=seed)


def check_transformation_function(my_tf, rows, *, seed: int = 123, show: int = 4) -> None:
    """Lab 2's exercise: apply the student's TF ``my_tf`` to ``rows`` (training comments, never test).

    A sound TF returns, for every row, either ``None`` (it does not apply) or the row with a changed,
    non-empty ``text`` and the same ``label``, and changes at least one comment. As the exercise asks, it
    loses none of the cue words and links spam is recognised by (``TF_CUE_PATTERN``; a WordNet synonym may
    replace a cue word), and it changes more than the case of letters (the model lower-cases every comment, so
    it would see a duplicate). Prints up to ``show`` before/after pairs (without the comments' HTML, from a
    little before the first change), then ``CHECK PASSED: ...``; or ``CHECK FAILED: ...`` naming the first
    mistake, and raises. ``seed`` seeds Python's and NumPy's generators, so the verdict is
    repeatable.
    """
    import random
    import re

    import numpy as np
    import pandas as pd
    from snorkel.labeling import LabelingFunction
    from snorkel.map.core import BaseMapper

    from utils import readable_comment

    fix_decorator = "Put `@transformation_function()` (with the brackets) on the line above `def my_tf(x):`."
    if my_tf is None:
        failed("there is no `my_tf` yet. Define it in the exercise cell above, run that cell, then this one.")
    if isinstance(my_tf, LabelingFunction):
        failed(f"`my_tf` is a labeling function (it votes on a label), not a transformation function. {fix_decorator}")
    if not isinstance(my_tf, BaseMapper):
        what = "a plain Python function" if callable(my_tf) else f"a {type(my_tf).__name__}"
        failed(f"`my_tf` is {what}, not a TF, so Snorkel's policies cannot apply it. {fix_decorator}")

    random.seed(seed)
    np.random.seed(seed)
    changed, unchanged, case_only = [], [], []
    for index, x in rows.iterrows():
        where = _tf_row(index, x["text"])
        try:
            x_new = my_tf(x)
        except Exception as error:  # any mistake in the student's code ends up here
            failed(
                f"my_tf raised {type(error).__name__}: {error} on {where}. Run it on that row alone to see "
                f"the traceback: `my_tf(train.loc[{index!r}])`, and return None where the TF cannot apply."
            )
        if x_new is None:
            continue
        if not isinstance(x_new, pd.Series):
            shown = repr(x_new)[:60]
            hint = " Set `x.text = ...` and `return x`." if isinstance(x_new, str) else ""
            failed(
                f"my_tf returned {type(x_new).__name__} {shown} for {where}. A TF must return the row `x` it was "
                f"given, with `x.text` changed, or None when it does not apply.{hint}"
            )
        if "label" not in x_new.index or x_new["label"] != x["label"]:
            got = x_new["label"] if "label" in x_new.index else "no label at all"
            failed(
                f"my_tf changed the label of {where} from {x['label']} to {got}. A TF must keep the label "
                "(a transformed spam comment is still spam): change only `x.text`."
            )
        text = x_new["text"] if "text" in x_new.index else None
        if not isinstance(text, str):
            failed(
                f"my_tf made the text of {where} a {type(text).__name__} ({text!r:.40}). "
                "Keep `x.text` a string: build the new text as a str and assign it to `x.text`."
            )
        if not text.strip():
            failed(
                f"my_tf emptied the text of {where}. Leave some text: return None for comments too short to transform."
            )
        lost = _lost_cue(x["text"], text)
        if lost is not None:
            cue, added = lost
            link = re.match(r"https?://|www\.", cue, re.IGNORECASE)
            how = ""
            if added:
                new_words = " ".join(added)
                how = f", or replaced {'it' if link else 'it by words that are none of its WordNet synonyms'} "
                how += f"(new in the text: {new_words[:40]!r})"
            failed(
                f"my_tf deleted {cue!r} from {where}{how}. The exercise asks you to keep the words spam is "
                "recognised by (check out, subscribe, my channel, please, links): a spam copy without them may no "
                "longer read as spam. Leave them out of what your TF deletes or changes (links as they are), "
                "or replace them with a synonym instead."
            )
        if text == x["text"]:
            unchanged.append(where)
        elif text.lower() == x["text"].lower():
            case_only.append(where)
        else:
            changed.append(_around_change(readable_comment(x["text"]), readable_comment(text)))

    returned = len(changed) + len(unchanged) + len(case_only)
    if unchanged and len(unchanged) > TF_MAX_UNCHANGED_SHARE * returned:
        failed(
            f"my_tf returned {len(unchanged)} of {len(rows)} rows with their text unchanged (first: {unchanged[0]}). "
            "When the TF cannot change a comment, return None: a returned row counts as a new copy, so the "
            "policy would add duplicates of the original instead of dropping that copy."
        )
    if case_only and len(case_only) > TF_MAX_UNCHANGED_SHARE * returned:
        failed(
            f"my_tf changed only the case of letters in {len(case_only)} of {len(rows)} comments (first: "
            f"{case_only[0]}). The model lower-cases every comment, so it would see exact duplicates of the "
            "originals: change a word, not its case, and return None where the TF cannot."
        )
    if not changed:
        failed(
            f"my_tf returned None for all {len(rows)} comments, so it would add nothing. Assign the new text to "
            "`x.text` and `return x`; return None only where the TF cannot apply."
        )
    examples = pd.DataFrame(changed[:show])
    try:
        from IPython.display import display
    except ImportError:  # outside Jupyter
        display = print
    display(examples)
    nones = len(rows) - returned
    parts = [f"my_tf changed {len(changed)} of {len(rows)} comments ({len(changed) / len(rows):.0%})"]
    if unchanged:
        parts.append(
            f"returned {len(unchanged)} with the text unchanged (allowed: at most "
            f"{TF_MAX_UNCHANGED_SHARE:.0%} of the rows it returns)"
        )
    if case_only:
        parts.append(
            f"changed only the case in {len(case_only)} (allowed: at most {TF_MAX_UNCHANGED_SHARE:.0%} of the "
            "rows it returns)"
        )
    parts.append(f"returned None for the other {nones}" if nones else "never returned None")
    passed(", ".join(parts[:-1]) + f" and {parts[-1]}; it kept every label.")


# --------------------------------------------------------------------------
# Lab 3: slicing functions
# --------------------------------------------------------------------------


def f1_points_per_missed_spam(spam: int) -> float:
    """F1 points (of 100) a slice with ``spam`` spam comments loses when a model that gets them all right misses one.

    F1 = 2TP / (2TP + FP + FN) goes from 1 to 2(s - 1) / (2s - 1): the lab's reason to count comments, not F1
    points, when it compares two models on a slice.
    """
    return 100 / (2 * spam - 1)


def f1_points_one_more_miss(tp: int, fp: int, fn: int) -> float:
    """F1 points (of 100) a slice loses when a model with these counts misses one more of its spam comments.

    From F1 = 2TP / (2TP + FP + FN) to 2(TP - 1) / (2TP + FP + FN - 1). With FP = FN = 0 (a perfect score)
    this is ``f1_points_per_missed_spam(tp)``; a model that already misses some of the slice's spam loses
    more, and false alarms make the cost a little smaller.
    Needs a caught spam comment to miss (tp >= 1).
    """
    return 100 * (2 * tp / (2 * tp + fp + fn) - 2 * (tp - 1) / (2 * tp + fp + fn - 1))


def _sf_row(df, index) -> str:
    text = df.at[index, "text"] if "text" in df.columns else ""
    text = text if isinstance(text, str) else repr(text)
    return f"row {index!r} (text {text[:60] + ('...' if len(text) > 60 else '')!r})"


def _sf_bad_output(name: str, value, where: str) -> str:
    """The message for an SF that returned ``value`` (not True/False) on the row described by ``where``."""
    import re

    import numpy as np

    shown = f"{value!r} ({type(value).__name__})"
    fix = "return the condition itself, for example `return len(x.text.split()) < 5`"
    if value is None:
        return (
            f"{name} returned None for {where}: some path through the function ends without a return, or "
            "it returns what re.search gives (None when nothing matches; write `re.search(...) is not None`). "
            f"An SF must return True or False for every comment: {fix}."
        )
    if isinstance(value, re.Match):
        return (
            f"{name} returned a regular-expression match object for {where}, not True/False: Snorkel "
            "cannot store it and raises. Write `return re.search(...) is not None`."
        )
    if isinstance(value, int | float | np.integer | np.floating):
        if 0 < value < 1:
            return (
                f"{name} returned {shown} for {where}. Snorkel stores slice membership as whole numbers "
                f"and silently truncates {value!r} to 0, so this comment would be left out of the slice. "
                "Compare with a threshold instead, for example `return score > 0.5`."
            )
        if value < 0:
            return (
                f"{name} returned {shown} for {where}. Snorkel drops negative outputs and records -1, "
                f"which is neither 'in' nor 'out' of a slice. Return True or False: {fix}."
            )
        return (
            f"{name} returned the number {shown} for {where}, not True/False. Slice membership is "
            f"yes or no, and Snorkel would store any number as a count; {fix} (or wrap it in bool(...))."
        )
    return f"{name} returned {shown} for {where}. An SF must return True or False: {fix}."


def check_slicing_function(my_slice, *, valid, baseline_valid_preds=None, train=None) -> None:
    """Lab 3's exercise: judge the student's SF ``my_slice`` on the lab's ``valid`` split (never test).

    Calls the SF on every valid comment (and every ``train`` comment, if given, to count its members
    there), then prints the slice's size and spam count on valid and, given ``baseline_valid_preds``,
    the baseline's F1 on the slice next to its overall valid F1 and how many of the slice's comments it
    gets wrong, and what one more missed spam would cost the baseline's F1 on the slice, from its actual
    counts (why the lab's release check counts comments); without predictions, the cost from a perfect
    score. Fails on: something that is not a slicing function (a plain function, a labeling
    function, None, ...), an SF that reads the label (it is called on comments without their label, as on new
    data), an SF that raises on some comment (named), one that returns anything but
    True/False (None, numbers, including values in [0, 1), which Snorkel truncates to 0, strings, match
    objects), and a slice with no valid member or with every valid comment in it.
    """
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score
    from snorkel.labeling import LabelingFunction
    from snorkel.slicing import PandasSFApplier, SlicingFunction

    decorate = "put @slicing_function() (with the brackets) on the line above `def my_slice(x):`"
    if my_slice is None:
        failed(f"my_slice is None: write your SF in the cell above ({decorate}) and run that cell.")
    if not isinstance(my_slice, SlicingFunction):
        if isinstance(my_slice, LabelingFunction):
            failed(
                f"{my_slice.name} is a labeling function (made with @labeling_function()), not a slicing "
                "function. A slice is a yes/no rule: decorate it with @slicing_function() and return True or False."
            )
        if callable(my_slice):
            name = getattr(my_slice, "__name__", repr(my_slice))
            failed(f"{name} is a plain Python function, not a Snorkel slicing function: {decorate}.")
        failed(f"my_slice is a {type(my_slice).__name__}, not a slicing function: {decorate}.")

    name = my_slice.name
    # An SF must decide without the label (it runs on new, unlabeled comments): it sees the comments without it.
    frames = {"valid": valid} if train is None else {"valid": valid, "train": train}
    frames = {split: df.drop(columns="label", errors="ignore") for split, df in frames.items()}
    for split, df in frames.items():
        for index, row in df.iterrows():
            where = _sf_row(df, index)
            try:
                value = my_slice(row)
            except Exception as error:  # the student's code: any error is theirs to fix
                if isinstance(error, AttributeError | KeyError) and "label" in str(error):
                    failed(
                        f"{name} reads the comment's label (x.label), which the check leaves out. A slicing "
                        "function must decide from the comment alone: slices are run on new comments that "
                        "nobody has labeled yet. Write a rule on x.text (and its other columns) instead."
                    )
                failed(
                    f"{name} raised {type(error).__name__}: {error} on {split} {where}. An SF must return "
                    f"True or False for every comment; try it on that row: my_slice({split}.loc[{index!r}])."
                )
            if not isinstance(value, bool | np.bool_):
                failed(_sf_bad_output(name, value, f"{split} {where}"))

    members = {
        split: PandasSFApplier([my_slice]).apply(df, progress_bar=False)[name].astype(bool)
        for split, df in frames.items()
    }
    in_valid = members["valid"]
    golds = valid["label"].to_numpy()[in_valid]
    counts = f"{name}: {in_valid.sum()} of {len(valid)} valid comments ({golds.sum()} of them spam)"
    if train is not None:
        counts += f"; {members['train'].sum()} of {len(train)} train comments"
    print(counts)
    if not in_valid.any():
        failed(
            f"no valid comment is in the slice of {name}, so it cannot be scored. Make the rule less strict "
            "(look at which comments it catches with slice_dataframe(train, my_slice))."
        )
    if in_valid.all():
        failed(
            f"every valid comment is in the slice of {name}: a slice must single out a subset. Make the rule "
            "stricter, or check that it does not return True for every comment."
        )
    spam = int(golds.sum())
    compare = "Compare two models on it by counting the comments they get wrong, as the lab's release check does."
    comments = "comment" if spam == 1 else "comments"
    if baseline_valid_preds is not None:
        preds = np.asarray(baseline_valid_preds)
        wrong = f"wrong on {int((preds[in_valid] != golds).sum())} of its {in_valid.sum()} comments"
        if spam == 0:
            accuracy = 100 * accuracy_score(golds, preds[in_valid])
            print(f"No spam in the slice, so F1 is undefined; the baseline's accuracy on it: {accuracy:.1f}%,\n{wrong}")
        else:
            overall = 100 * f1_score(valid["label"].to_numpy(), preds)
            f1 = 100 * f1_score(golds, preds[in_valid])
            print(f"Baseline on the slice: F1 {f1:.1f}% (overall: {overall:.1f}%), {wrong}")
            flagged, is_spam = preds[in_valid] == 1, golds == 1
            tp, fp, fn = (
                int((flagged & is_spam).sum()),
                int((flagged & ~is_spam).sum()),
                int((~flagged & is_spam).sum()),
            )
            if tp:
                alarms = "false alarm" if fp == 1 else "false alarms"
                print(
                    f"It catches {tp} of the slice's {spam} spam {comments} ({fp} {alarms}): one more missed spam\n"
                    f"would cost {f1_points_one_more_miss(tp, fp, fn):.1f} points of its F1.\n{compare}"
                )
            else:
                print(
                    f"It catches none of the slice's {spam} spam {comments}: a model that caught one would gain\n"
                    f"{200 / (1 + fp + fn):.1f} points of its F1.\n{compare}"
                )
    elif spam:
        print(
            f"With {spam} spam {comments} in the slice, one missed spam costs "
            f"{f1_points_per_missed_spam(spam):.1f} points of its F1 from a\nperfect score.\n{compare}"
        )
    passed(f"`{name}` is a valid SF: {in_valid.sum()} of {len(valid)} valid comments are in its slice.")
