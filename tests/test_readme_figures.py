"""README's "Expected results" table must quote what the committed notebooks print, and meet its targets."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABS = {
    "1": "01_spam_tutorial.ipynb",
    "2": "02_spam_data_augmentation_tutorial.ipynb",
    "3": "03_spam_data_slicing_tutorial.ipynb",
}
PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")


def _outputs(name: str) -> str:
    """Every text an output of the notebook shows (plain and HTML), joined."""
    texts = []
    for cell in json.loads((ROOT / name).read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            for mime in ("text/plain", "text/html"):
                texts.append("".join(output.get("data", {}).get(mime, "")))
    return "\n".join(texts)


def _results_rows() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Expected results", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in section.splitlines()]
    return [row for row in rows if len(row) == 4 and row[0] in LABS]


def test_the_table_has_every_lab():
    assert {row[0] for row in _results_rows()} == set(LABS)


def test_each_quoted_result_is_printed_by_its_lab_and_meets_its_target():
    outputs = {lab: _outputs(name) for lab, name in LABS.items()}
    for lab, figure, result, target in _results_rows():
        values = PERCENT.findall(result)
        assert values, f"lab {lab}, {figure!r}: no figure in {result!r}"
        for value in values:
            assert value in outputs[lab], f"lab {lab}, {figure!r}: {value}% is in README but in no output of the lab"
        if target.startswith(">="):
            wanted = target.removeprefix(">=").strip()
            if wanted.endswith("%"):
                assert float(values[0]) >= float(wanted.rstrip("%")), f"lab {lab}, {figure!r}: {values[0]}% < {wanted}"
