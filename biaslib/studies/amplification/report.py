"""Findings computed from results: gaps tested against chance, and how each moves along the mixing ratio.

Works on a :func:`biaslib.results.collect` frame. :func:`ratio_trends` compares, per (experiment,
evaluation, dataset, attribute, metric), the value at the lowest ratio with the value at the highest
(for ``kind="gap"``: the between-group gap, its interval, its permutation p-value and its null floor, the gap
equal groups show by chance) and fits a least-squares slope over all ratios.

What counts as "beyond chance" (multiplicity controlled, design.md "Inference"):

* a gap: its p-value (:func:`biaslib.metrics.gap_test`) has a Benjamini–Hochberg q-value below :data:`Q_LEVEL`
  among the gaps of one measure of the same trained model (:data:`GAP_FAMILY`, ``analysis.gap_family`` in the
  params);
* a first-to-last change: a two-sided z-test of the difference; a gap's variance is that of its two groups' means
  from their own evaluation rows (a value's own interval otherwise; half width / z; the two evaluations' data are
  resampled independently), again q < 0.05 among all the table's changes. Overlap of two 95% intervals is not
  used: it needs ≈ 5 standard errors.

These tests cover the sampling of *evaluation* data only. :func:`probe_spread` measures the other source of
noise, training itself: a CLIP trained on the same data with another seed (``train.probe_ratios``, or the
replicates of a replicated design) moves every value by some amount, a floor below which a change along the
ratio is not evidence. (Training is deterministic: the same data, settings and seed give the same CLIP, so only
another seed can show this noise.)
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from biaslib.metrics.intervals import Q_LEVEL, bh_qvalues, check_callable, z_value
from biaslib.metrics.trend import power, trend  # noqa: F401  (biaslib.studies.amplification.report.trend / power: dose-response)
from biaslib.studies.amplification.params import AnalysisConfig  # noqa: I001

TREND_KEYS = ["experiment", "evaluation", "dataset", "attribute", "metric"]
SPREAD_COLUMNS = [*TREND_KEYS, "ratio", "replicate", "value_first", "value", "move", "half_width"]
TREND_COLUMNS = [*TREND_KEYS, "ratios", "ratio_first", "value_first", "ci_low_first", "ci_high_first", "p_first",
                 "q_first", "null_first", "ratio_last", "value_last", "ci_low_last", "ci_high_last", "p_last",
                 "q_last", "null_last", "change", "p_change", "q_change", "slope", "direction"]
#: Interval level the results were computed at (their ``ci``), for the standard errors of changes.
CI_LEVEL = 0.95


#: What one family of gap tests is by default (``analysis.gap_family``): the gaps of one measure (evaluation,
#: dataset, metric) of one trained model (an experiment's ratio and replicate), over the attributes.
GAP_FAMILY = AnalysisConfig().gap_family


def gap_qvalues(frame: pd.DataFrame, min_p: float | None = None,
                family: Sequence[str] = GAP_FAMILY) -> pd.Series:
    """Benjamini–Hochberg q-value of every ``gap`` row's ``p_value``, one family per value of the ``family`` columns
    (default :data:`GAP_FAMILY`; columns a frame lacks are one level), so a model's q-values do not depend on how
    many other ratios, evaluations or metrics were run. ``min_p``: the smallest p-value a gap test can give
    (1 / (1 + ``eval.n_perm``)); with it, a family that could not call one gap is an error
    (:func:`~biaslib.metrics.intervals.check_callable`).

    Returns a Series aligned with ``frame`` (NaN for other rows and for gaps without a p-value, e.g. results
    written before gap tests).
    """
    q = pd.Series(np.nan, index=frame.index)
    if "p_value" not in frame.columns:
        return q
    gaps = frame[(frame["kind"] == "gap")]
    keys = [c for c in family if c in gaps.columns]
    for family, part in gaps.groupby(keys, sort=False, dropna=False) if keys else [((), gaps)]:
        p = part["p_value"].to_numpy(dtype=np.float64)
        if min_p is not None:
            check_callable(min_p, int(np.isfinite(p).sum()), Q_LEVEL, what=f"the gaps of {dict(zip(keys, family))}")
        q.loc[part.index] = bh_qvalues(p)
    return q


def _variance(rows: list[pd.Series]) -> float:
    """Sum of the squared standard errors of ``rows``, each half its interval's width / z (NaN without one)."""
    z = z_value(CI_LEVEL)
    return float(sum(((row["ci_high"] - row["ci_low"]) / (2 * z)) ** 2 for row in rows))


