"""The amplification study's results, read from its result JSONs alone: every experiment of a params file (its
variants side by side) and the selection of measures that figures, findings and the dose-response tests share.

:func:`load_study` collects them (:func:`biaslib.results.collect`); :func:`drawn_gaps` chooses the between-group
gaps that are drawn and tested. Nothing here trains, evaluates or draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params, load_params, variant_params
from biaslib.results import collect, per_group


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
    results = collect(base.runs_dir)
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


__all__ = ["StudyResults", "drawn_gaps", "load_study"]
