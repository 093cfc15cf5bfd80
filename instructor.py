"""Instructor tools for Spam Labs: student copies of the labs, and a gradebook of submitted notebooks.

    python instructor.py release OUTDIR         student copies: solutions replaced, outputs cleared
    python instructor.py grade PATH... [--execute [--jobs N]]   a gradebook (gradebook.csv and a table)

Every function takes the course folder (the reference labs with utils.py and
exercise_checks.py beside them) as an argument and returns its results; the
command line only parses, validates and prints. See INSTRUCTORS.md.

What ``grade`` trusts comes from the reference notebooks in the course folder:
which cells are the checks (nbgrader ``grade_id``), what their code is, and
which figures a lab records. A submission's own text is only ever data.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from exercise_checks import CHECK_FAILED, CHECK_PASSED
from utils import RESULTS_MIME

#: The course folder used when none is given: the one holding this file.
COURSE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------
# 1. Settings
# --------------------------------------------------------------------------


#: The lab notebooks beside this file, by lab number.
LAB_NOTEBOOKS = {
    1: "01_spam_tutorial.ipynb",
    2: "02_spam_data_augmentation_tutorial.ipynb",
    3: "03_spam_data_slicing_tutorial.ipynb",
}

#: nbgrader's markers around the reference solution of an exercise (comment lines in a code cell).
#: As in nbgrader, a line that contains "BEGIN SOLUTION" / "END SOLUTION" anywhere is a marker.
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"

#: What a student sees instead of a solution. It raises, so "Run All" stops at
#: the exercise instead of running on without an answer.
PLACEHOLDER = (
    "# YOUR CODE HERE",
    'raise NotImplementedError("Write your solution here, then run this cell again.")',
)

#: What replaces a written (markdown) solution, as nbgrader's default text stub.
TEXT_PLACEHOLDER = "YOUR ANSWER HERE"

#: Seconds one notebook may run under ``grade --execute``, all cells together.
GRADE_TIMEOUT = 600

#: ``grade`` shows a progress bar for more files than this (always with --execute and more than one file).
PROGRESS_BAR_ABOVE = 5

#: The gradebook's columns before the lab's figures (and ``path`` after them).
GRADEBOOK_COLUMNS = [
    "student",
    "lab",
    "status",
    "executed_in_order",
    "error_cells",
    "unrun_cells",
    "checks_passed",
    "checks_total",
]

#: A CSV cell starting with one of these can be run as a formula by a spreadsheet (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")

_LAB_TITLE = re.compile(r"^#\s+Lab\s+(\d+)\s*:", re.MULTILINE)
_GRADE_ID = re.compile(r"^lab(\d+)-")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class NotANotebook(ValueError):
    """A submitted file that cannot be graded; the message is its gradebook status."""


class ReleaseError(ValueError):
    """The labs cannot be released as they are; nothing was written."""


def nbgrader_metadata(cell) -> dict:
    """A cell's ``nbgrader`` metadata, or {} (also for cells whose metadata is not a dict)."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    found = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else {}


def _has_nbgrader_metadata(notebook: dict) -> bool:
    return any(nbgrader_metadata(cell) for cell in notebook["cells"])


def _is_marker(line: str, marker: str) -> bool:
    """Whether ``line`` is a solution marker; nbgrader's rule: the words appear anywhere in the line."""
    return marker.lstrip("# ") in line


# --------------------------------------------------------------------------
# 2. Release: student copies
# --------------------------------------------------------------------------


def release(course: Path, outdir: Path) -> list[tuple[Path, int]]:
    """Write student copies of the course's three labs into ``outdir``; return (file, exercises) for each.

    Raises ReleaseError, having written nothing, if a lab is missing or malformed,
    or if ``outdir`` is the course folder itself (the copies would replace the references).
    """
    import nbformat  # slow to import; only release needs it

    course, target = Path(course).resolve(), Path(outdir).resolve()
    if target == course:
        raise ReleaseError(f"{target} holds the reference notebooks; write the student copies elsewhere.")
    missing = [name for name in LAB_NOTEBOOKS.values() if not (course / name).is_file()]
    if missing:
        raise ReleaseError(f"{', '.join(missing)} not found in {course}; nothing was written.")
    copies = {}
    for lab, name in LAB_NOTEBOOKS.items():
        try:
            copies[name] = student_copy(nbformat.read(course / name, as_version=4), lab)
        except ValueError as exc:  # unbalanced markers, or a file that is not a notebook
            raise ReleaseError(f"{name}: {exc}; nothing was written.") from None
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (notebook, exercises) in copies.items():
        nbformat.write(notebook, target / name)
        written.append((target / name, exercises))
    return written


