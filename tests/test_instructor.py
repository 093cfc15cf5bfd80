"""Tests of the instructor tools in instructor.py: `release` and `grade`.

Every notebook here is built by the tests: small lab notebooks with an exercise,
a check cell and a results cell, "executed" by writing the outputs Jupyter would
leave, plus each kind of bad submission. Only the --execute tests start a kernel.
"""

from __future__ import annotations

import ast
import copy
import csv
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

import instructor
import instructor_tools.release as releasing
import utils
from instructor_tools import gradebook, grading, notebooks

FIGURES = {
    1: {
        "majority_vote_test_accuracy": 0.84,
        "label_model_test_accuracy": 0.868,
        "classifier_test_accuracy": 0.912,
        "my_lfs": ["lf_mine"],
        "my_lf_coverage": {"lf_mine": 0.1234},
    },
    2: {"original_test_accuracy": 0.9, "augmented_test_accuracy": 0.92, "augmented_train_size": 3172},
    3: {"overall_f1": 0.91, "slice_f1": {"short_comment": 0.7}, "slice_aware_overall_f1": 0.92},
}
SOLUTION_LINES = ["words = text.lower().split()", "return 'subscribe' in words"]


@pytest.fixture
def sandbox():
    """For tests of `grade --execute`, which runs each notebook in a bubblewrap sandbox (see require_sandbox)."""
    require_sandbox()


def require_sandbox():
    """Skip a test of the sandbox where there can be none (not Linux); on Linux without bubblewrap, fail saying why.

    CI installs bubblewrap (.ci/run), so there these tests always run.
    """
    if sys.platform != "linux":
        pytest.skip("grade --execute's sandbox is bubblewrap, which is Linux only")
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed: `sudo apt-get install bubblewrap` (grade --execute runs in it)")


CHECK_SOURCE = (
    "import exercise_checks\n\n"
    "try:\n    found = [looks_like_spam(c) for c in comments]\nexcept NotImplementedError:\n    found = None\n"
    "if found == [True, False]:\n    exercise_checks.passed('both comments labelled right.')\n"
    "else:\n    exercise_checks.failed(f'got {found}, expected [True, False]. Hint: lower-case first.')"
)


def nbgrader(lab: int, role: str) -> dict:
    """The nbgrader metadata GUIDE.md gives each lab's exercise, check and results cell."""
    grading = {"grade": False, "grade_id": f"lab{lab}-{role}", "locked": True, "schema_version": 3}
    grading.update(solution=False, task=False)
    if role == "exercise":
        grading.update(locked=False, solution=True)
    if role == "check":
        grading.update(grade=True, points=1)
    return {"nbgrader": grading}


def lab_source(lab: int, with_nbgrader: bool = True) -> nbformat.NotebookNode:
    """A reference lab notebook as the course keeps it: solution between the markers, not executed.

    Cell 5 is the exercise, cell 6 its check, cell 9 the results cell. Without
    ``with_nbgrader`` the cells carry no nbgrader metadata, as the labs did before.
    """
    cells = [
        new_markdown_cell(f"# Lab {lab}: Fixture lab\n\nA tiny stand-in for a real lab."),
        new_code_cell("import utils"),
        new_code_cell("comments = ['Subscribe to my channel', 'great song']\nprint(len(comments), 'comments')"),
        new_markdown_cell("## Exercise\n\nWrite `looks_like_spam(text)`."),
        new_code_cell(
            "def looks_like_spam(text):\n    ### BEGIN SOLUTION\n    "
            + "\n    ".join(SOLUTION_LINES)
            + "\n    ### END SOLUTION"
        ),
        new_code_cell(CHECK_SOURCE),
        new_code_cell(""),  # an empty cell, as students leave them: never counts as "not run"
        new_markdown_cell("## Summary"),
        new_code_cell(f"utils.record_results({lab}, {FIGURES[lab]!r})"),
    ]
    for number, cell in enumerate(cells, start=1):
        cell.id = f"lab{lab}-cell-{number}"  # as Jupyter keeps them: the same in every copy of the lab
    if with_nbgrader:
        for number, role in [(5, "exercise"), (6, "check"), (9, "results")]:
            cells[number - 1].metadata.update(nbgrader(lab, role))
    return new_notebook(
        cells=cells,
        metadata={"kernelspec": {"name": "spam-labs", "language": "python", "display_name": "Python 3 (Spam Labs)"}},
    )


def results_output(lab: int) -> dict:
    return new_output(
        "display_data",
        data={"text/plain": "lab results table", utils.RESULTS_MIME: {"lab": lab, "figures": FIGURES[lab]}},
    )


def executed(notebook, check="PASSED"):
    """``notebook`` with the outputs and counts a clean "Restart and Run All" leaves (without a kernel)."""
    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))
    count = 0
    for cell in notebook.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        count += 1
        cell.execution_count = count
        if "comments)" in cell.source:
            cell.outputs = [new_output("stream", name="stdout", text="2 comments\n")]
        elif "exercise_checks" in cell.source and check == "PASSED":  # as exercise_checks.passed() prints it
            cell.outputs = [
                new_output("stream", name="stdout", text="CHECK PASSED: fixture verdict, wrapped\nas one.\n")
            ]
        elif "exercise_checks" in cell.source:  # CheckFailed, as IPython shows it: its verdict in place of a traceback
            cell.outputs = [error_output("CheckFailed", ["CHECK FAILED: got [True, True], expected", "[True, False]."])]
        elif "record_results" in cell.source:
            lab = int(cell.source.split("(")[1].split(",")[0])
            cell.outputs = [results_output(lab)]
    return notebook


def error_output(ename="NameError", traceback=None):
    return new_output("error", ename=ename, evalue="boom", traceback=traceback or [f"{ename}: boom"])


