"""Does labelling scale out? Lab 1's labeling functions, PandasLFApplier against DaskLFApplier (issue 21, part 2).

The tool labels N *new* comments with lab 1's LFs: the train comments repeated, each copy with a suffix of
its own (" (17)"), so that no comment is in the lab's table of spaCy tags or in a preprocessor's memo: every
comment costs what new data costs. It times Snorkel's ``PandasLFApplier`` (one process, one thread) and
``DaskLFApplier`` on a ``dask.distributed`` ``LocalCluster`` of 1, 2, 4... worker processes
(``processes=True``, one thread each), or on the workers of a scheduler you name, and prints:

- wall time of the apply, and the speed-up over Pandas (workers already started and warm);
- the start cost of a new worker: from receiving the pickled LFs to having labelled its first comment
  (unpickling them imports the modules they use: snorkel, utils...; the first comment loads what they
  load on first use, such as the spaCy model), measured inside each worker, the largest of a cluster's
  workers shown;
- the elapsed time from creating a new cluster to the label matrix (start included);
- whether every label matrix equals the Pandas one (exit status 1 if one does not).

The LFs are not copied here: in one fresh namespace, the tool executes the top-level imports of
01_spam_tutorial.ipynb, then, in order, its code cells that carry the cell tag ``lfs`` (the cells that
define the LFs, the preprocessors and their resources), and takes the list ``lfs`` they define. Their
printed output is hidden.

Every worker needs what the LFs need: the packages of requirements.txt, the spaCy model, and ``utils.py``
importable, because cloudpickle sends the functions defined in the notebook by value but the modules they
use (``utils``, ``re``, ...) by reference, as an import to be done on the worker. So does the scheduler:
it unpickles the task graph, LFs included (checked with Dask 2026.8: a scheduler without ``utils`` fails
with "Error during deserialization of the task graph"). The local cluster's scheduler runs in this
process and its workers start with this process's ``sys.path``, which has the project folder. On a real
cluster, start the scheduler and every worker from the project folder (a copy of it on each machine) with
the course venv, for example ``cd spam-labs && python -m distributed.cli.dask_scheduler`` and
``cd spam-labs && python -m distributed.cli.dask_worker tcp://scheduler:8786`` (``python -m`` puts the
current folder on the path; the ``dask scheduler`` and ``dask worker`` commands do not, so with them set
``PYTHONPATH=$PWD``). The tool checks the scheduler and each worker first and stops with a clear message
when one cannot import what the LFs need.

Timings on a shared machine are upper bounds: other processes only slow a run down. Each figure is
printed with the 1-minute load average at its end (/proc/loadavg; it counts this tool's own processes
too) and, for the local runs, with "others", the CPU cores the rest of the machine used during the apply.

    .venv/bin/python tools/scaleout.py                        # N = 4 x train; 1, 2, 4... workers up to the cores
    .venv/bin/python tools/scaleout.py --n 20000 --workers 1 2 4 8
    .venv/bin/python tools/scaleout.py --scheduler tcp://10.0.0.5:8786
    .venv/bin/python tools/scaleout.py --record               # also write tools/scaleout_record.json

Run it with the course venv's Python, from any folder. The functions it sends to the workers travel by
value (imported, it registers itself with cloudpickle for that). It reads the dataset as the labs do
(``SPAM_LABS_MIRROR`` for offline use).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB1 = ROOT / "01_spam_tutorial.ipynb"
RECORD = Path(__file__).resolve().with_name("scaleout_record.json")
TAG = "lfs"
#: 4 x the 1586 train comments: a full run (Pandas, 1 and 2 workers) took 1.5 to 2.2 minutes on 2 cores of which
#: other processes used 0.6 to 1.3 (about a minute on a quiet machine, from the per-comment cost).
DEFAULT_N = 6344
DEFAULT_PARTITIONS_PER_WORKER = 4
#: What a worker must import for the LFs; named in the message when one of them is missing there.
WORKER_NEEDS = ("utils", "snorkel.labeling", "spacy", "textblob")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # utils, for this process and (through sys.path) the local workers


class ScaleoutError(RuntimeError):
    """A problem the user can fix; main() prints it as one message and exits with status 2."""


# --------------------------------------------------------------------------
# Lab 1's LFs, from the notebook's cells tagged "lfs"
# --------------------------------------------------------------------------


def _code_cells(notebook: Path) -> list[tuple[int, str, list[str]]]:
    """(cell number, source, tags) of every code cell, in notebook order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        (
            number,
            "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"],
            cell.get("metadata", {}).get("tags", []),
        )
        for number, cell in enumerate(cells)
        if cell["cell_type"] == "code"
    ]


