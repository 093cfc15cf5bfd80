"""Executing a submission again from scratch in a fresh kernel, for ``grade --execute``.

Each notebook runs in a kernel of its own, in the sandbox (``sandbox.py``)
unless the instructor chose ``--no-sandbox``. What the kernel reports is kept
beside the outputs: the status of each cell's execute reply, and which cells
sent an error (even if the cell's output was cleared afterwards), so that a
check counts only when the kernel itself says the check cell ran without error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from exercise_checks import CHECK_FAILED
from instructor_tools.course import Course
from instructor_tools.notebooks import Reference, as_text, code_cells, restore_locked_cells
from instructor_tools.sandbox import Sandbox, find_sandbox, kernel_python
from utils import DATA_ENV

#: Seconds one notebook may run under ``grade --execute``, all cells together, kernel start included.
GRADE_TIMEOUT = 600

#: Output kept per notebook: lines of text per cell (as nbgrader's LimitOutput) and bytes in all.
MAX_OUTPUT_LINES = 1000
MAX_OUTPUT_BYTES = 10 * 2**20
#: A kernel message larger than this is refused by the grader's sockets before it is read.
MAX_MESSAGE_BYTES = 64 * 2**20


@dataclass
class Runner:
    """How ``grade --execute`` runs notebooks: with which kernel, for how long, in which sandbox (None: none)."""

    workspace: Path  # the grader's private temporary folder for this run
    lab_files: Path  # the lab's modules as read at the start (what the kernels import)
    data: Path | None  # the data cache, None if there is none
    timeout: float = GRADE_TIMEOUT
    kernel: str | None = None  # an installed kernel's name; None: an IPython kernel of this Python
    sandbox: Sandbox | None = None


@dataclass
class Execution:
    """A notebook run again, and what its kernel said about each cell (cell numbers count all cells from 1)."""

    notebook: dict
    problems: list[str]
    replies: dict[int, str] = field(default_factory=dict)  # cell -> status of its execute reply ("ok", "error")
    sent_errors: set[int] = field(default_factory=set)  # cells that sent an error or a CHECK FAILED line
    sandboxed: bool = True

    def check_ran_ok(self, number: int) -> bool:
        """Whether the kernel ran cell ``number`` to the end without an error, by its own reply."""
        return self.replies.get(number) == "ok" and number not in self.sent_errors


@contextlib.contextmanager
def grading_run(
    course: Course,
    timeout: float = GRADE_TIMEOUT,
    kernel: str | None = None,
    sandboxed: bool = True,
    private_to_grader: tuple[Path, ...] = (),
):
    """A Runner for one grading run, its temporary folder removed afterwards.

    With ``sandboxed``, the sandbox is checked before anything runs
    (SandboxUnavailable says why it cannot be had). ``private_to_grader`` are
    paths no kernel may see: the submissions and the gradebook (the course
    folder is always one).
    """
    workspace = Path(tempfile.mkdtemp(prefix="spam-labs-grade-", dir=_short_temp_dir()))
    try:
        lab_files = course.write_lab_files(workspace / "course")
        data = _data_dir(course)
        if data is not None:
            (lab_files / "data").mkdir()  # where the sandbox shows the cache
        sandbox = None
        if sandboxed:
            python = kernel_python(_kernel_argv(kernel))
            private = (course.folder, *private_to_grader)
            sandbox = find_sandbox(python, lab_files, data, workspace / "etc", list(private))
        yield Runner(workspace, lab_files, data, timeout, kernel, sandbox)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _short_temp_dir() -> str | None:
    """Where the run's folder goes: the usual temporary folder, unless its path is too long for a socket's name."""
    return None if len(tempfile.gettempdir()) < 40 else "/tmp" if os.path.isdir("/tmp") else None


def _data_dir(course: Course) -> Path | None:
    """The data cache the labs read, as ``utils.data_dir`` finds it for this course: None if there is none."""
    folder = Path(os.environ.get(DATA_ENV) or course.folder / "data")
    return folder.resolve() if folder.is_dir() else None


def _kernel_argv(kernel: str | None) -> list[str]:
    """The command line of the kernel spec ``kernel``, or of an IPython kernel of this Python."""
    if kernel:
        from jupyter_client.kernelspec import KernelSpecManager

        return KernelSpecManager().get_kernel_spec(kernel).argv
    import ipykernel.kernelspec

    return ipykernel.kernelspec.get_kernel_dict()["argv"]


def executed_copy(notebook: dict, runner: Runner, reference: Reference | None = None) -> Execution:
    """``notebook`` run again from scratch in a new kernel, with what the kernel said and what went wrong.

    The run starts from a copy with every output cleared, and the student's
    file is never written. With a ``reference``, every check cell, the results
    cell and any other locked cell first get the reference's code back. A
    cell's error does not stop the run (as in nbgrader), so one broken cell
    does not hide the rest. ``runner.timeout`` bounds the whole run, kernel
    start included, however many cells there are; then the kernel, and in the
    sandbox everything it started, is killed.
    """
    import nbformat

    run = nbformat.from_dict(copy.deepcopy(notebook))  # the caller's dict is left as it was
    problems = restore_locked_cells(run, reference) if reference else []
    for _, cell in code_cells(run):
        cell["source"], cell["outputs"], cell["execution_count"] = as_text(cell.get("source")), [], None
    private = Path(tempfile.mkdtemp(prefix="run-", dir=runner.workspace))
    try:
        client = _grading_client(run, runner, private)
        problems += asyncio.run(_run(client, runner, private))
    finally:
        shutil.rmtree(private, ignore_errors=True)
    problems += [f"output cut in cell {number} (more than {limit} kept)" for number, limit in client.output_cut.items()]
    return Execution(run, problems, client.replies, client.sent_errors, runner.sandbox is not None)


async def _run(client, runner: Runner, private: Path) -> list[str]:
    """Run every cell of the client's notebook within the runner's timeout; the problems met."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    timeout = runner.timeout
    deadline = time.monotonic() + timeout
    client.timeout_func = lambda cell: max(0.01, deadline - time.monotonic())
    client.startup_timeout = timeout

    def where() -> str:
        return f" in cell {client.running}" if client.running else " while the kernel started"

    # Without the sandbox the kernel gets the grader's environment; in it, bubblewrap clears the environment.
    environment = kernel_environment(runner) if runner.sandbox is None else {"PATH": os.environ.get("PATH", "")}
    # No terminal for the kernel: what it writes to stdout or stderr must not reach the grader's screen.
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    task = asyncio.ensure_future(client.async_execute(cwd=str(private), env=environment, **quiet))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:  # out of time: the kernel is killed (nbclient reports a cancelled cell as a dead kernel)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            return [f"timed out after {timeout:g} s{where()}"]
        task.result()
    except CellTimeoutError:
        return [f"timed out after {timeout:g} s{where()}"]
    except DeadKernelError:
        return [f"kernel died{where()}"]
    except Exception as exc:  # no such kernel, kernel failed to start, ...
        return [f"could not run ({type(exc).__name__}: {exc})"]
    finally:
        _kill(client)
    return []


