"""tools/scaleout.py: it runs lab 1's own LFs, the label matrices agree, its record is well formed, and
lab 1 quotes the record's figures as the tool printed them.

The run is small (120 comments, one worker process): it proves that the tool works end to end, with
real worker processes, not how fast anything is.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "scaleout.py"
LAB1 = ROOT / "01_spam_tutorial.ipynb"

#: Markdown cells of lab 1 with this tag quote the scale-out record: every number in them must be one of the
#: record's figures, written as the tool prints it (tests/test_prose.py cannot tie them to lab 1's outputs).
QUOTE_TAG = "scaleout"
#: A number (an integer, a decimal or a percentage) that is not part of a word, a version or a path.
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%?(?![\w.]*\d)")


def _load_tool():
    spec = importlib.util.spec_from_file_location("scaleout_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scaleout = _load_tool()


def run_tool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def check_record(record: dict) -> None:
    """The figures are all there, of the right kind, consistent with each other and with what is shown."""
    machine = record["machine"]
    assert isinstance(machine["cores"], int) and machine["cores"] >= 1
    assert isinstance(machine["cpu_model"], str) and machine["cpu_model"].strip()
    assert isinstance(record["n_comments"], int) and record["n_comments"] >= 1
    assert record["lf_count"] == len(record["lf_kb"]) >= 1
    assert record["lfs_kb"] >= max(record["lf_kb"].values()) > 0
    assert record["pickle_ms"] > 0 and record["lab_cpu_ms_per_comment"] > 0

    pandas = record["pandas"]
    assert pandas["applier"] == "PandasLFApplier" and pandas["workers"] is None
    assert pandas["wall_s"] > 0 and pandas["cpu_ms_per_comment"] > 0
    runs = record["dask"]
    assert runs, "no DaskLFApplier run recorded"
    for run in [pandas, *runs]:
        assert isinstance(run["load"], float) and run["load"] >= 0, f"no load average beside {run['applier']}"
        assert run["others"] is None or run["others"] >= 0
    for run in runs:
        assert isinstance(run["workers"], int) and run["workers"] >= 1
        assert run["wall_s"] > 0 and run["partitions"] >= run["workers"]
        assert run["equal"] is True or run["equal"] is False
        assert 0 < run["imports_s"] <= run["start_s"], "the start cost is the imports plus the first comment"
        if run["spawn_s"] is not None:  # a local cluster: its whole life contains its start and its apply
            assert run["from_new_cluster_s"] >= run["spawn_s"] + run["wall_s"]
    assert record["matrices_equal"] == all(run["equal"] for run in runs)
    assert isinstance(record["note"], str) and "upper bound" in record["note"]
    assert record["shown"] == scaleout.shown_figures(record), "the shown figures are not the recorded ones"
    shown_rows = record["shown"]["rows"]
    assert [row["workers"] for row in shown_rows] == ["-"] + [str(run["workers"]) for run in runs]
    assert shown_rows[0]["speedup"] == "1.00"


def record_figures(record: dict) -> set[str]:
    """Every figure the record shows, as printed."""
    shown = record["shown"]
    values = [value for key, value in shown.items() if key != "rows"]
    values += [value.removesuffix(" (warm)") for row in shown["rows"] for value in row.values()]
    return {value for value in values if NUMBER.fullmatch(value)}


def test_the_tool_runs_lab_1s_lfs_and_the_matrices_agree(tmp_path):
    record_file = tmp_path / "record.json"
    result = run_tool("--n", "120", "--workers", "1", "--partitions-per-worker", "2", "--record", str(record_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Label matrices: every one equals PandasLFApplier's." in result.stdout
    record = json.loads(record_file.read_text(encoding="utf-8"))
    check_record(record)
    assert record["n_comments"] == 120 and [run["workers"] for run in record["dask"]] == [1]
    assert record["dask"][0]["fresh_workers"] is True, "a new local worker had imported snorkel already"
    assert record["dask"][0]["partitions"] == 2
    # The table printed is the record's table.
    assert scaleout.table(record["shown"]["rows"]) in result.stdout


def test_the_committed_record_is_well_formed():
    record = json.loads(scaleout.RECORD.read_text(encoding="utf-8"))
    check_record(record)
    assert record["matrices_equal"], "the committed record shows a label matrix that differs from Pandas'"
    assert [run["workers"] for run in record["dask"]] == scaleout.default_workers(record["machine"]["cores"])


def test_lab_1_quotes_the_records_figures_as_printed():
    notebook = json.loads(LAB1.read_text(encoding="utf-8"))
    record = json.loads(scaleout.RECORD.read_text(encoding="utf-8"))
    figures = record_figures(record)
    wrong = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown" or QUOTE_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        text = re.sub(r"`[^`]*`", "", "".join(cell["source"]))  # code (`--workers 1 2 4`) is not a figure
        quoted = NUMBER.findall(text)
        assert quoted, f"a markdown cell tagged {QUOTE_TAG!r} quotes no figure: {text[:100]!r}"
        wrong += [
            f"{number}: {line.strip()[:140]}"
            for line in text.splitlines()
            for number in NUMBER.findall(line)
            if number not in figures
        ]
    assert not wrong, "lab 1 quotes figures that tools/scaleout_record.json does not show:\n" + "\n".join(wrong)


def test_the_number_pattern():
    assert NUMBER.findall("1.82 times on 2 cores, 4.0 s, 9516 comments, 45%, spaCy 3.8.0, v1.2.zip") == [
        "1.82",
        "2",
        "4.0",
        "9516",
        "45%",
    ]


def test_a_notebook_without_the_tag_is_a_clear_failure(tmp_path):
    notebook = json.loads(LAB1.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    untagged = tmp_path / "01_spam_tutorial.ipynb"
    untagged.write_text(json.dumps(notebook), encoding="utf-8")
    with pytest.raises(scaleout.ScaleoutError, match="no code cell of 01_spam_tutorial.ipynb carries the cell tag"):
        scaleout.lab1_lfs(untagged)


def test_tagged_cells_that_do_not_define_lfs_are_a_clear_failure(tmp_path):
    cell = {"cell_type": "code", "metadata": {"tags": [scaleout.TAG]}, "source": "x = 1", "outputs": []}
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    with pytest.raises(scaleout.ScaleoutError, match="do not define `lfs`"):
        scaleout.lab1_lfs(notebook)
    cell["source"] = "lfs = [undefined_lf]"
    notebook.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    with pytest.raises(scaleout.ScaleoutError, match="cell 0 .* NameError: .*undefined_lf.*tag that cell too"):
        scaleout.lab1_lfs(notebook)


def test_the_notebooks_imports_come_before_the_tagged_cells(tmp_path):
    cells = [
        {"cell_type": "code", "metadata": {}, "source": "%load_ext autoreload", "outputs": []},
        {"cell_type": "code", "metadata": {}, "source": "from snorkel.labeling import labeling_function\nx = 1"},
        {"cell_type": "markdown", "metadata": {"tags": [scaleout.TAG]}, "source": "import nothing_at_all"},
        {
            "cell_type": "code",
            "metadata": {"tags": [scaleout.TAG]},
            "source": "@labeling_function()\ndef silent(x):\n    return -1\n\n\nlfs = [silent]\nprint('hidden')",
        },
    ]
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert [lf.name for lf in scaleout.lab1_lfs(notebook)] == ["silent"]
    assert scaleout.notebook_imports(notebook) == [(1, "from snorkel.labeling import labeling_function")]


def test_new_comments_are_new_and_distinct():
    import pandas as pd

    train = pd.DataFrame({"text": ["check out my channel", None, "love it"], "label": [-1, -1, -1]})
    comments = scaleout.new_comments(train, 7)
    assert len(comments) == 7 and comments.text.is_unique
    assert not set(comments.text) & set(train.text)
    assert comments.text[4] == " (4)" and comments.text[3] == "check out my channel (3)"


def test_default_workers():
    assert scaleout.default_workers(1) == [1]
    assert scaleout.default_workers(2) == [1, 2]
    assert scaleout.default_workers(6) == [1, 2, 4, 6]
    assert scaleout.default_workers(8) == [1, 2, 4, 8]
