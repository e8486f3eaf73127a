"""Every public metric carries a doctest-style example that the tests run (issue 28: "a doctest-style example in
every public metric's docstring"): each example is a value worked by hand or a closed form, so a change of a
metric's meaning fails here."""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

import biaslib

METRICS = Path(biaslib.__file__).parent / "metrics"
MODULES = sorted(p.stem for p in METRICS.glob("*.py") if not p.stem.startswith("_"))

def _public_functions() -> dict[str, bool]:
    """``module.function`` → whether its docstring has an example, for every public function of biaslib.metrics."""
    found = {}
    for stem in MODULES:
        for node in ast.parse((METRICS / f"{stem}.py").read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found[f"{stem}.{node.name}"] = ">>>" in (ast.get_docstring(node) or "")
    return found


@pytest.mark.parametrize("stem", MODULES)
def test_every_example_in_the_metrics_holds(stem):
    module = importlib.import_module(f"biaslib.metrics.{stem}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_every_public_metric_comes_with_an_example():
    functions = _public_functions()
    assert len(functions) >= 89
    without = sorted(name for name, has in functions.items() if not has)
    assert not without, f"public metrics without an example: {without}"