def source_without_solutions(source: str, where: str = "cell", stub: tuple[str, ...] = PLACEHOLDER) -> tuple[str, int]:
    """``source`` with each marked solution replaced by ``stub``, and how many there were.

    The stub takes the indentation of its BEGIN marker, so a solution inside a
    function body leaves valid Python. A line is a marker if it contains
    "BEGIN SOLUTION" / "END SOLUTION" anywhere, as nbgrader decides. Unbalanced
    markers raise ValueError naming ``where``: guessing where a solution ends could leak it.
    """
    lines, solutions, inside = [], 0, False
    for line in source.split("\n"):
        if _is_marker(line, BEGIN_SOLUTION):
            if inside:
                raise ValueError(f"{where}: {BEGIN_SOLUTION} inside another solution")
            inside, solutions = True, solutions + 1
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + placeholder for placeholder in stub]
        elif _is_marker(line, END_SOLUTION):
            if not inside:
                raise ValueError(f"{where}: {END_SOLUTION} without a {BEGIN_SOLUTION} before it")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN_SOLUTION} without an {END_SOLUTION} after it")
    return "\n".join(lines), solutions


def student_copy(notebook: dict, lab: int) -> tuple[dict, int]:
    """A lab notebook as students get it, and how many exercise cells it has.

    Solutions become the placeholder, and every output, execution count and
    timing is cleared, so nothing of the reference run leaks. What counts as a
    solution is what nbgrader's ``generate_assignment`` removes: each marked
    region, and the whole of an nbgrader solution cell without markers. In a
    notebook with nbgrader metadata, markers outside a solution cell are an
    error (nbgrader refuses them too). Cells nbgrader locks (check and results
    cells) are made read-only in JupyterLab, and solution cells undeletable. The lab and the number of checks
    are stamped into the metadata, so ``grade`` knows the notebook however it is renamed.
    """
    notebook = copy.deepcopy(notebook)
    with_metadata = _has_nbgrader_metadata(notebook)
    checks = len(reference_cells(notebook, lab).checks)  # before the markers go: without metadata, they show where
    exercises = 0
    for number, cell in enumerate(notebook["cells"], start=1):
        metadata = cell.setdefault("metadata", {})
        for key in ("execution", "ExecuteTime"):  # timings written by nbclient / JupyterLab
            metadata.pop(key, None)
        if cell["cell_type"] not in ("code", "markdown"):
            continue
        grading = nbgrader_metadata(cell)
        stub = PLACEHOLDER if cell["cell_type"] == "code" else (TEXT_PLACEHOLDER,)
        source, solutions = source_without_solutions(_text(cell["source"]), f"cell {number}", stub)
        if solutions and with_metadata and not grading.get("solution"):
            raise ValueError(f"cell {number}: solution markers in a cell that is not an nbgrader solution cell")
        if grading.get("solution") and not solutions:
            source, solutions = "\n".join(stub), 1  # nbgrader replaces a whole solution cell without markers
        cell["source"] = source
        exercises += solutions > 0 and cell["cell_type"] == "code"
        # As nbgrader's LockCells: JupyterLab refuses to delete an exercise, check or results cell, or to
        # edit a check or results cell.
        if _locked(cell):
            metadata["editable"], metadata["deletable"] = False, False
        elif grading.get("solution"):
            metadata["deletable"] = False
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["spam_labs"] = {"lab": lab, "checks": checks or exercises}
    return notebook, exercises


def _locked(cell: dict) -> bool:
    """nbgrader's rule: graded cells and cells marked locked are locked, solution cells never."""
    grading = nbgrader_metadata(cell)
    return not grading.get("solution") and bool(grading.get("grade") or grading.get("locked"))


# --------------------------------------------------------------------------
# 3. What grade trusts: the reference notebooks
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceCell:
    """A cell students must not change, as the reference notebook has it."""

    kind: str  # "check", "results" or "locked"
    grade_id: str | None  # its nbgrader grade_id, None in a notebook without nbgrader metadata
    source: str
    position: int  # its place among the reference's code cells, from 0


@dataclass(frozen=True)
class Reference:
    """What ``grade`` takes from a reference lab notebook: its locked cells and the figures it records."""

    lab: int
    cells: tuple[ReferenceCell, ...]  # in notebook order
    code_cells: int
    figures: tuple[str, ...] | None  # None if the reference notebook records nothing (not executed)

    @property
    def checks(self) -> list[ReferenceCell]:
        return [cell for cell in self.cells if cell.kind == "check"]

    @property
    def results(self) -> ReferenceCell | None:
        return next((cell for cell in self.cells if cell.kind == "results"), None)


