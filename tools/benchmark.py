"""Time each lab against its floor, in one run, the way CI runs the labs (issue 21, part 1).

The floor is what no version of a lab can avoid: starting a fresh kernel and importing the stack
(pandas, scikit-learn, snorkel, torch, spaCy, nltk, textblob, TensorFlow, utils). Each lab's
full run is timed next to it, interleaved and repeated, so that a slow spell of a shared machine
hits the floor and the labs alike; the targets are ratios to that floor.

Runners (``--runner``):
- ``pytest`` (default): ``python -m pytest NB`` with the project's pytest settings, i.e. strict
  nbval in the kernel of this Python, exactly as ``make test`` runs a notebook in CI. It also
  proves the timed run gave the committed outputs (a failed cell is reported).
- ``nbclient``: nbclient executes the notebook in the named Jupyter kernel (default
  ``spam-labs``), as a student's "Run all" does; no output comparison. The lead's baseline
  figures were taken this way. ``both`` times both, interleaved.

Wall time is the run's elapsed time; CPU time is user+sys of the run's whole process tree (the
pytest or nbclient process, its kernel and the kernel's reaped children, such as Dask's
workers), from ``getrusage(RUSAGE_CHILDREN)``. "others" is the CPU the rest of the machine used
meanwhile (from /proc/stat), in cores: a number above ~0.3 means the timings are noisy.

    python tools/benchmark.py                    # 3 rounds, all labs, pytest runner
    python tools/benchmark.py --labs 2 --repeat 5 --cells      # lab 2 only, per-cell times
    python tools/benchmark.py --runner nbclient --kernel spam-labs

Run it with the venv's Python (``.venv/bin/python`` or /work/main/.venv/bin/python) from any
folder; it times the notebooks of the checkout it lives in. Exit status 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABS = {
    1: "01_spam_tutorial.ipynb",
    2: "02_spam_data_augmentation_tutorial.ipynb",
    3: "03_spam_data_slicing_tutorial.ipynb",
}
# Issue 21: a lab's full run as a multiple of the floor measured in the same run.
TARGETS = {1: 2.0, 2: 3.0, 3: 1.5}
# The floor notebook's one cell: the stack every lab imports, and utils.
FLOOR_IMPORTS = ("pandas", "sklearn", "snorkel", "torch", "spacy", "nltk", "textblob", "tensorflow", "utils")
# NBVAL_IGNORE_OUTPUT: a warning a library prints on import is not the floor's business (the marker
# changes what nbval compares, not what runs). The log level is the one lab 2 sets before TensorFlow.
FLOOR_SOURCE = "\n".join(
    ["# NBVAL_IGNORE_OUTPUT", "import os", 'os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"']
    + [f"import {name}" for name in FLOOR_IMPORTS]
)

# Runs in a child process, so that its getrusage covers nbclient and the kernel it starts.
# argv: notebook path (or "" for the floor), kernel name, folder the kernel starts in, out file.
_NBCLIENT_CHILD = """
import json, sys
from datetime import datetime
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
path, kernel, cwd, out, floor = sys.argv[1:6]
if path:
    nb = nbformat.read(path, as_version=4)
else:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(floor)])
result = {"ok": True, "error": "", "cells": {}}
try:
    NotebookClient(nb, kernel_name=kernel, timeout=3600, resources={"metadata": {"path": cwd}}).execute()
except CellExecutionError as error:
    result.update(ok=False, error=str(error).strip().splitlines()[-1][:300])
for index, cell in enumerate(nb.cells):
    stamps = cell.get("metadata", {}).get("execution", {})
    if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
        start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00"))
                      for k in ("iopub.execute_input", "shell.execute_reply"))
        result["cells"][index] = (end - start).total_seconds()
with open(out, "w") as f:
    json.dump(result, f)
"""


@dataclass
class Run:
    """One timed execution of one notebook (or the floor) by one runner."""

    wall: float
    cpu: float
    others: float  # cores the rest of the machine kept busy meanwhile
    ok: bool
    error: str = ""
    cells: dict[int, float] = field(default_factory=dict)  # notebook cell index -> seconds


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, subprocess.CompletedProcess]:
    """Run ``cmd`` from the project folder; return wall, CPU of its process tree, others' cores, result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _machine_busy_seconds()
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    others = max(0.0, (_machine_busy_seconds() - busy - cpu) / wall)
    return wall, cpu, others, proc