def tagged_cells(notebook: Path = LAB1) -> list[tuple[int, str]]:
    """(cell number, source) of every code cell carrying the tag, in notebook order."""
    found = [(number, source) for number, source, tags in _code_cells(notebook) if TAG in tags]
    if not found:
        raise ScaleoutError(
            f"no code cell of {notebook.name} carries the cell tag {TAG!r}. Tag the cells that define lab 1's "
            "labeling functions, their preprocessors and resources, and the list `lfs` (in JupyterLab: "
            "the property inspector, 'Cell Tags')."
        )
    return found


def notebook_imports(notebook: Path = LAB1) -> list[tuple[int, str]]:
    """(cell number, statement) for every top-level import of the notebook's code cells: the names the
    tagged cells may use without defining them (``utils``, ``re``, ``labeling_function``...)."""
    found = []
    for number, source, _tags in _code_cells(notebook):
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell with IPython syntax (%magic) is not Python, and so imports nothing here
            continue
        found += [(number, ast.unparse(node)) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    return found


def lab1_lfs(notebook: Path = LAB1) -> list:
    """The list ``lfs`` that lab 1's tagged cells define: the notebook's imports, then its cells tagged
    ``lfs``, executed in one namespace as the notebook's kernel would."""
    from snorkel.labeling import LabelingFunction

    os.environ.setdefault("MPLBACKEND", "Agg")  # a tagged cell may draw; nothing is shown
    # "__main__", as in a Jupyter kernel: cloudpickle then sends these functions by value.
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    cells = tagged_cells(notebook)
    for number, statement in notebook_imports(notebook):
        try:
            exec(compile(statement, f"<{notebook.name} cell {number}>", "exec"), namespace)
        except Exception as error:
            raise ScaleoutError(
                f"{notebook.name}, cell {number}: `{statement}` failed: {type(error).__name__}: {error}"
            ) from error
    for number, source in cells:
        try:
            code = compile(source, f"<{notebook.name} cell {number}>", "exec")
            with contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)
        except Exception as error:
            hint = " (a name that an earlier cell defines: tag that cell too)" if isinstance(error, NameError) else ""
            raise ScaleoutError(
                f"{notebook.name}, cell {number} (tagged {TAG!r}) failed: {type(error).__name__}: {error}{hint}"
            ) from error
    lfs = namespace.get("lfs")
    if not (isinstance(lfs, list) and lfs and all(isinstance(lf, LabelingFunction) for lf in lfs)):
        raise ScaleoutError(
            f"the cells of {notebook.name} tagged {TAG!r} ran, but they do not define `lfs`, a list of "
            "labeling functions: tag the cell that makes the lab's full list too."
        )
    return lfs


def preprocessors(lfs) -> list:
    """Every preprocessor the LFs run, their own preprocessors included, each once."""
    found: list = []
    todo = [pre for lf in lfs for pre in getattr(lf, "_pre", [])]
    while todo:
        pre = todo.pop()
        if all(pre is not other for other in found):
            found.append(pre)
            todo += getattr(pre, "_pre", [])
    return found


def reset_caches(lfs) -> None:
    """Empty the preprocessors' memos: a memo would make a repeat run cheaper, and it travels in every task."""
    for pre in preprocessors(lfs):
        if getattr(pre, "memoize", False):
            pre.reset_cache()


def new_comments(train, n: int):
    """n comments that no cache knows: the train comments repeated, each with its own suffix " (i)"."""
    import pandas as pd

    rows = train.iloc[[i % len(train) for i in range(n)]].reset_index(drop=True)
    text = rows.text.where(rows.text.map(lambda t: isinstance(t, str)), "")
    return rows.assign(text=text + pd.Series([f" ({i})" for i in range(n)]))


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


