"""The labs' set-up cell (written by tools/setup_cell.py): in each lab, up to date, and right wherever it runs.

Its Colab branch runs for real in tests/test_colab.py; here the cheap cases: the notebooks and README
agree with the tool, the tool refuses to overwrite a cell it does not know, and the cell's messages
for a notebook opened alone and for a repository that cannot be reached.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import setup_cell  # noqa: E402


@pytest.mark.parametrize("notebook", setup_cell.NOTEBOOKS)
def test_each_lab_opens_with_its_badges_and_the_setup_cell(notebook):
    nb = nbformat.read(ROOT / notebook, as_version=4)
    assert nb.cells[0].source == setup_cell.badges(notebook), "run: python tools/setup_cell.py"
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first_code.source == setup_cell.setup_cell_source(), "run: python tools/setup_cell.py"


def test_the_tool_finds_nothing_to_change():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "setup_cell.py"), "--check"], capture_output=True)
    assert result.returncode == 0, result.stdout.decode()


def test_readme_badges_point_at_the_repository_in_the_tool():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{setup_cell.README_START}\n{setup_cell.badges()}\n{setup_cell.README_END}" in readme
    assert f"github.com/{setup_cell.REPOSITORY}" in setup_cell.setup_cell_source()
    assert setup_cell.colab_url("01_spam_tutorial.ipynb") in readme


def _lab_with_first_code(source: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab"), nbformat.v4.new_code_cell(source)]
    return nb


def test_the_tool_rewrites_the_old_cell_once_and_keeps_its_output():
    nb = _lab_with_first_code(setup_cell.OLD_SETUP)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="Environment OK\n")]
    once = nbformat.writes(setup_cell.updated_notebook(nb, "01_spam_tutorial.ipynb"))
    twice = nbformat.writes(setup_cell.updated_notebook(nbformat.reads(once, as_version=4), "01_spam_tutorial.ipynb"))
    assert once == twice
    cells = nbformat.reads(once, as_version=4).cells
    assert [cell.cell_type for cell in cells] == ["markdown", "markdown", "code"]
    assert cells[2].source == setup_cell.setup_cell_source() and cells[2].outputs[0].text == "Environment OK\n"


def test_the_tool_leaves_an_unknown_first_code_cell_alone():
    with pytest.raises(ValueError, match="expected its set-up cell"):
        setup_cell.updated_notebook(_lab_with_first_code("import pandas as pd"), "01_spam_tutorial.ipynb")


def run_setup_cell(folder: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the set-up cell as plain Python in ``folder``; an error prints what IPython would show."""
    program = (
        "import sys\n"
        "try:\n"
        f"    exec(compile({setup_cell.setup_cell_source()!r}, 'setup-cell', 'exec'))\n"
        "except Exception as exc:\n"
        "    print(*exc._render_traceback_(), sep='\\n')\n"
        "    sys.exit(1)\n"
    )
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(folder), **env}
    return subprocess.run([sys.executable, "-c", program], cwd=folder, env=clean, capture_output=True, text=True)


def test_a_notebook_opened_alone_says_how_to_set_up(tmp_path):
    result = run_setup_cell(tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("SET-UP FAILED: this notebook needs the course's helper modules")
    assert f"git clone {setup_cell.repository_url()}, then run `make lab`" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_helpers_on_the_path_will_do(tmp_path):
    """As `python instructor.py grade --execute` runs a lab: in an empty folder, the course on PYTHONPATH."""
    result = run_setup_cell(tmp_path, PYTHONPATH=str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Environment OK")


def test_on_colab_an_unreachable_repository_is_one_clear_message(tmp_path):
    colab = tmp_path / "stand-in" / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text('"""Stand-in for Google Colab."""\n')
    content = tmp_path / "content"
    content.mkdir()
    missing = tmp_path / "no-such-repository"
    result = run_setup_cell(content, PYTHONPATH=str(tmp_path / "stand-in"), SPAM_LABS_REPO=str(missing))
    assert result.returncode == 1
    assert result.stdout.startswith(f"SET-UP FAILED: could not get the labs' helper modules from {missing}: ")
    assert "does not exist" in result.stdout
    assert sorted(p.name for p in content.iterdir()) == []  # nothing half-copied


def test_on_colab_a_repository_without_the_helpers_is_one_clear_message(tmp_path):
    colab = tmp_path / "stand-in" / "google" / "colab"
    colab.mkdir(parents=True)
    (colab / "__init__.py").write_text('"""Stand-in for Google Colab."""\n')
    content, repo = tmp_path / "content", tmp_path / "repo"
    content.mkdir()
    repo.mkdir()
    (repo / "utils.py").write_text("")
    result = run_setup_cell(content, PYTHONPATH=str(tmp_path / "stand-in"), SPAM_LABS_REPO=str(repo))
    assert result.returncode == 1
    assert result.stdout.startswith(f"SET-UP FAILED: {repo} lacks a file the labs need: ")
    assert "exercise_checks.py" in result.stdout
