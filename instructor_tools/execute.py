"""Executing a submission again from scratch in a fresh kernel, for ``grade --execute``.

Each notebook runs in a kernel of its own, in the sandbox (``sandbox.py``)
unless the instructor chose ``--no-sandbox``. What the kernel reports is kept
beside the outputs: the status of each cell's execute reply, and which cells
sent an error (even if the cell's output was cleared afterwards), so that a
check counts only when the kernel itself says the check cell ran without error.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from exercise_checks import CHECK_FAILED
from instructor_tools.course import Course
from instructor_tools.notebooks import Reference, as_text, code_cells, locate, restore_locked_cells
from instructor_tools.sandbox import Sandbox, find_sandbox, kernel_python
from utils import DATA_ENV

#: Seconds one notebook may run under ``grade --execute``, all cells together, kernel start included.
GRADE_TIMEOUT = 600

#: Output kept per notebook: lines of text per cell (as nbgrader's LimitOutput) and bytes in all.
MAX_OUTPUT_LINES = 1000
MAX_OUTPUT_BYTES = 10 * 2**20
#: A kernel message larger than this is refused by the grader's sockets before it is read.
MAX_MESSAGE_BYTES = 64 * 2**20
#: Of a notebook's ``--timeout``, the seconds kept for killing its kernel and removing its folder (at most a fifth).
CLEANUP_SECONDS = 2.0
#: The module the kernels import to snapshot their start-up state and reset it before each check (in_kernel.py).
IN_KERNEL_MODULE = "_spam_labs_grader"
#: What the kernel runs at start-up, before any cell: the snapshot ``reset`` goes back to.
SNAPSHOT_LINE = f"import {IN_KERNEL_MODULE}; {IN_KERNEL_MODULE}.snapshot()"


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
    needs_a_look: list[str] = field(default_factory=list)  # what the grader cannot rule out (in-kernel tampering)
    untrusted: set[int] = field(default_factory=set)  # check cells whose reset did not run as sent

    def check_ran_ok(self, number: int) -> bool:
        """Whether the kernel ran cell ``number`` to the end without an error, by its own reply."""
        ran = self.replies.get(number) == "ok" and number not in self.sent_errors
        return ran and number not in self.untrusted


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
        shutil.copyfile(Path(__file__).with_name("in_kernel.py"), lab_files / f"{IN_KERNEL_MODULE}.py")
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
        if not remove_tree(workspace):
            print(f"WARNING: could not remove the grader's temporary folder {workspace}", file=sys.stderr)


def remove_tree(top: Path, deadline: float | None = None) -> bool:
    """Remove ``top`` and all it holds, links not followed; whether it is gone. Never raises.

    A kernel chooses what is left in its folder: a tree thousands of folders
    deep (``shutil.rmtree`` of Python 3.11 recurses, and raises RecursionError),
    folders it made unreadable or unwritable (their owner, the grader, gets its
    rights back first), millions of files. This walks down and up again holding
    one folder open at a time, and stops at ``deadline`` (``time.monotonic()``) if given.
    """
    top = os.fspath(top)
    try:
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            os.unlink(top)
            return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if os.open not in os.supports_dir_fd or os.scandir not in os.supports_fd:  # Windows: no folder descriptors
        with contextlib.suppress(Exception):
            shutil.rmtree(top, ignore_errors=True)
        return not os.path.lexists(top)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    names: list[str] = []  # the path from top down to the open folder
    try:
        os.chmod(top, 0o700)
        fd = os.open(top, flags)
    except OSError:
        return False
    try:
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return False
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        child = entry.name
                        break
                    try:
                        os.unlink(entry.name, dir_fd=fd)
                    except PermissionError:
                        os.fchmod(fd, 0o700)
                        os.unlink(entry.name, dir_fd=fd)
                    except FileNotFoundError:
                        pass
            if child is not None:
                with contextlib.suppress(OSError):
                    os.chmod(child, 0o700, dir_fd=fd)
                inner = os.open(child, flags, dir_fd=fd)
                os.close(fd)
                fd = inner
                names.append(child)
                continue
            if not names:
                os.close(fd)
                fd = -1
                os.rmdir(top)
                return True
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            name = names.pop()
            try:
                os.rmdir(name, dir_fd=fd)
            except PermissionError:
                os.fchmod(fd, 0o700)
                os.rmdir(name, dir_fd=fd)
    except OSError:
        return False
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


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
    cell and any other locked cell first get the reference's code back, and
    just before each check cell and the results cell the kernel's start-up
    state is put back (``in_kernel.reset``); what that found is kept in
    ``needs_a_look``. A cell's error does not stop the run (as in nbgrader),
    so one broken cell does not hide the rest. ``runner.timeout`` bounds the
    whole of it: copying, kernel start, every cell, killing the kernel (in the
    sandbox, with everything it started) and removing its folder; what cannot
    be removed in time is left for the end of the run.
    """
    import nbformat

    deadline = time.monotonic() + runner.timeout
    # A copy by JSON (C speed; the caller's dict is left as it was), outputs dropped before nbformat sees it.
    plain = json.loads(json.dumps({key: value for key, value in notebook.items() if key != "cells"}))
    plain["cells"] = []
    for cell in notebook["cells"]:
        if isinstance(cell, dict):
            cell = {key: value for key, value in cell.items() if key not in ("outputs", "attachments")}
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
        plain["cells"].append(json.loads(json.dumps(cell)))
    run = nbformat.from_dict(plain)
    problems = restore_locked_cells(run, reference) if reference else []
    for _, cell in code_cells(run):
        cell["source"], cell["outputs"], cell["execution_count"] = as_text(cell.get("source")), [], None
    reset_before = set()
    if reference:
        reset_before = {
            number
            for place in locate(run, reference)
            if place.reference.kind in ("check", "results")
            for number in place.numbers
        }
    private = Path(tempfile.mkdtemp(prefix="run-", dir=runner.workspace))
    reserve = min(CLEANUP_SECONDS, runner.timeout / 5)
    client = None
    try:
        client = _grading_client(run, runner, private, reset_before)
        problems += asyncio.run(_run(client, runner, deadline - reserve))
    finally:
        if client is not None:
            _kill(client, deadline)
        if not remove_tree(private, deadline=max(deadline, time.monotonic() + 0.1)):
            problems.append("its folder could not be removed within the timeout (left for the end of the run)")
    cut = client.output_cut.items() if client is not None else []
    problems += [f"output cut in cell {number} (more than {limit} kept)" for number, limit in cut]
    execution = Execution(run, problems, client.replies, client.sent_errors, runner.sandbox is not None)
    for number in sorted(client.resets if client is not None else ()):
        status, text = client.resets[number]
        line = next((ln for ln in text.splitlines() if ln.startswith(f"GRADER RESET {client.nonce}: ")), None)
        if status != "ok" or line is None:
            execution.untrusted.add(number)
            execution.needs_a_look.append(f"the grader's reset before cell {number} did not run as sent")
        elif not line.endswith(": clean"):
            found = line.split(": reset ", 1)[-1]
            execution.needs_a_look.append(f"before cell {number} the kernel had changed: {found} (put back)")
    return execution


