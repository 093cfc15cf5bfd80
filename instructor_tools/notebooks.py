"""Reading notebooks and locating cells: what a submitted file holds, and what ``grade`` trusts.

A submission is plain JSON (never validated against the schema: a notebook a
tool saved slightly off-schema can still be graded). What counts comes from the
reference notebooks of the course: which cells are the checks and the results
cell (nbgrader ``grade_id``), what code they hold, and which figures a lab
records. Here they are read, and found again in a submission.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from exercise_checks import CHECK_FAILED, CHECK_PASSED
from utils import RESULTS_MIME

#: The course folder used when none is given: the one holding this package.
COURSE = Path(__file__).resolve().parents[1]

#: The lab notebooks of a course folder, by lab number.
LAB_NOTEBOOKS = {
    1: "01_spam_tutorial.ipynb",
    2: "02_spam_data_augmentation_tutorial.ipynb",
    3: "03_spam_data_slicing_tutorial.ipynb",
}

#: nbgrader's markers around the reference solution of an exercise (comment lines in a code cell).
#: As in nbgrader, a line that contains "BEGIN SOLUTION" / "END SOLUTION" anywhere is a marker.
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"

#: A submitted file larger than this is not read. An executed lab is well under 1 MB (a few MB with plots).
MAX_NOTEBOOK_BYTES = 50 * 2**20
#: Shapes no lab comes near (a lab has about 100 cells, JSON 10 levels deep, cells of a few kB): a file
#: beyond them is refused before anything walks it, however small it is on disk.
MAX_CELLS = 5_000
MAX_JSON_DEPTH = 64
MAX_JSON_VALUES = 2_000_000
MAX_SOURCE_CHARS = 1_000_000

_LAB_TITLE = re.compile(r"^#\s+Lab\s+(\d+)\s*:", re.MULTILINE)
_GRADE_ID = re.compile(r"^lab(\d+)-")


class NotANotebook(ValueError):
    """A submitted file that cannot be graded; the message is its gradebook status."""


def nbgrader_metadata(cell) -> dict:
    """A cell's ``nbgrader`` metadata, or {} (also for cells whose metadata is not a dict)."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    found = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else {}


def has_nbgrader_metadata(notebook: dict) -> bool:
    return any(nbgrader_metadata(cell) for cell in notebook["cells"])


def is_marker(line: str, marker: str) -> bool:
    """Whether ``line`` is a solution marker; nbgrader's rule: the words appear anywhere in the line."""
    return marker.lstrip("# ") in line


def is_locked(cell: dict) -> bool:
    """nbgrader's rule: graded cells and cells marked locked are locked, solution cells never."""
    grading = nbgrader_metadata(cell)
    return not grading.get("solution") and bool(grading.get("grade") or grading.get("locked"))


@dataclass(frozen=True)
class ReferenceCell:
    """A cell students must not change, as the reference notebook has it."""

    kind: str  # "check", "results" or "locked"
    grade_id: str | None  # its nbgrader grade_id, None in a notebook without nbgrader metadata
    source: str
    position: int  # its place among the reference's code cells, from 0
    cell_id: str | None = None  # its nbformat cell id (kept by Jupyter, release and nbgrader), None if it has none


@dataclass(frozen=True)
class Reference:
    """What ``grade`` takes from a reference lab notebook: its locked cells and the figures it records."""

    lab: int
    cells: tuple[ReferenceCell, ...]  # in notebook order
    code_cells: int
    figures: tuple[str, ...] | None  # None if the reference notebook records nothing (not executed)
    grade_ids: tuple[str, ...] = ()  # every nbgrader grade_id of the reference (exercise cells too), in order
    solutions: tuple[tuple[str, ...], ...] = ()  # each solution's code lines, stripped (between the markers)

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
    code = code_cells(notebook)
    cells = []
    if has_nbgrader_metadata(notebook):
        for position, (_, cell) in enumerate(code):
            grading = nbgrader_metadata(cell)
            if is_locked(cell):
                grade_id = grading.get("grade_id") if isinstance(grading.get("grade_id"), str) else None
                kind = "check" if grading.get("grade") else "locked"
                cells.append([kind, grade_id, as_text(cell.get("source")), position, _cell_id(cell)])
    else:
        after_exercise = False
        for position, (_, cell) in enumerate(code):
            source = as_text(cell.get("source"))
            if any(is_marker(line, BEGIN_SOLUTION) for line in source.split("\n")):
                after_exercise = True
            elif after_exercise and source.strip():
                cells.append(["check", None, source, position, _cell_id(cell)])
                after_exercise = False
        last = max((p for p, (_, c) in enumerate(code) if "record_results(" in as_text(c.get("source"))), default=None)
        if last is not None and all(position != last for *_, position in cells):
            cells.append(["locked", None, as_text(code[last][1].get("source")), last, _cell_id(code[last][1])])
            cells.sort(key=lambda cell: cell[3])
    results = [cell for cell in cells if cell[0] == "locked" and "record_results(" in cell[2]]
    if results:
        results[-1][0] = "results"
    recorded = None
    if results:
        recorded = recorded_in(code[results[-1][3]][1])
    figures = tuple(recorded["figures"]) if recorded else None
    solutions = tuple(filter(None, (_solution_lines(as_text(cell.get("source"))) for _, cell in code)))
    cells = tuple(ReferenceCell(*cell) for cell in cells)
    return Reference(lab, cells, len(code), figures, tuple(grade_ids(notebook)), solutions)


