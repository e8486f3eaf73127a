"""Imports flow one way (design.md: core → world/data → metrics → steps → studies → cli): every import in
biaslib, at module level or inside a function, is checked against :mod:`biaslib.layers`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import biaslib
from biaslib.layers import KNOWN_VIOLATIONS, LAYERS, layer_of, study_of

ROOT = Path(biaslib.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path) -> set[str]:
    """Every biaslib module a file imports (``from biaslib.x import y`` counts as biaslib.x, and as
    biaslib.x.y when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("biaslib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("biaslib") and not node.level:
            found.add(node.module)
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if (root.parent / Path(*sub.split("."))).with_suffix(".py").is_file():
                    found.add(sub)
    return found


def _violations(root: Path = ROOT) -> set[tuple[str, str]]:
    bad = set()
    for path in sorted(root.rglob("*.py")):
        source = _module_name(path, root)
        for target in _imports(path, root):
            if layer_of(target) is None or layer_of(source) is None:
                continue
            upward = layer_of(target) > layer_of(source)
            cross_study = study_of(source) and study_of(target) and study_of(source) != study_of(target)
            if upward or cross_study:
                bad.add((source, target))
    return bad


def test_every_module_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= set(LAYERS), sorted(packages | modules - set(LAYERS))


def test_imports_flow_one_way():
    found = _violations()
    new = found - KNOWN_VIOLATIONS
    assert not new, f"imports against the layer order (biaslib/layers.py): {sorted(new)}"
    gone = KNOWN_VIOLATIONS - found
    assert not gone, f"fixed violations still listed in KNOWN_VIOLATIONS (remove them): {sorted(gone)}"


def test_the_checker_sees_an_upward_and_a_cross_study_import(tmp_path):
    """The walker is not blind: a metrics module importing a step (inside a function), one study importing another
    and a core module importing a study are reported."""
    fake = tmp_path / "biaslib"
    for package in ("metrics", "studies", "studies/multilingual", "studies/amplification"):
        (fake / package).mkdir(parents=True)
    for init in fake.rglob("*"):
        if init.is_dir():
            (init / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "metrics" / "bad.py").write_text("def f():\n    from biaslib.generate import generate\n")
    (fake / "studies" / "multilingual" / "evaluation.py").write_text(
        "from biaslib.studies.amplification.pipeline import run_experiment\n")
    (fake / "results.py").write_text("from biaslib.studies.multilingual import evaluation\n")
    assert _violations(fake) == {("biaslib.metrics.bad", "biaslib.generate"),
                                 ("biaslib.studies.multilingual.evaluation", "biaslib.studies.amplification.pipeline"),
                                 ("biaslib.results", "biaslib.studies.multilingual"),
                                 ("biaslib.results", "biaslib.studies.multilingual.evaluation")}


def test_studies_are_packages_and_every_module_of_one_belongs_to_it():
    """Each study is a package under biaslib/studies/ (no study module left at the top level), and the layer table
    maps the whole folder to the studies' layer."""
    studies = {p.name for p in (ROOT / "studies").iterdir() if (p / "__init__.py").is_file()}
    assert studies == {"amplification", "multilingual", "benchmark"}
    assert study_of("biaslib.studies.multilingual.evaluation") == "multilingual"
    assert study_of("biaslib.evaluate") is None
    assert layer_of("biaslib.studies.benchmark.leaderboard") == LAYERS["studies"]


#: The one use of a study's name that is not the study: the generator's γ, ``generate.amplification`` (a step's
#: setting every params file writes so).
GENERATOR_GAMMA = re.compile(r"generate\.amplification|``amplification`` \(γ\)|^\s*amplification: float", re.M)


def _study_names_in(text: str, studies: set[str]) -> list[str]:
    """The lines of ``text`` that name one of ``studies`` (as a word), the generator's γ left aside."""
    word = re.compile(r"\b(" + "|".join(sorted(studies)) + r")\b", re.I)
    return [line.strip() for line in GENERATOR_GAMMA.sub("", text).splitlines() if word.search(line)]


def test_the_core_names_no_study(tmp_path):
    """Core modules (layer 0) name no study, in code or docs (issue 28: results.py and layout.py branched on study
    names, config.py held every study's section): what a study is, the core learns from its declaration. The
    checker sees a study named in a core-like file."""
    studies = {p.name for p in (ROOT / "studies").iterdir() if (p / "__init__.py").is_file()}
    core = [p for p in ROOT.glob("*.py") if LAYERS.get(p.stem if p.stem != "__init__" else "biaslib") == 0]
    assert len(core) >= 10
    named = {p.name: found for p in core if (found := _study_names_in(p.read_text(encoding="utf-8"), studies))}
    assert not named, f"core modules name a study: {named}"
    assert _study_names_in('if study == "multilingual":\n    amplification: float = 1.0\n', studies) == [
        'if study == "multilingual":']


def _private_imports(path: Path) -> set[str]:
    """``module.name`` of every ``_private`` name a file imports from biaslib (``from biaslib.x import _y``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("biaslib"):
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.endswith("__")}
    return found


def test_the_cli_imports_no_private_name(tmp_path):
    """The CLI calls the library's public API only; the checker itself sees a private import."""
    cli = sorted((ROOT / "cli").rglob("*.py"))
    assert len(cli) > 5, "the CLI is a package of command-group modules"
    private = set().union(*(_private_imports(path) for path in cli))
    assert not private, f"the CLI imports private names: {sorted(private)}"
    bad = tmp_path / "bad.py"
    bad.write_text("from biaslib.features import _stack, Features\n")
    assert _private_imports(bad) == {"biaslib.features._stack"}


def test_readme_layout_lists_every_module():
    """README's layout row names every top-level module and package of biaslib, and nothing that is gone."""
    import re

    readme = (ROOT.parent / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `biaslib/` |"))
    named = {m.rstrip("/").removesuffix(".py") for m in re.findall(r"`([a-z_]+(?:\.py|/)?)`", row)}
    present = {p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"} | {
        p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert present <= named, sorted(present - named)
    assert not {n for n in named if n in LAYERS} - present - {"biaslib"}, "README names modules that are gone"