async def _run(client, runner: Runner, deadline: float) -> list[str]:
    """Run every cell of the client's notebook until ``deadline`` (``time.monotonic()``); the problems met."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    timeout = runner.timeout
    left = max(0.01, deadline - time.monotonic())
    client.timeout_func = lambda cell: max(0.01, deadline - time.monotonic())
    client.startup_timeout = max(1, int(left))
    client.deadline = deadline

    def where() -> str:
        return f" in cell {client.running}" if client.running else " while the kernel started"

    # Without the sandbox the kernel gets the grader's environment; in it, bubblewrap clears the environment.
    environment = kernel_environment(runner) if runner.sandbox is None else {"PATH": os.environ.get("PATH", "")}
    # No terminal for the kernel: what it writes to stdout or stderr must not reach the grader's screen.
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    task = asyncio.ensure_future(client.async_execute(cwd=str(client.private), env=environment, **quiet))
    try:
        done, _ = await asyncio.wait({task}, timeout=left)
        if not done:  # out of time: the kernel is killed (nbclient reports a cancelled cell as a dead kernel)
            task.cancel()
            _kill(client, deadline)
            await asyncio.wait({task}, timeout=1)  # nbclient's own clean-up, if it is quick
            return [f"timed out after {timeout:g} s{where()}"]
        task.result()
    except CellTimeoutError:
        return [f"timed out after {timeout:g} s{where()}"]
    except DeadKernelError:
        return [f"kernel died{where()}"]
    except Exception as exc:  # no such kernel, kernel failed to start, ...
        return [f"could not run ({type(exc).__name__}: {exc})"]
    finally:
        _kill(client, deadline)
    return []


def _kill(client, deadline: float) -> None:
    """Make sure the kernel is gone (in the sandbox, bubblewrap takes everything the kernel started with it)."""
    for manager in client.managers:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError, AttributeError):  # no process groups on Windows
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait(max(0.1, min(5, deadline - time.monotonic())))
        with contextlib.suppress(Exception):
            manager.cleanup_connection_file()
        with contextlib.suppress(Exception):
            manager.client_context.destroy(linger=0)


def _socket_paths(manager) -> list[str]:
    """The files of a kernel's ipc sockets (shell, iopub, stdin, control, heartbeat)."""
    info = manager.get_connection_info()
    ports = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    return [f"{info['ip']}-{info[port]}" for port in ports]


