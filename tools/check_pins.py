"""Check that requirements.txt installs on every platform and Python the README promises.

For each supported platform and Python version this asks pip to resolve the pins as if it ran
there, wheels only, without installing anything:

    pip install --dry-run --ignore-installed --only-binary=:all: \
        --platform TAG ... --python-version 3.X --implementation cp -r PINS

pip evaluates environment markers (``; sys_platform == "darwin"`` and the like) for the machine it
runs on, not for ``--platform``. So the markers of requirements.txt are evaluated here for the
target platform first, and pip runs with its marker environment set to that platform's, so that
the markers inside the packages' own dependencies (torch's NVIDIA libraries, say) are judged for
the target too.

Needs the package index (PyPI); CI runs it (``make check-pins``), a student's ``make test`` does
not. Exit status 0 when every platform resolves, 1 otherwise. Run from the repository root:

    .venv/bin/python tools/check_pins.py [--python 3.12 ...] [--platform linux-x86_64 ...]

The pins change rarely and the dozen resolutions take minutes, so a full run that succeeds writes
its outcome to ``tools/pins-resolved.json`` (commit it), keyed by the SHA-256 of requirements.txt
and by what was checked (each platform's tags and markers, each Python). With ``--if-changed`` (CI's
``make check-pins``) the run ends at once when that record matches, and resolves everything again,
rewriting the record, when it does not; ``make check-pins-refresh`` always resolves again.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
RECORD = ROOT / "tools" / "pins-resolved.json"
PYTHONS = ("3.11", "3.12", "3.13")
# Pins published as a source archive only. pip refuses to build source archives for another
# platform, so these are checked once here instead: each must build to a pure-Python wheel
# (py3-none-any) with no dependencies, which then installs the same on every platform.
SOURCE_ONLY = ("names",)


def _manylinux(arch: str, glibc_minor: int = 35) -> list[str]:
    """Wheel platform tags a Linux with glibc 2.<glibc_minor> accepts (2.35: Ubuntu 22.04)."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}"]


@dataclass(frozen=True)
class Target:
    """A supported platform: its marker values and the wheel platform tags it accepts."""

    name: str
    markers: dict[str, str]
    wheel_platforms: tuple[str, ...]

    def environment(self, python: str) -> dict[str, str]:
        """The full PEP 508 marker environment of this platform under CPython ``python`` (e.g. "3.12")."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_version": "",
            "python_version": python,
            "python_full_version": f"{python}.0",
            **self.markers,
        }


TARGETS = (
    Target(
        "linux-x86_64",
        {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
        tuple(_manylinux("x86_64")),
    ),
    Target(
        "linux-aarch64",
        {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
        tuple(_manylinux("aarch64")),
    ),
    Target(
        "windows-x64",
        {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
        ("win_amd64",),
    ),
    # pip widens a macOS tag to every older macOS release, so 14_0 accepts wheels for 11 to 14.
    Target(
        "macos-arm64",
        {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
        ("macosx_14_0_arm64",),
    ),
)


def read_requirements(path: Path = REQUIREMENTS) -> tuple[list[str], list[Requirement]]:
    """The option lines (such as --extra-index-url) and the requirements of a requirements file."""
    options, requirements = [], []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.startswith("-"):
            options.append(line)
        else:
            requirements.append(Requirement(line))
    return options, requirements


def pins_for(target: Target, python: str, requirements: list[Requirement]) -> list[Requirement]:
    """The requirements whose markers hold on ``target`` under ``python``, markers removed."""
    environment = target.environment(python)
    selected = []
    for req in requirements:
        if req.marker is None or req.marker.evaluate(environment):
            bare = Requirement(str(req))
            bare.marker = None
            selected.append(bare)
    return selected


def reachable(url: str, timeout: float = 10.0) -> bool:
    """Whether an index answers at all (an unreachable one costs pip about 8 s of retries per package)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return True
    except OSError:
        return False