def load_average() -> float:
    """The 1-minute load average (runnable processes, this tool's included)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return os.getloadavg()[0]


class OthersCPU:
    """CPU cores the rest of the machine used while the block ran: all CPU (/proc/stat) minus this
    process and its children (the local workers). None where /proc/stat is missing."""

    def __enter__(self):
        self.start = (time.perf_counter(), _machine_cpu(), _own_cpu())
        return self

    def __exit__(self, *exc):
        wall, machine, own = time.perf_counter(), _machine_cpu(), _own_cpu()
        if machine is None or self.start[1] is None:
            self.cores = None
        else:
            used = (machine - self.start[1]) - (own - self.start[2])
            self.cores = max(0.0, used / (wall - self.start[0]))
        return False


def _machine_cpu() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def ready_to_label(lfs_pickle: bytes, comment_pickle: bytes | None) -> dict:
    """Runs on a worker: what it costs this process to be ready to label, then label one new comment
    (on the scheduler, with no comment: only whether it can unpickle the LFs, as it does with the graph).

    Sent by value (this module is __main__ or registered with cloudpickle), so it needs only the standard
    library and cloudpickle on the worker until it unpickles the LFs.
    """
    import os
    import pickle
    import socket
    import sys
    import time

    fresh = "snorkel" not in sys.modules
    start = time.perf_counter()
    try:
        lfs = pickle.loads(lfs_pickle)  # imports what the LFs use: snorkel, spaCy, TextBlob, utils...
        unpickled = time.perf_counter()
        if comment_pickle is not None:
            x = pickle.loads(comment_pickle)
            for lf in lfs:  # the first comment loads the spaCy model, TextBlob's lexicon...
                lf(x)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}", "host": socket.gethostname(), "cwd": os.getcwd()}
    done = time.perf_counter()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "fresh": fresh,
        "imports_s": unpickled - start,
        "first_comment_s": done - unpickled,
        "ready_s": done - start,
    }


@dataclass
class Run:
    """One measured apply (times in seconds)."""

    applier: str
    workers: int | None
    wall_s: float
    load: float  # 1-minute load average at the end of the apply
    others: float | None  # cores the rest of the machine used during the apply
    equal: bool = True  # the label matrix equals PandasLFApplier's
    partitions: int | None = None
    threads: int | None = None
    start_s: float | None = None  # the slowest new worker's: LFs received -> first comment labelled
    imports_s: float | None = None  # ... of which unpickling the LFs (the imports)
    fresh_workers: bool | None = None  # False: the workers had imported snorkel before (a warm cluster)
    spawn_s: float | None = None  # creating the cluster until its workers are connected
    from_new_cluster_s: float | None = None  # creating the cluster until the label matrix
    cpu_ms_per_comment: float | None = None  # PandasLFApplier only: CPU of this process per new comment


def apply_pandas(lfs, comments, lab_comments) -> tuple:
    """PandasLFApplier on the new comments, after a warm-up on a few others (whatever the LFs load on first
    use is loaded in this process) and a run on the lab's own comments, for comparison.
    Returns (L, run, CPU ms per lab comment)."""
    from snorkel.labeling import PandasLFApplier

    applier = PandasLFApplier(lfs)
    applier.apply(lab_comments.head(20), progress_bar=False)
    reset_caches(lfs)
    cpu = time.process_time()
    applier.apply(lab_comments, progress_bar=False)
    lab_ms = 1000 * (time.process_time() - cpu) / len(lab_comments)
    reset_caches(lfs)
    with OthersCPU() as others:
        cpu, start = time.process_time(), time.perf_counter()
        L = applier.apply(comments, progress_bar=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    run = Run("PandasLFApplier", None, wall, load_average(), others.cores, threads=1)
    run.cpu_ms_per_comment = 1000 * cpu / len(comments)
    return L, run, lab_ms


def check_workers(client, lfs, comments) -> dict:
    """Every worker, in parallel, gets the LFs and labels its first comment: the start cost, and a clear
    stop when a worker, or the scheduler, cannot do what the apply will ask of it.

    The scheduler unpickles the task graph, LFs included (dask-expr sends it the whole expression), so it
    imports what they use too."""
    import cloudpickle

    reset_caches(lfs)
    lfs_pickle = cloudpickle.dumps(lfs)
    scheduler = client.run_on_scheduler(ready_to_label, lfs_pickle, None)
    workers = list(client.scheduler_info()["workers"])
    futures = [
        client.submit(
            ready_to_label,
            lfs_pickle,
            cloudpickle.dumps(comments.iloc[0]),
            workers=[w],
            allow_other_workers=False,
            pure=False,
        )
        for w in workers
    ]
    results = dict(zip(workers, client.gather(futures), strict=True))
    broken = {f"worker {w}": r for w, r in results.items() if "error" in r}
    if "error" in scheduler:
        broken = {"the scheduler": scheduler} | broken
    if broken:
        lines = [f"  {who} ({r['host']}, started in {r['cwd']}): {r['error']}" for who, r in broken.items()]
        raise ScaleoutError(
            "lab 1's LFs cannot be unpickled where Dask needs them:\n"
            + "\n".join(lines)
            + f"\nThe scheduler and every worker need the course packages, the spaCy model and utils.py "
            f"importable ({', '.join(WORKER_NEEDS)}): start them from the project folder with the course venv, "
            "`python -m distributed.cli.dask_scheduler` and `python -m distributed.cli.dask_worker ADDRESS` "
            "(or `PYTHONPATH=$PWD dask scheduler` / `dask worker ADDRESS`)."
        )
    return results


def apply_dask(lfs, comments, client, partitions: int, L_pandas) -> tuple:
    """DaskLFApplier on the comments: (wall s, others' cores, matrix equals Pandas')."""
    import dask.dataframe as dd
    import numpy as np
    from snorkel.labeling.apply.dask import DaskLFApplier

    reset_caches(lfs)  # the memo would travel inside every task (and its rows lose their attributes)
    frame = dd.from_pandas(comments, npartitions=partitions)
    with OthersCPU() as others:
        start = time.perf_counter()
        L = DaskLFApplier(lfs).apply(frame, scheduler=client)
        wall = time.perf_counter() - start
    return wall, others.cores, bool(np.array_equal(L, L_pandas))


def _fill_start(run: Run, ready: dict) -> None:
    slowest = max(ready.values(), key=lambda r: r["ready_s"])
    run.start_s, run.imports_s = slowest["ready_s"], slowest["imports_s"]
    run.fresh_workers = all(r["fresh"] for r in ready.values())


def run_local(lfs, comments, workers: int, partitions_per_worker: int, L_pandas) -> Run:
    """A new LocalCluster of `workers` processes with one thread each: start, check, apply, close."""
    from dask.distributed import Client, LocalCluster

    start = time.perf_counter()
    # Any free port for the scheduler's small web server, so that other Dask clusters on the machine are no bother.
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.CRITICAL,  # not the heartbeat that races the shutdown
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(workers)
        spawn = time.perf_counter() - start
        ready = check_workers(client, lfs, comments)
        partitions = workers * partitions_per_worker
        wall, others, equal = apply_dask(lfs, comments, client, partitions, L_pandas)
        run = Run("DaskLFApplier", workers, wall, load_average(), others, equal, partitions, threads=workers)
        run.spawn_s, run.from_new_cluster_s = spawn, time.perf_counter() - start
        _fill_start(run, ready)
    return run


def run_remote(lfs, comments, address: str, partitions_per_worker: int, L_pandas) -> Run:
    """The workers of a running scheduler, as they are (they may be warm from an earlier run)."""
    from dask.distributed import Client

    try:
        client = Client(address, timeout=30)
    except OSError as error:
        raise ScaleoutError(f"cannot reach the Dask scheduler at {address}: {error}") from error
    with client:
        info = client.scheduler_info()["workers"]
        if not info:
            raise ScaleoutError(f"the scheduler at {address} has no workers: start some (see --help).")
        ready = check_workers(client, lfs, comments)
        threads = sum(w["nthreads"] for w in info.values())
        partitions = threads * partitions_per_worker
        wall, _, equal = apply_dask(lfs, comments, client, partitions, L_pandas)
        # "others" would count the cluster's own workers wherever they share this machine: not shown.
        run = Run(f"DaskLFApplier @ {address}", len(info), wall, load_average(), None, equal, partitions, threads)
        _fill_start(run, ready)
    return run


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def machine() -> dict:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": usable, "cpu_model": model, "system": platform.platform(), "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("snorkel", "dask", "distributed", "spacy", "pandas", "cloudpickle")}


def _s(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


#: The table's columns: record key -> heading.
COLUMNS = {
    "applier": "applier",
    "workers": "workers",
    "wall_s": "wall s",
    "speedup": "speed-up",
    "start_s": "worker start s",
    "from_new_cluster_s": "new cluster s",
    "load": "load",
    "others": "others",
    "equal": "L equal",
}


def shown(run: dict, pandas_wall_s: float) -> dict:
    """One run's figures as the tool prints them: the strings a lab may quote."""
    warm = run["fresh_workers"] is False
    return {
        "applier": run["applier"],
        "workers": "-" if run["workers"] is None else str(run["workers"]),
        "wall_s": _s(run["wall_s"]),
        "speedup": _s(pandas_wall_s / run["wall_s"], 2),
        "start_s": _s(run["start_s"]) + (" (warm)" if warm else ""),
        "imports_s": _s(run["imports_s"]),
        "first_comment_s": "-" if run["start_s"] is None else _s(run["start_s"] - run["imports_s"]),
        "spawn_s": _s(run["spawn_s"]),
        "from_new_cluster_s": _s(run["from_new_cluster_s"]),
        "load": _s(run["load"], 2),
        "others": _s(run["others"], 2),
        "equal": "yes" if run["equal"] else "NO",
    }


