"""Grading: one gradebook row per submitted file, from its saved outputs or from a fresh run."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from instructor_tools.course import Course, as_course
from instructor_tools.execute import GRADE_TIMEOUT, Execution, Runner, executed_copy, grading_run
from instructor_tools.notebooks import (
    COURSE,
    NotANotebook,
    Reference,
    check_passed,
    code_cells,
    error_cells,
    executed_in_order,
    grade_ids,
    lab_evidence,
    lab_of,
    locate,
    notebook_from_bytes,
    outputs_of,
    read_submission,
    recorded_in,
    solution_copied,
    unrun_cells,
)


def grade(
    files: list[tuple[str, Path]],
    course: Course | Path = COURSE,
    execute: bool | Runner = False,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    progress: bool = False,
    jobs: int = 1,
    sandboxed: bool = True,
) -> list[dict]:
    """One gradebook row per (student, file), in the order given; a file that cannot be graded gets a status.

    Every file is read once, before anything runs, so no submission can change
    another before it is graded. With ``execute`` (True, or a Runner made by
    ``execute.grading_run``), each notebook is re-run in a fresh kernel, in the
    sandbox unless ``sandboxed`` is False, up to ``jobs`` at the same time.
    The rows are the same whatever ``jobs`` is.
    """
    course = as_course(course)
    if execute is True:
        private = tuple(path for _, path in files)
        with grading_run(course, timeout, kernel, sandboxed, private) as made:
            return grade(files, course, made, progress=progress, jobs=jobs)
    from tqdm import tqdm

    submissions = _read_all(files)
    bar = tqdm(total=len(files), desc="grading", unit="notebook", file=sys.stderr, disable=not progress)
    rows: list[dict | None] = [None] * len(files)

    def row(i: int) -> dict:
        (student, path), submission = files[i], submissions[i]
        return graded(path, student, course, execute or None, submission)

    with bar:
        if not execute or jobs <= 1 or len(files) <= 1:
            for i in range(len(files)):
                rows[i] = row(i)
                bar.update()
        else:
            # Threads are enough: the work happens in the kernels, which are separate processes.
            with ThreadPoolExecutor(max_workers=min(jobs, len(files)), thread_name_prefix="grade") as pool:
                futures = {pool.submit(row, i): i for i in range(len(files))}
                for future in as_completed(futures):
                    rows[futures[future]] = future.result()  # graded() never raises
                    bar.update()
    return rows


def _read_all(files: list[tuple[str, Path]]) -> list[bytes | NotANotebook]:
    """Each file's bytes, or why it cannot be read; two names of one file (a hard link) are both refused.

    A hard link, like a symbolic link, can give one student another's file: which
    name is the owner's cannot be told, so neither is graded.
    """
    read: list[bytes | NotANotebook] = []
    names_of: dict[tuple[int, int], list[int]] = {}
    for i, (_, path) in enumerate(files):
        try:
            raw, identity = read_submission(path)
        except NotANotebook as exc:
            read.append(exc)
            continue
        read.append(raw)
        names_of.setdefault(identity, []).append(i)
    for same in names_of.values():
        for i in same if len(same) > 1 else []:
            others = ", ".join(files[j][0] for j in same if j != i)
            read[i] = NotANotebook(f"the same file as {others} (a hard link): not graded")
    return read


def graded(
    path: Path,
    student: str,
    course: Course | Path = COURSE,
    runner: Runner | None = None,
    submission: bytes | NotANotebook | None = None,
) -> dict:
    """One gradebook row for one file (its bytes ``submission``, if read already). Never raises.

    Whatever the file holds becomes a status. With a ``runner`` the notebook is
    re-run and graded from that run; then the course is checked again, and a
    change is named in the status of every row that saw it.
    """
    path = Path(path)
    course = as_course(course)
    row = {
        "student": student,
        "lab": None,
        "status": "",
        "executed_in_order": "",
        "error_cells": "",
        "unrun_cells": "",
        "checks_passed": None,
        "checks_total": None,
        "graded_from": "",
        "needs_a_look": "",
        "figures": {},
        "other_figures": {},
        "path": str(path),
    }
    try:
        if hidden := _hidden_part(student):
            raise NotANotebook(
                f"hidden ({hidden}: a Jupyter checkpoint or a hidden file): not graded; "
                "rename it if it is the submission"
            )
        if submission is None:
            submission = _read_all([(student, path)])[0]
        if isinstance(submission, NotANotebook):
            raise submission
        notebook = notebook_from_bytes(submission)
        evidence = lab_evidence(notebook, path.name)
        lab = next(iter(evidence.values()), None)
        execution = None
        if runner is not None:
            reference = course.references.get(lab) if lab else None
            reference = reference if isinstance(reference, Reference) else None
            execution = executed_copy(notebook, runner, reference)
            notebook = execution.notebook
            changed = course.changed() + [f"the kernels' copy of {name}" for name in course.changed(runner.lab_files)]
            if changed:
                execution.problems.append(f"THE COURSE CHANGED while this notebook ran ({', '.join(changed)})")
        row.update(notebook_grades(notebook, path.name, course, lab=lab, execution=execution))
        if len(set(evidence.values())) > 1:
            said = ", ".join(f"{what} {number}" for what, number in evidence.items())
            note = f"which lab is unclear ({said}): graded as lab {lab}"
            row["status"] = note if row["status"] == "ok" else f"{note}; {row['status']}"
    except NotANotebook as exc:
        row["status"] = str(exc)
    except Exception as exc:  # a shape of file nobody foresaw must not stop the other rows
        row["status"] = f"could not be graded ({type(exc).__name__}: {exc})"
    return row


def _hidden_part(student: str) -> str | None:
    """The hidden part (``.ipynb_checkpoints``, ``.lab1.ipynb``) of a file's name inside the folder named, if any."""
    return next((part for part in student.split("/") if part.startswith(".") and part not in (".", "..")), None)


