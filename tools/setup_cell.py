"""Write the labs' set-up cell and their Colab and Binder badges into the notebooks and README.md.

The repository's location lives here, in ``REPOSITORY`` and ``BRANCH``, and nowhere else by hand:
the set-up cell (where Colab fetches the helper modules from), the notebooks' badge cells and the
README's badge line are all written from it. A course that forks the labs changes those two lines
and runs this script (README.md, "Run it on Google Colab or Binder").

    python tools/setup_cell.py            # rewrite the three labs and README.md (idempotent)
    python tools/setup_cell.py --check    # exit 1, naming the files, if any is not up to date

The set-up cell replaces each lab's first code cell (only if that cell is a set-up cell already, or
the old ``import utils`` / ``utils.check_environment()`` cell) and keeps its outputs: in the
course's venv it prints what the old cell printed, so the committed outputs stay right.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

#: The GitHub repository (owner/name) students open the labs from, and its branch.
REPOSITORY = "spam-labs/spam-labs"
BRANCH = "main"

NOTEBOOKS = (
    "01_spam_tutorial.ipynb",
    "02_spam_data_augmentation_tutorial.ipynb",
    "03_spam_data_slicing_tutorial.ipynb",
)
README = ROOT / "README.md"

#: Cell metadata that marks the cells this script owns.
MARK = "spam_labs"

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
README_START, README_END = "<!-- badges: written by tools/setup_cell.py -->", "<!-- /badges -->"

#: The first code cell of every lab. {repository} is filled in; the rest is the cell as students see it.
SETUP_CELL = """\
# Set-up. In the course's own environment this only checks it. On Google Colab it first copies the
# course's helper modules here and installs what Colab lacks (about 10 s, once per runtime).
import importlib
import importlib.util
import os

SPAM_LABS_REPO = os.environ.get("SPAM_LABS_REPO", "{repository}")
HELPERS = {helpers}
ON_COLAB = importlib.util.find_spec("google.colab") is not None


class SetupError(Exception):
    def _render_traceback_(self):  # IPython shows this message instead of a traceback
        return [f"SET-UP FAILED: {{self}}"]


if ON_COLAB and not all(os.path.exists(name) for name in HELPERS):
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as clone:
        if os.path.isdir(SPAM_LABS_REPO):  # a local checkout (tests, or a copy in Google Drive)
            clone = SPAM_LABS_REPO
        else:
            git = ["git", "clone", "--quiet", "--depth=1", SPAM_LABS_REPO, clone]
            result = subprocess.run(git, capture_output=True, text=True)
            if result.returncode:
                why = result.stderr.strip()
                raise SetupError(f"could not get the labs' helper modules from {{SPAM_LABS_REPO}}: {{why}}")
        try:
            for name in HELPERS:
                os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
                shutil.copy(os.path.join(clone, name), name)
        except OSError as error:
            raise SetupError(f"{{SPAM_LABS_REPO}} lacks a file the labs need: {{error}}") from None
    importlib.invalidate_caches()
if not (importlib.util.find_spec("utils") and importlib.util.find_spec("exercise_checks")):
    raise SetupError(
        "this notebook needs the course's helper modules (utils.py, exercise_checks.py) beside it. Open it in "
        f"Google Colab (the badge at the top), or get the whole course: git clone {{SPAM_LABS_REPO}}, then run "
        "`make lab` in that folder (README.md, Quick start) and open the notebook there."
    )
import utils

if ON_COLAB:
    utils.install_missing_packages()
utils.check_environment()"""

#: The files the set-up cell copies from the repository on Colab: what the labs read besides themselves.
HELPERS = ("utils.py", "exercise_checks.py", "requirements.txt")

#: What the old first cell held; the script replaces it, and nothing else it does not recognise.
OLD_SETUP = "import utils\n\nutils.check_environment()"


def repository_url() -> str:
    return f"https://github.com/{REPOSITORY}"


def colab_url(notebook: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{notebook}"


def binder_url(notebook: str | None = None) -> str:
    return f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}" + (f"?labpath={notebook}" if notebook else "")


def setup_cell_source() -> str:
    helpers = "(" + ", ".join(f'"{name}"' for name in HELPERS) + ")"  # as ruff formats it
    return SETUP_CELL.format(repository=repository_url(), helpers=helpers)


def badges(notebook: str | None = None) -> str:
    """The badge line: a notebook's own Colab link, or (for README.md) the first lab's, and Binder."""
    colab = colab_url(notebook or NOTEBOOKS[0])
    return f"[![Open In Colab]({COLAB_BADGE})]({colab}) [![Launch Binder]({BINDER_BADGE})]({binder_url(notebook)})"


def _owned(cell, role: str) -> bool:
    return cell.get("metadata", {}).get(MARK) == role


def updated_notebook(nb, name: str):
    """``nb`` with its badge cell first and the set-up cell as its first code cell; raises ValueError if unsure."""
    cells = [cell for cell in nb.cells if not _owned(cell, "badges")]
    badge = nbformat.v4.new_markdown_cell(badges(name), metadata={MARK: "badges"})
    old_badge = next((cell for cell in nb.cells if _owned(cell, "badges")), None)
    if old_badge is not None and "id" in old_badge:
        badge["id"] = old_badge["id"]  # the same cell, rewritten: keeps diffs small
    code = next((cell for cell in cells if cell.cell_type == "code"), None)
    if code is None or not (_owned(code, "setup") or code.source.strip() == OLD_SETUP):
        found = "no code cell" if code is None else f"a first code cell that starts {code.source[:60]!r}"
        raise ValueError(f"{name}: expected its set-up cell (or `{OLD_SETUP!r}`) first, found {found}")
    code.source = setup_cell_source()
    code.metadata[MARK] = "setup"
    nb.cells = [badge, *cells]
    return nb


def updated_readme(text: str) -> str:
    """README.md with the line between the badge markers rewritten."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {README_START} ... {README_END}")
    return text[: start + len(README_START)] + "\n" + badges() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/setup_cell.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is not up to date")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: the three labs")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks or [ROOT / name for name in NOTEBOOKS]:
        before = path.read_text(encoding="utf-8")
        try:
            nb = updated_notebook(nbformat.reads(before, as_version=4), path.name)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        after = nbformat.writes(nb) + "\n"
        if after != before:
            stale.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    if not args.notebooks:
        before = README.read_text(encoding="utf-8")
        after = updated_readme(before)
        if after != before:
            stale.append(README)
            if not args.check:
                README.write_text(after, encoding="utf-8")
    for path in stale:
        print(f"{'not up to date' if args.check else 'updated'}: {path.name}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
