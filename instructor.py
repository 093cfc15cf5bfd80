"""Instructor tools for Spam Labs: student copies of the labs, and a gradebook of submitted notebooks.

    python instructor.py release OUTDIR         student copies: solutions replaced, outputs cleared
    python instructor.py grade PATH... [--execute]   a gradebook (gradebook.csv and a table on screen)

Every function takes the course folder (the reference labs with utils.py and
exercise_checks.py beside them) as an argument and returns its results; the
command line only parses, validates and prints. See INSTRUCTORS.md.
"""

from __future__ import annotations

import argparse
import copy
import csv
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
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
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"

#: What a student sees instead of a solution. It raises, so "Run All" stops at
#: the exercise instead of running on without an answer.
PLACEHOLDER = (
    "# YOUR CODE HERE",
    'raise NotImplementedError("Write your solution here, then run this cell again.")',
)

#: Seconds one notebook may run under ``grade --execute``, all cells together.
GRADE_TIMEOUT = 600

#: ``grade`` shows a progress bar for more files than this.
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

_LAB_TITLE = re.compile(r"^#\s+Lab\s+(\d+)\s*:", re.MULTILINE)


class NotANotebook(ValueError):
    """A submitted file that cannot be graded; the message is its gradebook status."""


class ReleaseError(ValueError):
    """The labs cannot be released as they are; nothing was written."""


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


def source_without_solutions(source: str, where: str = "cell") -> tuple[str, int]:
    """``source`` with each marked solution replaced by the placeholder, and how many there were.

    The placeholder takes the indentation of its BEGIN marker, so a solution
    inside a function body leaves valid Python. Unbalanced markers raise
    ValueError naming ``where``: guessing where a solution ends could leak it.
    """
    lines, solutions, inside = [], 0, False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith(BEGIN_SOLUTION):
            if inside:
                raise ValueError(f"{where}: {BEGIN_SOLUTION} inside another solution")
            inside, solutions = True, solutions + 1
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + placeholder for placeholder in PLACEHOLDER]
        elif marker.startswith(END_SOLUTION):
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
    timing is cleared, so nothing of the reference run leaks. The lab and the
    number of checks are stamped into the metadata, so ``grade`` knows the
    notebook however it is renamed and counts a check that never ran as failed.
    """
    notebook = copy.deepcopy(notebook)
    passed, failed = check_counts(notebook)
    exercises = 0
    for number, cell in enumerate(notebook["cells"], start=1):
        for key in ("execution", "ExecuteTime"):  # timings written by nbclient / JupyterLab
            cell.get("metadata", {}).pop(key, None)
        if cell["cell_type"] != "code":
            continue
        cell["source"], solutions = source_without_solutions(_text(cell["source"]), f"cell {number}")
        exercises += solutions > 0
        cell["outputs"], cell["execution_count"] = [], None
    notebook["metadata"]["spam_labs"] = {"lab": lab, "checks": (passed + failed) or exercises}
    return notebook, exercises


# --------------------------------------------------------------------------
# 3. Grade: a gradebook of submissions
# --------------------------------------------------------------------------


def grade(
    files: list[tuple[str, Path]],
    course: Path = COURSE,
    execute: bool = False,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    progress: bool = False,
) -> list[dict]:
    """One gradebook row per (student, file), in the order given; a file that cannot be graded gets a status."""
    from tqdm import tqdm

    files = tqdm(files, desc="grading", unit="notebook", file=sys.stderr, disable=not progress)
    return [graded(path, student, course, execute, timeout, kernel) for student, path in files]


def graded(
    path: Path,
    student: str,
    course: Path = COURSE,
    execute: bool = False,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
) -> dict:
    """One gradebook row for one file. Never raises: whatever the file holds becomes a status."""
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
        "path": str(path),
    }
    try:
        notebook = read_notebook(path)
        problems = []
        if execute:
            notebook, problem = executed_copy(notebook, course, timeout, kernel)
            problems += [problem] if problem else []
        row.update(notebook_grades(notebook, path.name, course, problems))
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
        raw = path.read_bytes()
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


def recorded_results(notebook: dict) -> dict | None:
    """The last ``{"lab": N, "figures": {...}}`` that ``record_results`` left in the outputs, or None."""
    found = None
    for _, cell in _code_cells(notebook):
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


def lab_of(notebook: dict, filename: str) -> int | None:
    """Which lab a notebook is, or None if nothing names one of the three.

    Evidence in order of strength: the lab its results cell recorded, the lab
    ``release`` stamped into it, its "# Lab N:" title, its file name (01_...,
    or the name without the prefix). Students rename files, so that comes last.
    """
    results = recorded_results(notebook) or {}
    stamp = notebook["metadata"].get("spam_labs")
    candidates = [results.get("lab"), stamp.get("lab") if isinstance(stamp, dict) else None]
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


def check_counts(notebook: dict) -> tuple[int, int]:
    """(passed, failed): how many CHECK PASSED / CHECK FAILED lines the outputs show."""
    passed = failed = 0
    for _, cell in _code_cells(notebook):
        for output in _outputs(cell):
            data = output.get("data")
            text = _text(output.get("text")) or _text(data.get("text/plain") if isinstance(data, dict) else None)
            for line in text.splitlines():
                passed += line.strip().startswith(CHECK_PASSED)
                failed += line.strip().startswith(CHECK_FAILED)
    return passed, failed


def results_problem(notebook: dict) -> str | None:
    """Why the notebook holds no recorded results (naming the results cell), or None if it does."""
    if recorded_results(notebook) is not None:
        return None
    cells = [(number, cell) for number, cell in _code_cells(notebook) if "record_results(" in cell["source"]]
    if not cells:
        return "no results cell"
    number, cell = cells[-1]
    errors = [output.get("ename") or "error" for output in _outputs(cell) if output.get("output_type") == "error"]
    if errors:
        return f"results cell {number} failed ({errors[0]})"
    if cell.get("execution_count") is None:
        return f"results cell {number} not run"
    return f"results cell {number} recorded nothing"


def notebook_grades(notebook: dict, filename: str, course: Path = COURSE, problems: list[str] = ()) -> dict:
    """The gradebook fields of one notebook of ``course``; ``problems`` are ones found before (e.g. a timeout).

    The status is "ok" when the notebook is of a known lab and recorded its
    results; otherwise it lists what is wrong. How the notebook ran (order,
    errors, cells never run) has its own columns.
    """
    problems = list(problems)
    lab = lab_of(notebook, filename)
    if lab is None:
        problems.insert(0, "unknown lab")
    ran = any(cell.get("execution_count") is not None or _outputs(cell) for _, cell in _code_cells(notebook))
    missing_results = results_problem(notebook)
    if not ran:
        problems.append("not executed")
    elif missing_results:
        problems.append(missing_results)
    passed, failed = check_counts(notebook)
    stamp = notebook["metadata"].get("spam_labs")
    expected = stamp.get("checks") if isinstance(stamp, dict) else None
    if type(expected) is not int and lab is not None:
        expected = reference_checks(course / LAB_NOTEBOOKS[lab])
    return {
        "lab": lab,
        "status": "; ".join(problems) or "ok",
        "executed_in_order": "yes" if executed_in_order(notebook) else "no",
        "error_cells": ", ".join(f"{number} {name}" for number, name in error_cells(notebook).items()),
        "unrun_cells": _number_ranges(unrun_cells(notebook)),
        "checks_passed": passed,
        "checks_total": max(passed + failed, expected if type(expected) is int else 0),
        "figures": (recorded_results(notebook) or {}).get("figures", {}),
    }


@functools.cache
def reference_checks(path: Path) -> int:
    """How many checks the executed reference notebook at ``path`` reports (0 if it is not there).

    The expected count for a copy that ``release`` did not stamp, so that a
    check that never ran counts as failed rather than not at all.
    """
    try:
        return sum(check_counts(read_notebook(path)))
    except NotANotebook:
        return 0


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
    notebook: dict, course: Path = COURSE, timeout: float = GRADE_TIMEOUT, kernel: str | None = None
) -> tuple[dict, str | None]:
    """``notebook`` run again from scratch in a new kernel, and why the run stopped early (or None).

    The run starts from a copy with every output cleared, and the student's
    file is never written. The kernel works in an empty temporary folder with
    the course folder on PYTHONPATH, so ``import utils`` works and the notebook
    cannot change files there. A cell's error does not stop the run (as in
    nbgrader), so one broken cell does not hide the rest. ``timeout`` bounds
    the whole notebook: each cell may use what the cells before it left.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    run = nbformat.from_dict(notebook)  # new containers: the caller's dict is left as it was
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
            return run, f"timed out after {timeout:g} s" + (f" in cell {started[-1]}" if started else "")
        except DeadKernelError:
            return run, "kernel died"
        except Exception as exc:  # no such kernel, kernel failed to start, ...
            return run, f"could not run ({type(exc).__name__}: {exc})"
    return run, None


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