def _gap_groups(groups: pd.DataFrame | None, row: pd.Series) -> list[pd.Series] | None:
    """The evaluation rows of the two groups a gap row names (``low``, ``high``) from ``groups`` (the frame's
    ``group`` rows of the same measure and model), or None when either is missing."""
    if groups is None or not {"low", "high"} <= set(row.index) or pd.isna(row["low"]) or pd.isna(row["high"]):
        return None
    found = []
    for name in (row["low"], row["high"]):
        match = groups[(groups["ratio_fraction"] == row["ratio_fraction"]) & (groups["group"] == name)]
        if len(match) != 1:
            return None
        found.append(match.iloc[0])
    return found


def _change_p(first: pd.Series, last: pd.Series, groups: pd.DataFrame | None = None) -> float:
    """Two-sided z-test p-value of last − first (NaN without standard errors).

    For a gap with its groups' evaluation rows at hand (``groups``: the ``group`` rows of the measure), each gap's
    variance is that of its two groups' means (their own intervals: Wilson's for 0/1 values), which is what the
    difference of two means is made of; else each value's standard error comes from its own interval. The gap's
    simultaneous interval holds every pair of groups at once, so taken as a standard error it is too wide: 0.3%
    false positives and 6% power for a 0 → 0.15 change (issue 26). Measured now (``tests/test_report.py``, 4 groups
    of 0/1 values, 400 studies): 4.75% false positives when a gap of 0.15 stays (0% when every group is equal: the
    range of equal means varies less than a difference of two), power 79% for a 0 → 0.15 change between groups of
    400, 99% with 800, 86% for 0.10 → 0.25.
    """
    sides = [_gap_groups(groups, first), _gap_groups(groups, last)]
    se2 = (_variance(sides[0]) + _variance(sides[1]) if sides[0] is not None and sides[1] is not None
           else _variance([first, last]))
    if not np.isfinite(se2) or se2 <= 0:
        return float("nan")
    return float(2 * (1 - NormalDist().cdf(abs(last["value"] - first["value"]) / np.sqrt(se2))))


def ratio_trends(frame: pd.DataFrame, kind: str = "gap", min_p: float | None = None,
                 family: Sequence[str] = GAP_FAMILY) -> pd.DataFrame:
    """First-vs-last-ratio comparison of every metric's ``kind`` rows (``gap``, ``overall`` or
    ``min_over_max``).

    Returns :data:`TREND_COLUMNS`: values, intervals, p-values (``p_*``: the gap test; NaN for other kinds),
    their q-values (``q_*``, :func:`gap_qvalues` over ``family``) and null floors (``null_*``) at the lowest and
    highest ratio (fractions); ``change`` = last − first with ``p_change`` (z-test, module docstring) and ``q_change``
    (Benjamini–Hochberg over the changes of each experiment); ``slope`` = least-squares slope of the value
    over the ratio fraction (units of the metric per unit ratio; NaN with fewer than two ratios);
    ``direction`` = ``"up"`` / ``"down"`` when ``q_change`` < :data:`Q_LEVEL`, else ``"no change"``
    (``"n/a"`` without intervals). With replicates only replicate 0 is compared (one trained model per ratio);
    :func:`trend` tests a slope over all of them.
    """
    if "replicate" in frame.columns:  # one model per ratio here; across replicates see trend()
        frame = frame[frame["replicate"] == 0]
    frame = frame.assign(q_value=gap_qvalues(frame, min_p, family))
    for column in ("p_value", "null_gap"):
        if column not in frame.columns:
            frame[column] = np.nan
    rows = frame[(frame["kind"] == kind) & frame["value"].notna()]
    group_rows = ({keys: part for keys, part in frame[frame["kind"] == "group"].groupby(TREND_KEYS, sort=False)}
                  if kind == "gap" and "group" in frame.columns else {})
    out = []
    for keys, part in rows.groupby(TREND_KEYS, sort=True):
        part = part.sort_values("ratio_fraction")
        first, last = part.iloc[0], part.iloc[-1]
        x, y = part["ratio_fraction"].to_numpy(float), part["value"].to_numpy(float)
        slope = float(np.polyfit(x, y, 1)[0]) if len(part) > 1 and np.ptp(x) > 0 else np.nan
        ends = {}
        for suffix, row in (("first", first), ("last", last)):
            ends |= {f"ratio_{suffix}": row["ratio_fraction"], f"value_{suffix}": row["value"],
                     f"ci_low_{suffix}": row["ci_low"], f"ci_high_{suffix}": row["ci_high"],
                     f"p_{suffix}": row["p_value"], f"q_{suffix}": row["q_value"], f"null_{suffix}": row["null_gap"]}
        out.append({**dict(zip(TREND_KEYS, keys)), "ratios": len(part), **ends,
                    "change": last["value"] - first["value"],
                    "p_change": _change_p(first, last, group_rows.get(keys)) if len(part) > 1 else np.nan,
                    "slope": slope})
    trends = pd.DataFrame(out, columns=[c for c in TREND_COLUMNS if c not in ("q_change", "direction")])
    trends["q_change"] = np.nan
    for _, part in trends.groupby("experiment", sort=False):
        trends.loc[part.index, "q_change"] = bh_qvalues(part["p_change"].to_numpy(dtype=np.float64))
    trends["direction"] = [_direction(row) for row in trends.itertuples(index=False)]
    return trends[TREND_COLUMNS]


