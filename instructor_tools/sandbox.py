"""The sandbox of ``grade --execute``: each submission's kernel runs inside bubblewrap (``bwrap``).

bubblewrap is the unprivileged sandbox Flatpak is built on (Debian/Ubuntu
package ``bubblewrap``). A kernel started through ``Sandbox.command`` sees a
filesystem of its own, made only of:

- read-only: the system's programs and libraries (``/usr`` and its links
  ``/bin``, ``/lib``, ...), a few files of ``/etc`` the C library needs, the
  Python environment of the kernel (its prefix, base prefix and ``sys.path``),
  the lab's modules as read at the start of the run (``/course``: utils.py,
  exercise_checks.py, requirements.txt) and the data cache (``/course/data``);
- writable, in memory, gone with the sandbox: its home and working folder
  (``/home/student``), ``/tmp`` and ``/dev/shm``;
- writable on disk: one private folder of the grader holding this kernel's
  connection file and sockets (nothing else is there).

It does not see the reference notebooks, other submissions, the gradebook, the
grader's files or command line. It has its own PID, network (loopback only:
no network), IPC, UTS and user namespaces: it cannot see or signal a process
outside, and when the kernel ends, everything it started ends with it. It runs
with no capabilities and an empty environment apart from what is set here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: Inside the sandbox: the lab's modules, the data cache, and the kernel's home and working folder.
SANDBOX_COURSE = "/course"
SANDBOX_DATA = "/course/data"
SANDBOX_HOME = "/home/student"
#: The user the kernel runs as inside (mapped to the grader's own user outside).
SANDBOX_UID = SANDBOX_GID = 1000

#: System folders shown read-only: a symbolic link where the system has one (/bin -> usr/bin), else the folder.
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: Files of /etc the C library, Python and the labs' packages read; nothing else of /etc (no secrets, no config).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf", "alternatives", "mime.types")

#: Seconds to wait for the sandbox to start a Python and exit, when checking that it works.
PROBE_TIMEOUT = 60

HOW_TO_INSTALL = (
    "Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf install bubblewrap`; "
    "it is Linux only: on macOS or Windows, grade inside a Linux container or virtual machine), "
    "or pass --no-sandbox to run the submissions without one (see INSTRUCTORS.md: what that gives up)."
)

#: What ``--no-sandbox`` gives up, printed when it is used.
NO_SANDBOX_WARNING = (
    "WARNING: --no-sandbox: each submission's code runs unconfined, with your rights on this machine. It can read "
    "the reference notebooks (the solutions), the other submissions and any of your files; change the course, the "
    "other submissions and the gradebook (changes to the course are detected and reported, the rest is not); use "
    "the network; signal, stop or kill this grader and the other kernels; and leave processes running after the "
    "grader has finished. Use it only for notebooks you trust, or inside a throw-away container or virtual machine."
)


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made here; the message says why and what to do."""


@dataclass(frozen=True)
class Sandbox:
    """How to start a command in a bubblewrap sandbox that shows it only what a lab needs."""

    bwrap: str
    python: tuple[str, ...]  # folders of the kernel's Python environment, shown read-only at the same path
    lab_files: Path  # the lab's modules, shown read-only as SANDBOX_COURSE
    data: Path | None  # the data cache, shown read-only as SANDBOX_DATA (None: there is none)
    etc: Path  # passwd, group and hosts written for the sandbox
    extra_options: tuple[str, ...] = ()  # options of newer bubblewrap versions, where this one has them

    def command(self, argv: list[str], private: Path) -> list[str]:
        """The command line that runs ``argv`` in the sandbox, with ``private`` (sockets, connection file) writable."""
        options = [
            "--unshare-all",  # PID, network, IPC, UTS and cgroup namespaces, and the user namespace:
            "--unshare-user",  # said again, as bubblewrap only tries it by default when run as root
            "--die-with-parent",
            "--new-session",  # no terminal to type into (TIOCSTI)
            "--cap-drop",
            "ALL",
            "--uid",
            str(SANDBOX_UID),
            "--gid",
            str(SANDBOX_GID),
            "--hostname",
            "sandbox",
            *self.extra_options,
        ]
        for folder in SYSTEM_FOLDERS:
            if os.path.islink(folder):
                options += ["--symlink", os.readlink(folder), folder]
            elif os.path.isdir(folder):
                options += ["--ro-bind", folder, folder]
        for name in ETC_FILES:
            options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for name in ("passwd", "group", "hosts"):
            options += ["--ro-bind", str(self.etc / name), f"/etc/{name}"]
        for folder in self.python:
            options += ["--ro-bind", folder, folder]
        options += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
        options += ["--tmpfs", SANDBOX_HOME, "--ro-bind", str(self.lab_files), SANDBOX_COURSE]
        if self.data is not None:
            options += ["--ro-bind", str(self.data), SANDBOX_DATA]
        options += ["--bind", str(private), str(private), "--chdir", SANDBOX_HOME, "--remount-ro", "/"]
        python_bin = os.path.dirname(argv[0]) if os.path.isabs(argv[0]) else None
        environment = {
            "PATH": os.pathsep.join(filter(None, [python_bin, "/usr/local/bin", "/usr/bin", "/bin"])),
            "HOME": SANDBOX_HOME,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            "PYTHONPATH": SANDBOX_COURSE,
            "SPAM_LABS_DATA": SANDBOX_DATA,
        }
        options.append("--clearenv")
        for name, value in environment.items():
            options += ["--setenv", name, value]
        return [self.bwrap, *options, "--", *argv]


