"""The amplification study's answer to its question: which measures move with the share of generated training
data beyond training and evaluation noise, and which design would detect a given move.

Works on a :class:`.results.StudyResults` (every trained model's results, replicates included).
:func:`headline_measures` chooses one value per trained model and measure: the association endpoint and its
skews (evaluation ``association``, overall over the occupation queries), the drawn between-group gaps
(:func:`.results.drawn_gaps`) and overall R@k / GeoDE accuracy. :func:`trend_table` is
:func:`.report.trend` over them (slope per unit ratio, its interval, permutation p,
Benjamini–Hochberg q over the family the params declare (``analysis.trend_family``; default the whole table),
``called`` only with replicates; a family that could not call one finding is an error); :func:`design_table` adds
:func:`.report.power`'s variances and the slope each design detects (:func:`design_of` reads a params
file's design); :func:`trend_findings` states each as a sentence; :func:`markdown_table` formats either for RESULTS.md;
:func:`trend_figure` and :func:`replicate_figure` draw them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import Params
from biaslib.metrics.trend import TREND_BY, detectable_slope
from biaslib.ratios import ratio_fraction
from biaslib.studies.amplification.report import power, trend
from biaslib.studies.amplification.results import StudyResults, drawn_gaps, family_of

#: The association endpoint: the signed excess of women in the top k over the data's share, per occupation
#: averaged (positive: stereotyped occupations retrieve more stereotyped than the training data).
ENDPOINT = "retrieval_vs_data"
#: Families of measures, in table order.
FAMILIES = ("association", "overall", "gap")
LABELS = ["measure", "family"]


#: The continuous association measures (:mod:`biaslib.metrics.association`): image side, text side.
CONTINUOUS = ("cosine_vs_data", "text_vs_data")


def _association(results: pd.DataFrame, k: int) -> pd.DataFrame:
    """Overall association rows at cut-off ``k``: the endpoint (gender), the continuous association slopes
    (:data:`CONTINUOUS`), MaxSkew@k against the dataset's shares (gender, race, age) and NDKL@k (gender)."""
    overall = results[(results["evaluation"] == "association") & (results["kind"] == "overall")]
    metric, attribute = overall["metric"], overall["attribute"]
    chosen = overall[((metric == f"{ENDPOINT}@{k}") & (attribute == "gender")) | metric.isin(CONTINUOUS)
                     | (metric == f"max_skew@{k}_dataset")
                     | ((metric == f"ndkl@{k}_dataset") & (attribute == "gender"))]
    return chosen.assign(measure="association · " + chosen["attribute"] + " · " + chosen["metric"],
                         family="association")


def headline_measures(study: StudyResults, k: int = 1, association_k: int | None = None) -> pd.DataFrame:
    """The rows tested for a dose-response, one per trained model and measure, with ``measure`` (a readable
    label) and ``family`` (:data:`FAMILIES`). ``k``: the retrieval cut-off (R@k); ``association_k``: the
    association cut-off (default: the first of the base params' ``eval.association_ks``)."""
    results = study.results
    association_k = association_k or study.base.eval.association_ks[0]
    gaps = drawn_gaps(study, k)
    gaps = gaps.assign(measure=gaps["panel"] + " · gap", family="gap").drop(columns="panel")
    overall = results[(results["kind"] == "overall") & results["dataset"].isin(["phase", "coco_bias", "geode"])
                      & results["metric"].isin([f"R@{k}", "accuracy"])]
    overall = overall.assign(measure=overall["dataset"] + " · " + overall["metric"], family="overall")
    return pd.concat([_association(results, association_k), overall, gaps], ignore_index=True)


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by family (:data:`FAMILIES`), measure and experiment."""
    order = {family: i for i, family in enumerate(FAMILIES)}
    return (table.assign(_family=table["family"].map(order)).sort_values(["_family", "measure", "experiment"])
            .drop(columns="_family").reset_index(drop=True))


def _with_labels(table: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in TREND_BY if c != "experiment"]
    labels = measures[keys + LABELS].astype({c: str for c in keys}).drop_duplicates(keys)
    return _ordered(table.astype({c: str for c in keys}).merge(labels, on=keys, how="left"))


def trend_table(study: StudyResults, k: int = 1, association_k: int | None = None, *, n_boot: int = 2000,
                n_perm: int = 5000, seed: int = 0) -> pd.DataFrame:
    """:func:`.report.trend` of every :func:`headline_measures` measure (q-values over this table),
    labelled with ``measure`` and ``family``."""
    measures = headline_measures(study, k, association_k)
    return _with_labels(trend(measures, n_boot=n_boot, n_perm=n_perm, seed=seed, **_family(study)), measures)


def _family(study: StudyResults) -> dict[str, Any]:
    """The declared trend family and level of a study's params (``analysis``), as :func:`.report.trend`
    takes them."""
    return {"family": family_of(study.base.analysis.trend_family), "q_level": study.base.analysis.q_level}


def design_of(params: Params, replicates: int | None = None) -> tuple[int, list[float]]:
    """A params file's design: (``replicates``, default ``train.replicates``; its ``mix.ratios`` as fractions)."""
    return (params.train.replicates if replicates is None else replicates,
            [ratio_fraction(code) for code in params.mix.ratios])