def _solution_lines(source: str) -> tuple[str, ...]:
    """The stripped, non-empty code lines between a cell's solution markers (all its solutions), or ()."""
    lines, inside = [], False
    for line in source.split("\n"):
        if is_marker(line, BEGIN_SOLUTION):
            inside = True
        elif is_marker(line, END_SOLUTION):
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return tuple(lines)


def _code_lines(source: str) -> list[str]:
    return [line.strip() for line in source.split("\n") if line.strip() and not is_marker(line, BEGIN_SOLUTION)]


def solution_copied(notebook: dict, reference: Reference) -> list[str]:
    """Signs that a submission holds the reference's solution: its markers, or its code line for line.

    Released copies have neither (``release`` takes the markers and what lies
    between them out). A short solution can be written the same way twice, so
    this is a flag for a look, not a grade: only solutions of two lines or more, or of 40 characters, count.
    """
    notes = []
    code = code_cells(notebook)
    marked = [
        number for number, cell in code if any(is_marker(ln, BEGIN_SOLUTION) for ln in cell["source"].split("\n"))
    ]
    if marked:
        notes.append(
            f"nbgrader's solution markers in cell {', '.join(map(str, marked[:5]))}: "
            "from the reference notebook, not a released copy?"
        )
    for solution in reference.solutions:
        if len(solution) < 2 and len("".join(solution)) < 40:
            continue
        for number, cell in code:
            lines = _code_lines(cell["source"])
            width = len(solution)
            if any(tuple(lines[i : i + width]) == solution for i in range(len(lines) - width + 1)):
                notes.append(f"the reference solution, verbatim, in cell {number}")
                break
    return notes


def grade_ids(notebook: dict) -> list[str]:
    """The nbgrader grade_ids of a notebook's cells (code and markdown), in order."""
    found = (nbgrader_metadata(cell).get("grade_id") for cell in notebook["cells"])
    return [grade_id for grade_id in found if isinstance(grade_id, str)]


def _cell_id(cell: dict) -> str | None:
    value = cell.get("id") if isinstance(cell, dict) else None
    return value if isinstance(value, str) and value else None


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

    def moved(self, notebook: dict) -> list[str]:
        """Signs that the cell carrying this grade_id is not the reference's cell (empty if there are none).

        A grade_id is metadata anyone can move: onto a new cell that shows a forged
        pass, while the real check cell, showing its failure, stays behind without
        it. Jupyter, ``release`` and nbgrader keep a cell's id, so a grade_id on a
        cell with another id, or the check's code in a second cell, gives it away.
        """
        if self.number is None or not self.reference.grade_id:
            return []
        cell = notebook["cells"][self.number - 1]
        if nbgrader_metadata(cell).get("grade_id") != self.reference.grade_id:
            return []  # found by its code, not by a grade_id
        name, notes = f"{self.reference.kind} cell ({self.reference.grade_id})", []
        theirs, ours = _cell_id(cell), self.reference.cell_id
        if theirs and ours and theirs != ours:
            notes.append(f"{name} moved: cell {self.number} has its grade_id but not its cell id")
        copies = [
            number
            for number, other in code_cells(notebook)
            if number != self.number and _same_code(other.get("source"), self.reference.source)
        ]
        if copies:
            where = ", ".join(map(str, copies))
            notes.append(f"{name} moved: its code is also in cell {where}, without the grade_id")
        return notes


def _same_code(source, reference: str) -> bool:
    """Equal code, ignoring line endings and trailing spaces."""

    def lines(text):
        return [line.rstrip() for line in as_text(text).replace("\r\n", "\n").strip().split("\n")]

    return lines(source) == lines(reference)