def reference_cells(notebook: dict, lab: int) -> Reference:
    """The check cells, results cell and other locked cells of a reference notebook, and its figures.

    With nbgrader metadata: graded cells are the checks and locked cells are
    kept as they are (the locked one that calls ``record_results`` is the results
    cell). Without it: the first code cell after each cell with solution markers
    is a check, and the last cell calling ``record_results`` is the results cell.
    """
    code = _code_cells(notebook)
    cells = []
    if _has_nbgrader_metadata(notebook):
        for position, (_, cell) in enumerate(code):
            grading = nbgrader_metadata(cell)
            if _locked(cell):
                grade_id = grading.get("grade_id") if isinstance(grading.get("grade_id"), str) else None
                kind = "check" if grading.get("grade") else "locked"
                cells.append([kind, grade_id, _text(cell.get("source")), position])
    else:
        after_exercise = False
        for position, (_, cell) in enumerate(code):
            source = _text(cell.get("source"))
            if any(_is_marker(line, BEGIN_SOLUTION) for line in source.split("\n")):
                after_exercise = True
            elif after_exercise and source.strip():
                cells.append(["check", None, source, position])
                after_exercise = False
        last = max((p for p, (_, c) in enumerate(code) if "record_results(" in _text(c.get("source"))), default=None)
        if last is not None and all(position != last for *_, position in cells):
            cells.append(["locked", None, _text(code[last][1].get("source")), last])
            cells.sort(key=lambda cell: cell[3])
    results = [cell for cell in cells if cell[0] == "locked" and "record_results(" in cell[2]]
    if results:
        results[-1][0] = "results"
    recorded = None
    if results:
        recorded = _recorded_in(code[results[-1][3]][1])
    figures = tuple(recorded["figures"]) if recorded else None
    return Reference(lab, tuple(ReferenceCell(*cell) for cell in cells), len(code), figures)


_REFERENCES: dict[tuple, Reference | str] = {}


def load_reference(course: Path, lab: int) -> Reference | str:
    """The reference of ``lab`` in ``course``, or why there is none (a status). Cached while the file is unchanged."""
    path = Path(course) / LAB_NOTEBOOKS[lab]
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return f"no reference notebook {LAB_NOTEBOOKS[lab]} in {course}"
    if key not in _REFERENCES:
        try:
            _REFERENCES[key] = reference_cells(read_notebook(path), lab)
        except NotANotebook as exc:
            _REFERENCES[key] = f"reference notebook {path} unreadable ({exc})"
    return _REFERENCES[key]


@dataclass
class Located:
    """Where a submission holds one of the reference's locked cells, and why it cannot be trusted (if so)."""

    reference: ReferenceCell
    numbers: list[int]  # cell numbers (from 1): one, none (missing) or several (duplicated)

    @property
    def number(self) -> int | None:
        return self.numbers[0] if len(self.numbers) == 1 else None

    def problem(self, notebook: dict) -> str | None:
        what = f"{self.reference.kind} cell"
        name = f" ({self.reference.grade_id})" if self.reference.grade_id else ""
        if not self.numbers:  # a missing results cell is reported as "no results cell", with the other results problems
            return None if self.reference.kind == "results" else f"{what} missing{name}"
        if len(self.numbers) > 1:
            return f"{what}{name} duplicated (cells {', '.join(map(str, self.numbers))})"
        if not _same_code(notebook["cells"][self.number - 1].get("source"), self.reference.source):
            return f"{what} {self.number} differs from the reference"
        return None


def _same_code(source, reference: str) -> bool:
    """Equal code, ignoring line endings and trailing spaces."""

    def lines(text):
        return [line.rstrip() for line in _text(text).replace("\r\n", "\n").strip().split("\n")]

    return lines(source) == lines(reference)


def locate(notebook: dict, reference: Reference) -> list[Located]:
    """Find each locked reference cell in a submission: by grade_id, else by identical code, else by position.

    The position is used only when the submission has as many code cells as
    the reference (cells neither added nor deleted), and never for a cell with
    a grade_id in a submission that has nbgrader metadata (a cell deleted there
    is missing, whatever took its place).
    """
    code = _code_cells(notebook)
    with_metadata = _has_nbgrader_metadata(notebook)
    found = []
    for cell in reference.cells:
        numbers = []
        if cell.grade_id:
            numbers = [number for number, c in code if nbgrader_metadata(c).get("grade_id") == cell.grade_id]
        if not numbers:
            numbers = [number for number, c in code if _same_code(c.get("source"), cell.source)]
        if not numbers and len(code) == reference.code_cells and not (cell.grade_id and with_metadata):
            numbers = [code[cell.position][0]]
        found.append(Located(cell, numbers))
    return found