def design_table(study: StudyResults, designs: Mapping[str, tuple[int, Sequence[float]]], k: int = 1,
                 association_k: int | None = None) -> pd.DataFrame:
    """:func:`trend_table` with, per measure, the sd of one trained model's value (``model_sd``, training and
    evaluation noise; ``training_share``: the training part of its variance) and one column
    ``detectable <label>`` per design ``{label: (replicates, ratio fractions)}``: the slope that design detects
    with 80% power at α = 0.05 if its models vary as much as the 80% upper bound of this study's variance
    (:func:`.report.power`: the pilot's variance is itself an estimate; the detectable slope is
    proportional to that sd, so one variance table serves every design)."""
    if not designs:
        raise ValueError("design_table needs at least one design")
    measures = headline_measures(study, k, association_k)
    keys = [*TREND_BY, *LABELS]
    table = _with_labels(trend(measures, **_family(study)), measures)
    variances = _with_labels(power(measures, *next(iter(designs.values()))), measures)
    variances["model_sd"] = np.sqrt(variances["model_var"])
    with np.errstate(invalid="ignore", divide="ignore"):
        variances["training_share"] = variances["training_var"] / variances["model_var"]
    measured = variances["model_sd"].notna().any()  # without replicates there is no variance to size a design with
    for label, (replicates, ratios) in designs.items():
        factor = detectable_slope(1.0, replicates, ratios) if measured else np.nan
        variances[f"detectable {label}"] = factor * np.sqrt(variances["model_var_upper"])
    columns = ["model_sd", "training_share", *(f"detectable {label}" for label in designs)]
    return table.merge(variances[keys + columns], on=keys, how="left")


def _p(x: float) -> str:
    return "n/a" if pd.isna(x) else ("< 0.001" if x < 1e-3 else f"{x:.3f}")


def _disagreement(row: Any) -> str:
    """Why a slope's interval and p-value disagree about 0, when they do (they are different methods): empty
    otherwise."""
    excludes = row.ci_low > 0 or row.ci_high < 0
    if pd.isna(row.p_value) or excludes == (row.p_value < 0.05):
        return ""
    interval = ("the t interval (spread of models at one ratio)" if row.replicated
                else "the interval (evaluation noise only)")
    side = "leaves 0 out" if excludes else "holds 0"
    return (f" (the interval {side} while p is {'≥' if excludes else '<'} 0.05: {interval} and the permutation of "
            "ratio labels over whole models are different methods; the p-value is the test)")