def _listening(path: str) -> bool:
    """Whether ``path`` is itself a socket (not a link to one) that accepts a connection."""
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            probe.connect(path)
        return True
    except OSError:
        return False


def _grading_client(notebook, runner: Runner, private: Path, reset_before: set[int] = frozenset()):
    """An nbclient NotebookClient that keeps the kernel's replies, caps the output, and starts the runner's kernel."""
    import zmq
    import zmq.asyncio
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from traitlets import default

    argv = _kernel_argv(runner.kernel)
    managers = []
    nonce = secrets.token_hex(8)

    class RunnerSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):  # the name a submission asks for plays no part
            if runner.kernel:
                return super().get_kernel_spec(runner.kernel)
            import ipykernel.kernelspec

            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES, argv=argv, language="python")

    class OnceConnectedClient(AsyncKernelClient):
        """No heartbeat channel (it reconnects a new socket when beats fail); liveness is the process's."""

        def start_channels(self, shell=True, iopub=True, stdin=True, hb=True, control=True):
            return super().start_channels(shell, iopub, stdin, False, control)

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
            if runner.sandbox:
                # The kernel can replace its socket files by links to any socket of the grader's machine; a
                # socket that reconnected would follow them. The grader connects once, to sockets checked to
                # be listening before any cell ran, and never again.
                self.client_context.setsockopt(zmq.RECONNECT_IVL, -1)
                self.client_factory = OnceConnectedClient
            managers.append(self)

        @default("kernel_spec_manager")
        def _kernel_spec_manager_default(self):
            return RunnerSpecs(data_dir=self.data_dir)

        def _connect_control_socket(self):
            if not runner.sandbox:  # in it: no socket of the manager's own, that would reconnect (see above)
                super()._connect_control_socket()

        def format_kernel_cmd(self, extra_arguments=None):
            command = super().format_kernel_cmd(extra_arguments)
            if any("ipykernel" in part for part in command):
                command = [*command, f"--IPKernelApp.exec_lines={SNAPSHOT_LINE}"]
            return runner.sandbox.command(command, private) if runner.sandbox else command

        def client(self, **kwargs):
            return super().client(context=self.client_context, **kwargs)

    class GradingClient(NotebookClient):
        """Keeps each cell's reply status and whether it ever sent an error; keeps only so much output."""

        def __init__(self, nb, **kwargs):
            super().__init__(nb, **kwargs)
            self.managers, self.running, self.private, self.nonce = managers, None, private, nonce
            self.replies, self.sent_errors, self.output_cut = {}, set(), {}  # output_cut: cell -> the limit hit
            self.resets: dict[int, tuple[str, str]] = {}  # cell -> (reply status, output) of the reset before it
            self.deadline = time.monotonic() + runner.timeout
            self._lines, self._bytes = {}, 0
            self.on_cell_execute = self._started
            self.on_cell_executed = self._replied

        async def async_start_new_kernel_client(self):
            if runner.sandbox:
                manager = self.km
                while not all(map(_listening, _socket_paths(manager))):
                    if time.monotonic() > self.deadline or not await manager.is_alive():
                        break  # nbclient then reports the dead kernel, or the timeout
                    await asyncio.sleep(0.02)
            return await super().async_start_new_kernel_client()

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            number = cell_index + 1
            if number in reset_before and self.kc is not None and cell.source.strip():
                self.resets[number] = await self._reset()
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

        async def _reset(self) -> tuple[str | None, str]:
            """Run ``in_kernel.reset`` as a user expression of a silent request: (its status, the line it returned).

            User expressions are evaluated as sent, past IPython's input transformers, and a silent request
            runs no pre_run_cell or post_run_cell hook.
            """
            expression = f"__import__({IN_KERNEL_MODULE!r}).reset({nonce!r})"
            msg_id = self.kc.execute("pass", silent=True, store_history=False, user_expressions={"r": expression})
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    return None, ""
                try:
                    reply = await self.kc.get_shell_msg(timeout=min(left, 1))
                except queue.Empty:
                    if not await self.km.is_alive():
                        return None, ""
                    continue
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
            content = reply.get("content") or {}
            result = (content.get("user_expressions") or {}).get("r") or {}
            try:
                line = ast.literal_eval(result["data"]["text/plain"])
            except (KeyError, TypeError, ValueError, SyntaxError):
                line = ""
            ok = content.get("status") == "ok" and result.get("status") == "ok"
            return ("ok" if ok else "error"), str(line)

        def _started(self, cell, cell_index):
            self.running = cell_index + 1

        def _replied(self, cell, cell_index, execute_reply):
            if execute_reply is not None:
                self.replies[cell_index + 1] = execute_reply["content"].get("status")

        def process_message(self, msg, cell, cell_index):
            content = msg.get("content") or {}
            kind = msg.get("msg_type")
            if kind in ("comm_open", "comm_msg", "comm_close"):
                return None  # widget state plays no part in a grade: never kept (a flood of it cannot fill memory)
            transient = content.get("transient") if isinstance(content, dict) else None
            display_id = transient.get("display_id") if isinstance(transient, dict) else None
            if display_id and kind in ("update_display_data", "display_data", "execute_result"):
                # An update rewrites every output shown with that display_id: it costs its size that many times.
                shown = sum(map(len, self._display_id_map.get(display_id, {}).values()))
                if not self._afford(len(str(content)) * shown, cell_index, "display updates"):
                    return None
            if kind == "error" or any(
                line.lstrip().startswith(CHECK_FAILED) for line in str(content.get("text", "")).splitlines()
            ):
                self.sent_errors.add(cell_index + 1)
            return super().process_message(msg, cell, cell_index)

        def _afford(self, size: int, cell_index: int, what: str) -> bool:
            if self._bytes + size > MAX_OUTPUT_BYTES:
                self.output_cut.setdefault(cell_index + 1, f"{MAX_OUTPUT_BYTES:,} bytes of {what}")
                return False
            self._bytes += size
            return True

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
        store_widget_state=False,
        resources={"metadata": {"path": str(private)}},
    )


def kernel_environment(runner: Runner) -> dict[str, str]:
    """The environment of a kernel without the sandbox: the grader's, with the lab's modules and data cache."""
    python_path = os.pathsep.join(filter(None, [str(runner.lab_files), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": python_path}
    if runner.data is not None:
        environment[DATA_ENV] = str(runner.data)
    return environment
