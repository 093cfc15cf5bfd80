"""The labs' prose must not drift from their outputs.

Every percentage and every decimal number that a markdown cell quotes must appear, as written,
in an output of the same notebook: when a re-run changes a result, this test names the sentence
that now says something false. Figures that come from somewhere else (published results,
version numbers, settings a sentence explains) are listed below, per notebook, with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: A percentage (94.4%, 60%) or a decimal number (0.22, 1.5), not part of a word, a version or a path.
FIGURE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%|(?<![\w.])\d+\.\d+(?![\w.]*\d)")

#: Figures a notebook may quote that are not among its own outputs, each with its reason.
QUOTED_FROM_ELSEWHERE: dict[str, dict[str, str]] = {
    "01_spam_tutorial.ipynb": {
        "84%": "published Snorkel spam tutorial: majority vote accuracy on test",
        "86%": "published Snorkel spam tutorial: label model accuracy on test",
        "0.05": "the p-value threshold of utils.compare_paired's verdict",
        "50%": "the share of discordant comments under 'equally good', which compare_paired's interval is held against",
        "80%": "exercise_checks.LF_MAX_SIMILARITY, stated in the exercise (test_exercise_checks_lab1 ties them)",
        "90%": "exercise_checks.LF_MAX_INSIDE, stated in the exercise (test_exercise_checks_lab1 ties them)",
    },
    "02_spam_data_augmentation_tutorial.ipynb": {
        "0.05": "the significance level of utils.compare_paired's verdict (p < 0.05), which the sentence explains",
        "2.2": "fit on NumPy arrays, 48 epochs on 50 comments: measured while writing the lab, on the 2-core machine "
        "the sentence names (a timing, so not an output the lab re-computes)",
        "0.15": "the same fit on a tf.data dataset, without a callback, measured alongside (see 2.2)",
        "0.6": "section 6: 48 one-batch epochs of fit on 50 comments with the lab's callback, measured while writing "
        "the lab on the busy 2-core machine the sentence names (a timing, not an output)",
        "0.3": "section 6: the same 48 training steps as 12 epochs of 4 passes, measured alongside (see 0.6)",
        "91.6%": "test accuracy with augmentation that snorkel-team/snorkel-tutorials prints in "
        "spam/02_spam_data_augmentation_tutorial.ipynb (2ba84e4; since 680d621) for its LSTM, 5 epochs, one run",
        "86.0%": "the same notebook's test accuracy without augmentation (see 91.6%)",
        "91.2%": "test accuracy without augmentation in earlier versions of that tutorial (LSTM, early stopping on "
        "valid), as snorkel-team/website's _use_cases/02_spam_data_augmentation_tutorial.md showed it (21a3b8c)",
        "92.0%": "the same, in the version of snorkel-team/website c5ed788 (see 91.2%)",
        "92.8%": "test accuracy with augmentation in both of those versions (see 91.2%)",
    },
    "03_spam_data_slicing_tutorial.ipynb": {
        "0.05": "the significance level of utils.compare_paired's verdict (p < 0.05), which the sentence explains",
        "0.001": "a learning rate tried while choosing the training settings on valid (a setting, not a result)",
        "0.003": "a learning rate tried while choosing the training settings on valid (a setting, not a result)",
        "0.5": "the probability threshold the indicator-head cell applies (prob > 0.5), a setting",
        "2.7": "e = 2.718..., the largest ratio of two attention weights in Snorkel's SliceCombinerModule "
        "(softmax of products in [0, 1], temperature 1): read from its source, not an output",
    },
}


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else (value or "")


#: Markdown cells with this tag quote tools/scaleout_record.json, not the notebook's outputs (lab 1's scale-out
#: figures, measured by tools/scaleout.py): tests/test_scaleout.py ties every number in them to that record.
RECORD_QUOTE_TAG = "scaleout"


def quoted_figures(notebook: dict) -> dict[str, str]:
    """Figure -> the first markdown line quoting it (headings are skipped: 4.1 is a section number; so are cells
    tagged ``scaleout``, which tests/test_scaleout.py checks against the scale-out record)."""
    found: dict[str, str] = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown" or RECORD_QUOTE_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for line in _text(cell["source"]).splitlines():
            if line.lstrip().startswith("#"):
                continue
            for figure in FIGURE.findall(line):
                found.setdefault(figure, line.strip())
    return found


def output_text(notebook: dict) -> str:
    """Everything the code cells printed or displayed as text."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            parts.append(_text(output.get("text")))
            parts += [_text(value) for kind, value in output.get("data", {}).items() if kind.startswith("text/")]
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(QUOTED_FROM_ELSEWHERE))
def test_every_quoted_figure_is_in_the_outputs(name):
    notebook = json.loads((ROOT / name).read_text(encoding="utf-8"))
    outputs = output_text(notebook)
    allowed = QUOTED_FROM_ELSEWHERE[name]
    drifted = {
        figure: line
        for figure, line in quoted_figures(notebook).items()
        if figure not in outputs and figure not in allowed
    }
    assert not drifted, "figures quoted in the prose but not in any output:\n" + "\n".join(
        f"  {figure}: {line[:140]}" for figure, line in drifted.items()
    )


@pytest.mark.parametrize("name", sorted(QUOTED_FROM_ELSEWHERE))
def test_the_allow_list_has_no_stale_entries(name):
    notebook = json.loads((ROOT / name).read_text(encoding="utf-8"))
    stale = set(QUOTED_FROM_ELSEWHERE[name]) - set(quoted_figures(notebook))
    assert not stale, f"listed as quoted from elsewhere but no longer quoted: {sorted(stale)}"


def test_cells_quoting_the_scaleout_record_are_left_to_test_scaleout():
    quote = {"cell_type": "markdown", "metadata": {"tags": [RECORD_QUOTE_TAG]}, "source": "Pandas took 16.5 s, 1.45x."}
    lab = {"cell_type": "markdown", "metadata": {}, "source": ["The label model: 94.4%."]}
    assert quoted_figures({"cells": [quote, lab]}) == {"94.4%": "The label model: 94.4%."}
    lab1 = json.loads((ROOT / "01_spam_tutorial.ipynb").read_text(encoding="utf-8"))
    tagged = [cell for cell in lab1["cells"] if RECORD_QUOTE_TAG in cell.get("metadata", {}).get("tags", [])]
    assert tagged and all(cell["cell_type"] == "markdown" for cell in tagged), "lab 1 has no scale-out paragraph"


def test_the_figure_pattern():
    line = "MV 89.6%, LM 94.4% and 60% of 0.22; Snorkel 0.10.0, file v1.2.zip, 1.5."
    assert FIGURE.findall(line) == ["89.6%", "94.4%", "60%", "0.22", "1.5"]
