"""The registry of bias evaluations: what each one reads, which settings change its numbers, which of its rows the
benchmark's leaderboard ranks, and the function that computes its rows.

An evaluation is one module that builds an :class:`Evaluation` and passes it to :func:`register_evaluation` when
it is imported. The registry knows each evaluation's module by name before importing it (:func:`declare_module`:
the built-in ones, and those other packages declare under the entry-point group :data:`ENTRY_POINT_GROUP`), so
listing names (the CLI's choices and help) imports nothing heavy; :func:`get_evaluation` imports the module on first
use. :mod:`biaslib.evaluate` runs whatever is registered; ``eval.evaluations`` and the benchmark's leaderboard
measures come from here too (docs/development.md, "Add an evaluation").
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

    from biaslib.config import EvalConfig
    from biaslib.evaluations.context import EvalContext

#: The settings of ``eval`` that every evaluation's numbers depend on (bootstrap, tests, feature precision).
COMMON_SETTINGS: tuple[str, ...] = ("n_boot", "n_perm", "min_group_size", "ci", "seed", "precision", "feature_dtype")


class Measure(NamedTuple):
    """A leaderboard measure: the rows of ``evaluation`` of ``kind`` whose metric fully matches the regular
    expression ``metric``, shown as ``label``, and the direction in which a model is ``better`` (``higher``,
    ``lower`` or ``lower |gap|``)."""

    evaluation: str
    kind: str
    metric: str
    label: str
    better: str

    def rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` (a benchmark collect frame or a leaderboard) this measure takes."""
        return frame[(frame["evaluation"] == self.evaluation) & (frame["kind"] == self.kind)
                     & frame["metric"].str.fullmatch(self.metric)]


@dataclass(frozen=True)
class Evaluation:
    """A bias evaluation of a CLIP.

    ``name``: its name in ``eval.evaluations``, result file names and the CLI. ``summary``: one line for help
    texts. ``datasets``: the datasets it reads (names of :mod:`biaslib.evaluations.datasets`); ``run(ctx,
    tables)`` gets an :class:`~biaslib.evaluations.context.EvalContext` and the loaded tables of those datasets and
    returns its result rows (:func:`biaslib.evaluations.rows.row`). ``settings``: the ``eval`` keys beyond
    :data:`COMMON_SETTINGS` that change its numbers (recorded in each result; a rerun with other values
    recomputes or refuses); ``file_settings``: those of them that name a file (recorded with the file's sha256).
    ``options``: settings of its own with their defaults, set in ``eval.options.<name>`` (unknown keys refused).
    ``measures``: its rows the benchmark's leaderboard ranks. ``rows_note``: a note on a change of its rows after
    results were written; a result recorded without it is recomputed. ``check(cfg)``: raises ``ValueError``
    naming the ``eval`` key when a setting cannot work.
    """

    name: str
    summary: str
    datasets: tuple[str, ...]
    run: Callable[[EvalContext, dict[str, pd.DataFrame]], list[dict[str, Any]]]
    settings: tuple[str, ...] = ()
    file_settings: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    measures: tuple[Measure, ...] = ()
    rows_note: str | None = None
    check: Callable[[EvalConfig], None] | None = None

    def options_for(self, cfg: EvalConfig) -> dict[str, Any]:
        """Its :attr:`options` as ``cfg`` sets them: the declared defaults, overridden by ``eval.options.<name>``."""
        return {**self.options, **cfg.options.get(self.name, {})}

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise ValueError(f"evaluation name {self.name!r}: lower-case letters, digits and _ (a file name part)")
        stray = [m.evaluation for m in self.measures if m.evaluation != self.name]
        if stray or not set(self.file_settings) <= set(self.settings):
            raise ValueError(f"evaluation {self.name}: measures must rank its own rows and file_settings be among "
                             f"its settings (measures of {stray}, file_settings {list(self.file_settings)})")


#: The entry-point group under which another package declares its evaluations: ``name = "package.module"``.
ENTRY_POINT_GROUP = "biaslib.evaluations"

_REGISTRY: dict[str, Evaluation] = {}
_MODULES: dict[str, str] = {}


def declare_module(name: str, module: str) -> None:
    """Say that importing ``module`` registers the evaluation ``name`` (listed from now on, imported on first use)."""
    _MODULES.setdefault(name, module)


def _declare_entry_points() -> None:
    """Declare every evaluation other installed packages name under :data:`ENTRY_POINT_GROUP`."""
    for point in entry_points(group=ENTRY_POINT_GROUP):
        declare_module(point.name, point.value)


def register_evaluation(evaluation: Evaluation, *, replace: bool = False) -> Evaluation:
    """Add ``evaluation`` to the registry and return it; a second evaluation of the same name is refused unless
    ``replace``."""
    if evaluation.name in _REGISTRY and not replace and _REGISTRY[evaluation.name] is not evaluation:
        raise ValueError(f"an evaluation named {evaluation.name!r} is already registered")
    _REGISTRY[evaluation.name] = evaluation
    return evaluation


def unregister_evaluation(name: str) -> None:
    """Remove ``name`` from the registry (a test's or a notebook's own evaluation); unknown names are ignored."""
    _REGISTRY.pop(name, None)
    _MODULES.pop(name, None)


def get_evaluation(name: str) -> Evaluation:
    """The evaluation ``name``, its module imported on first use; ``ValueError`` naming every known one otherwise
    (and when its declared module does not register it)."""
    if name not in _REGISTRY and name in _MODULES:
        importlib.import_module(_MODULES[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        where = f" (module {_MODULES[name]} did not register it)" if name in _MODULES else ""
        raise ValueError(f"unknown evaluation {name!r}{where}; choose from {', '.join(list_evaluations())}") from None


def list_evaluations() -> list[str]:
    """Names of the known evaluations — declared (the built-in ones first, in their order), then registered at run
    time — without importing them."""
    return list(dict.fromkeys([*_MODULES, *_REGISTRY]))


def leaderboard_measures() -> tuple[Measure, ...]:
    """Every known evaluation's leaderboard measures, in :func:`list_evaluations` order (imports them all)."""
    return tuple(m for name in list_evaluations() for m in get_evaluation(name).measures)