def save(notebook, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def grade(capsys, course, *args) -> tuple[int, dict[str, dict], str]:
    """Run `grade`; return its exit status, the gradebook rows by student, and what it printed."""
    *paths, out = args
    status = instructor.main(["grade", *map(str, paths), "--out", str(out), "--course", str(course)])
    printed = "".join(capsys.readouterr())  # the table on stdout, then the progress bar (if any) on stderr
    with open(out, newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return status, rows, printed


def make_course(root, with_nbgrader=True):
    """A course folder: the three reference notebooks, executed, with the real utils.py and exercise_checks.py."""
    for lab, name in notebooks.LAB_NOTEBOOKS.items():
        save(executed(lab_source(lab, with_nbgrader)), root / name)
    for module in ("utils.py", "exercise_checks.py"):
        shutil.copy(notebooks.COURSE / module, root / module)
    return root


@pytest.fixture
def course(tmp_path):
    """A course folder with fixture labs (nbgrader metadata, as the real labs) in place of the real ones."""
    return make_course(tmp_path / "course")


@pytest.fixture
def legacy_course(tmp_path):
    """A course folder whose labs carry no nbgrader metadata: checks are found after the exercise markers."""
    return make_course(tmp_path / "legacy-course", with_nbgrader=False)


# --------------------------------------------------------------------------
# release
# --------------------------------------------------------------------------


def test_release_leaves_no_solution_and_no_output(course, tmp_path, capsys):
    out = tmp_path / "student"
    assert instructor.main(["release", str(out), "--course", str(course)]) == 0
    assert "1 exercise(s) replaced by a placeholder" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(notebooks.LAB_NOTEBOOKS.values())

    for lab, name in notebooks.LAB_NOTEBOOKS.items():
        copy, source = nbformat.read(out / name, as_version=4), nbformat.read(course / name, as_version=4)
        nbformat.validate(copy)
        text = json.dumps(copy)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert not any(line in text for line in SOLUTION_LINES)
        assert "CHECK PASSED: fixture verdict" not in text and utils.RESULTS_MIME not in text
        for cell, original in zip(copy.cells, source.cells, strict=True):
            assert "execution" not in cell.metadata
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                ast.parse(cell.source)  # still valid Python, placeholder indented into the function
            if "looks_like_spam(text)" in original.source and original.cell_type == "code":
                assert cell.source == (
                    "def looks_like_spam(text):\n    # YOUR CODE HERE\n"
                    '    raise NotImplementedError("Write your solution here, then run this cell again.")'
                )
            else:
                assert cell.source == original.source  # everything else is handed out unchanged
        assert copy.metadata["spam_labs"] == {"lab": lab, "checks": 1}
        # As nbgrader locks them: the check and results cells are read-only in JupyterLab, the exercise is not.
        assert [number for number, cell in enumerate(copy.cells, 1) if cell.metadata.get("editable") is False] == [6, 9]
        assert [number for number, cell in enumerate(copy.cells, 1) if cell.metadata.get("deletable") is False] == [
            5,
            6,
            9,
        ]
        assert copy.cells[5].metadata["nbgrader"]["grade_id"] == f"lab{lab}-check"
        assert copy.metadata["kernelspec"]["name"] == "spam-labs"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1", "cell 5: ### BEGIN SOLUTION without an ### END SOLUTION after it"),
        ("x = 1\n### END SOLUTION", "cell 5: ### END SOLUTION without a ### BEGIN SOLUTION before it"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another solution"),
    ],
)
def test_release_refuses_unbalanced_markers_and_writes_nothing(course, tmp_path, capsys, source, problem):
    notebook = nbformat.read(course / notebooks.LAB_NOTEBOOKS[2], as_version=4)
    notebook.cells[4].source = source
    save(notebook, course / notebooks.LAB_NOTEBOOKS[2])
    assert instructor.main(["release", str(tmp_path / "student"), "--course", str(course)]) == 1
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


def test_release_needs_every_lab_and_never_overwrites_the_sources(course, tmp_path, capsys):
    assert instructor.main(["release", str(course), "--course", str(course)]) == 2
    assert "holds the reference notebooks" in capsys.readouterr().err
    assert "BEGIN SOLUTION" in (course / notebooks.LAB_NOTEBOOKS[1]).read_text()

    (course / notebooks.LAB_NOTEBOOKS[3]).unlink()
    assert instructor.main(["release", str(tmp_path / "student"), "--course", str(course)]) == 1
    assert f"{notebooks.LAB_NOTEBOOKS[3]} not found" in capsys.readouterr().err
    assert not (tmp_path / "student").exists()


def test_placeholder_keeps_code_around_the_solution():
    source = "import re\n\ndef f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\nprint(f)"
    stripped, count = releasing.source_without_solutions(source)
    assert count == 1
    assert stripped.splitlines() == [
        "import re",
        "",
        "def f(x):",
        "    # YOUR CODE HERE",
        '    raise NotImplementedError("Write your solution here, then run this cell again.")',
        "",
        "print(f)",
    ]


REAL_NOTEBOOKS = [notebooks.COURSE / name for name in notebooks.LAB_NOTEBOOKS.values()]


def test_release_of_the_real_labs(tmp_path, capsys):
    assert instructor.main(["release", str(tmp_path)]) == 0
    for source_path in REAL_NOTEBOOKS:
        source, copy = (
            nbformat.read(source_path, as_version=4),
            nbformat.read(tmp_path / source_path.name, as_version=4),
        )
        solutions = [cell.source for cell in source.cells if notebooks.BEGIN_SOLUTION in cell.source]
        assert solutions, f"{source_path.name} has no exercise"
        placeholders = [cell.source for cell in copy.cells if "raise NotImplementedError(" in cell.source]
        assert len(placeholders) >= len(solutions)
        for cell in copy.cells:
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                ast.parse(cell.source)
        for before in solutions:  # no line of a solution survives in its cell, unless it was outside the markers
            inside = before.split(notebooks.BEGIN_SOLUTION, 1)[1].split(notebooks.END_SOLUTION, 1)[0].splitlines()[1:]
            outside = set(releasing.source_without_solutions(before)[0].splitlines())
            after = "\n".join(placeholders)
            assert not [line for line in inside if line.strip() and line not in outside and line in after]


# --------------------------------------------------------------------------
# grade: good notebooks
# --------------------------------------------------------------------------


def test_grade_reads_results_checks_and_run_order(course, tmp_path, capsys):
    folder = tmp_path / "submissions"
    for lab in notebooks.LAB_NOTEBOOKS:
        save(executed(lab_source(lab)), folder / f"student{lab}" / notebooks.LAB_NOTEBOOKS[lab])
    failed = save(executed(lab_source(1), check="FAILED"), folder / "bob.ipynb")
    save(executed(lab_source(1)), folder / ".ipynb_checkpoints" / "bob-checkpoint.ipynb")
    before = failed.read_bytes()

    status, rows, printed = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    assert status == 0
    assert sorted(rows) == [
        ".ipynb_checkpoints/bob-checkpoint.ipynb",  # a row that says it was not graded
        "bob.ipynb",
        "student1/01_spam_tutorial.ipynb",
        "student2/02_spam_data_augmentation_tutorial.ipynb",
        "student3/03_spam_data_slicing_tutorial.ipynb",
    ]
    alice = rows["student1/01_spam_tutorial.ipynb"]
    assert alice["lab"] == "1" and alice["status"] == "ok" and alice["executed_in_order"] == "yes"
    assert (alice["error_cells"], alice["unrun_cells"]) == ("", "")
    assert (alice["checks_passed"], alice["checks_total"]) == ("1", "1")
    assert alice["label_model_test_accuracy"] == "0.868"
    assert json.loads(alice["my_lf_coverage"]) == {"lf_mine": 0.1234}
    assert rows["student2/02_spam_data_augmentation_tutorial.ipynb"]["augmented_train_size"] == "3172"
    assert rows["student3/03_spam_data_slicing_tutorial.ipynb"]["augmented_train_size"] == ""
    assert (rows["bob.ipynb"]["checks_passed"], rows["bob.ipynb"]["checks_total"]) == ("0", "1")
    assert failed.read_bytes() == before  # grading never writes a submission

    assert "Lab 1 (01_spam_tutorial.ipynb): 2 file(s)" in printed and "Lab 3 (" in printed
    header = next(line for line in printed.splitlines() if line.startswith("student "))
    assert header.split() == [
        "student",
        "status",
        "in",
        "order",
        "errors",
        "never",
        "run",
        "checks",
        "graded",
        "from",
        "needs",
        "a",
        "look",
        *sorted(FIGURES[1]),
    ]  # nbformat saves JSON outputs with sorted keys
    assert alice["graded_from"] == "saved outputs (not verified)"
    assert rows[".ipynb_checkpoints/bob-checkpoint.ipynb"]["status"].startswith("hidden (.ipynb_checkpoints: ")
    assert "5 file(s) read as submitted (not re-run: saved outputs, not verified)" in printed
    assert "4 ok, 1 with a problem" in printed


def test_lab_is_recognised_however_the_file_is_named(course, tmp_path, capsys):
    by_title = save(lab_source(2), tmp_path / "homework.ipynb")  # not run: only its title says lab 2
    stamped = lab_source(3)
    stamped.cells[0].source = "# Slicing"
    stamped.metadata["spam_labs"] = {"lab": 3, "checks": 2}
    stamped = save(stamped, tmp_path / "renamed.ipynb")
    by_name = lab_source(1)
    by_name.cells[0].source = "# My notes"
    by_name = save(by_name, tmp_path / "alice_spam_tutorial.ipynb")
    results = executed(lab_source(1))  # results say lab 3, which beats the title and the name
    results.cells[-1].outputs = [results_output(3)]
    results = save(results, tmp_path / "01_spam_tutorial.ipynb")

    by_grade_id = lab_source(2)  # nbgrader's cell ids name the lab: "lab2-check"
    by_grade_id.cells[0].source = "# My notes"
    by_grade_id = save(by_grade_id, tmp_path / "mine.ipynb")

    garbled = lab_source(1, with_nbgrader=False)
    garbled.cells[0].source = "# My notes"
    garbled.metadata["spam_labs"] = {"lab": True}  # JSON true is not lab 1
    garbled = save(garbled, tmp_path / "notes.ipynb")

    files = by_title, stamped, by_name, by_grade_id, results, garbled
    _, rows, _ = grade(capsys, course, *files, tmp_path / "gradebook.csv")
    assert {student: row["lab"] for student, row in rows.items()} == {
        "mine.ipynb": "2",
        "homework.ipynb": "2",
        "renamed.ipynb": "3",
        "alice_spam_tutorial.ipynb": "1",
        "01_spam_tutorial.ipynb": "3",
        "notes.ipynb": "",
    }
    # The stamp names the lab, but the number of checks comes from the reference, not from the submission.
    assert rows["renamed.ipynb"]["checks_total"] == "1"


# --------------------------------------------------------------------------
# grade: bad input becomes a row with a clear status
# --------------------------------------------------------------------------


def test_every_bad_input_becomes_a_row(course, tmp_path, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "garbage.ipynb").write_text("this is {not json")
    (folder / "empty.ipynb").write_text("")
    (folder / "binary.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    (folder / "list.ipynb").write_text("[1, 2, 3]")
    (folder / "config.ipynb").write_text('{"name": "not a notebook"}')
    (folder / "old.ipynb").write_text('{"nbformat": 3, "cells": []}')
    (folder / "weird_cells.ipynb").write_text('{"nbformat": 4, "metadata": [], "cells": [1, "x", null]}')

    other = new_notebook(cells=[new_markdown_cell("# My own project"), new_code_cell("1 + 1", execution_count=1)])
    save(other, folder / "project.ipynb")
    save(lab_source(1), folder / "unexecuted.ipynb")

    no_results = executed(lab_source(2))
    del no_results.cells[-2:]
    save(no_results, folder / "no_results.ipynb")

    failed_results = executed(lab_source(3))
    failed_results.cells[-1].outputs = [error_output("KeyError")]
    save(failed_results, folder / "results_failed.ipynb")

    stopped = executed(lab_source(1))  # Run All stopped at an error in the exercise
    stopped.cells[4].outputs = [error_output("NotImplementedError")]
    for cell in stopped.cells[5:]:
        cell.outputs, cell.execution_count = [], None
    save(stopped, folder / "stopped.ipynb")

    shuffled = executed(lab_source(2))  # cells run out of order, one twice
    shuffled.cells[2].execution_count, shuffled.cells[4].execution_count = 7, 2
    save(shuffled, folder / "shuffled.ipynb")

    # A results output some other tool saved as text still counts.
    as_text = json.loads(nbformat.writes(executed(lab_source(2))))
    as_text["cells"][-1]["outputs"][0]["data"][utils.RESULTS_MIME] = json.dumps({"lab": 2, "figures": FIGURES[2]})
    (folder / "as_text.ipynb").write_text(json.dumps(as_text))

    status, rows, printed = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    assert status == 0
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {
        "as_text.ipynb": "ok",
        "binary.ipynb": "not JSON (not UTF-8 text)",
        "config.ipynb": "JSON, but not a notebook (no list of cells)",
        "empty.ipynb": "not JSON (empty file)",
        "garbage.ipynb": "not JSON (Expecting value)",
        "list.ipynb": "JSON, but not a notebook (no list of cells)",
        "no_results.ipynb": "no results cell",
        "old.ipynb": "not a version 4 notebook (nbformat 3); open and save it in Jupyter",
        "project.ipynb": "unknown lab; no results cell",
        "results_failed.ipynb": "results cell 9 failed (KeyError)",
        "shuffled.ipynb": "ok",
        "stopped.ipynb": "results cell 9 not run",
        "unexecuted.ipynb": "not executed",
        "weird_cells.ipynb": "unknown lab; not executed",
    }
    stopped = rows["stopped.ipynb"]
    assert (stopped["executed_in_order"], stopped["error_cells"], stopped["unrun_cells"]) == (
        "no",
        "5 NotImplementedError",
        "6, 9",
    )
    # Not released, so not stamped: the reference notebook says how many checks there are.
    assert (stopped["checks_passed"], stopped["checks_total"]) == ("0", "1")
    assert rows["shuffled.ipynb"]["executed_in_order"] == "no"
    assert rows["unexecuted.ipynb"]["unrun_cells"] == "2-3, 5-6, 9"
    assert rows["results_failed.ipynb"]["error_cells"] == "9 KeyError"
    assert rows["garbage.ipynb"]["lab"] == "" and rows["garbage.ipynb"]["executed_in_order"] == ""
    assert rows["as_text.ipynb"]["augmented_train_size"] == "3172"
    assert "Not a notebook of a known lab: 8 file(s)" in printed
    assert "2 ok, 12 with a problem" in printed


def test_a_crash_in_grading_one_file_only_affects_its_row(course, tmp_path, capsys, monkeypatch):
    save(executed(lab_source(1)), tmp_path / "a.ipynb")
    save(executed(lab_source(2)), tmp_path / "b.ipynb")
    real = grading.error_cells
    monkeypatch.setattr(grading, "error_cells", lambda nb: 1 / 0 if nb["metadata"].get("boom") else real(nb))
    boom = executed(lab_source(2))
    boom.metadata["boom"] = True
    save(boom, tmp_path / "b.ipynb")
    _, rows, _ = grade(capsys, course, tmp_path, tmp_path / "gradebook.csv")
    assert rows["a.ipynb"]["status"] == "ok"
    assert rows["b.ipynb"]["status"] == "could not be graded (ZeroDivisionError: division by zero)"


def test_usage_errors_exit_non_zero(tmp_path, capsys):
    save(executed(lab_source(1)), tmp_path / "a.ipynb")
    (tmp_path / "empty").mkdir()
    assert instructor.main(["grade", str(tmp_path / "a.ipynb"), str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert instructor.main(["grade", str(tmp_path / "empty")]) == 2
    assert "no .ipynb files in" in capsys.readouterr().err
    assert instructor.main(["grade", str(tmp_path), "--out", str(tmp_path / "nowhere" / "g.csv")]) == 2
    assert instructor.main(["grade", str(tmp_path), "--execute", "--timeout", "0"]) == 2
    assert instructor.main(["grade", str(tmp_path), "--no-sandbox"]) == 2
    assert "--no-sandbox is an option of --execute" in capsys.readouterr().err
    assert instructor.main(["grade", str(tmp_path), "--execute", "--kernel", "no-such-kernel"]) == 2
    assert "--kernel no-such-kernel: no such Jupyter kernel (installed: " in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        instructor.main(["grade"])
    assert exit_.value.code == 2
    assert not (tmp_path / "gradebook.csv").exists()


def test_grading_30_notebooks_costs_little_more_than_starting_the_command(course, tmp_path):
    """Reading 30 notebooks of realistic size (plots inside) costs less than starting the command once more.

    Timed relative to the same command on one notebook, run alternately in the same test, so that a busy
    machine slows both alike (an absolute limit failed on busy 2-core machines). What keeps it fast is
    checked directly: reading submissions never imports nbformat or nbclient (seconds to import).
    """
    plot = new_output("display_data", data={"image/png": "iVBORw0KGgo" + "A" * 100_000, "text/plain": "<Figure>"})
    notebook = executed(lab_source(1))
    for cell in [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()][:3]:
        cell.outputs.append(plot)
    for i in range(30):
        save(notebook, tmp_path / "class" / f"student{i:02}.ipynb")
    save(notebook, tmp_path / "one" / "student.ipynb")

    def run(folder):
        """The grade command in a fresh interpreter; exits 3 if it imported a slow notebook library."""
        args = ["grade", str(tmp_path / folder), "--out", str(tmp_path / f"{folder}.csv"), "--course", str(course)]
        code = (
            f"import sys, instructor; status = instructor.main({args!r}); "
            "sys.exit(3 if {'nbformat', 'nbclient'} & set(sys.modules) else status)"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=notebooks.COURSE, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
        return time.perf_counter() - started, done

    one, thirty = [], []
    for _ in range(2):  # alternately, the best of two each
        one.append(run("one")[0])
        seconds, done = run("class")
        thirty.append(seconds)
    assert "30 ok, 0 with a problem" in done.stdout
    assert "30/30" in done.stderr  # the progress bar, on stderr
    print(f"grading 1 notebook: {min(one):.2f} s, 30 notebooks: {min(thirty):.2f} s")
    assert min(thirty) < 2 * min(one), f"30 notebooks took {min(thirty):.1f} s, one took {min(one):.1f} s"


# --------------------------------------------------------------------------
# grade --execute: a fresh kernel (the only tests that start one)
# --------------------------------------------------------------------------


def test_execute_reruns_a_student_copy_from_scratch(sandbox, course, tmp_path, capsys):
    assert instructor.main(["release", str(tmp_path / "student"), "--course", str(course)]) == 0
    # A student hands in the copy unsolved, with outputs edited to claim a pass and results.
    tampered = executed(nbformat.read(tmp_path / "student" / notebooks.LAB_NOTEBOOKS[1], as_version=4))
    tampered = save(tampered, tmp_path / "alice" / "lab1.ipynb")
    before = tampered.read_bytes()
    _, rows, _ = grade(capsys, course, tampered, tmp_path / "as-submitted.csv")
    assert (rows["lab1.ipynb"]["status"], rows["lab1.ipynb"]["checks_passed"]) == ("ok", "1")

    # The kernel imports utils.py and exercise_checks.py from the course folder (copies of the real ones).
    status, rows, _ = grade(capsys, course, tampered, "--execute", tmp_path / "gradebook.csv")
    assert status == 0
    row = rows["lab1.ipynb"]
    # The copy runs to the end: the placeholder raises inside the student's function, the check cell
    # catches that and fails (raising, as the real checks do), and the results cell records the figures.
    assert (row["status"], row["executed_in_order"], row["error_cells"], row["unrun_cells"]) == (
        "ok",
        "yes",
        "6 CheckFailed",
        "",
    )
    assert (row["checks_passed"], row["checks_total"]) == ("0", "1")
    assert row["classifier_test_accuracy"] == "0.912"
    assert tampered.read_bytes() == before  # the re-run is graded in memory, never saved


def test_execute_timeout_bounds_the_whole_notebook(sandbox, course, tmp_path, capsys):
    """40 cells of 0.9 s each: each cell is under any per-cell limit, the notebook is not (issue 18: it ran 46 s)."""
    cells = [new_code_cell("import time\ntime.sleep(0.9)") for _ in range(40)]
    slow = save(new_notebook(cells=[new_markdown_cell("# Lab 2: slow"), *cells]), tmp_path / "slow.ipynb")
    started = time.perf_counter()
    status, rows, _ = grade(capsys, course, slow, "--execute", "--timeout", "8", tmp_path / "gradebook.csv")
    seconds = time.perf_counter() - started
    assert status == 0 and seconds < 20, f"grading took {seconds:.1f} s"
    row = rows["slow.ipynb"]
    assert re.fullmatch(
        r"timed out after 8 s in cell \d+; check cell missing \(lab2-check\); no results cell", row["status"]
    ), row["status"]
    assert row["executed_in_order"] == "no" and row["unrun_cells"].endswith("-41")


# --------------------------------------------------------------------------
# grade: forged submissions get no check they did not pass (issue 12)
# --------------------------------------------------------------------------


def forged_submissions(lab_source_of, folder):
    """One notebook of each forgery, "executed" with the outputs the forger saves; all of lab 1."""
    forged = {}

    # The solution cell prints the verdict line itself; the check cell below fails and raises.
    printer = executed(lab_source_of(1), check="FAILED")
    printer.cells[4].source = "def looks_like_spam(text):\n    return True\nprint('CHECK PASSED: trust me.')"
    printer.cells[4].outputs = [new_output("stream", name="stdout", text="CHECK PASSED: trust me.\n")]
    forged["prints_the_verdict.ipynb"] = printer

    # The check cell itself is edited to always pass (its output says so).
    edited = executed(lab_source_of(1))
    edited.cells[5].source = "print('CHECK PASSED: always.')"
    forged["edited_check.ipynb"] = edited

    # The check cell is deleted, and a cell that claims a pass is added elsewhere.
    deleted = executed(lab_source_of(1), check="FAILED")
    deleted.cells[5] = new_code_cell(
        "print('CHECK PASSED: deleted')",
        execution_count=4,
        outputs=[new_output("stream", name="stdout", text="CHECK PASSED: deleted\n")],
    )
    forged["deleted_check.ipynb"] = deleted

    # The results cell is edited to record better figures, plus a figure of its own.
    results = executed(lab_source_of(1))
    better = {**FIGURES[1], "classifier_test_accuracy": 0.999, "bonus_points": 10}
    results.cells[8].source = f"utils.record_results(1, {better!r})"
    results.cells[8].outputs = [
        new_output("display_data", data={"text/plain": "table", utils.RESULTS_MIME: {"lab": 1, "figures": better}})
    ]
    forged["edited_results.ipynb"] = results

    # Results recorded again by a cell of the student's own, after the results cell.
    again = executed(lab_source_of(1))
    again.cells.append(
        new_code_cell(
            "utils.record_results(1, {'classifier_test_accuracy': 1.0})",
            execution_count=5,
            outputs=[results_output(1)],
        )
    )
    again.cells[-1].outputs[0]["data"][utils.RESULTS_MIME]["figures"]["classifier_test_accuracy"] = 1.0
    forged["recorded_again.ipynb"] = again
    return {name: save(notebook, folder / name) for name, notebook in forged.items()}


def test_forged_checks_and_results_do_not_count_when_read(course, tmp_path, capsys):
    forged_submissions(lab_source, tmp_path / "class")
    honest = save(executed(lab_source(1)), tmp_path / "class" / "honest.ipynb")
    duplicated = executed(lab_source(1))  # the check cell copied (metadata and all), as a copy-paste does
    duplicated.cells.insert(6, copy.deepcopy(duplicated.cells[5]))
    duplicated.cells[6].id = "pasted-check"  # Jupyter gives a pasted cell a new id
    save(duplicated, tmp_path / "class" / "duplicated_check.ipynb")

    _, rows, _ = grade(capsys, course, tmp_path / "class", tmp_path / "gradebook.csv")
    checks = {student: (row["checks_passed"], row["checks_total"]) for student, row in rows.items()}
    assert checks == {
        "deleted_check.ipynb": ("0", "1"),
        "duplicated_check.ipynb": ("0", "1"),
        "edited_check.ipynb": ("0", "1"),
        "edited_results.ipynb": ("1", "1"),
        "honest.ipynb": ("1", "1"),
        "prints_the_verdict.ipynb": ("0", "1"),
        "recorded_again.ipynb": ("1", "1"),
    }
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {
        "deleted_check.ipynb": "check cell missing (lab1-check)",
        "duplicated_check.ipynb": "check cell (lab1-check) duplicated (cells 6, 7)",
        "edited_check.ipynb": "check cell 6 differs from the reference",
        "edited_results.ipynb": "results cell 9 differs from the reference; "
        "figures not in the reference ignored: bonus_points",
        "honest.ipynb": "ok",
        "prints_the_verdict.ipynb": "ok",
        "recorded_again.ipynb": "results recorded outside the results cell ignored (cell 10)",
    }
    # Figures come from the results cell only, and only the reference's names become columns.
    assert rows["recorded_again.ipynb"]["classifier_test_accuracy"] == "0.912"
    assert "bonus_points" not in rows["honest.ipynb"]
    assert honest.exists()


def test_forged_checks_are_found_without_nbgrader_metadata(legacy_course, tmp_path, capsys):
    """Labs without nbgrader metadata: the check is the cell after the exercise markers of the reference."""
    forged_submissions(functools.partial(lab_source, with_nbgrader=False), tmp_path / "class")
    save(executed(lab_source(1, with_nbgrader=False)), tmp_path / "class" / "honest.ipynb")
    _, rows, _ = grade(capsys, legacy_course, tmp_path / "class", tmp_path / "gradebook.csv")
    checks = {student: row["checks_passed"] for student, row in rows.items()}
    assert checks == {
        "deleted_check.ipynb": "0",
        "edited_check.ipynb": "0",
        "edited_results.ipynb": "1",
        "honest.ipynb": "1",
        "prints_the_verdict.ipynb": "0",
        "recorded_again.ipynb": "1",
    }
    assert rows["edited_check.ipynb"]["status"] == "check cell 6 differs from the reference"
    assert rows["deleted_check.ipynb"]["status"] == "check cell 6 differs from the reference"  # found by position
    assert rows["honest.ipynb"]["status"] == "ok"


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tcmd", "\r=1"]


def test_the_gradebook_csv_neutralises_formulas_and_nothing_else(course, tmp_path, capsys):
    folder = tmp_path / "class"
    for i, formula in enumerate(FORMULAS):
        notebook = executed(lab_source(1))
        figures = {**FIGURES[1], "classifier_test_accuracy": formula, "label_model_test_accuracy": -0.5}
        notebook.cells[8].outputs[0]["data"][utils.RESULTS_MIME] = {"lab": 1, "figures": figures}
        name = "=cmd|' /C calc'!A0.ipynb" if i == 0 else f"student{i}.ipynb"
        save(notebook, folder / name)
    extra = executed(lab_source(1))
    extra.cells[8].outputs[0]["data"][utils.RESULTS_MIME]["figures"]["=1+1"] = "@x"
    save(extra, folder / "extra.ipynb")

    status, _, printed = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    assert status == 0
    with open(tmp_path / "gradebook.csv", newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    header, lines = table[0], table[1:]
    assert "=1+1" not in header and "'=1+1" not in header  # a submission adds no column
    for line in lines:
        for value in line:
            assert not value.startswith(gradebook.FORMULA_STARTS) or value == "-0.5", value
    by_student = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert by_student["'=cmd|' /C calc'!A0.ipynb"]["classifier_test_accuracy"] == "'" + FORMULAS[0]
    assert [by_student[f"student{i}.ipynb"]["classifier_test_accuracy"] for i in range(1, 6)] == [
        "'" + formula for formula in FORMULAS[1:-1]
    ] + ["'\r'=1"]  # the piece after the line break is neutralised too (a spreadsheet may start a row there)
    assert by_student["student1.ipynb"]["label_model_test_accuracy"] == "-0.5"  # a number stays a number
    assert by_student["extra.ipynb"]["status"] == "figures not in the reference ignored: =1+1"
    # The returned rows and the table on screen keep the real text.
    rows = grading.grade(grading.notebook_files([folder]), course)
    assert rows[0]["student"] == "=cmd|' /C calc'!A0.ipynb"
    assert rows[0]["figures"]["classifier_test_accuracy"] == FORMULAS[0]
    assert "=cmd|' /C calc'!A0.ipynb" in printed and "'=cmd" not in printed
    assert [gradebook.csv_safe(text) for text in ["-1", "+2.5", "1e-3", "-", "=", "a=1"]] == [
        "-1",
        "+2.5",
        "1e-3",
        "'-",
        "'=",
        "a=1",
    ]


def test_honest_real_labs_grade_ok(tmp_path, capsys):
    """The committed reference notebooks, graded as submissions: ok, every check passed, their own figures."""
    status, rows, _ = grade(capsys, notebooks.COURSE, *REAL_NOTEBOOKS, tmp_path / "gradebook.csv")
    assert status == 0
    for path in REAL_NOTEBOOKS:
        row = rows[path.name]
        assert (row["status"], row["executed_in_order"], row["error_cells"]) == ("ok", "yes", "")
        assert row["checks_passed"] == row["checks_total"] == "1"
        # The reset before the check and results cells finds nothing to put back in an honest run (the reference
        # itself is flagged only for holding its solution).
        assert "before cell" not in row["needs_a_look"] and "reset" not in row["needs_a_look"], row["needs_a_look"]
        recorded = notebooks.recorded_results(notebooks.read_notebook(path))["figures"]
        assert {name: row[name] for name in recorded} == {
            name: gradebook.shown_value(value) for name, value in recorded.items()
        }


def test_honest_real_labs_get_full_marks_in_the_sandbox(sandbox, tmp_path, capsys):
    """Labs 1 and 3 re-run in the sandbox, two at a time: the lab's packages, modules and data cache are all there.

    Lab 2 (37 s alone) is left to tests/test_nbgrader.py, which runs it unconfined; it ran in the sandbox by hand.
    """
    labs = [notebooks.COURSE / notebooks.LAB_NOTEBOOKS[lab] for lab in (1, 3)]
    for path in labs:
        shutil.copy(path, tmp_path / path.name)
    files = [tmp_path / path.name for path in labs]
    status, rows, printed = grade(capsys, notebooks.COURSE, *files, "--execute", "--jobs", "2", tmp_path / "g.csv")
    assert status == 0, printed[-3000:]
    for path in labs:
        row = rows[path.name]
        assert (row["status"], row["error_cells"], row["graded_from"]) == ("ok", "", "re-run in the sandbox"), row
        assert row["checks_passed"] == row["checks_total"] == "1"
        # The reset before the check and results cells finds nothing to put back in an honest run (the reference
        # itself is flagged only for holding its solution).
        assert "before cell" not in row["needs_a_look"] and "reset" not in row["needs_a_look"], row["needs_a_look"]
        recorded = notebooks.recorded_results(notebooks.read_notebook(path))["figures"]
        # The same figures as the committed run (reproducible); dicts compared as dicts (nbformat sorts saved keys).
        assert {name: parsed(row[name]) for name in recorded} == recorded


def parsed(text: str):
    """A gradebook value as the data it shows: JSON (numbers, lists, dicts) where it is JSON, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def test_execute_gives_forged_submissions_no_check(sandbox, course, tmp_path, capsys):
    """Re-run with the reference's check and results cells: what the student's own code prints does not count."""
    assert instructor.main(["release", str(tmp_path / "student"), "--course", str(course)]) == 0
    released = nbformat.read(tmp_path / "student" / notebooks.LAB_NOTEBOOKS[1], as_version=4)
    folder = tmp_path / "class"

    solved = copy.deepcopy(released)
    solved.cells[4].source = "def looks_like_spam(text):\n    return 'subscribe' in text.lower().split()"
    save(solved, folder / "honest.ipynb")

    printer = copy.deepcopy(released)  # a wrong answer that prints the verdict line itself
    printer.cells[4].source = "def looks_like_spam(text):\n    return True\n\nprint('CHECK PASSED: trust me.')"
    save(printer, folder / "prints_the_verdict.ipynb")

    edited = copy.deepcopy(solved)  # a right answer, but the check cell edited too (it must not matter)
    edited.cells[5].source = "print('CHECK PASSED: always.')"
    edited_unsolved = copy.deepcopy(released)  # no answer, and the check cell edited to pass
    edited_unsolved.cells[5].source = "print('CHECK PASSED: always.')"
    save(edited, folder / "edited_check_solved.ipynb")
    save(edited_unsolved, folder / "edited_check.ipynb")

    deleted = copy.deepcopy(released)  # no answer; the check cell replaced by one that claims a pass
    deleted.cells[5] = new_code_cell("print('CHECK PASSED: no check here.')")
    save(deleted, folder / "deleted_check.ipynb")

    results = copy.deepcopy(solved)  # the results cell edited to record better figures
    results.cells[8].source = "utils.record_results(1, {'classifier_test_accuracy': 0.999, 'bonus': 1})"
    save(results, folder / "edited_results.ipynb")

    _, rows, _ = grade(capsys, course, folder, "--execute", "--jobs", "2", tmp_path / "gradebook.csv")
    checks = {student: (row["checks_passed"], row["checks_total"]) for student, row in rows.items()}
    assert checks == {
        "deleted_check.ipynb": ("0", "1"),
        "edited_check.ipynb": ("0", "1"),
        "edited_check_solved.ipynb": ("1", "1"),
        "edited_results.ipynb": ("1", "1"),
        "honest.ipynb": ("1", "1"),
        "prints_the_verdict.ipynb": ("0", "1"),
    }
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {
        "deleted_check.ipynb": "check cell missing (lab1-check)",
        "edited_check.ipynb": "check cell 6 had been changed (re-run as in the reference)",
        "edited_check_solved.ipynb": "check cell 6 had been changed (re-run as in the reference)",
        "edited_results.ipynb": "results cell 9 had been changed (re-run as in the reference)",
        "honest.ipynb": "ok",
        "prints_the_verdict.ipynb": "ok",
    }
    assert rows["prints_the_verdict.ipynb"]["error_cells"] == "6 CheckFailed"
    assert rows["edited_results.ipynb"]["classifier_test_accuracy"] == "0.912"  # the reference's code recorded it


# --------------------------------------------------------------------------
# grade --execute --jobs: parallel re-runs (issue 11)
# --------------------------------------------------------------------------


def sleepy(lab_notebook, code):
    """A fixture lab notebook with one more cell, before the results cell, that runs ``code``."""
    notebook = copy.deepcopy(lab_notebook)
    notebook.cells.insert(7, new_code_cell(code))
    return notebook


@pytest.mark.alone
def test_parallel_grading_matches_serial_and_is_faster(sandbox, course, tmp_path, capsys):
    """4 submissions (one failing, one killing its kernel) re-run with --jobs 2 and --jobs 1: same gradebook."""
    folder = tmp_path / "class"
    solved = lab_source(1)
    save(sleepy(solved, "import time\ntime.sleep(3)"), folder / "a.ipynb")
    save(sleepy(lab_source(2), "import time\ntime.sleep(3)"), folder / "b.ipynb")
    failing = sleepy(solved, "import time\ntime.sleep(3)\nraise ValueError('my bug')")
    save(failing, folder / "failing.ipynb")
    save(sleepy(solved, "import os, time\ntime.sleep(3)\nos._exit(1)"), folder / "kills_its_kernel.ipynb")

    seconds = {}
    for jobs in ("2", "1"):
        started = time.perf_counter()
        status, rows, printed = grade(capsys, course, folder, "--execute", "--jobs", jobs, tmp_path / f"{jobs}.csv")
        seconds[jobs] = time.perf_counter() - started
        assert status == 0 and f"{jobs} at a time" in printed and "4/4" in printed  # with a progress bar
    assert (tmp_path / "2.csv").read_text() == (tmp_path / "1.csv").read_text()
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {
        "a.ipynb": "ok",
        "b.ipynb": "ok",
        "failing.ipynb": "ok",
        "kills_its_kernel.ipynb": "kernel died in cell 8; results cell 10 not run",
    }
    assert rows["failing.ipynb"]["error_cells"] == "8 ValueError"
    assert rows["kills_its_kernel.ipynb"]["checks_passed"] == "1"  # the check ran before the kernel died
    ratio = seconds["2"] / seconds["1"]
    print(f"grade --execute, 4 notebooks: --jobs 2 {seconds['2']:.1f} s, --jobs 1 {seconds['1']:.1f} s ({ratio:.2f})")
    assert ratio < 0.9, f"--jobs 2 took {seconds['2']:.1f} s, --jobs 1 {seconds['1']:.1f} s"


@pytest.mark.alone
def test_a_hanging_submission_does_not_hold_up_the_others(sandbox, course, tmp_path, capsys):
    folder = tmp_path / "class"
    save(sleepy(lab_source(1), "import time\ntime.sleep(600)"), folder / "hangs.ipynb")
    for name in ("a", "b"):
        save(lab_source(3), folder / f"{name}.ipynb")
    started = time.perf_counter()
    _, rows, _ = grade(capsys, course, folder, "--execute", "--jobs", "2", "--timeout", "10", tmp_path / "g.csv")
    assert time.perf_counter() - started < 40
    assert rows["hangs.ipynb"]["status"] == "timed out after 10 s in cell 8; results cell 10 not run"
    assert rows["a.ipynb"]["status"] == rows["b.ipynb"]["status"] == "ok"


# --------------------------------------------------------------------------
# grade: no single file stops or stalls the run (issue 18)
# --------------------------------------------------------------------------


def test_csv_safe_takes_linear_time():
    """A long run of digits that is not a number: the old regex backtracked for 39 s on 20,000 of them."""
    for value in ["-" + "1" * 20_000 + "x", "-" + "1" * 1_000_000 + "x", "+" + "1" * 1_000_000]:
        started = time.process_time()
        assert gradebook.csv_safe(value) == ("'" + value if value.endswith("x") else value)
        assert time.process_time() - started < 0.5, f"csv_safe took {time.process_time() - started:.2f} s CPU"


def test_a_huge_figure_and_odd_file_names_each_get_their_row(course, tmp_path, capsys):
    folder = tmp_path / "class"
    huge = executed(lab_source(1))
    huge.cells[8].outputs[0]["data"][utils.RESULTS_MIME]["figures"]["classifier_test_accuracy"] = (
        "-" + "1" * 10**6 + "x"
    )
    save(huge, folder / "huge.ipynb")
    honest = nbformat.writes(executed(lab_source(1))).encode()
    not_utf8 = bytes(folder) + b"/caf\xe9.ipynb"  # a Latin-1 name, as some archivers write it
    with open(not_utf8, "wb") as f:
        f.write(honest)
    (folder / "hides\x1b[8m.ipynb").write_bytes(honest)  # ESC [8m: what follows is invisible on a terminal
    (folder / "zz_last.ipynb").write_bytes(honest)

    started = time.perf_counter()
    status, rows, printed = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    assert status == 0 and time.perf_counter() - started < 30
    assert sorted(rows) == ["caf\\xe9.ipynb", "hides\x1b[8m.ipynb", "huge.ipynb", "zz_last.ipynb"]
    assert all(row["status"] == "ok" for row in rows.values())
    value = rows["huge.ipynb"]["classifier_test_accuracy"]
    assert value.startswith("'-111") and value.endswith("... (cut: 1,000,002 characters)")
    # On screen: every name, the control character shown as an escape, the rows after it still visible.
    assert "\x1b" not in printed and "hides\\x1b[8m.ipynb" in printed and "caf\\xe9.ipynb" in printed
    assert "zz_last.ipynb" in printed and "4 ok, 0 with a problem" in printed


def test_the_gradebook_is_replaced_in_one_step(course, tmp_path, capsys, monkeypatch):
    save(executed(lab_source(1)), tmp_path / "class" / "a.ipynb")
    out = tmp_path / "gradebook.csv"
    out.write_text("the previous gradebook\n")
    before = out.stat().st_ino
    grade(capsys, course, tmp_path / "class", out)
    assert out.stat().st_ino != before  # a new file renamed into place, not the old one rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["class", "course", "gradebook.csv"]

    real_writer = csv.writer

    def failing_writer(f, **options):  # the disk fills up after the header
        writer = real_writer(f, **options)

        class Failing:
            def writerow(self, row):
                if row[0] != "student":
                    raise OSError(28, "No space left on device")
                writer.writerow(row)

        return Failing()

    monkeypatch.setattr(csv, "writer", failing_writer)
    out.write_text("the previous gradebook\n")
    with pytest.raises(OSError):
        instructor.main(["grade", str(tmp_path / "class"), "--out", str(out), "--course", str(course)])
    assert out.read_text() == "the previous gradebook\n"  # never half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["class", "course", "gradebook.csv"]


def test_links_pipes_and_huge_files_are_reported_not_followed(course, tmp_path, capsys):
    """A link to another student's file is not graded as its owner's; nothing that is not a file stalls the run."""
    folder = tmp_path / "class"
    bob = save(executed(lab_source(3)), folder / "bob" / "lab3.ipynb")
    (folder / "alice").mkdir()
    (folder / "alice" / "lab3.ipynb").symlink_to("../bob/lab3.ipynb")
    (folder / "carol").symlink_to("bob")  # a whole folder
    os.link(bob, folder / "dave.ipynb")  # a hard link: which name is the owner's cannot be told
    os.mkfifo(folder / "pipe.ipynb")  # reading it would wait forever
    with open(folder / "huge.ipynb", "wb") as f:
        f.truncate(notebooks.MAX_NOTEBOOK_BYTES + 1)  # sparse: costs no disk
    save(executed(lab_source(1)), folder / "erin.ipynb")

    started = time.perf_counter()
    status, rows, _ = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    assert status == 0 and time.perf_counter() - started < 30
    statuses = {student: row["status"] for student, row in rows.items()}
    assert statuses == {
        "alice/lab3.ipynb": "a symbolic link (to ../bob/lab3.ipynb): not followed, not graded",
        "bob/lab3.ipynb": "the same file as dave.ipynb (a hard link): not graded",
        "carol": "a symbolic link (to bob): not followed, not graded",
        "dave.ipynb": "the same file as bob/lab3.ipynb (a hard link): not graded",
        "erin.ipynb": "ok",
        "huge.ipynb": "too large (52,428,801 bytes; the limit is 50 MB)",
        "pipe.ipynb": "not a regular file (a folder, named pipe, socket or device)",
    }
    assert rows["alice/lab3.ipynb"]["checks_passed"] == "" and rows["alice/lab3.ipynb"]["lab"] == ""

    os.unlink(folder / "dave.ipynb")  # without the hard link, Bob's file is his
    _, rows, _ = grade(capsys, course, folder, tmp_path / "g2.csv")
    assert rows["bob/lab3.ipynb"]["status"] == "ok"
    named = grade(capsys, course, folder / "alice" / "lab3.ipynb", tmp_path / "g3.csv")[1]
    assert named["lab3.ipynb"]["status"].startswith("a symbolic link")  # even when named on the command line
    linked_folder = grade(capsys, course, folder / "carol", tmp_path / "g4.csv")[1]  # a folder named is followed
    assert linked_folder["lab3.ipynb"]["status"] == "ok"


def test_a_moved_grade_id_or_check_cell_is_flagged_when_read(course, tmp_path, capsys):
    """Read mode takes saved outputs as they are, but a grade_id moved to a forged cell is seen (issue 18)."""
    folder = tmp_path / "class"
    forged = executed(lab_source(3), check="FAILED")  # the real check cell fails ...
    fake = copy.deepcopy(forged.cells[5])  # ... and a new cell, given the check's grade_id, shows a pass
    fake.id = "a-new-cell"
    fake.outputs = [new_output("stream", name="stdout", text="CHECK PASSED: forged.\n")]
    del forged.cells[5].metadata["nbgrader"]
    forged.cells.insert(6, fake)
    save(forged, folder / "moved_grade_id.ipynb")

    same_id = copy.deepcopy(forged)  # the same, with the real cell's id copied onto the fake in the JSON
    same_id.cells[5].id, same_id.cells[6].id = "another-id", "lab3-cell-6"
    save(same_id, folder / "moved_grade_id_same_id.ipynb")

    reordered = executed(lab_source(3))  # the check cell moved above the exercise it checks
    reordered.cells.insert(3, reordered.cells.pop(5))
    save(reordered, folder / "check_before_exercise.ipynb")
    save(executed(lab_source(3)), folder / "honest.ipynb")

    _, rows, _ = grade(capsys, course, folder, tmp_path / "gradebook.csv")
    checks = {student: row["checks_passed"] for student, row in rows.items()}
    assert checks == {
        "check_before_exercise.ipynb": "0",
        "honest.ipynb": "1",
        "moved_grade_id.ipynb": "0",
        "moved_grade_id_same_id.ipynb": "0",
    }
    assert rows["moved_grade_id.ipynb"]["status"] == (
        "check cell (lab3-check) moved: cell 7 has its grade_id but not its cell id; "
        "check cell (lab3-check) moved: its code is also in cell 6, without the grade_id"
    )
    assert rows["moved_grade_id_same_id.ipynb"]["status"] == (
        "check cell (lab3-check) moved: its code is also in cell 6, without the grade_id"
    )
    assert rows["check_before_exercise.ipynb"]["status"] == (
        "cells out of the reference's order (lab3-check, lab3-exercise, lab3-results)"
    )
    assert {row["graded_from"] for row in rows.values()} == {"saved outputs (not verified)"}
    assert rows["honest.ipynb"]["status"] == "ok"