def _direction(row) -> str:
    """``up``/``down`` when the change is beyond chance (q < :data:`Q_LEVEL`), ``no change`` when not, ``n/a``
    without intervals."""
    if pd.isna(row.q_change):
        return "n/a"
    if row.q_change >= Q_LEVEL:
        return "no change"
    return "up" if row.change > 0 else "down"


def _number(x: float) -> str:
    """A p- or q-value for a sentence: two significant digits, ``< 0.0001`` below that."""
    return "< 0.0001" if x < 1e-4 else f"= {x:.2g}"


def _test_text(p: float, q: float, null: float, low: float = float("nan")) -> str:
    """`` (p = …, q = …, chance floor …: beyond/within chance)`` for a gap that was tested; empty otherwise. A gap
    whose test rejects (p < 1 − :data:`CI_LEVEL`) while its interval still starts at 0 (``low``) says why."""
    if pd.isna(p):
        return ""
    verdict = "beyond chance" if q < Q_LEVEL else "within chance"
    floor = f", chance floor {null:.3f}" if pd.notna(null) else ""
    why = ("; its interval still holds 0: it holds every pair of groups at once, the test is the decision"
           if p < 1 - CI_LEVEL and low == 0 else "")
    return f" (p {_number(p)}, q {_number(q)}{floor}: {verdict}{why})"


def findings(trends: pd.DataFrame, what: str = "gap") -> list[str]:
    """One sentence per row of :func:`ratio_trends`, then a count per experiment.

    ``what`` names the quantity in the sentences (``"gap"`` for between-group gaps). Each value is printed with
    its interval and, for tested gaps, its p-value, q-value and chance floor; a change is called "beyond
    chance" only for q < :data:`Q_LEVEL`.
    """
    sentences = []
    for row in trends.itertuples(index=False):
        verdict = {"up": f"up by {row.change:.3f}, beyond chance",
                   "down": f"down by {-row.change:.3f}, beyond chance",
                   "no change": f"{row.change:+.3f}, within chance",
                   "n/a": f"{row.change:+.3f} (no interval)"}[row.direction]
        if row.direction != "n/a":
            verdict += f": p {_number(row.p_change)}, q {_number(row.q_change)}"
        sentences.append(
            f"{row.experiment} · {row.dataset} {row.attribute} {row.metric}: {what} {row.value_first:.3f} "
            f"[{row.ci_low_first:.3f}, {row.ci_high_first:.3f}]"
            f"{_test_text(row.p_first, row.q_first, row.null_first, row.ci_low_first)}"
            f" at ratio {row.ratio_first:.1f} → {row.value_last:.3f} [{row.ci_low_last:.3f}, "
            f"{row.ci_high_last:.3f}]{_test_text(row.p_last, row.q_last, row.null_last, row.ci_low_last)} at ratio "
            f"{row.ratio_last:.1f} ({verdict}).")
    for experiment, part in trends.groupby("experiment", sort=True):
        counts = part["direction"].value_counts()
        tested = part["q_last"].notna()
        beyond = int((part["q_last"] < Q_LEVEL).sum())
        gap_text = (f"at the highest ratio {beyond} of {int(tested.sum())} tested {what}s are beyond chance "
                    f"(q < {Q_LEVEL}); " if tested.any() else "")
        sentences.append(f"{experiment}: {gap_text}of {len(part)} {what}s, {counts.get('up', 0)} grew and "
                         f"{counts.get('down', 0)} shrank beyond chance from the lowest to the highest "
                         f"ratio; {counts.get('no change', 0)} changed within it.")
    return sentences