# Runs pip in a child process whose marker environment is the target's (argv[1], JSON).
_PIP_WITH_MARKERS = """
import json, sys
import pip._vendor.packaging.markers as markers
target = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def resolve(target: Target, python: str, options: list[str], requirements: list[Requirement]) -> dict:
    """Ask pip to resolve the pins for one platform and Python; return a summary of the outcome."""
    pins = pins_for(target, python, requirements)
    with tempfile.TemporaryDirectory() as tmp:
        pin_file = Path(tmp) / "requirements.txt"
        pin_file.write_text("\n".join([*options, *map(str, pins)]) + "\n", encoding="utf-8")
        report = Path(tmp) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--only-binary=:all:"]
        for tag in target.wheel_platforms:
            args += ["--platform", tag]
        args += ["--python-version", python, "--implementation", "cp", "--report", str(report), "-r", str(pin_file)]
        env = json.dumps(target.environment(python))
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", _PIP_WITH_MARKERS, env, *args], capture_output=True, text=True, check=False
        )
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            error = [line for line in proc.stderr.splitlines() if line.strip() and "Retrying" not in line]
            return {"ok": False, "seconds": seconds, "error": "\n".join(error[-12:])}
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    chosen = {
        canonicalize_name(item["metadata"]["name"]): unquote(item["download_info"]["url"].rsplit("/", 1)[-1])
        for item in installs
    }
    return {"ok": True, "seconds": seconds, "count": len(installs), "chosen": chosen}


def check_source_only(requirements: list[Requirement]) -> list[str]:
    """Build each SOURCE_ONLY pin here; return the problems (it must give a dependency-free pure-Python wheel)."""
    problems = []
    for req in requirements:
        if req.name not in SOURCE_ONLY:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp, str(req)],
                capture_output=True,
                text=True,
                check=False,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if proc.returncode != 0 or len(wheels) != 1:
                problems.append(f"{req}: pip cannot build it: {proc.stderr.strip()[-500:]}")
                continue
            wheel = wheels[0].name
            if not wheel.endswith(("-py3-none-any.whl", "-py2.py3-none-any.whl")):
                problems.append(f"{req}: builds to {wheel}, which is not pure Python")
            from zipfile import ZipFile

            with ZipFile(wheels[0]) as archive:
                meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
                requires = [ln for ln in archive.read(meta).decode().splitlines() if ln.startswith("Requires-Dist:")]
            if requires:
                problems.append(f"{req}: has dependencies ({', '.join(requires)}), so check it per platform")
            if not problems:
                print(f"ok   {req}: source archive only; builds to {wheel} with no dependencies, so any platform")
    return problems


def checked_combinations() -> list[dict]:
    """What a full run checks: every platform (its wheel tags and markers) under every Python."""
    return [
        {"platform": t.name, "python": python, "wheel_platforms": list(t.wheel_platforms), "markers": t.markers}
        for t in TARGETS
        for python in PYTHONS
    ]


def requirements_digest(path: Path = REQUIREMENTS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def new_record(digest: str, lines: dict[str, str], indexes: list[str]) -> dict:
    """The record of a full, successful run: for which requirements.txt (SHA-256), what was checked, what pip chose."""
    return {
        "requirements_sha256": digest,
        "checked": checked_combinations(),
        "source_only": list(SOURCE_ONLY),
        "resolved_on": datetime.date.today().isoformat(),
        "pip": _pip_version(),
        "index_options": indexes,
        "outcomes": lines,
    }


def record_holds(record_path: Path = RECORD, path: Path = REQUIREMENTS) -> tuple[bool, str]:
    """Whether the committed record covers these exact requirements and everything a full run checks, and why."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, f"no record ({record_path.name})"
    except (OSError, ValueError) as error:
        return False, f"unreadable record {record_path.name}: {error}"
    if record.get("requirements_sha256") != requirements_digest(path):
        return False, f"{path.name} changed since its last resolution ({record.get('resolved_on', '?')})"
    if record.get("checked") != checked_combinations() or record.get("source_only") != list(SOURCE_ONLY):
        return False, "the platforms or Pythons to check changed since the last resolution"
    return True, f"{path.name} is unchanged since every platform and Python resolved on {record.get('resolved_on')}"


def _pip_version() -> str:
    from importlib.metadata import version

    return version("pip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", choices=PYTHONS, help="Python version(s); default: all")
    names = [t.name for t in TARGETS]
    parser.add_argument("--platform", action="append", choices=names, help="platform(s); default: all")
    parser.add_argument("--jobs", type=int, default=4, help="resolutions run at once (default: 4)")
    parser.add_argument(
        "--if-changed",
        action="store_true",
        help=f"resolve only if requirements.txt or the checks differ from {RECORD.name} (CI: make check-pins)",
    )
    args = parser.parse_args(argv)
    full = not args.python and not args.platform
    if args.if_changed:
        holds, why = record_holds()
        if holds and full:
            print(f"ok   {why} (record: tools/{RECORD.name}); nothing to resolve.")
            print("     `make check-pins-refresh` resolves again (e.g. after a dependency of a pin had a new release).")
            return 0
        print(f"note: {why}: resolving every platform and Python again.")

    digest = requirements_digest()  # before reading: the record names the file that was resolved
    options, requirements = read_requirements()
    kept = []
    for option in options:
        if option.startswith(("--extra-index-url", "--index-url", "-i ")):
            url = option.split(None, 1)[1].strip()
            if not reachable(url.rstrip("/") + "/"):
                print(f"note: {url} cannot be reached from here; it is left out, and the other indexes serve")
                continue
        kept.append(option)

    problems = check_source_only(requirements)
    for problem in problems:
        print(f"FAIL {problem}")
    failures = len(problems)
    requirements = [req for req in requirements if req.name not in SOURCE_ONLY]
    combos = [
        (target, python)
        for target in TARGETS
        if not args.platform or target.name in args.platform
        for python in args.python or PYTHONS
    ]
    # The resolutions mostly wait on the index, so a few run at once; results print in order.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(lambda combo: resolve(*combo, kept, requirements), combos))
    lines = {}
    for (target, python), outcome in zip(combos, outcomes, strict=True):
        label = f"{target.name:14} Python {python}"
        if not outcome["ok"]:
            failures += 1
            print(f"FAIL {label} ({outcome['seconds']:.0f} s): pip cannot install the pins there:")
            print("    " + outcome["error"].replace("\n", "\n    "))
            continue
        chosen = outcome["chosen"]
        tf = next((chosen[n] for n in ("tensorflow-cpu", "tensorflow") if n in chosen), "no TensorFlow")
        nvidia = sum(name.startswith("nvidia-") for name in chosen)
        line = (
            f"{outcome['count']} wheels; "
            f"{chosen.get('torch', 'no torch')}{f' + {nvidia} NVIDIA wheels' if nvidia else ''}; {tf}"
        )
        lines[f"{target.name} Python {python}"] = line
        print(f"ok   {label} ({outcome['seconds']:.0f} s): {line}")
    if failures:
        print(f"{failures} platform/Python combination(s) cannot install requirements.txt: see above.")
        return 1
    print("requirements.txt resolves to wheels on every platform and Python checked.")
    if full:
        RECORD.write_text(json.dumps(new_record(digest, lines, kept), indent=1) + "\n", encoding="utf-8")
        print(
            f"Wrote tools/{RECORD.name}: commit it, so that CI skips these resolutions until requirements.txt changes."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
