"""The Binder door: the files mybinder.org reads, and binder/postBuild run as Binder runs it.

mybinder.org builds an image with the Python of binder/runtime.txt, installs binder/requirements.txt
(the labs' own pins) and runs binder/postBuild in a copy of the repository. Here postBuild runs in a
copy of this checkout's files, with a fresh venv's Python first on PATH and a fresh home folder. The
venv sees this environment's packages (installed from the same requirements.txt) through a .pth file
instead of installing 3.5 GB again. The kernel postBuild registers must then run a lab's set-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def test_binder_pins_the_python_and_installs_the_labs_requirements():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"  # the Python CI tests
    lines = [line for line in (BINDER / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines == ["-r ../requirements.txt"]  # pip reads a nested file relative to the one naming it
    assert os.access(BINDER / "postBuild", os.X_OK)
    mode = subprocess.run(["git", "ls-files", "-s", "binder/postBuild"], cwd=ROOT, capture_output=True, text=True)
    assert mode.stdout == "" or mode.stdout.startswith("100755"), "binder/postBuild must be committed executable"


def repository_copy(dest: Path) -> Path:
    """The files Binder would see: what git tracks, and new files not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def fresh_venv(dest: Path) -> Path:
    """A new venv whose packages are this environment's (one .pth line); returns its bin folder."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    (site,) = (dest / "lib").glob("python3.*/site-packages")
    packages = sysconfig.get_paths()["purelib"]
    (site / "_spam_labs.pth").write_text(f"import site; site.addsitedir({packages!r})\n", encoding="utf-8")
    return dest / "bin"


def test_postbuild_registers_the_kernel_and_prefetches_the_data(tmp_path):
    repo = repository_copy(tmp_path / "repo")
    bin_dir = fresh_venv(tmp_path / "venv")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "SPAM_LABS_DATA", "VIRTUAL_ENV"))}
    env.pop("KERNEL_PYTHON_PREFIX", None)
    env.update(HOME=str(home), PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    env.setdefault("SPAM_LABS_MIRROR", str(ROOT.parent / "shared" / "mirror"))

    result = subprocess.run(["binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    spec_dir = home / ".local" / "share" / "jupyter" / "kernels" / "spam-labs"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (Spam Labs)"
    assert Path(spec["argv"][0]).parent == bin_dir
    assert len(list((repo / "data" / "youtube_spam").glob("Youtube0*.csv"))) == 5
    assert (repo / "data" / "nltk_data" / "corpora" / "wordnet.zip").is_file()

    # The registered kernel runs the set-up check of a lab opened in that folder.
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    km = KernelManager(kernel_name="spam-labs", kernel_spec_manager=specs)
    km.start_kernel(cwd=str(repo), env=env)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        said = []
        reply = kc.execute_interactive(
            "import utils; utils.check_environment()",
            output_hook=lambda msg: said.append(msg["content"].get("text", "")),
            timeout=120,
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "".join(said).startswith("Environment OK: Python 3.11 or newer, and every package the labs import")
