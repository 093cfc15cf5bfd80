"""Release: student copies of the labs, solutions replaced and outputs cleared (as nbgrader's generate_assignment)."""

from __future__ import annotations

import copy
from pathlib import Path

from instructor_tools.notebooks import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    LAB_NOTEBOOKS,
    as_text,
    has_nbgrader_metadata,
    is_locked,
    is_marker,
    nbgrader_metadata,
    reference_cells,
)

#: What a student sees instead of a solution. It raises, so "Run All" stops at
#: the exercise instead of running on without an answer.
PLACEHOLDER = (
    "# YOUR CODE HERE",
    'raise NotImplementedError("Write your solution here, then run this cell again.")',
)

#: What replaces a written (markdown) solution, as nbgrader's default text stub.
TEXT_PLACEHOLDER = "YOUR ANSWER HERE"


class ReleaseError(ValueError):
    """The labs cannot be released as they are; nothing was written."""


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
        if is_marker(line, BEGIN_SOLUTION):
            if inside:
                raise ValueError(f"{where}: {BEGIN_SOLUTION} inside another solution")
            inside, solutions = True, solutions + 1
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + placeholder for placeholder in stub]
        elif is_marker(line, END_SOLUTION):
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
    with_metadata = has_nbgrader_metadata(notebook)
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
        source, solutions = source_without_solutions(as_text(cell["source"]), f"cell {number}", stub)
        if solutions and with_metadata and not grading.get("solution"):
            raise ValueError(f"cell {number}: solution markers in a cell that is not an nbgrader solution cell")
        if grading.get("solution") and not solutions:
            source, solutions = "\n".join(stub), 1  # nbgrader replaces a whole solution cell without markers
        cell["source"] = source
        exercises += solutions > 0 and cell["cell_type"] == "code"
        # As nbgrader's LockCells: JupyterLab refuses to delete an exercise, check or results cell, or to
        # edit a check or results cell.
        if is_locked(cell):
            metadata["editable"], metadata["deletable"] = False, False
        elif grading.get("solution"):
            metadata["deletable"] = False
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["spam_labs"] = {"lab": lab, "checks": checks or exercises}
    return notebook, exercises