def _kill(client) -> None:
    """Make sure the kernel is gone (in the sandbox, bubblewrap takes everything the kernel started with it)."""
    for manager in client.managers:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError, AttributeError):  # no process groups on Windows
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(5)
        with contextlib.suppress(Exception):
            manager.cleanup_connection_file()
        manager.client_context.destroy(linger=0)


def _grading_client(notebook, runner: Runner, private: Path):
    """An nbclient NotebookClient that keeps the kernel's replies, caps the output, and starts the runner's kernel."""
    import zmq
    import zmq.asyncio
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from traitlets import default

    argv = _kernel_argv(runner.kernel)
    managers = []

    class RunnerSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):  # the name a submission asks for plays no part
            if runner.kernel:
                return super().get_kernel_spec(runner.kernel)
            import ipykernel.kernelspec

            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, argv=argv, language="python")

    class RunnerKernel(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.pop("kernel_name", None)
            sockets = {"transport": "ipc", "ip": str(private / "kernel")} if runner.sandbox else {}
            super().__init__(
                kernel_name=runner.kernel or "python3",
                connection_file=str(private / "kernel.json"),
                cache_ports=False,
                **sockets,
                **kwargs,
            )
            self.client_context = zmq.asyncio.Context()
            self.client_context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            managers.append(self)

        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return RunnerSpecs(data_dir=self.data_dir)

        def format_kernel_cmd(self, extra_arguments=None):
            command = super().format_kernel_cmd(extra_arguments)
            return runner.sandbox.command(command, private) if runner.sandbox else command

        def client(self, **kwargs):
            return super().client(context=self.client_context, **kwargs)

    class GradingClient(NotebookClient):
        """Keeps each cell's reply status and whether it ever sent an error; keeps only so much output."""

        def __init__(self, nb, **kwargs):
            super().__init__(nb, **kwargs)
            self.managers, self.running = managers, None
            self.replies, self.sent_errors, self.output_cut = {}, set(), {}  # output_cut: cell -> the limit hit
            self._lines, self._bytes = {}, 0
            self.on_cell_execute = self._started
            self.on_cell_executed = self._replied

        def _started(self, cell, cell_index):
            self.running = cell_index + 1

        def _replied(self, cell, cell_index, execute_reply):
            if execute_reply is not None:
                self.replies[cell_index + 1] = execute_reply["content"].get("status")

        def process_message(self, msg, cell, cell_index):
            content = msg.get("content") or {}
            if msg.get("msg_type") == "error" or any(
                line.lstrip().startswith(CHECK_FAILED) for line in str(content.get("text", "")).splitlines()
            ):
                self.sent_errors.add(cell_index + 1)
            return super().process_message(msg, cell, cell_index)

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content") or {}
            text = content.get("text") if msg.get("msg_type") == "stream" else None
            size = len(str(content))
            lines = self._lines.get(cell_index, 0) + (text.count("\n") if isinstance(text, str) else 0)
            if self._bytes + size > MAX_OUTPUT_BYTES or lines > MAX_OUTPUT_LINES:
                limit = f"{MAX_OUTPUT_LINES:,} lines" if lines > MAX_OUTPUT_LINES else f"{MAX_OUTPUT_BYTES:,} bytes"
                self.output_cut.setdefault(cell_index + 1, limit)
                return None
            self._lines[cell_index], self._bytes = lines, self._bytes + size
            return super().output(outs, msg, display_id, cell_index)

    return GradingClient(
        notebook,
        allow_errors=True,
        shutdown_kernel="immediate",
        kernel_manager_class=RunnerKernel,
        resources={"metadata": {"path": str(private)}},
    )


def kernel_environment(runner: Runner) -> dict[str, str]:
    """The environment of a kernel without the sandbox: the grader's, with the lab's modules and data cache."""
    python_path = os.pathsep.join(filter(None, [str(runner.lab_files), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": python_path}
    if runner.data is not None:
        environment[DATA_ENV] = str(runner.data)
    return environment
