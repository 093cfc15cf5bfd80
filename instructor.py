"""Instructor tools for Spam Labs: student copies of the labs, and a gradebook of submitted notebooks.

    python instructor.py release OUTDIR         student copies: solutions replaced, outputs cleared
    python instructor.py grade PATH... [--execute [--jobs N]]   a gradebook (gradebook.csv and a table)

This file is the command line: it only parses, validates and prints. The work
is done by the package ``instructor_tools`` beside it, one module per job; every
function there takes the course folder (the reference labs with utils.py and
exercise_checks.py beside them) as an argument and returns its results. See INSTRUCTORS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from instructor_tools.course import Course
from instructor_tools.execute import GRADE_TIMEOUT, grading_run
from instructor_tools.gradebook import gradebook_text, printable, write_gradebook
from instructor_tools.grading import grade, notebook_files
from instructor_tools.notebooks import BEGIN_SOLUTION, COURSE, LAB_NOTEBOOKS
from instructor_tools.release import ReleaseError, release
from instructor_tools.sandbox import NO_SANDBOX_WARNING, SandboxUnavailable

#: ``grade`` shows a progress bar for more files than this (always with --execute and more than one file).
PROGRESS_BAR_ABOVE = 5


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
    """Grade the notebooks named. Exit status 2 for a usage error (bad paths or options), 1 if the course changed."""
    paths, out = [Path(p) for p in args.paths], Path(args.out)
    errors = [f"no such file or folder: {p}" for p in paths if not p.exists()]
    if out.is_dir() or not out.resolve().parent.is_dir():
        errors.append(f"--out {out}: not a file in an existing folder")
    if args.timeout <= 0:
        errors.append("--timeout must be a positive number of seconds")
    if args.jobs is not None and args.jobs < 1:
        errors.append("--jobs must be 1 or more")
    if args.no_sandbox and not args.execute:
        errors.append("--no-sandbox is an option of --execute")
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
        print("\n".join(f"error: {printable(e)}" for e in errors), file=sys.stderr)
        return 2

    started = time.monotonic()
    course = Course.read(Path(args.course))  # read and hashed once, before anything runs
    jobs = args.jobs or cpu_cores()
    progress = len(files) > PROGRESS_BAR_ABOVE or (args.execute and len(files) > 1)
    if args.execute:
        if args.no_sandbox:
            print(NO_SANDBOX_WARNING + "\n", file=sys.stderr)
        private = (*(path for _, path in files), out.resolve())
        try:
            with grading_run(course, args.timeout, args.kernel, not args.no_sandbox, private) as run:
                if run.data is None:
                    print(
                        f"WARNING: no data cache in {printable(str(course.folder / 'data'))}: the labs will fail "
                        "to load their data (run `python utils.py fetch` first; the sandbox has no network).\n",
                        file=sys.stderr,
                    )
                rows = grade(files, course, run, progress=progress, jobs=jobs)
                changed = [f"the kernels' copy of {name}" for name in course.changed(run.lab_files)]
                write_gradebook(rows, out)  # before the temporary folders are removed, however long that takes
        except SandboxUnavailable as exc:
            print(f"error: {printable(str(exc))}", file=sys.stderr)
            return 2
    else:
        rows, changed = grade(files, course, progress=progress), []
        write_gradebook(rows, out)
    print(gradebook_text(rows))
    ok = sum(row["status"] == "ok" for row in rows)
    sandbox = "without the sandbox" if args.no_sandbox else "each in its own sandbox"
    how = (
        f"re-run in fresh kernels {sandbox}, {min(jobs, len(files))} at a time,"
        if args.execute
        else "read as submitted (not re-run: saved outputs, not verified)"
    )
    print(
        f"\n{len(rows)} file(s) {how} in {time.monotonic() - started:.1f} s: "
        f"{ok} ok, {len(rows) - ok} with a problem. Gradebook: {printable(str(out.resolve()))}"
    )
    if changed := course.changed() + changed:
        print(
            f"\nWARNING: THE COURSE CHANGED WHILE GRADING: {', '.join(changed)} in {printable(str(course.folder))} "
            "differ from what was read at the start. The gradebook was graded against the files as they were at "
            "the start, but kernels may have imported changed modules: restore the course (git status, git diff) "
            "and grade again. The rows that saw the change say so in their status.",
            file=sys.stderr,
        )
        return 1
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
        help="re-run each notebook in a fresh kernel, in a bubblewrap sandbox, and grade that run (check and "
        "results cells get the reference's code first; the files are not changed)",
    )
    grade_cmd.add_argument(
        "--no-sandbox",
        action="store_true",
        help="with --execute, run the notebooks without the sandbox: their code runs with your rights, unconfined "
        "(prints what that gives up)",
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
