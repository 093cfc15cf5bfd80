"""requirements.txt: every direct import pinned, and the markers pick one wheel per platform (offline).

The online half, resolving the pins for each platform against the index, is tools/check_pins.py,
which CI runs (`make check-pins`).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import check_pins  # noqa: E402


def _sources() -> dict[str, str]:
    """Python source of every module, test, tool and notebook code cell of the project."""
    sources = {}
    for path in [*ROOT.glob("*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("tools/*.py")]:
        sources[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    for path in ROOT.glob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        # IPython magics and shell escapes are not Python: leave those lines out.
        lines = [ln for cell in code for ln in cell.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        sources[path.name] = "\n".join(lines)
    return sources


def _imported_modules() -> dict[str, set[str]]:
    """Top-level module name -> files that import it, for every absolute import."""
    found: dict[str, set[str]] = {}
    for name, source in _sources().items():
        for node in ast.walk(ast.parse(source, filename=name)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], set()).add(name)
    return found


def _pinned_names() -> set[str]:
    names = set()
    for path in (ROOT / "requirements.txt", ROOT / "requirements-instructor.txt"):
        if path.exists():
            names |= {canonicalize_name(req.name) for req in check_pins.read_requirements(path)[1]}
    return names


def test_every_direct_import_is_pinned():
    local = {p.stem for p in [*ROOT.glob("*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("tools/*.py")]}
    local |= {p.parent.name for p in ROOT.glob("*/__init__.py")}  # the project's own packages (instructor_tools)
    providers = importlib.metadata.packages_distributions()
    pinned = _pinned_names()
    unpinned = []
    for module, files in sorted(_imported_modules().items()):
        if module in sys.stdlib_module_names or module in local or module == "__future__":
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(files)}) is installed by no package of this environment"
        if not dists & pinned:
            unpinned.append(f"{module} (from {', '.join(sorted(dists))}; imported by {', '.join(sorted(files))})")
    assert not unpinned, "Imported but not pinned in requirements.txt: " + "; ".join(unpinned)


@pytest.mark.parametrize("python", check_pins.PYTHONS)
@pytest.mark.parametrize("target", check_pins.TARGETS, ids=lambda t: t.name)
def test_markers_pick_one_build_per_platform(target, python):
    pins = check_pins.pins_for(target, python, check_pins.read_requirements()[1])
    names = [canonicalize_name(req.name) for req in pins]
    assert len(names) == len(set(names)), f"a package is pinned twice on {target.name}: {sorted(names)}"
    # tensorflow-cpu publishes wheels for Linux x86_64 and Windows x64 only.
    cpu_build = target.name in ("linux-x86_64", "windows-x64")
    expected = "tensorflow-cpu" if cpu_build else "tensorflow"
    tensorflows = [n for n in names if n in ("tensorflow", "tensorflow-cpu")]
    assert tensorflows == [expected], f"{target.name}: want {expected}, the markers pick {tensorflows}"
    torch = [str(req.specifier) for req in pins if req.name == "torch"]
    assert len(torch) == 1 and torch[0].startswith("=="), f"{target.name}: torch pins {torch}"


def test_requirements_name_pytorch_cpu_index():
    options, _ = check_pins.read_requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options


def test_the_record_of_resolution_is_keyed_by_requirements_and_checks(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("snorkel==0.10.0\n", encoding="utf-8")
    record = tmp_path / "pins-resolved.json"
    assert check_pins.record_holds(record, requirements) == (False, "no record (pins-resolved.json)")
    record.write_text(
        json.dumps(check_pins.new_record(check_pins.requirements_digest(requirements), {}, [])), encoding="utf-8"
    )
    holds, why = check_pins.record_holds(record, requirements)
    assert holds, why
    requirements.write_text("snorkel==0.10.0\nnumpy==2.4.6\n", encoding="utf-8")
    holds, why = check_pins.record_holds(record, requirements)
    assert not holds and "requirements.txt changed" in why
    record.write_text(
        json.dumps(check_pins.new_record(check_pins.requirements_digest(requirements), {}, [])), encoding="utf-8"
    )
    assert check_pins.record_holds(record, requirements)[0]
    monkeypatch.setattr(check_pins, "PYTHONS", (*check_pins.PYTHONS, "3.14"))  # a Python added to the checks
    holds, why = check_pins.record_holds(record, requirements)
    assert not holds and "platforms or Pythons" in why
    record.write_text("{not json", encoding="utf-8")
    assert not check_pins.record_holds(record, requirements)[0]


def test_if_changed_skips_only_a_full_check_of_recorded_requirements(monkeypatch, capsys):
    monkeypatch.setattr(check_pins, "record_holds", lambda: (True, "unchanged"))
    assert check_pins.main(["--if-changed"]) == 0
    assert "nothing to resolve" in capsys.readouterr().out
    resolved = []
    monkeypatch.setattr(check_pins, "record_holds", lambda: (False, "requirements.txt changed"))
    monkeypatch.setattr(check_pins, "reachable", lambda url: False)
    monkeypatch.setattr(check_pins, "check_source_only", lambda reqs: [])
    monkeypatch.setattr(
        check_pins, "resolve", lambda *combo: resolved.append(combo[:2]) or {"ok": False, "seconds": 0, "error": "x"}
    )
    monkeypatch.setattr(check_pins, "RECORD", Path("/nonexistent/never-written.json"))
    assert check_pins.main(["--if-changed"]) == 1
    assert len(resolved) == len(check_pins.TARGETS) * len(check_pins.PYTHONS)
    assert "resolving every platform and Python again" in capsys.readouterr().out