def locate(notebook: dict, reference: Reference) -> list[Located]:
    """Find each locked reference cell in a submission: by grade_id, else by identical code, else by position.

    The position is used only when the submission has as many code cells as
    the reference (cells neither added nor deleted), and never for a cell with
    a grade_id in a submission that has nbgrader metadata (a cell deleted there
    is missing, whatever took its place).
    """
    code = code_cells(notebook)
    with_metadata = has_nbgrader_metadata(notebook)
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


def read_notebook(path: Path) -> dict:
    """The notebook in ``path`` (a file of the course) as plain JSON data, or NotANotebook saying what is wrong."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise NotANotebook(f"unreadable ({exc.strerror or exc})") from None
    return notebook_from_bytes(raw)


def read_submission(path: Path) -> tuple[bytes, tuple[int, int]]:
    """The bytes of a submitted file and its (device, inode): read once, as a regular file, never through a link.

    Raises NotANotebook for a symbolic link (a link to another student's file
    must not be graded as its owner's), for anything that is not a regular file
    (a named pipe would block the read forever), and for a file over
    ``MAX_NOTEBOOK_BYTES``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        if os.path.islink(path):  # O_NOFOLLOW refuses it too, where the system has it
            raise OSError(errno.ELOOP, "symbolic link")
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotANotebook(f"a symbolic link (to {_link_target(path)}): not followed, not graded") from None
        raise NotANotebook(f"unreadable ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotANotebook("not a regular file (a folder, named pipe, socket or device)")
        raw = f.read(MAX_NOTEBOOK_BYTES + 1) if status.st_size <= MAX_NOTEBOOK_BYTES else b""
        if status.st_size > MAX_NOTEBOOK_BYTES or len(raw) > MAX_NOTEBOOK_BYTES:
            limit = MAX_NOTEBOOK_BYTES // 2**20
            raise NotANotebook(f"too large ({max(status.st_size, len(raw)):,} bytes; the limit is {limit} MB)")
    return raw, (status.st_dev, status.st_ino)


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def notebook_from_bytes(raw: bytes) -> dict:
    """A notebook file's bytes as plain JSON data, or NotANotebook saying what the file is instead.

    Plain ``json`` and no schema validation: it is fast (importing nbformat
    alone takes seconds), and a notebook a tool saved slightly off-schema can
    still be graded. The few fields grading reads are checked where they are read.
    """
    if not raw.strip():
        raise NotANotebook("not JSON (empty file)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise NotANotebook("not JSON (not UTF-8 text)") from None
    except RecursionError:
        raise NotANotebook(f"too deeply nested (JSON deeper than {MAX_JSON_DEPTH} levels): not graded") from None
    except ValueError as exc:
        raise NotANotebook(f"not JSON ({str(exc).split(':')[0][:100]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotANotebook("JSON, but not a notebook (no list of cells)")
    if len(data["cells"]) > MAX_CELLS:
        raise NotANotebook(f"too many cells ({len(data['cells']):,}; the limit is {MAX_CELLS:,}): not graded")
    _check_shape(data)
    if data.get("nbformat") != 4:
        raise NotANotebook(f"not a version 4 notebook (nbformat {data.get('nbformat')}); open and save it in Jupyter")
    if not isinstance(data.get("metadata"), dict):
        data["metadata"] = {}
    for cell in data["cells"]:  # one string per text, as nbformat's own reader leaves them
        if isinstance(cell, dict):
            cell["source"] = as_text(cell.get("source"))
            for output in outputs_of(cell):
                if "text" in output:
                    output["text"] = as_text(output["text"])
    return data


def _check_shape(data) -> None:
    """NotANotebook if the JSON is deeper, has more values or longer cell code than any lab (no recursion)."""
    values, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        values += 1
        if depth > MAX_JSON_DEPTH:
            raise NotANotebook(f"too deeply nested (JSON deeper than {MAX_JSON_DEPTH} levels): not graded")
        if values > MAX_JSON_VALUES:
            raise NotANotebook(f"too many JSON values (more than {MAX_JSON_VALUES:,}): not graded")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    for number, cell in enumerate(data["cells"], start=1):
        if isinstance(cell, dict) and len(as_text(cell.get("source"))) > MAX_SOURCE_CHARS:
            size = len(as_text(cell.get("source")))
            raise NotANotebook(f"cell {number} too long ({size:,} characters; the limit is {MAX_SOURCE_CHARS:,})")


def as_text(value) -> str:
    """Notebook text, which files store either as one string or as a list of lines."""
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return value if isinstance(value, str) else ""


def code_cells(notebook: dict) -> list[tuple[int, dict]]:
    """(cell number, cell) of every code cell; numbers count all cells from 1 at the top."""
    return [
        (number, cell)
        for number, cell in enumerate(notebook["cells"], start=1)
        if isinstance(cell, dict) and cell.get("cell_type") == "code"
    ]


def outputs_of(cell: dict) -> list[dict]:
    outputs = cell.get("outputs")
    return [output for output in outputs if isinstance(output, dict)] if isinstance(outputs, list) else []


def recorded_in(cell: dict) -> dict | None:
    """The last ``{"lab": N, "figures": {...}}`` that ``record_results`` left in this cell's outputs, or None."""
    found = None
    for output in outputs_of(cell):
        data = output.get("data")
        payload = data.get(RESULTS_MIME) if isinstance(data, dict) else None
        if isinstance(payload, (str, list)):  # some tools store JSON outputs as text
            try:
                payload = json.loads(as_text(payload))
            except ValueError:
                payload = None
        if isinstance(payload, dict) and isinstance(payload.get("figures"), dict):
            found = payload
    return found


def recorded_results(notebook: dict) -> dict | None:
    """The last results that ``record_results`` left in any cell's outputs, or None (only to tell the lab)."""
    found = None
    for _, cell in code_cells(notebook):
        found = recorded_in(cell) or found
    return found


def lab_evidence(notebook: dict, filename: str) -> dict[str, int]:
    """What names a lab, and which: ``{"recorded results": 3, "file name": 1, ...}`` (only the known labs)."""
    found: dict[str, object] = {}
    results = recorded_results(notebook) or {}
    stamp = notebook["metadata"].get("spam_labs")
    found["recorded results"] = results.get("lab")
    found["release stamp"] = stamp.get("lab") if isinstance(stamp, dict) else None
    for _, cell in code_cells(notebook):
        grade_id = _GRADE_ID.match(str(nbgrader_metadata(cell).get("grade_id", ""))[:20])
        if grade_id:
            found["nbgrader ids"] = int(grade_id.group(1))
            break
    for cell in notebook["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            title = _LAB_TITLE.search(as_text(cell.get("source"))[:10_000])
            if title and len(title.group(1)) < 5:
                found["title"] = int(title.group(1))
                break
    for lab, name in LAB_NOTEBOOKS.items():
        if filename.startswith(name[:3]) or name[3 : -len(".ipynb")] in filename:
            found["file name"] = lab
            break
    return {what: lab for what, lab in found.items() if type(lab) is int and lab in LAB_NOTEBOOKS}


def lab_of(notebook: dict, filename: str) -> int | None:
    """Which lab a notebook is, or None if nothing names one of the three.

    Evidence in order of strength: the lab its results cell recorded, the lab
    ``release`` stamped into it, the lab its nbgrader cell ids name
    (``lab1-check``), its "# Lab N:" title, its file name (01_..., or the name
    without the prefix). Students rename files, so that comes last. Naming the
    wrong lab gains nothing: the notebook is then graded against that lab's reference.
    """
    return next(iter(lab_evidence(notebook, filename).values()), None)


def executed_in_order(notebook: dict) -> bool:
    """Whether the code cells ran once each from the top: execution counts 1, 2, ... N, none missing.

    That is what "Restart Kernel and Run All Cells" leaves. Anything else means
    cells were skipped, re-run or run out of order, so the outputs may not be
    what the code as written produces.
    """
    counts = [
        cell.get("execution_count")
        for _, cell in code_cells(notebook)
        if cell["source"].strip() or cell.get("execution_count") is not None
    ]
    return bool(counts) and counts == list(range(1, len(counts) + 1))


def error_cells(notebook: dict) -> dict[int, str]:
    """Cell number -> name of the exception it shows, for every code cell with an error output."""
    errors = {}
    for number, cell in code_cells(notebook):
        for output in outputs_of(cell):
            if output.get("output_type") == "error":
                errors.setdefault(number, str(output.get("ename") or "error"))
    return errors


def unrun_cells(notebook: dict) -> list[int]:
    """Numbers of the code cells with code that were never run (no execution count)."""
    return [
        number
        for number, cell in code_cells(notebook)
        if cell["source"].strip() and cell.get("execution_count") is None
    ]


def check_passed(cell: dict) -> bool:
    """Whether a check cell's own output says it passed: a CHECK PASSED line, no CHECK FAILED line, no error."""
    passed = failed = False
    for output in outputs_of(cell):
        if output.get("output_type") == "error":
            failed = True
        data = output.get("data")
        text = as_text(output.get("text")) or as_text(data.get("text/plain") if isinstance(data, dict) else None)
        for line in text.splitlines():
            passed |= line.strip().startswith(CHECK_PASSED)
            failed |= line.strip().startswith(CHECK_FAILED)
    return passed and not failed