def write_gradebook(rows: list[dict], out: Path) -> None:
    """Write the rows as CSV: the fixed columns, every figure any notebook recorded, then the file's path."""
    figures = list(dict.fromkeys(name for row in rows for name in row["figures"]))
    columns = GRADEBOOK_COLUMNS + [name for name in figures if name not in GRADEBOOK_COLUMNS + ["path"]] + ["path"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            values = {**row["figures"], **{k: v for k, v in row.items() if k != "figures"}}
            writer.writerow([_shown(values.get(column)) for column in columns])


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
# 4. Command line
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


def _cmd_grade(args) -> int:
    """Grade the notebooks named. Only usage errors (bad paths or options) give a non-zero exit status."""
    paths, out = [Path(p) for p in args.paths], Path(args.out)
    errors = [f"no such file or folder: {p}" for p in paths if not p.exists()]
    if out.is_dir() or not out.resolve().parent.is_dir():
        errors.append(f"--out {out}: not a file in an existing folder")
    if args.timeout <= 0:
        errors.append("--timeout must be a positive number of seconds")
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
    rows = grade(
        files, Path(args.course), args.execute, args.timeout, args.kernel, progress=len(files) > PROGRESS_BAR_ABOVE
    )
    write_gradebook(rows, out)
    print(gradebook_text(rows))
    ok = sum(row["status"] == "ok" for row in rows)
    how = "re-run in fresh kernels" if args.execute else "read as submitted (not re-run)"
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
        help="re-run each notebook in a fresh kernel and grade that run (the files are not changed)",
    )
    grade_cmd.add_argument(
        "--timeout",
        type=float,
        default=GRADE_TIMEOUT,
        help="with --execute, seconds each whole notebook may run (default %(default)g)",
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