def _code_cell_indexes(notebook: Path) -> list[int]:
    """Notebook cell index of each code cell, in order (nbval's "Cell N" counts code cells only)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]


def run_pytest(notebook: Path | None, tmp: Path) -> Run:
    """``python -m pytest NB`` with the project's settings (strict nbval), as ``make test`` runs it."""
    env = dict(os.environ)
    if notebook is None:  # the floor: a one-cell notebook outside the project, which imports utils
        notebook = tmp / "floor.ipynb"
        cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": FLOOR_SOURCE}
        kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb = {"cells": [cell], "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
        notebook.write_text(json.dumps(nb), encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    report = tmp / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
    cmd += [f"--junitxml={report}", str(notebook)]
    wall, cpu, others, proc = _timed(cmd, env)
    cells, failed = {}, []
    if report.exists():
        indexes = _code_cell_indexes(notebook)
        for case in ET.parse(report).getroot().iter("testcase"):
            number = int(case.get("name", "Cell -1").rsplit(" ", 1)[-1])
            if 0 <= number < len(indexes):
                cells[indexes[number]] = float(case.get("time", 0))
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('name')} (cell [{indexes[number]}])" if 0 <= number < len(indexes) else "?")
        report.unlink()
    ok = proc.returncode == 0
    error = "" if ok else (f"nbval {', '.join(failed[:5])}" if failed else proc.stdout.strip()[-300:])
    return Run(wall, cpu, others, ok, error, cells)


def run_nbclient(notebook: Path | None, tmp: Path, kernel: str) -> Run:
    """nbclient executes the notebook in ``kernel``, started in the project folder (a student's Run all)."""
    out = tmp / "nbclient.json"
    cmd = [sys.executable, "-c", _NBCLIENT_CHILD, str(notebook or ""), kernel, str(ROOT), str(out), FLOOR_SOURCE]
    wall, cpu, others, proc = _timed(cmd, dict(os.environ))
    if proc.returncode != 0 or not out.exists():
        return Run(wall, cpu, others, False, proc.stderr.strip()[-300:])
    result = json.loads(out.read_text())
    out.unlink()
    return Run(wall, cpu, others, result["ok"], result["error"], {int(k): v for k, v in result["cells"].items()})


def _first_line(notebook: Path, index: int) -> str:
    source = json.loads(notebook.read_text(encoding="utf-8"))["cells"][index]["source"]
    lines = [ln for ln in "".join(source).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return (lines[0] if lines else "").strip()[:70]


def _others(runs: list[Run]) -> str:
    """Median cores the rest of the machine kept busy during these runs."""
    return f"{statistics.median(r.others for r in runs):6.2f}"


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f}" + (f" [{min(values):.1f}-{max(values):.1f}]" if len(values) > 1 else "")


def report(runner: str, runs: dict[str, list[Run]], labs: list[int], cells: bool, min_cell: float) -> bool:
    """Print the table of one runner; return whether every run succeeded."""
    floor = runs["floor"]
    floor_wall = statistics.median(r.wall for r in floor)
    floor_cpu = statistics.median(r.cpu for r in floor)
    print(f"\n{runner}: seconds, median [min-max] of {len(floor)} round(s); ratio = median lab / median floor")
    print(f"{'':8} {'wall':>18} {'cpu':>18} {'others':>6}  {'wall/floor':>10} {'cpu/floor':>9}  {'target':>7}  verdict")
    print(f"{'floor':8} {_spread([r.wall for r in floor]):>18} {_spread([r.cpu for r in floor]):>18} {_others(floor)}")
    all_ok = all(r.ok for r in floor)
    for lab in labs:
        lab_runs = runs[f"lab {lab}"]
        wall = statistics.median(r.wall for r in lab_runs)
        cpu = statistics.median(r.cpu for r in lab_runs)
        ratio = wall / floor_wall
        verdict = "meets" if ratio <= TARGETS[lab] else "over"
        failed = [r for r in lab_runs if not r.ok]
        if failed:
            verdict += f"; {len(failed)} run(s) FAILED: {failed[0].error}"
            all_ok = False
        print(
            f"{f'lab {lab}':8} {_spread([r.wall for r in lab_runs]):>18} {_spread([r.cpu for r in lab_runs]):>18}"
            f" {_others(lab_runs)}"
            f"  {ratio:9.2f}x {cpu / floor_cpu:8.2f}x  <={TARGETS[lab]:.1f}x  {verdict}"
        )
    if not all(r.ok for r in floor):
        print(f"floor FAILED: {next(r.error for r in floor if not r.ok)}")
    if cells:
        for lab in labs:
            notebook = ROOT / LABS[lab]
            per_cell: dict[int, list[float]] = {}
            for run in runs[f"lab {lab}"]:
                for index, seconds in run.cells.items():
                    per_cell.setdefault(index, []).append(seconds)
            medians = {i: statistics.median(v) for i, v in sorted(per_cell.items())}
            total = sum(medians.values())
            print(f"\n{runner}, lab {lab}: seconds per cell (median), {min_cell} s or more; [index in the notebook]")
            lab_wall = statistics.median(r.wall for r in runs[f"lab {lab}"])
            print(f"  (cells add up to {total:.1f} s of the lab's {lab_wall:.1f} s; the rest: start-up, shut-down)")
            shown = 0.0
            for index, seconds in medians.items():
                if seconds >= min_cell:
                    shown += seconds
                    print(f"  [{index:3}] {seconds:6.2f}  {_first_line(notebook, index)}")
            print(f"  other cells {total - shown:6.2f}")
    return all_ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", choices=("pytest", "nbclient", "both"), default="pytest")
    parser.add_argument("--labs", type=int, nargs="+", choices=sorted(LABS), default=sorted(LABS))
    parser.add_argument("--repeat", type=int, default=3, help="rounds of floor + labs (default: 3)")
    parser.add_argument("--kernel", default="spam-labs", help="Jupyter kernel for --runner nbclient")
    parser.add_argument("--cells", action="store_true", help="also print each cell's time (for profiling)")
    parser.add_argument("--min-cell", type=float, default=0.5, help="with --cells: list cells this slow or slower")
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = parser.parse_args(argv)
    runners = ["pytest", "nbclient"] if args.runner == "both" else [args.runner]

    fetch = subprocess.run([sys.executable, "utils.py", "fetch"], cwd=ROOT, capture_output=True, text=True)
    if fetch.returncode != 0:
        print(f"`python utils.py fetch` failed, so the labs cannot run:\n{fetch.stdout}{fetch.stderr}")
        return 1
    names = ["floor", *(f"lab {lab}" for lab in args.labs)]
    print(
        f"Spam Labs benchmark of {ROOT} ({_git_head()}), runner(s) {', '.join(runners)}, {args.repeat} round(s);"
        f" Python {platform.python_version()} at {sys.executable}; {os.cpu_count()} cores;"
        f" load average {_load()}"
    )
    print(f"floor: a fresh kernel that imports {', '.join(FLOOR_IMPORTS)}")
    runs = {runner: {name: [] for name in names} for runner in runners}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            # Each round starts at a different place in the order, so no notebook always goes first.
            order = [(runner, name) for name in names for runner in runners]
            shift = round_ % len(order)
            for runner, name in order[shift:] + order[:shift]:
                notebook = None if name == "floor" else ROOT / LABS[int(name.split()[1])]
                if runner == "pytest":
                    run = run_pytest(notebook, Path(tmp))
                else:
                    run = run_nbclient(notebook, Path(tmp), args.kernel)
                runs[runner][name].append(run)
                status = "" if run.ok else f"  FAILED: {run.error}"
                print(
                    f"round {round_ + 1} {runner:8} {name:6} wall {run.wall:6.1f} s  cpu {run.cpu:6.1f} s"
                    f"  others {run.others:4.2f} cores{status}",
                    flush=True,
                )
    ok = all([report(runner, runs[runner], args.labs, args.cells, args.min_cell) for runner in runners])
    print(f"\nload average at the end: {_load()}")
    if args.json:
        data = {r: {n: [vars(run) for run in rs] for n, rs in by_name.items()} for r, by_name in runs.items()}
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return 0 if ok else 1


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _git_head() -> str:
    proc = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return proc.stdout.strip() or "not a git checkout"


if __name__ == "__main__":
    sys.exit(main())