def shown_figures(record: dict) -> dict:
    """Everything the printout shows, as printed (tests/test_scaleout.py ties lab 1's prose to these)."""
    pandas = record["pandas"]
    return {
        "rows": [shown(run, pandas["wall_s"]) for run in [pandas, *record["dask"]]],
        "cores": str(record["machine"]["cores"]),
        "n_comments": str(record["n_comments"]),
        "lf_count": str(record["lf_count"]),
        "lfs_kb": f"{record['lfs_kb']:.0f}",
        "heaviest_lf_kb": f"{max(record['lf_kb'].values()):.0f}",
        "pickle_ms": f"{record['pickle_ms']:.0f}",
        "partitions_per_worker": str(record["partitions_per_worker"]),
        "cpu_ms_per_comment": _s(pandas["cpu_ms_per_comment"]),
        "lab_cpu_ms_per_comment": _s(record["lab_cpu_ms_per_comment"]),
    }


def table(rows: list[dict]) -> str:
    widths = {key: max(len(title), *(len(row[key]) for row in rows)) for key, title in COLUMNS.items()}

    def line(cells: dict) -> str:
        return "  ".join(cells[k].ljust(widths[k]) if k == "applier" else cells[k].rjust(widths[k]) for k in COLUMNS)

    return "\n".join([line(COLUMNS), *(line(row) for row in rows)])