def _results_problem(notebook: dict, number: int | None) -> str | None:
    """Why results cell ``number`` holds no recorded results, or None if it does."""
    if number is None:
        return "no results cell"
    cell = notebook["cells"][number - 1]
    if recorded_in(cell) is not None:
        return None
    errors = [output.get("ename") or "error" for output in outputs_of(cell) if output.get("output_type") == "error"]
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
    notebook: dict,
    filename: str,
    course: Course | Path = COURSE,
    lab: int | None = None,
    execution: Execution | None = None,
) -> dict:
    """The gradebook fields of one notebook of ``course``, saved as submitted or re-run (``execution``).

    The status is "ok" when the notebook is of a known lab, its check and
    results cells are the reference's, and it recorded its results; otherwise
    it lists what is wrong. A check counts as passed only from the output of
    its own check cell, and only if that cell holds the reference's code. The
    figures are the ones the lab's reference records, read from the results
    cell; anything else the notebook records is named in the status, never a
    column. How the notebook ran (order, errors, cells never run) has its own columns.

    Saved outputs are taken as they are (a notebook is a JSON file anyone can
    edit): ``graded_from`` says so. After a re-run, a check counts only if the
    kernel's own reply says its cell ran without error, and the cell sent no
    error on the way; a kernel that died or ran out of time at or before the
    check cell fails it, as in nbgrader.
    """
    problems = list(execution.problems) if execution else []
    lab = lab if lab is not None else lab_of(notebook, filename)
    code = code_cells(notebook)
    reference = as_course(course).references[lab] if lab is not None else None
    if lab is None:
        problems.insert(0, "unknown lab")
    elif isinstance(reference, str):
        problems.append(reference)
    reference = reference if isinstance(reference, Reference) else None

    located = locate(notebook, reference) if reference else []
    trusted = {}  # cell number -> whether it holds the reference's code (and, as saved, is the reference's cell)
    for place in located:
        problem = place.problem(notebook)
        moved = place.moved(notebook)
        problems += [problem] if problem else []
        problems += moved
        if place.number is not None:
            # After a re-run the verdict is the kernel's, wherever the cell stands; as saved, a moved cell is suspect.
            trusted[place.number] = problem is None and not (moved and execution is None)
    order = [grade_id for grade_id in grade_ids(notebook) if reference and grade_id in reference.grade_ids]
    if reference and len(set(order)) == len(order) and order != [g for g in reference.grade_ids if g in order]:
        problems.append(f"cells out of the reference's order ({', '.join(order)})")
        if execution is None:
            trusted = dict.fromkeys(trusted, False)
    if reference:
        results = next((place.number for place in located if place.reference.kind == "results"), None)
    else:  # no reference to go by: the last cell calling record_results, as the labs are written
        results = max((number for number, cell in code if "record_results(" in cell["source"]), default=None)

    ran = any(cell.get("execution_count") is not None or outputs_of(cell) for _, cell in code)
    if not ran:
        problems.append("not executed")
    elif missing := _results_problem(notebook, results):
        problems.append(missing)

    recorded = (recorded_in(notebook["cells"][results - 1]) if results else None) or {}
    recorded_figures = recorded.get("figures") or {}
    elsewhere = [number for number, cell in code if number != results and recorded_in(cell)]
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
        place.number is not None
        and trusted[place.number]
        and check_passed(notebook["cells"][place.number - 1])
        and (execution is None or execution.check_ran_ok(place.number))
        for place in checks
    )
    look = list(execution.needs_a_look) if execution else []
    if reference:
        look += solution_copied(notebook, reference)
    if execution is None:
        graded_from = "saved outputs (not verified)"
    else:
        graded_from = "re-run in the sandbox" if execution.sandboxed else "re-run WITHOUT the sandbox"
    return {
        "lab": lab,
        "status": "; ".join(problems) or "ok",
        "executed_in_order": "yes" if executed_in_order(notebook) else "no",
        "error_cells": ", ".join(f"{number} {name}" for number, name in error_cells(notebook).items()),
        "unrun_cells": _number_ranges(unrun_cells(notebook)),
        "checks_passed": passed,
        "checks_total": len(checks),
        "graded_from": graded_from,
        "needs_a_look": "; ".join(look),
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


def notebook_files(paths: list[Path]) -> list[tuple[str, Path]]:
    """(student, file) for each file named and each .ipynb file under each folder named (any case: .IPYNB too).

    The student is the file name, or the path inside the folder named, so
    per-student subfolders (``alice/01_spam_tutorial.ipynb``) stay apart.
    Hidden files and folders (``.lab1.ipynb``, ``.ipynb_checkpoints``) are
    listed too, to get a row that says they were not graded (``graded``);
    only ``.git`` and virtual environments are passed over. Symbolic links
    inside a folder are listed (their row says they were not followed), never
    followed: ``alice/lab3.ipynb -> ../bob/lab3.ipynb`` must not give Alice Bob's grade.
    """
    found: dict[str, tuple[str, Path]] = {}
    for path in paths:
        if not path.is_dir():
            found.setdefault(_identity(path), (path.name, path))
            continue
        for folder, subfolders, files in os.walk(path):  # never into a linked folder (followlinks=False)
            visible = [name for name in subfolders if name not in SKIPPED_FOLDERS]
            linked = [name for name in visible if os.path.islink(os.path.join(folder, name))]
            subfolders[:] = sorted(name for name in visible if name not in linked)
            notebooks = [name for name in files if name.lower().endswith(".ipynb")]
            for name in sorted(notebooks + linked):
                file = Path(folder) / name
                found.setdefault(_identity(file), (file.relative_to(path).as_posix(), file))
    return sorted(found.values(), key=lambda pair: pair[0].lower())


#: Folders no submission lives in: version control and virtual environments (their notebooks are not students').
SKIPPED_FOLDERS = {".git", ".venv", "venv", "__pycache__", "node_modules"}


def _identity(path: Path) -> str:
    """One key per file named twice (``grade a.ipynb .``); a link is its own entry, not its target's."""
    return os.path.join(os.path.realpath(path.parent), path.name)
