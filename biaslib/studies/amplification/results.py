"""The amplification study's results, read from its result JSONs alone: every experiment of a params file (its
variants side by side) and the selection of measures that figures, findings and the dose-response tests share.

:func:`load_study` collects them (:func:`biaslib.results.collect`); :func:`drawn_gaps` chooses the between-group
gaps that are drawn and tested; :class:`Measure` names one row per trained model in params
(``dataset:attribute:metric[:kind]``) and :func:`family_of` turns a declared list of them into a row selector.
Nothing here trains, evaluates or draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params, load_params, variant_params
from biaslib.errors import BiaslibError
from biaslib.results import collect, per_group

#: Kinds of row a :class:`Measure` can name: one row per trained model.
MEASURE_KINDS = ("overall", "gap", "min_over_max")


class MeasureError(BiaslibError, ValueError):
    """A measure named in params that is not ``dataset:attribute:metric[:kind]``."""


@dataclass(frozen=True)
class Measure:
    """One row per trained model: ``dataset:attribute:metric[:kind]`` (kind ``overall`` unless named)."""

    dataset: str
    attribute: str
    metric: str
    kind: str = "overall"

    @classmethod
    def parse(cls, text: str) -> Measure:
        parts = text.split(":")
        if len(parts) not in (3, 4) or not all(parts) or (len(parts) == 4 and parts[3] not in MEASURE_KINDS):
            raise MeasureError(f"measure {text!r}: expected dataset:attribute:metric[:kind] with kind one of "
                                     f"{', '.join(MEASURE_KINDS)} (e.g. fairface:gender:cosine_vs_data)")
        return cls(*parts)

    @property
    def label(self) -> str:
        return " · ".join([self.dataset, self.attribute, self.metric] + ([self.kind] if self.kind != "overall" else []))

    def select(self, results: pd.DataFrame) -> pd.DataFrame:
        """This measure's rows of a :func:`biaslib.results.collect` frame."""
        return results[(results["dataset"] == self.dataset) & (results["attribute"] == self.attribute)
                       & (results["metric"] == self.metric) & (results["kind"] == self.kind)]




@dataclass
class StudyResults:
    """Every result row of a params file's experiments: ``results`` (tidy rows with ``ratio`` = the fraction),
    ``groups`` (:func:`biaslib.results.per_group`), ``experiments`` (names in the file's order), ``missing``
    (experiments without results yet), ``tag`` (figure-name prefix) and the ``params`` of each experiment."""

    base: Params
    params: list[Params]
    results: pd.DataFrame
    groups: pd.DataFrame
    missing: list[str]

    @property
    def experiments(self) -> list[str]:
        return [p.experiment for p in self.params]

    @property
    def tag(self) -> str:
        return self.base.experiment


def load_study(params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> StudyResults:
    """The results of every experiment of ``params_file`` (variants side by side); an error names the runs folder
    when there is none."""
    from biaslib.errors import DataLayoutError

    base = load_params(params_file, dict(overrides or {}))
    experiments = variant_params(params_file, dict(overrides or {}))
    names = [p.experiment for p in experiments]
    results = collect(base.runs_dir, study="amplification")
    results = results[results["experiment"].isin(names)].copy() if len(results) else results
    if not len(results):
        raise DataLayoutError(f"no results for {names} under {base.runs_dir}; run the evaluations first (04_eval, "
                              "biaslib eval run)")
    results["ratio"] = results["ratio_fraction"]
    return StudyResults(base, experiments, results, per_group(results),
                        sorted(set(names) - set(results["experiment"])))


def drawn_gaps(study: StudyResults, k: int = 1) -> pd.DataFrame:
    """The gap rows drawn and tested: R@k, self-similarity, the attribute's own person preference, GeoDE
    accuracy (FairFace intersections left out), with a ``panel`` label."""
    results = study.results
    gap = results[results["kind"] == "gap"]
    chosen = gap[(gap["metric"] == f"R@{k}") | (gap["metric"] == "self_similarity")
                 | (gap["metric"] == "person_preference_" + gap["attribute"]) | (gap["metric"] == "accuracy")]
    chosen = chosen[~chosen["attribute"].str.contains("_") | (chosen["dataset"] != "fairface")]
    return chosen.assign(panel=chosen["dataset"] + " · " + chosen["attribute"] + " · "
                         + chosen["metric"].str.replace("person_preference_.*", "person pref.", regex=True))


def family_of(measures: tuple[str, ...]) -> Callable[[pd.DataFrame], pd.Series] | None:
    """A selector of the rows of a table (columns dataset, attribute, metric, kind) that belong to the declared
    family ``measures`` (:class:`Measure` texts); None for an empty declaration (every row)."""
    if not measures:
        return None
    parsed = [Measure.parse(text) for text in measures]

    def select(table: pd.DataFrame) -> pd.Series:
        chosen = pd.Series(False, index=table.index)
        for measure in parsed:
            chosen |= table.index.isin(measure.select(table).index)
        return chosen

    return select


__all__ = ["MEASURE_KINDS", "Measure", "MeasureError", "StudyResults", "drawn_gaps", "family_of", "load_study"]