def report(record: dict) -> str:
    shows, m = record["shown"], record["machine"]
    heaviest = max(record["lf_kb"], key=record["lf_kb"].get)
    lines = [
        f"Lab 1's {shows['lf_count']} LFs on {shows['n_comments']} new comments (the train comments repeated, "
        f"each with its own suffix); {shows['cores']} cores ({m['cpu_model']}).",
        f"PandasLFApplier: {shows['cpu_ms_per_comment']} ms of CPU per new comment "
        f"({shows['lab_cpu_ms_per_comment']} ms per comment of lab 1's own train comments, "
        "which the tagged cells may pre-tag).",
        f"The pickled LFs: {shows['lfs_kb']} KB ({heaviest}: {shows['heaviest_lf_kb']} KB), "
        f"{shows['pickle_ms']} ms to pickle, sent with each of {shows['partitions_per_worker']} partitions "
        "per worker thread.",
        "",
        table(shows["rows"]),
        "",
    ]
    for run, row in zip(record["dask"], shows["rows"][1:], strict=True):
        if run["start_s"] is not None:
            lines.append(
                f"{row['workers']} worker(s): start {row['start_s']} s = unpickling the LFs (imports) "
                f"{row['imports_s']} s + first comment (what the LFs load on first use) {row['first_comment_s']} s"
                + (f"; the processes were up in {row['spawn_s']} s" if run["spawn_s"] is not None else "")
                + (" (warm workers: their imports were done already)" if run["fresh_workers"] is False else "")
            )
    lines += [
        "",
        "wall s: the apply on started workers; speed-up: Pandas' wall time / this one; worker start s: the",
        "slowest new worker's time from receiving the LFs to its first comment labelled; new cluster s: from",
        "creating the cluster to the label matrix, start included. load: 1-minute load average at the end",
        "(this tool's processes included); others: CPU cores the rest of the machine used meanwhile.",
        "On a shared machine the times are upper bounds.",
        "Label matrices: "
        + (
            "every one equals PandasLFApplier's."
            if record["matrices_equal"]
            else "SOME DIFFER from PandasLFApplier's (L equal = NO)."
        ),
    ]
    return "\n".join(lines)


