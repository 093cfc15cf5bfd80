"""No lab makes a choice with the test split.

Test comments are for reporting. A setting picked because it scores best on test (a learning
rate, a threshold, a model, a release decision) makes the reported figure optimistic, and
students copy what the labs do. This test reads the notebooks' code and follows, cell by cell,
which variables are computed from the test split (any name with ``test`` as a word part, such
as ``test``, ``X_test``, ``lm_test_acc``, and whatever is assigned from them). It fails when a
value derived from test decides something: it is passed to a choosing call (``max``, ``idxmax``,
``argmax``, ``sorted``, ``nlargest``, ...) or tested by an ``if``. Uses that only report are not
choices; any that the pattern mistakes for one is listed below with the reason.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("0*.ipynb"))

TEST_NAME = re.compile(r"(^|_)test($|_)", re.IGNORECASE)
CHOOSERS = {"max", "min", "sorted", "idxmax", "idxmin", "argmax", "argmin", "nlargest", "nsmallest", "sort_values"}

#: (notebook, source of the flagged expression) -> why it is not a choice made on test.
NOT_A_CHOICE: dict[tuple[str, str], str] = {}


def _names(node: ast.AST) -> set[str]:
    """Every variable name an expression reads (``x``, and ``x`` of ``x.attr``)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def choices_made_on_test(cells: list[str]) -> list[str]:
    """The source of each choosing call or ``if`` condition that reads a value derived from test."""
    tainted: set[str] = set()

    def is_tainted(node: ast.AST) -> bool:
        return any(TEST_NAME.search(name) or name in tainted for name in _names(node))

    found = []
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics; the labs have none, but a student copy might
            continue
        for statement in tree.body:  # module level: assignments made inside functions stay local
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AugAssign | ast.AnnAssign):
                targets, value = [statement.target], statement.value
            elif isinstance(statement, ast.For):
                targets, value = [statement.target], statement.iter
            else:
                targets, value = [], None
            for target in targets:
                pairs = [(target, value)]
                if (
                    isinstance(target, ast.Tuple)
                    and isinstance(value, ast.Tuple)
                    and len(target.elts) == len(value.elts)
                ):
                    pairs = list(zip(target.elts, value.elts, strict=True))  # a, b = f(x), g(y): pair them up
                tainted |= {name for t, v in pairs if v is not None and is_tainted(v) for name in _targets(t)}
            for node in ast.walk(statement):
                if isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                    if name in CHOOSERS and is_tainted(node):
                        found.append(ast.unparse(node))
                elif isinstance(node, ast.If | ast.IfExp | ast.While) and is_tainted(node.test):
                    found.append(ast.unparse(node.test))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_choice_is_made_on_test(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    flagged = [src for src in choices_made_on_test(cells) if (path.name, src) not in NOT_A_CHOICE]
    assert not flagged, "values computed from the test split decide something:\n  " + "\n  ".join(flagged)


def test_the_guard_catches_a_choice_on_test():
    cells = [
        "scores = {C: fit(C).score(X_test, test.label) for C in (0.1, 1.0)}",
        "best_C = max(scores, key=scores.get)",
        "valid_scores = {C: fit(C).score(X_valid, valid.label) for C in (0.1, 1.0)}",
        "chosen = max(valid_scores, key=valid_scores.get)",
        "gate = slice_f1_test['short'] > 0.9\nif gate:\n    ship()",
        "X_valid, X_test = vec.transform(valid.text), vec.transform(test.text)",
        "best = max(Cs, key=lambda C: fit(C).score(X_valid, valid.label))",
    ]
    assert choices_made_on_test(cells) == ["max(scores, key=scores.get)", "gate"]