def restore_locked_cells(notebook: dict, reference: Reference) -> list[str]:
    """Put the reference's code back into every locked cell of ``notebook`` (in place); say which had changed.

    As nbgrader's autograde does: a student's edits to a check or results cell
    are overwritten before the run, so the cell runs the instructor's code.
    """
    notes = []
    for located in locate(notebook, reference):
        for number in located.numbers:
            cell = notebook["cells"][number - 1]
            if not _same_code(cell.get("source"), located.reference.source):
                notes.append(f"{located.reference.kind} cell {number} had been changed (re-run as in the reference)")
            cell["source"] = located.reference.source
    return notes


# --------------------------------------------------------------------------
# 4. Grade: a gradebook of submissions
# --------------------------------------------------------------------------


def grade(
    files: list[tuple[str, Path]],
    course: Path = COURSE,
    execute: bool = False,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    progress: bool = False,
    jobs: int = 1,
) -> list[dict]:
    """One gradebook row per (student, file), in the order given; a file that cannot be graded gets a status.

    With ``execute``, up to ``jobs`` notebooks are re-run at the same time, each
    in its own kernel and temporary folder. The rows are the same whatever ``jobs`` is.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(files), desc="grading", unit="notebook", file=sys.stderr, disable=not progress)
    rows: list[dict | None] = [None] * len(files)
    with bar:
        if not execute or jobs <= 1 or len(files) <= 1:
            for i, (student, path) in enumerate(files):
                rows[i] = graded(path, student, course, execute, timeout, kernel)
                bar.update()
        else:
            # Threads are enough: the work happens in the kernels, which are separate processes.
            with ThreadPoolExecutor(max_workers=min(jobs, len(files)), thread_name_prefix="grade") as pool:
                futures = {
                    pool.submit(graded, path, student, course, execute, timeout, kernel): i
                    for i, (student, path) in enumerate(files)
                }
                for future in as_completed(futures):
                    rows[futures[future]] = future.result()  # graded() never raises
                    bar.update()
    return rows


def graded(
    path: Path,
    student: str,
    course: Path = COURSE,
    execute: bool = False,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
) -> dict:
    """One gradebook row for one file. Never raises: whatever the file holds becomes a status."""
    path = Path(path)
    row = {
        "student": student,
        "lab": None,
        "status": "",
        "executed_in_order": "",
        "error_cells": "",
        "unrun_cells": "",
        "checks_passed": None,
        "checks_total": None,
        "figures": {},
        "other_figures": {},
        "path": str(path),
    }
    try:
        notebook = read_notebook(path)
        lab = lab_of(notebook, path.name)
        problems = []
        if execute:
            reference = load_reference(course, lab) if lab else None
            reference = reference if isinstance(reference, Reference) else None
            notebook, problems = executed_copy(notebook, course, timeout, kernel, reference)
        row.update(notebook_grades(notebook, path.name, course, problems, lab=lab))
    except NotANotebook as exc:
        row["status"] = str(exc)
    except Exception as exc:  # a shape of file nobody foresaw must not stop the other rows
        row["status"] = f"could not be graded ({type(exc).__name__}: {exc})"
    return row


def read_notebook(path: Path) -> dict:
    """The notebook in ``path`` as plain JSON data, or NotANotebook saying what the file is instead.

    Plain ``json`` and no schema validation: it is fast (importing nbformat
    alone takes seconds), and a notebook a tool saved slightly off-schema can
    still be graded. The few fields grading reads are checked where they are read.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise NotANotebook(f"unreadable ({exc.strerror or exc})") from None
    if not raw.strip():
        raise NotANotebook("not JSON (empty file)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotANotebook("not JSON (not UTF-8 text)") from None
    except (ValueError, RecursionError) as exc:
        raise NotANotebook(f"not JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotANotebook("JSON, but not a notebook (no list of cells)")
    if data.get("nbformat") != 4:
        raise NotANotebook(f"not a version 4 notebook (nbformat {data.get('nbformat')}); open and save it in Jupyter")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    for cell in data["cells"]:  # one string per text, as nbformat's own reader leaves them
        if isinstance(cell, dict):
            cell["source"] = _text(cell.get("source"))
            for output in _outputs(cell):
                if "text" in output:
                    output["text"] = _text(output["text"])
    return data


def _text(value) -> str:
    """Notebook text, which files store either as one string or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


def _code_cells(notebook: dict) -> list[tuple[int, dict]]:
    """(cell number, cell) of every code cell; numbers count all cells from 1 at the top."""
    return [
        (number, cell)
        for number, cell in enumerate(notebook["cells"], start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]


def _outputs(cell: dict) -> list[dict]:
    outputs = cell.get("outputs")
    return [output for output in outputs if isinstance(output, dict)] if isinstance(outputs, list) else []


def _recorded_in(cell: dict) -> dict | None:
    """The last ``{"lab": N, "figures": {...}}`` that ``record_results`` left in this cell's outputs, or None."""
    found = None
    for output in _outputs(cell):
        data = output.get("data")
        payload = data.get(RESULTS_MIME) if isinstance(data, dict) else None
        if isinstance(payload, (str, list)):  # some tools store JSON outputs as text
            try:
                payload = json.loads(_text(payload))
            except ValueError:
                payload = None
        if isinstance(payload, dict) and isinstance(payload.get("figures"), dict):
            found = payload
    return found


def recorded_results(notebook: dict) -> dict | None:
    """The last results that ``record_results`` left in any cell's outputs, or None (only to tell the lab)."""
    found = None
    for _, cell in _code_cells(notebook):
        found = _recorded_in(cell) or found
    return found


def lab_of(notebook: dict, filename: str) -> int | None:
    """Which lab a notebook is, or None if nothing names one of the three.

    Evidence in order of strength: the lab its results cell recorded, the lab
    ``release`` stamped into it, the lab its nbgrader cell ids name
    (``lab1-check``), its "# Lab N:" title, its file name (01_..., or the name
    without the prefix). Students rename files, so that comes last. Naming the
    wrong lab gains nothing: the notebook is then graded against that lab's reference.
    """
    results = recorded_results(notebook) or {}
    stamp = notebook["metadata"].get("spam_labs")
    candidates = [results.get("lab"), stamp.get("lab") if isinstance(stamp, dict) else None]
    for _, cell in _code_cells(notebook):
        grade_id = _GRADE_ID.match(str(nbgrader_metadata(cell).get("grade_id", "")))
        if grade_id:
            candidates.append(int(grade_id.group(1)))
            break
    for cell in notebook["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            title = _LAB_TITLE.search(_text(cell.get("source")))
            if title:
                candidates.append(int(title.group(1)))
                break
    for lab, name in LAB_NOTEBOOKS.items():
        if filename.startswith(name[:3]) or name[3 : -len(".ipynb")] in filename:
            candidates.append(lab)
            break
    return next((lab for lab in candidates if type(lab) is int and lab in LAB_NOTEBOOKS), None)


def executed_in_order(notebook: dict) -> bool:
    """Whether the code cells ran once each from the top: execution counts 1, 2, ... N, none missing.

    That is what "Restart Kernel and Run All Cells" leaves. Anything else means
    cells were skipped, re-run or run out of order, so the outputs may not be
    what the code as written produces.
    """
    counts = [
        cell.get("execution_count")
        for _, cell in _code_cells(notebook)
        if cell["source"].strip() or cell.get("execution_count") is not None
    ]
    return bool(counts) and counts == list(range(1, len(counts) + 1))


def error_cells(notebook: dict) -> dict[int, str]:
    """Cell number -> name of the exception it shows, for every code cell with an error output."""
    errors = {}
    for number, cell in _code_cells(notebook):
        for output in _outputs(cell):
            if output.get("output_type") == "error":
                errors.setdefault(number, str(output.get("ename") or "error"))
    return errors


def unrun_cells(notebook: dict) -> list[int]:
    """Numbers of the code cells with code that were never run (no execution count)."""
    return [
        number
        for number, cell in _code_cells(notebook)
        if cell["source"].strip() and cell.get("execution_count") is None
    ]


def check_passed(cell: dict) -> bool:
    """Whether a check cell's own output says it passed: a CHECK PASSED line, no CHECK FAILED line, no error."""
    passed = failed = False
    for output in _outputs(cell):
        if output.get("output_type") == "error":
            failed = True
        data = output.get("data")
        text = _text(output.get("text")) or _text(data.get("text/plain") if isinstance(data, dict) else None)
        for line in text.splitlines():
            passed |= line.strip().startswith(CHECK_PASSED)
            failed |= line.strip().startswith(CHECK_FAILED)
    return passed and not failed


def _results_problem(notebook: dict, number: int | None) -> str | None:
    """Why results cell ``number`` holds no recorded results, or None if it does."""
    if number is None:
        return "no results cell"
    cell = notebook["cells"][number - 1]
    if _recorded_in(cell) is not None:
        return None
    errors = [output.get("ename") or "error" for output in _outputs(cell) if output.get("output_type") == "error"]
    if errors:
        return f"results cell {number} failed ({errors[0]})"
    if cell.get("execution_count") is None:
        return f"results cell {number} not run"
    return f"results cell {number} recorded nothing"


def _names(names: list[str], most: int = 3, width: int = 30) -> str:
    """A short, one-line list of names a submission chose (they may be long or many)."""
    shown = [" ".join(name.split())[:width] for name in names[:most]]
    return ", ".join(shown) + (f" and {len(names) - most} more" if len(names) > most else "")


def notebook_grades(
    notebook: dict, filename: str, course: Path = COURSE, problems: list[str] = (), lab: int | None = None
) -> dict:
    """The gradebook fields of one notebook of ``course``; ``problems`` are ones found before (e.g. a timeout).

    The status is "ok" when the notebook is of a known lab, its check and
    results cells are the reference's, and it recorded its results; otherwise
    it lists what is wrong. A check counts as passed only from the output of
    its own check cell, and only if that cell holds the reference's code. The
    figures are the ones the lab's reference records, read from the results
    cell; anything else the notebook records is named in the status, never a
    column. How the notebook ran (order, errors, cells never run) has its own columns.
    """
    problems = list(problems)
    lab = lab if lab is not None else lab_of(notebook, filename)
    code = _code_cells(notebook)
    reference = load_reference(course, lab) if lab is not None else None
    if lab is None:
        problems.insert(0, "unknown lab")
    elif isinstance(reference, str):
        problems.append(reference)
    reference = reference if isinstance(reference, Reference) else None

    located = locate(notebook, reference) if reference else []
    trusted = {}  # cell number -> whether it holds the reference's code
    for place in located:
        problem = place.problem(notebook)
        if problem:
            problems.append(problem)
        if place.number is not None:
            trusted[place.number] = problem is None
    if reference:
        results = next((place.number for place in located if place.reference.kind == "results"), None)
    else:  # no reference to go by: the last cell calling record_results, as the labs are written
        results = max((number for number, cell in code if "record_results(" in cell["source"]), default=None)

    ran = any(cell.get("execution_count") is not None or _outputs(cell) for _, cell in code)
    if not ran:
        problems.append("not executed")
    elif missing := _results_problem(notebook, results):
        problems.append(missing)

    recorded = (_recorded_in(notebook["cells"][results - 1]) if results else None) or {}
    recorded_figures = recorded.get("figures") or {}
    elsewhere = [number for number, cell in code if number != results and _recorded_in(cell)]
    if elsewhere:
        problems.append(f"results recorded outside the results cell ignored (cell {_number_ranges(elsewhere)})")
    figures, other = {}, dict(recorded_figures)
    if reference and reference.figures is None:
        problems.append(f"the reference notebook of lab {lab} records no figures: run it, then grade again")
    elif reference:
        figures = {name: recorded_figures.get(name) for name in reference.figures}
        other = {name: value for name, value in recorded_figures.items() if name not in reference.figures}
        if other:
            problems.append(f"figures not in the reference ignored: {_names(list(other))}")

    checks = [place for place in located if place.reference.kind == "check"]
    passed = sum(
        place.number is not None and trusted[place.number] and check_passed(notebook["cells"][place.number - 1])
        for place in checks
    )
    return {
        "lab": lab,
        "status": "; ".join(problems) or "ok",
        "executed_in_order": "yes" if executed_in_order(notebook) else "no",
        "error_cells": ", ".join(f"{number} {name}" for number, name in error_cells(notebook).items()),
        "unrun_cells": _number_ranges(unrun_cells(notebook)),
        "checks_passed": passed,
        "checks_total": len(checks),
        "figures": figures,
        "other_figures": other,
    }


def _number_ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``: a long list of cells, short."""
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _this_python_kernel():
    """A kernel manager class that starts an IPython kernel in the Python running this file.

    The registered ``spam-labs`` kernelspec is per user and may point at
    another checkout's environment; grading with the interpreter that runs
    the grader (the course's .venv) is what ``make test`` does too.
    """
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict()
            )

    class ThisPythonKernel(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return ThisPythonSpecs(data_dir=self.data_dir)

    return ThisPythonKernel


def executed_copy(
    notebook: dict,
    course: Path = COURSE,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    reference: Reference | None = None,
) -> tuple[dict, list[str]]:
    """``notebook`` run again from scratch in a new kernel, and what went wrong on the way (empty if nothing).

    The run starts from a copy with every output cleared, and the student's
    file is never written. With a ``reference``, every check cell, the results
    cell and any other locked cell first get the reference's code back. The
    kernel works in its own empty temporary folder with the course folder on
    PYTHONPATH, so ``import utils`` works and the notebook cannot change files
    there. A cell's error does not stop the run (as in nbgrader), so one broken
    cell does not hide the rest. ``timeout`` bounds the whole notebook: each
    cell may use what the cells before it left.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = nbformat.from_dict(copy.deepcopy(notebook))  # the caller's dict is left as it was
    problems = restore_locked_cells(run, reference) if reference else []
    for _, cell in _code_cells(run):
        cell["source"], cell["outputs"], cell["execution_count"] = _text(cell.get("source")), [], None
    deadline = time.monotonic() + timeout
    kernel_options = {"kernel_name": kernel} if kernel else {"kernel_manager_class": _this_python_kernel()}
    python_path = os.pathsep.join(filter(None, [str(course), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="spam-labs-grade-") as workdir:
        client = NotebookClient(
            run,
            allow_errors=True,
            resources={"metadata": {"path": workdir}},
            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
            **kernel_options,
        )
        try:
            client.execute(env={**os.environ, "PYTHONPATH": python_path}, stderr=subprocess.DEVNULL)
        except CellTimeoutError:
            started = [number for number, cell in _code_cells(run) if cell.get("execution_count") is not None]
            problems.append(f"timed out after {timeout:g} s" + (f" in cell {started[-1]}" if started else ""))
        except DeadKernelError:
            problems.append("kernel died")
        except Exception as exc:  # no such kernel, kernel failed to start, ...
            problems.append(f"could not run ({type(exc).__name__}: {exc})")
    return run, problems


def notebook_files(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, file) for each file named and each .ipynb file under each folder named.

    The student is the file name, or the path inside the folder named, so
    per-student subfolders (``alice/01_spam_tutorial.ipynb``) stay apart.
    Hidden folders (.ipynb_checkpoints, .venv, .git) are skipped.
    """
    found: dict[Path, str] = {}
    for path in paths:
        if not path.is_dir():
            found.setdefault(path.resolve(), path.name)
            continue
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if name.endswith(".ipynb") and not name.startswith("."):
                    file = Path(folder) / name
                    found.setdefault(file.resolve(), file.relative_to(path).as_posix())
    return sorted(((student, file) for file, student in found.items()), key=lambda pair: pair[0].lower())


def _shown(value) -> str:
    """A gradebook value as text: lists and dicts as JSON, nothing as an empty string."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def csv_safe(text: str) -> str:
    """``text`` as it can go into a CSV cell: a leading ``'`` if a spreadsheet could run it as a formula.

    OWASP's rule for CSV injection: a cell starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (or a line break) is prefixed. Plain
    numbers (``-0.5``, ``+3``) are left as they are: a spreadsheet reads them as numbers, not formulas.
    """
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def gradebook_columns(rows: list[dict]) -> list[str]:
    """The fixed columns, the figures of each lab graded (as its reference records them), then ``path``."""
    figures = list(dict.fromkeys(name for row in rows for name in row["figures"]))
    return GRADEBOOK_COLUMNS + [name for name in figures if name not in GRADEBOOK_COLUMNS + ["path"]] + ["path"]


def write_gradebook(rows: list[dict], out: Path) -> None:
    """Write the rows as CSV, every cell that could be read as a formula neutralised (``csv_safe``)."""
    columns = gradebook_columns(rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([csv_safe(column) for column in columns])
        for row in rows:
            values = {**row["figures"], **{k: v for k, v in row.items() if k not in ("figures", "other_figures")}}
            writer.writerow([csv_safe(_shown(values.get(column))) for column in columns])


def gradebook_text(rows: list[dict], width: int = 32) -> str:
    """The rows as plain-text tables: one per lab, with that lab's figures as columns, then unknown files.

    Values after the status longer than ``width`` characters are cut (the CSV has them whole).
    """
    blocks = []
    for lab in [*LAB_NOTEBOOKS, None]:
        group = [row for row in rows if row["lab"] == lab]
        if not group:
            continue
        shown = [
            {
                "student": row["student"],
                "status": row["status"],
                "in order": row["executed_in_order"],
                "errors": row["error_cells"],
                "never run": row["unrun_cells"],
                "checks": "" if row["checks_total"] is None else f"{row['checks_passed']}/{row['checks_total']}",
                **row["figures"],
            }
            for row in group
        ]
        columns = list(dict.fromkeys(name for row in shown for name in row))
        cells = [[_shown(row.get(column)) for column in columns] for row in shown]
        cells = [
            line[:2] + [value if len(value) <= width else value[: width - 3] + "..." for value in line[2:]]
            for line in cells
        ]  # student and status are never cut
        widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
        title = f"Lab {lab} ({LAB_NOTEBOOKS[lab]})" if lab else "Not a notebook of a known lab"
        lines = [f"{title}: {len(group)} file(s)"]
        for line in [columns, ["-" * w for w in widths], *cells]:
            lines.append("  ".join(value.ljust(w) for value, w in zip(line, widths, strict=True)).rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------
# 5. Command line
# --------------------------------------------------------------------------


def _cmd_release(args) -> int:
    """Write student copies of the three labs; if any source is missing or malformed, write nothing."""
    try:
        written = release(Path(args.course), Path(args.outdir))
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if "holds the reference notebooks" in str(exc) else 1
    for path, exercises in written:
        warning = f"  WARNING: no {BEGIN_SOLUTION} marker found" if not exercises else ""
        print(f"  {path}: {exercises} exercise(s) replaced by a placeholder, outputs cleared{warning}")
    print(
        f"Student copies written to {Path(args.outdir).resolve()}. Students open them beside utils.py "
        "(in their copy of this repository, replacing the reference notebooks)."
    )
    return 0


def cpu_cores() -> int:
    """The CPU cores this process may use (a container's share, where the system says so)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _cmd_grade(args) -> int:
    """Grade the notebooks named. Only usage errors (bad paths or options) give a non-zero exit status."""
    paths, out = [Path(p) for p in args.paths], Path(args.out)
    errors = [f"no such file or folder: {p}" for p in paths if not p.exists()]
    if out.is_dir() or not out.resolve().parent.is_dir():
        errors.append(f"--out {out}: not a file in an existing folder")
    if args.timeout <= 0:
        errors.append("--timeout must be a positive number of seconds")
    if args.jobs is not None and args.jobs < 1:
        errors.append("--jobs must be 1 or more")
    if not all((Path(args.course) / name).is_file() for name in LAB_NOTEBOOKS.values()):
        errors.append(f"--course {args.course}: the folder does not hold the three reference notebooks")
    if args.execute and args.kernel:
        from jupyter_client.kernelspec import KernelSpecManager

        installed = sorted(KernelSpecManager().find_kernel_specs())
        if args.kernel not in installed:
            errors.append(f"--kernel {args.kernel}: no such Jupyter kernel (installed: {', '.join(installed)})")
    files = [] if errors else notebook_files(paths)
    if not errors and not files:
        errors.append(f"no .ipynb files in {', '.join(map(str, paths))}")
    if errors:
        print("\n".join(f"error: {e}" for e in errors), file=sys.stderr)
        return 2

    started = time.monotonic()
    jobs = args.jobs or cpu_cores()
    progress = len(files) > PROGRESS_BAR_ABOVE or (args.execute and len(files) > 1)
    rows = grade(files, Path(args.course), args.execute, args.timeout, args.kernel, progress, jobs)
    write_gradebook(rows, out)
    print(gradebook_text(rows))
    ok = sum(row["status"] == "ok" for row in rows)
    how = (
        f"re-run in fresh kernels, {min(jobs, len(files))} at a time,"
        if args.execute
        else "read as submitted (not re-run)"
    )
    print(
        f"\n{len(rows)} file(s) {how} in {time.monotonic() - started:.1f} s: "
        f"{ok} ok, {len(rows) - ok} with a problem. Gradebook: {out.resolve()}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python instructor.py", description="Spam Labs instructor tools: student copies and a gradebook."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    release_cmd = commands.add_parser(
        "release", help="write student copies of the labs: solutions out, outputs cleared"
    )
    release_cmd.add_argument("outdir", help="folder to write (created if needed; copies there are replaced)")
    release_cmd.set_defaults(run=_cmd_release)
    grade_cmd = commands.add_parser(
        "grade",
        help="grade submitted notebooks: a table on screen and a CSV gradebook",
        description="Grade submitted lab notebooks from their recorded outputs (or re-run them with --execute). "
        "Every file becomes one row; a file that cannot be graded gets a status saying why.",
    )
    grade_cmd.add_argument("paths", nargs="+", metavar="PATH", help="a submitted .ipynb file, or a folder of them")
    grade_cmd.add_argument(
        "--execute",
        action="store_true",
        help="re-run each notebook in a fresh kernel and grade that run (this runs the students' code on this "
        "machine; check and results cells get the reference's code first; the files are not changed)",
    )
    grade_cmd.add_argument(
        "--timeout",
        type=float,
        default=GRADE_TIMEOUT,
        help="with --execute, seconds each whole notebook may run (default %(default)g)",
    )
    grade_cmd.add_argument(
        "--jobs",
        type=int,
        help="with --execute, how many notebooks to re-run at the same time (default: the number of CPU cores)",
    )
    grade_cmd.add_argument("--kernel", help="with --execute, a Jupyter kernel name to use (default: this Python)")
    grade_cmd.add_argument("--out", default="gradebook.csv", help="the CSV file to write (default %(default)s)")
    grade_cmd.set_defaults(run=_cmd_grade)
    for command in (release_cmd, grade_cmd):
        command.add_argument(
            "--course",
            default=str(COURSE),
            help="the folder with the reference labs, utils.py and exercise_checks.py (default: this file's folder)",
        )
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
