"""Findings computed from results: how each metric moves between the lowest and the highest mixing ratio.

Works on a :func:`biaslib.results.collect` frame. :func:`ratio_trends` compares, per (experiment,
evaluation, dataset, attribute, metric), the value at the lowest ratio with the value at the highest
(for ``kind="gap"``: the between-group gap with its bootstrap interval), and fits a least-squares slope
over all ratios. A change counts as beyond sampling error only when the two 95% intervals do not
overlap (a conservative test for two independent estimates). :func:`findings` turns the table into
sentences, so that notebook text states whatever the results say.

Bootstrap intervals only cover the sampling of *evaluation* data. :func:`replicate_spread` measures the
other source of noise, training itself: experiments whose CLIPs were trained on identical data (the
study's variants at ratio 0) differ only by run-to-run nondeterminism, so their disagreement is a floor
below which a change along the ratio is not evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TREND_KEYS = ["experiment", "evaluation", "dataset", "attribute", "metric"]
SPREAD_COLUMNS = [*TREND_KEYS[1:], "experiments", "values", "spread", "ci_width"]
TREND_COLUMNS = [*TREND_KEYS, "ratios", "ratio_first", "value_first", "ci_low_first", "ci_high_first", "ratio_last",
                 "value_last", "ci_low_last", "ci_high_last", "change", "slope", "direction"]


def ratio_trends(frame: pd.DataFrame, kind: str = "gap") -> pd.DataFrame:
    """First-vs-last-ratio comparison of every metric's ``kind`` rows (``gap``, ``overall`` or
    ``min_over_max``).

    Returns :data:`TREND_COLUMNS`: values and intervals at the lowest and highest ratio (fractions),
    ``change`` = last − first, ``slope`` = least-squares slope of the value over the ratio fraction
    (units of the metric per unit ratio; NaN with fewer than two ratios), ``direction`` = ``"up"`` /
    ``"down"`` when the two intervals do not overlap, else ``"no change"`` (``"n/a"`` without intervals).
    """
    rows = frame[(frame["kind"] == kind) & frame["value"].notna()]
    out = []
    for keys, part in rows.groupby(TREND_KEYS, sort=True):
        part = part.sort_values("ratio_fraction")
        first, last = part.iloc[0], part.iloc[-1]
        x, y = part["ratio_fraction"].to_numpy(float), part["value"].to_numpy(float)
        slope = float(np.polyfit(x, y, 1)[0]) if len(part) > 1 and np.ptp(x) > 0 else np.nan
        out.append({**dict(zip(TREND_KEYS, keys)), "ratios": len(part),
                    "ratio_first": first["ratio_fraction"], "value_first": first["value"],
                    "ci_low_first": first["ci_low"], "ci_high_first": first["ci_high"],
                    "ratio_last": last["ratio_fraction"], "value_last": last["value"],
                    "ci_low_last": last["ci_low"], "ci_high_last": last["ci_high"],
                    "change": last["value"] - first["value"], "slope": slope,
                    "direction": _direction(first, last)})
    return pd.DataFrame(out, columns=TREND_COLUMNS)


def _direction(first: pd.Series, last: pd.Series) -> str:
    """``up``/``down`` when the intervals are disjoint, ``no change`` when they overlap, ``n/a`` without."""
    bounds = [first["ci_low"], first["ci_high"], last["ci_low"], last["ci_high"]]
    if any(pd.isna(b) for b in bounds):
        return "n/a"
    if last["ci_low"] > first["ci_high"]:
        return "up"
    if last["ci_high"] < first["ci_low"]:
        return "down"
    return "no change"


def findings(trends: pd.DataFrame, what: str = "gap") -> list[str]:
    """One sentence per row of :func:`ratio_trends`, then a count per direction and experiment.

    ``what`` names the quantity in the sentences (``"gap"`` for between-group gaps).
    """
    sentences = []
    for row in trends.itertuples(index=False):
        verdict = {"up": f"up by {row.change:.3f}, beyond sampling error",
                   "down": f"down by {-row.change:.3f}, beyond sampling error",
                   "no change": f"{row.change:+.3f}, within sampling error",
                   "n/a": f"{row.change:+.3f} (no interval)"}[row.direction]
        sentences.append(
            f"{row.experiment} · {row.dataset} {row.attribute} {row.metric}: {what} {row.value_first:.3f} "
            f"[{row.ci_low_first:.3f}, {row.ci_high_first:.3f}] at ratio {row.ratio_first:.1f} → "
            f"{row.value_last:.3f} [{row.ci_low_last:.3f}, {row.ci_high_last:.3f}] at ratio {row.ratio_last:.1f} "
            f"({verdict}).")
    for experiment, part in trends.groupby("experiment", sort=True):
        counts = part["direction"].value_counts()
        sentences.append(f"{experiment}: of {len(part)} {what}s, {counts.get('up', 0)} grew and "
                         f"{counts.get('down', 0)} shrank beyond sampling error from the lowest to the highest "
                         f"ratio; {counts.get('no change', 0)} changed within it.")
    return sentences


def replicate_spread(frame: pd.DataFrame, experiments: list[str], ratio: float = 0.0,
                     kind: str = "gap") -> pd.DataFrame:
    """How much CLIPs trained on identical data disagree: the ``kind`` rows of ``experiments`` at ``ratio``.

    Returns :data:`SPREAD_COLUMNS`, one row per (evaluation, dataset, attribute, metric) that every
    experiment has: ``values`` (tuple, in ``experiments`` order), ``spread`` = max − min of them and
    ``ci_width`` = the median width of their 95% bootstrap intervals (same units as the metric).
    """
    rows = frame[(frame["kind"] == kind) & frame["experiment"].isin(experiments)
                 & np.isclose(frame["ratio_fraction"], ratio) & frame["value"].notna()]
    out = []
    for keys, part in rows.groupby(TREND_KEYS[1:], sort=True):
        if set(part["experiment"]) != set(experiments):
            continue
        part = part.set_index("experiment").loc[experiments]
        values = part["value"].to_numpy(float)
        out.append({**dict(zip(TREND_KEYS[1:], keys)), "experiments": tuple(experiments),
                    "values": tuple(values), "spread": float(np.ptp(values)),
                    "ci_width": float(np.median(part["ci_high"] - part["ci_low"]))})
    return pd.DataFrame(out, columns=SPREAD_COLUMNS)


def replicate_findings(spread: pd.DataFrame, changes: pd.DataFrame | None = None, what: str = "gap") -> list[str]:
    """Sentences on training noise from :func:`replicate_spread`; with ``changes`` (a
    :func:`ratio_trends` table) also how many first-to-last changes exceed the largest replicate spread of
    the same metric."""
    if spread.empty:
        return []
    experiments = " and ".join(spread["experiments"].iloc[0])
    sentences = [f"{experiments} trained CLIPs on identical data and settings: their {what}s differ by a median of "
                 f"{spread['spread'].median():.3f} (largest {spread['spread'].max():.3f}, "
                 f"{_label(spread.loc[spread['spread'].idxmax()])}), against a median bootstrap interval width of "
                 f"{spread['ci_width'].median():.3f} — training-run noise that the intervals do not include."]
    if changes is not None and not changes.empty:
        floor = spread.groupby("metric")["spread"].max()
        known = changes[changes["metric"].isin(floor.index)]
        beyond = known[known["change"].abs() > known["metric"].map(floor)]
        sentences.append(f"{len(beyond)} of {len(known)} first-to-last-ratio changes exceed the largest replicate "
                         f"spread of their metric.")
    return sentences


def _label(row: pd.Series) -> str:
    return f"{row['dataset']} {row['attribute']} {row['metric']}"
