"""The labs as a student opens them from the Colab badge: on Google Colab's package versions, alone.

tools/colab_env.py builds (once, then cached outside the clone) a Colab-like environment: Python 3.13
with Colab's versions of the packages the labs use, a stand-in ``google.colab`` and no snorkel,
distributed or names. Each lab is copied into an empty folder, as Colab holds it, and run to the end
in a fresh runtime (a throw-away venv over that environment), with ``SPAM_LABS_REPO`` pointing at this
checkout so that the set-up cell fetches the helper modules from here, and with the data mirror set.
The set-up cell must fetch the helpers, install only what Colab lacks without touching the rest, and
stay quiet but for the note on differing versions; the figures the lab records must reach the
published targets (README.md, "Expected results").

Run by ``make test-colab`` (and CI); a plain ``pytest`` skips it, because a first build downloads and
installs several GB.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import colab_env  # noqa: E402
import setup_cell  # noqa: E402

import utils  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("SPAM_LABS_TEST_COLAB") != "1", reason="the Colab-like run: `make test-colab`"
)

#: The targets in percent of README.md's "Expected results": figure -> (target, the names a lab may record it under,
#: each as a fraction ``name`` or a percentage ``name_pct``). Lab 2's augmented model has the original data's
#: published 86.0%: it does not reach the 91.6% published in a set-up tuned for augmentation (README.md says so).
TARGETS = {
    "01_spam_tutorial.ipynb": {
        "majority vote test accuracy": (84.0, "majority_vote_test_accuracy", "majority_vote_test"),
        "label model test accuracy": (86.0, "label_model_test_accuracy", "label_model_test"),
        "classifier test accuracy": (94.4, "classifier_test_accuracy", "classifier_test"),
    },
    "02_spam_data_augmentation_tutorial.ipynb": {
        "original data test accuracy": (86.0, "original_test_accuracy", "original_test"),
        "augmented data test accuracy": (86.0, "augmented_test_accuracy", "augmented_test"),
    },
    "03_spam_data_slicing_tutorial.ipynb": {
        "baseline test F1": (92.5, "baseline_test_f1", "baseline_test"),
        "slice-aware test F1": (None, "slice_aware_test_f1", "slice_aware_test"),  # target: >= the baseline's
    },
}

#: Seconds a single cell may take before the run counts as hung (lab 2's training cells take about a minute).
CELL_TIMEOUT = 900


def percent(figures: dict, *names: str) -> float:
    """A recorded figure in percent, under the first of ``names`` the lab used, as ``name_pct`` or as a fraction."""
    for name in names:
        if f"{name}_pct" in figures:
            return float(figures[f"{name}_pct"])
        if name in figures:
            return 100 * float(figures[name])
    raise AssertionError(f"the results record has none of {', '.join(names)} (or *_pct): {sorted(figures)}")


def recorded_results(nb) -> dict:
    """The figures of the lab's results record (utils.RESULTS_MIME), read from the executed notebook."""
    records = [
        output["data"][utils.RESULTS_MIME]
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if utils.RESULTS_MIME in output.get("data", {})
    ]
    assert len(records) == 1, f"expected one results record, found {len(records)}"
    return records[0]


def runtime_env(runtime: Path) -> dict:
    """The environment of a fresh Colab runtime here: its python first on PATH, the mirror, this checkout as repo."""
    mirror = os.environ.get(utils.MIRROR_ENV) or ROOT.parent / "shared" / "mirror"
    assert Path(mirror).is_dir(), f"no data mirror at {mirror}: set {utils.MIRROR_ENV}"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", utils.DATA_ENV}}
    env["PATH"] = f"{runtime / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env[utils.MIRROR_ENV] = str(Path(mirror).resolve())
    env["SPAM_LABS_REPO"] = str(ROOT)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # Python 3.13's frozen modules make the kernel's debugger warn
    return env


def execute(path: Path, python: Path, env: dict, kernels: Path):
    """Run the notebook at ``path`` top to bottom in a kernel of ``python``, in its folder; the executed notebook."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    spec = kernels / "colab-like"
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # Colab's kernel has google.colab imported before the first cell runs.
    argv.append("--IPKernelApp.exec_lines=import google.colab")
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Colab-like", "language": "python"}),
        encoding="utf-8",
    )
    km = KernelManager(kernel_name="colab-like", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return nb


def stream_text(cell) -> str:
    assert all(output.output_type == "stream" for output in cell.outputs), cell.outputs
    return "".join(output.text for output in cell.outputs)


@pytest.fixture(scope="module")
def colab_base() -> Path:
    return colab_env.colab_env()


@pytest.mark.parametrize("notebook", list(TARGETS))
def test_lab_runs_on_colab_and_reaches_its_targets(notebook, colab_base, tmp_path):
    content = tmp_path / "content"  # Colab's working folder holds the uploaded notebook alone
    content.mkdir()
    shutil.copy(ROOT / notebook, content / notebook)
    runtime = tmp_path / "runtime"
    python = colab_env.overlay(colab_base, runtime)
    colab_packages = colab_env.installed(colab_base)

    started = time.perf_counter()
    nb = execute(content / notebook, python, runtime_env(runtime), tmp_path / "kernels")
    seconds = time.perf_counter() - started
    nbformat.write(nb, content / notebook)  # kept for a look (pytest keeps the last runs' tmp_path)

    # The set-up cell fetched the helpers from the repository...
    for name in ("utils.py", "exercise_checks.py", "requirements.txt"):
        assert (content / name).read_bytes() == (ROOT / name).read_bytes(), name
    # ...installed what Colab lacks into the runtime, and replaced nothing Colab has.
    assert colab_env.installed(colab_base) == colab_packages
    added = {line.split("==")[0] for line in colab_env.installed(runtime)}
    assert {"snorkel", "distributed", "names"} <= added
    assert not added & {line.split("==")[0] for line in colab_packages}
    # It said nothing but the note naming the versions that differ from the tested ones.
    setup = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert setup.source == setup_cell.setup_cell_source()
    said = stream_text(setup)
    assert said.startswith("Note: this is not the course's own environment"), said
    assert f"numpy {colab_env.colab_versions()['numpy']} (tested: " in " ".join(said.split())
    assert not any(word in said for word in ("Collecting", "Successfully installed", "Cloning")), said

    results = recorded_results(nb)
    assert results["lab"] == int(notebook[:2])
    figures = {label: percent(results["figures"], *names) for label, (_, *names) in TARGETS[notebook].items()}
    print(f"{notebook} on Colab's versions: {seconds:.0f} s; " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    for label, (target, *_) in TARGETS[notebook].items():
        target = figures["baseline test F1"] if target is None else target
        assert figures[label] >= target, f"{label}: {figures[label]:.2f}% is below the published target {target:.2f}%"
