"""The declared import order of biaslib's modules: a module may import only from its own layer or below.

``core → world/data → metrics → steps → studies → cli`` (design.md). ``tests/test_layers.py`` walks every
module with :mod:`ast` and fails on an import that runs against this order, except the violations listed in
:data:`KNOWN_VIOLATIONS` (each names the issue that removes it; the list only shrinks).
"""

from __future__ import annotations

#: Layer of each top-level module or package of biaslib (sub-modules inherit their package's layer).
LAYERS: dict[str, int] = {
    # 0 core: configuration, atomic io, errors, ratio codes, English articles, hardware, provenance and the one
    # result schema (written by provenance, read by results, for every study), the layer table itself, the run
    # layout (every path of a run), the figure style helpers (matplotlib only; the world's gallery uses them too)
    # the study registry (what each study declares to the core; the core names no study) and the progress bars
    "biaslib": 0, "config": 0, "io": 0, "errors": 0, "ratios": 0, "articles": 0, "hardware": 0, "provenance": 0,
    "results": 0, "layers": 0, "layout": 0, "figures": 0, "study_registry": 0, "progress": 0,
    # 1 the synthetic world and the loaders of the real datasets
    "world": 1, "data": 1,
    # 2 pure metrics on arrays and tables
    "metrics": 2,
    # 3 pipeline steps, each knowing no study
    "models": 3, "generate": 3, "mix": 3, "train": 3, "features": 3, "finetune": 3, "prompts": 3, "faces": 3,
    "seeded_loader": 3, "text_encoder": 3, "world_models": 3, "evaluate": 3, "evaluations": 3,
    # 4 studies: one package each under biaslib/studies/
    "studies": 4,
    # 5 entry points
    "cli": 5,
}

#: (importing module, imported module) pairs that run against the order today; none are left (issue 16 moved the
#: world's pipeline training and its measurements out of ``world/`` into ``world_models/``). A pair not listed
#: here fails the test; a listed pair that no longer occurs fails it too.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


def layer_of(module: str) -> int | None:
    """The layer of a dotted biaslib module name (``biaslib.world.render`` → 1); None outside biaslib."""
    parts = module.split(".")
    if parts[0] != "biaslib":
        return None
    return LAYERS.get(parts[1], None) if len(parts) > 1 else LAYERS["biaslib"]


def study_of(module: str) -> str | None:
    """The study a module belongs to — the package under ``biaslib.studies`` it sits in
    (``biaslib.studies.<name>.evaluation`` → ``<name>``); None for every other module."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["biaslib", "studies"] else None