def default_workers(cores: int) -> list[int]:
    """1, 2, 4... up to the cores, and the core count itself."""
    counts, n = [], 1
    while n <= cores:
        counts.append(n)
        n *= 2
    return counts if counts[-1] == cores else counts + [cores]


def measure(n: int, workers: list[int], scheduler: str | None, partitions_per_worker: int, notebook: Path) -> dict:
    import cloudpickle

    import utils

    if __name__ != "__main__":  # imported (by a test): send this module's functions by value too
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    lfs = lab1_lfs(notebook)
    train = utils.load_spam_dataset()[0]
    comments = new_comments(train, n)

    reset_caches(lfs)
    start = time.perf_counter()
    lfs_kb = len(cloudpickle.dumps(lfs)) / 1024
    pickle_ms = 1000 * (time.perf_counter() - start)
    lf_kb = {lf.name: len(cloudpickle.dumps(lf)) / 1024 for lf in lfs}

    # The lab's own comments, for comparison: all of train, or as many as the new ones when they are fewer.
    L_pandas, pandas_run, lab_ms = apply_pandas(lfs, comments, train.head(n))
    if scheduler:
        runs = [run_remote(lfs, comments, scheduler, partitions_per_worker, L_pandas)]
    else:
        runs = [run_local(lfs, comments, count, partitions_per_worker, L_pandas) for count in workers]

    record = {
        "tool": "tools/scaleout.py",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(),
        "n_comments": n,
        "lf_count": len(lfs),
        "lf_kb": lf_kb,
        "lfs_kb": lfs_kb,
        "pickle_ms": pickle_ms,
        "partitions_per_worker": partitions_per_worker,
        "lab_cpu_ms_per_comment": lab_ms,
        "pandas": asdict(pandas_run),
        "dask": [asdict(run) for run in runs],
        "matrices_equal": all(run.equal for run in runs),
        "note": "Measured on a shared machine: times are upper bounds. load = 1-minute load average at the end of "
        "each apply (this tool's processes included); others = cores the rest of the machine used during it.",
    }
    record["shown"] = shown_figures(record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help=f"new comments to label (default {DEFAULT_N})")
    parser.add_argument(
        "--workers", type=int, nargs="+", help="worker process counts (default: 1, 2, 4... up to the cores)"
    )
    parser.add_argument("--scheduler", help="a running scheduler's address (tcp://host:8786) instead of local workers")
    parser.add_argument(
        "--partitions-per-worker",
        type=int,
        default=DEFAULT_PARTITIONS_PER_WORKER,
        help=f"Dask partitions per worker thread (default {DEFAULT_PARTITIONS_PER_WORKER})",
    )
    parser.add_argument(
        "--record",
        nargs="?",
        const=RECORD,
        type=Path,
        metavar="FILE",
        help=f"write the figures as JSON (default file: {RECORD.relative_to(ROOT)})",
    )
    parser.add_argument("--notebook", type=Path, default=LAB1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n < 1 or args.partitions_per_worker < 1 or any(w < 1 for w in args.workers or []):
        parser.error("--n, --workers and --partitions-per-worker must be positive")
    workers = args.workers or default_workers(machine()["cores"])

    try:
        record = measure(args.n, workers, args.scheduler, args.partitions_per_worker, args.notebook)
    except ScaleoutError as error:
        print(f"scaleout: {error}", file=sys.stderr)
        return 2
    record["command"] = "python tools/scaleout.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(report(record))
    if args.record:
        args.record.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        print(f"Recorded in {args.record}.")
    return 0 if record["matrices_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