def probe_spread(frame: pd.DataFrame, kind: str = "gap") -> pd.DataFrame:
    """How far another training seed moved each value: for every experiment, ratio and measure (:data:`TREND_KEYS`,
    ``kind`` rows) with more than one replicate, each other replicate against replicate 0 (the probe of
    ``train.probe_ratios``, or a design's replicates). Returns :data:`SPREAD_COLUMNS`: ``ratio``, ``replicate``,
    ``value_first`` (replicate 0), ``value``, ``move`` = value − value_first and ``half_width`` (median half-width of
    the two models' evaluation intervals)."""
    rows = frame[(frame["kind"] == kind) & frame["value"].notna()]
    if "replicate" not in rows.columns:
        return pd.DataFrame(columns=SPREAD_COLUMNS)
    out = []
    for keys, part in rows.groupby([*TREND_KEYS, "ratio_fraction"], sort=True):
        first = part[part["replicate"] == 0]
        if len(first) != 1:
            continue
        first = first.iloc[0]
        for row in part[part["replicate"] != 0].itertuples(index=False):
            out.append({**dict(zip(TREND_KEYS, keys[:-1])), "ratio": keys[-1], "replicate": int(row.replicate),
                        "value_first": float(first["value"]), "value": float(row.value),
                        "move": float(row.value - first["value"]),
                        "half_width": float(np.median([first["ci_high"] - first["ci_low"], row.ci_high - row.ci_low])
                                            / 2)})
    return pd.DataFrame(out, columns=SPREAD_COLUMNS)


def probe_findings(spread: pd.DataFrame, changes: pd.DataFrame | None = None, what: str = "gap") -> list[str]:
    """Sentences on training noise from :func:`probe_spread` (one per experiment); with ``changes`` (a
    :func:`ratio_trends` table) also how many first-to-last-ratio changes exceed the largest move of their metric.
    Without any probe: a sentence that training noise is not measured, so no change along the ratio can be told
    from it."""
    if spread.empty:
        return [f"Training noise is not measured: one CLIP per ratio and no probe (train.probe_ratios), so a {what} "
                "that changes along the ratio may be training noise of unknown size; the intervals cover evaluation "
                "sampling only."]
    sentences = []
    for experiment, part in spread.groupby("experiment", sort=True):
        moved = part["move"].abs()
        largest = part.loc[moved.idxmax()]
        ratios = ", ".join(f"{r:g}" for r in sorted(part["ratio"].unique()))
        sentences.append(
            f"{experiment}: another training seed at ratio {ratios} moved the {what}s by a median of "
            f"{moved.median():.3f} (largest {moved.max():.3f}, {_label(largest)}) against a median interval "
            f"half-width of {part['half_width'].median():.3f} — training noise the intervals leave out.")
        if changes is not None and not changes.empty:
            floor = part.assign(moved=moved).groupby("metric")["moved"].max()
            known = changes[(changes["experiment"] == experiment) & changes["metric"].isin(floor.index)]
            beyond = known[known["change"].abs() > known["metric"].map(floor)]
            sentences.append(f"{experiment}: {len(beyond)} of {len(known)} first-to-last-ratio changes exceed the "
                             "largest move another seed made in their metric.")
    return sentences


def _label(row: pd.Series) -> str:
    return f"{row['dataset']} {row['attribute']} {row['metric']}"
