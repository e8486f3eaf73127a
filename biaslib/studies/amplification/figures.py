"""The amplification study's figures and findings, from its result JSONs alone (notebook ``05_figures`` and
``biaslib figures draw`` make the same calls).

:func:`load_study` collects the results of every experiment of a params file (its variants side by side);
the ``*_figures`` functions each return ``{name: Figure}`` (names ``<tag>_…``, ``tag`` = the params file's
experiment); :func:`study_findings` returns the findings as Markdown lines; :func:`draw_study` saves every
figure as PNG and PDF and returns the findings. Nothing here trains or evaluates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.layout import RunLayout
from biaslib.studies.amplification.report import TREND_KEYS, findings, probe_findings, probe_spread, ratio_trends
from biaslib.studies.amplification.results import StudyResults, drawn_gaps, load_study

#: Markedness axes drawn (FairFace), in panel order.
AXES: tuple[str, ...] = ("race", "gender", "age")


def retrieval_figures(study: StudyResults, k: int = 1) -> dict[str, Any]:
    """R@k per group vs ratio for PHASE and COCO-bias (one row of panels per experiment)."""
    from biaslib import figures

    out = {}
    for dataset in ("phase", "coco_bias"):
        part = study.groups[(study.groups["dataset"] == dataset) & (study.groups["metric"] == f"R@{k}")]
        if len(part):
            out[f"{study.tag}_retrieval_{dataset}_R{k}"] = figures.facet_lines(
                part, "ratio", "value", col="attribute", hue="group", row="experiment",
                xlabel="ratio of generated images", ylabel=f"R@{k}",
                title=f"{dataset}: text→image R@{k} per group (95% CI)")
    return out


def markedness_figures(study: StudyResults) -> dict[str, Any]:
    """FairFace self-similarity and person preference (the attribute's own prompts) per group vs ratio."""
    from biaslib import figures

    g = study.groups
    fairface = (g["dataset"] == "fairface") & g["attribute"].isin(AXES)
    parts = {"self_similarity": (g[fairface & (g["metric"] == "self_similarity")], "self-similarity (cosine)"),
             "person_preference": (g[fairface & (g["metric"] == "person_preference_" + g["attribute"])],
                                   "person preference")}
    return {f"{study.tag}_{name}": figures.facet_lines(part, "ratio", "value", col="attribute", hue="group",
                                                      row="experiment", xlabel="ratio of generated images",
                                                      ylabel=label, sharey=False,
                                                      title=f"FairFace {label} per group (95% CI)")
            for name, (part, label) in parts.items() if len(part)}


def geode_figures(study: StudyResults) -> dict[str, Any]:
    """GeoDE zero-shot accuracy per region vs ratio, one panel per experiment."""
    from biaslib import figures

    geode = study.groups[(study.groups["dataset"] == "geode") & (study.groups["metric"] == "accuracy")]
    if not len(geode):
        return {}
    return {f"{study.tag}_geode_regions": figures.facet_lines(
        geode, "ratio", "value", col="experiment", hue="group", xlabel="ratio of generated images",
        ylabel="accuracy", title="GeoDE zero-shot accuracy per region (95% CI)")}


def gap_figures(study: StudyResults, k: int = 1) -> dict[str, Any]:
    """Between-group gaps vs ratio, experiments side by side, with the chance floor (``null_gap``) dotted."""
    from biaslib import figures

    chosen = drawn_gaps(study, k)
    if not len(chosen):
        return {}
    return {f"{study.tag}_gaps": figures.facet_lines(
        chosen, "ratio", "value", col="panel", hue="experiment", sharey=False, xlabel="ratio of generated images",
        ylabel="gap (max − min group)", title="between-group gaps vs mixing ratio (95% CI; dotted: chance floor)",
        panel_inches=(3.0, 2.4), col_wrap=5, floor="null_gap")}


def amplification_figures(study: StudyResults, n_boot: int = 300) -> tuple[dict[str, Any], pd.DataFrame]:
    """Generator-vs-data amplification of every experiment with a generation run (raw, corrected, faithful
    baseline): ``({name: Figure}, table)``; empty without a generation run."""
    from biaslib.studies.amplification.generator_amplification import amplification_figure, study_amplification

    runs = [p for p in study.params if RunLayout(p).generated().is_dir()]
    if not runs:
        return {}, pd.DataFrame()
    table = study_amplification(runs, n_boot=n_boot)
    return {f"{study.tag}_generator_amplification": amplification_figure(table)}, table


def dose_response_figures(study: StudyResults, k: int = 1, dose: pd.DataFrame | None = None) -> dict[str, Any]:
    """The dose-response forest plot of every headline measure (``dose``: its
    :func:`.dose_response.trend_table`, computed when not given) and, where the association was evaluated,
    each trained CLIP's association values against the ratio."""
    from biaslib.studies.amplification.dose_response import (
        headline_measures,
        replicate_figure,
        trend_figure,
        trend_table,
    )

    table = trend_table(study, k) if dose is None else dose
    if not table["slope"].notna().any():
        return {}
    out = {f"{study.tag}_trends": trend_figure(table)}
    measures = headline_measures(study, k)
    if (measures["family"] == "association").any():
        out[f"{study.tag}_association_replicates"] = replicate_figure(measures)
    return out


def study_findings(study: StudyResults, k: int = 1, dose: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """Findings computed from the results (:mod:`.report`): ``gaps`` (each drawn gap's first-to-last
    change with p, q and its chance floor, replicate 0), ``overall`` (R@k and GeoDE accuracy), ``dose_response``
    (:func:`.dose_response.trend_findings`: slopes over every trained model, replicates included) and
    ``training_noise`` (how far another training seed moved the drawn gaps, :func:`.report.probe_spread`, or
    that it is not measured). ``dose``: the study's :func:`.dose_response.trend_table` when already
    computed."""
    from biaslib.studies.amplification.dose_response import trend_findings, trend_table

    chosen = drawn_gaps(study, k)
    results = study.results
    min_p = 1 / (1 + study.base.eval.n_perm)  # the gap tests' smallest attainable p
    family = study.base.analysis.gap_family
    trends = ratio_trends(results, min_p=min_p, family=family).merge(chosen[TREND_KEYS].drop_duplicates(),
                                                                     on=TREND_KEYS)
    overall = ratio_trends(results[(results["kind"] == "overall") & results["metric"].isin([f"R@{k}", "accuracy"])],
                           kind="overall")
    out = {"gaps": findings(trends, what="gap"), "overall": findings(overall, what="value"),
           "dose_response": trend_findings(trend_table(study, k) if dose is None else dose),
           "training_noise": probe_findings(probe_spread(chosen.drop(columns="panel")), trends)}
    return out


def draw_study(params_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
               figures_dir: str | Path = "figures", k: int = 1, amplification: bool = True) -> dict[str, Any]:
    """Every figure of the study saved as ``<figures_dir>/<name>.png`` and ``.pdf``; returns ``figures``
    (name → path), ``findings`` (:func:`study_findings`) and ``missing`` (experiments without results)."""
    import matplotlib.pyplot as plt

    from biaslib import figures
    from biaslib.studies.amplification.dose_response import trend_table

    study = load_study(params_file, overrides)
    dose = trend_table(study, k)
    figures.set_style()
    drawn = {**retrieval_figures(study, k), **markedness_figures(study), **geode_figures(study),
             **gap_figures(study, k), **dose_response_figures(study, k, dose)}
    if amplification:
        drawn.update(amplification_figures(study)[0])
    paths = {}
    for name, fig in drawn.items():
        figures.save_figure(fig, Path(figures_dir) / name)
        paths[name] = Path(figures_dir) / f"{name}.png"
        plt.close(fig)
    return {"figures": paths, "findings": study_findings(study, k, dose), "missing": study.missing}


__all__ = ["AXES", "StudyResults", "amplification_figures", "dose_response_figures", "draw_study", "drawn_gaps",
           "gap_figures", "geode_figures", "load_study", "markedness_figures", "retrieval_figures", "study_findings"]