def find_sandbox(python: str, lab_files: Path, data: Path | None, etc: Path, private_to_grader: list[Path]) -> Sandbox:
    """A working sandbox for kernels of the interpreter ``python``, or SandboxUnavailable saying why not.

    ``private_to_grader`` are paths the sandbox must never show (the course
    folder, the submissions, the gradebook): a Python environment that contains
    one of them is refused rather than mounted. The sandbox is tried once here,
    so that a system that forbids it (user namespaces turned off) stops the run
    before any submission, with bubblewrap's own message.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            f"--execute runs each submission in a bubblewrap sandbox, and `bwrap` is not on PATH. {HOW_TO_INSTALL}"
        )
    folders = python_folders(python)
    shown = [folder for folder in SYSTEM_FOLDERS if os.path.isdir(folder)] + folders + ([str(data)] if data else [])
    for folder in shown:
        for private in private_to_grader:
            if _contains(folder, private):
                raise SandboxUnavailable(
                    f"the sandbox would have to show {folder} (system files, the kernel's Python environment or the "
                    "data cache), "
                    f"which contains {private}; keep the course's virtual environment and data apart from the "
                    "submissions and the gradebook."
                )
    write_etc(etc)
    help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT).stdout
    extra = ("--disable-userns",) if "--disable-userns" in help_text else ()  # bubblewrap 0.8 and later
    sandbox = Sandbox(bwrap, tuple(folders), lab_files, data, etc, extra)
    probe(sandbox, python)
    return sandbox


def probe(sandbox: Sandbox, python: str) -> None:
    """Start the kernel's Python in the sandbox once: SandboxUnavailable with bubblewrap's message if it fails."""
    try:
        with tempfile.TemporaryDirectory(prefix="probe-", dir=sandbox.etc.parent) as private:
            command = sandbox.command([python, "-c", "import ipykernel"], Path(private))
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SandboxUnavailable(f"bubblewrap did not start {python} within {PROBE_TIMEOUT} s.") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SandboxUnavailable(
            f"bubblewrap cannot run the kernel's Python in its sandbox here (exit {done.returncode}: "
            f"{' / '.join(message) or 'no message'}). If it says a namespace operation is not permitted, this "
            "system does not let unprivileged users create user namespaces (as some containers and hardened "
            "kernels do); grade on a machine or in a container that allows them, or pass --no-sandbox (see "
            "INSTRUCTORS.md: what that gives up)."
        )


def python_folders(python: str) -> list[str]:
    """The folders the interpreter ``python`` needs, outermost only: its prefixes and ``sys.path``, as it says."""
    code = (
        "import json, sys; print(json.dumps([sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, "
        "*sys.path]))"
    )
    try:
        done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
        paths = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"cannot ask the kernel's Python {python} where it is installed ({exc}).") from None
    paths.append(os.path.dirname(os.path.realpath(python)))  # a venv's python links to its base interpreter
    folders = sorted({os.path.abspath(p) for p in paths if p and os.path.isdir(p)})
    system = [folder for folder in SYSTEM_FOLDERS if os.path.isdir(folder)]
    outermost = []
    for folder in folders:
        if not any(_contains(outer, folder) for outer in outermost + system):
            outermost.append(folder)
    return outermost


def _contains(outer: str | Path, inner: str | Path) -> bool:
    """Whether ``inner`` is ``outer`` or inside it (both resolved: links do not hide it)."""
    outer, inner = os.path.realpath(outer), os.path.realpath(inner)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def write_etc(folder: Path) -> Path:
    """The sandbox's passwd, group and hosts: its one user, and localhost (for local servers such as Dask's)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwd").write_text(f"student:x:{SANDBOX_UID}:{SANDBOX_GID}:student:{SANDBOX_HOME}:/bin/sh\n")
    (folder / "group").write_text(f"student:x:{SANDBOX_GID}:\n")
    (folder / "hosts").write_text("127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n")
    return folder


def kernel_python(kernel_argv: list[str]) -> str:
    """The interpreter a kernel spec starts, as jupyter_client resolves it (``python`` means this Python)."""
    program = kernel_argv[0]
    if program in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return sys.executable
    return shutil.which(program) or program