def trend_findings(table: pd.DataFrame) -> list[str]:
    """One sentence per row of :func:`trend_table` (slope [interval], p, q, replicates and the verdict), then a
    count of called trends per experiment."""
    lines = []
    for row in table.itertuples(index=False):
        if pd.isna(row.slope):
            continue
        if row.called:
            verdict = "a trend beyond training and evaluation noise"
        elif not row.replicated:
            verdict = "not tested against training noise (one model per ratio)"
        elif pd.isna(row.q_value):
            verdict = "outside the declared family (analysis.trend_family): reported, not called"
        else:
            verdict = "no trend beyond noise"
        lines.append(f"{row.experiment} · {row.measure}: slope {row.slope:+.3f} [{row.ci_low:+.3f}, "
                     f"{row.ci_high:+.3f}] per unit ratio, p {_p(row.p_value)}, q {_p(row.q_value)}, "
                     f"{row.models} models ({row.min_replicates}+ per ratio): {verdict}{_disagreement(row)}")
    for experiment, part in table.groupby("experiment", sort=False):
        tested = part[part["slope"].notna()]
        family = tested[tested["q_value"].notna()]
        lines.append(f"{experiment}: {int(tested['called'].sum())} of {len(family)} measures of the declared family "
                     f"trend with the ratio (q < the level over the family, replicated; {len(tested) - len(family)} "
                     "more reported with p only)")
    return lines


def markdown_table(frame: pd.DataFrame, columns: Sequence[str], digits: int = 3) -> str:
    """A Markdown table of ``columns`` of ``frame`` (floats to ``digits`` decimals, p/q-values as in the
    findings)."""
    def cell(column: str, value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if isinstance(value, (float, np.floating)):
            if column in ("p_value", "q_value"):
                return _p(float(value))
            return "n/a" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines)


def trend_figure(table: pd.DataFrame, title: str | None = None) -> Any:
    """Forest plot of :func:`trend_table`: one row per measure, each experiment's slope with its interval; a
    filled marker where the trend is called (q < 0.05, replicated), hollow otherwise."""
    import matplotlib.pyplot as plt

    table = table[table["slope"].notna()]
    measures = list(dict.fromkeys(table["measure"]))
    experiments = list(dict.fromkeys(table["experiment"]))
    fig, ax = plt.subplots(figsize=(7.2, 0.28 * len(measures) * max(1, len(experiments) / 2) + 1.4))
    step = 0.7 / max(len(experiments), 1)
    for j, experiment in enumerate(experiments):
        part = table[table["experiment"] == experiment].set_index("measure").reindex(measures)
        y = np.arange(len(measures)) + (j - (len(experiments) - 1) / 2) * step
        color = f"C{j}"
        ax.hlines(y, part["ci_low"], part["ci_high"], color=color, lw=1.4)
        called = part["called"].fillna(False).astype(bool).to_numpy()
        if called.any():
            ax.scatter(part["slope"][called], y[called], color=color, zorder=3, s=22, label=f"{experiment} (called)")
        ax.scatter(part["slope"][~called], y[~called], facecolor="white", edgecolor=color, zorder=3, s=22,
                   label=experiment)
    ax.axvline(0, color="0.4", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(measures)), measures, fontsize=7)
    ax.invert_yaxis()
    replicated = table["replicated"].fillna(False).astype(bool) if "replicated" in table else pd.Series(False)
    band = ("t interval, spread of the models at each ratio" if replicated.all() else
            "evaluation sampling only (one model per ratio)" if not replicated.any() else
            "t interval where every ratio has replicates, else evaluation sampling only")
    ax.set_xlabel(f"slope per unit ratio (all real → all generated); 95%: {band}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title or "dose-response: filled = trend called (q < 0.05 over the table, replicated)", fontsize=9)
    fig.tight_layout()
    return fig


def replicate_figure(measures: pd.DataFrame, family: str = "association", title: str | None = None) -> Any:
    """Every trained model's value of each measure of ``family`` against the ratio (points: replicates, with
    their evaluation intervals; line: the mean over replicates), one panel per measure, one colour per
    experiment."""
    from biaslib import figures

    part = measures[measures["family"] == family]
    return figures.facet_lines(part, "ratio_fraction", "value", col="measure", hue="experiment", sharey=False,
                               xlabel="ratio of generated images", ylabel="value", col_wrap=3,
                               panel_inches=(3.4, 2.6), reference=0.0,
                               title=title or f"{family}: each trained CLIP (points) and the replicate mean (line)")


__all__ = ["CONTINUOUS", "ENDPOINT", "FAMILIES", "design_of", "design_table", "headline_measures", "markdown_table",
           "replicate_figure", "trend_figure", "trend_findings", "trend_table"]
