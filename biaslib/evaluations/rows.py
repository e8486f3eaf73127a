"""Result rows of the evaluations (fields :data:`biaslib.results.ROW_FIELDS`): one row per group, overall value,
gap or ratio, with its interval and test — the helpers every evaluation builds its rows with.

:func:`mean_rows` turns per-item values (0/1 hits, scores) and group labels into group rows with intervals and,
for two or more groups of at least ``eval.min_group_size`` items, a ``gap`` and a ``min_over_max`` row whose
intervals hold for every pair of groups at once and agree with the test of "all groups equal"
(:func:`~biaslib.metrics.intervals.gap_interval`, :func:`~biaslib.metrics.intervals.aligned_with_test`).
:func:`normal_rows` does the same for per-group estimates with normal-theory intervals, :func:`query_rows` for one
value per query (e.g. an occupation) and their mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import EvalConfig
from biaslib.metrics import Estimate, by_group, gap_test
from biaslib.metrics.intervals import (
    aligned_with_test,
    binary_variance_floor,
    bootstrap_means,
    cluster_sums,
    gap_interval,
    group_mean_draws,
    percentile_interval,
    ratio_interval,
    z_value,
)
from biaslib.results import ROW_FIELDS


def json_number(x: Any) -> float | None:
    """A JSON number, or None for NaN/inf."""
    value = float(x)
    return value if np.isfinite(value) else None


def row(dataset: str, attribute: str, group: Any, kind: str, metric: str, value: Any, ci_low: Any,
         ci_high: Any, n: Any, low: Any = None, high: Any = None, p_value: Any = None,
         null_gap: Any = None) -> dict[str, Any]:
    """One tidy result row (fields :data:`biaslib.results.ROW_FIELDS`)."""
    fields = {"dataset": dataset, "attribute": attribute, "group": str(group), "kind": kind, "metric": metric,
              "value": json_number(value), "ci_low": json_number(ci_low), "ci_high": json_number(ci_high), "n": int(n),
              "low": None if low is None else str(low), "high": None if high is None else str(high),
              "p_value": None if p_value is None else json_number(p_value),
              "null_gap": None if null_gap is None else json_number(null_gap)}
    return {k: fields[k] for k in ROW_FIELDS}


def frame_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, kind: str = "group") -> list[dict]:
    """Rows of a per-group frame (index = group; columns n, value, ci_low, ci_high)."""
    return [row(dataset, attribute, group, kind, metric, r.value, r.ci_low, r.ci_high, r.n)
            for group, r in zip(frame.index, frame.itertuples(index=False))]


def large_groups(frame: pd.DataFrame, cfg: EvalConfig) -> pd.DataFrame:
    """The groups of a per-group frame that enter gaps: a value and at least ``cfg.min_group_size`` items."""
    return frame[frame["value"].notna() & (frame["n"] >= cfg.min_group_size)]


def gap_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, draws: np.ndarray,
             test: Estimate, cfg: EvalConfig, variance_floor: np.ndarray | None = None) -> list[dict]:
    """``gap`` and ``min_over_max`` rows of the large groups of ``frame``.

    ``draws`` (B, G) are replicates of the large groups' values; :func:`gap_interval` and :func:`ratio_interval`
    turn them into intervals that hold for all groups at once (``variance_floor`` (G,): a lower bound on each
    value's variance, for 0/1 means). ``test`` names the lowest and highest group (``low_group``,
    ``high_group``) and carries the test of "all groups equal" (``p_value``, on both rows) and the gap's chance
    floor (``null_gap``).
    """
    large = large_groups(frame, cfg)
    values = large["value"].to_numpy(dtype=np.float64)
    low, high = values.min(), values.max()
    # intervals that hold 0 (gap) and 1 (min/max) whenever the test of "all groups equal" does not reject
    gap_low, gap_high = aligned_with_test(*gap_interval(values, draws, cfg.ci, variance_floor=variance_floor),
                                          test.p_value, cfg.ci)
    ratio_low, ratio_high = aligned_with_test(*ratio_interval(values, draws, cfg.ci, variance_floor=variance_floor),
                                              test.p_value, cfg.ci, null=1.0)
    n = int(large["n"].sum())
    return [
        row(dataset, attribute, "gap", "gap", metric, high - low, gap_low, gap_high, n, test.low_group,
             test.high_group, test.p_value, test.null_gap),
        row(dataset, attribute, "min_over_max", "min_over_max", metric, low / high if high != 0 else np.nan,
             ratio_low, ratio_high, n, test.low_group, test.high_group, test.p_value),
    ]


def mean_rows(dataset: str, attribute: str, metric: str, values: np.ndarray, labels: np.ndarray,
              cfg: EvalConfig, frame: pd.DataFrame | None = None, clusters: np.ndarray | None = None) -> list[dict]:
    """Per-group means of per-item ``values`` (e.g. 0/1 hits) with intervals, then gap and min_over_max.

    ``frame`` is the metric's own :func:`by_group` frame when it computed one (the same numbers); ``clusters``
    (one unit per item, e.g. the image of a caption) makes every interval and test resample whole units.
    Groups with fewer than ``cfg.min_group_size`` items keep their rows but stay out of the gap.
    """
    if frame is None:
        frame = by_group(values, labels, n_boot=cfg.n_boot, seed=cfg.seed, ci=cfg.ci, clusters=clusters)
    kind = "overall" if attribute == "all" else "group"
    rows = frame_rows(dataset, attribute, metric, frame, kind)
    large = large_groups(frame, cfg)
    if len(large) < 2:
        return rows
    keep = pd.Series(labels).isin(large.index).to_numpy()
    # the test here (a permutation for 0/1 values, a studentised bootstrap for scores); the bootstrap once, below,
    # for both the gap's and the ratio's interval
    test = gap_test(values[keep], labels[keep], clusters=None if clusters is None else clusters[keep],
                    n_perm=cfg.n_perm, n_boot=0, ci=cfg.ci, seed=cfg.seed)
    codes = pd.Index(large.index).get_indexer(labels[keep])
    units = None if clusters is None else cluster_sums(values[keep], clusters[keep])[2]
    draws = group_mean_draws(values[keep], codes, len(large), n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed),
                             clusters=units)
    floor = binary_variance_floor(values[keep], codes, len(large))
    return rows + gap_rows(dataset, attribute, metric, frame, draws, test, cfg, floor)


def normal_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, cfg: EvalConfig) -> list[dict]:
    """Per-group rows of a frame with normal-theory intervals, and gap/min_over_max from normal draws.

    Each large group's value is drawn as N(value, se²), se = half its interval width / z. The gap's and the
    ratio's intervals come from those draws (:func:`gap_rows`); its test draws every group from N(0, se²)
    (groups equal; max − min does not depend on the common value): the p-value is the share of those null gaps
    at least as large as the observed one and ``null_gap`` their mean.
    """
    rows = frame_rows(dataset, attribute, metric, frame)
    large = large_groups(frame, cfg)
    if len(large) < 2 or cfg.n_boot == 0:
        return rows
    se = ((large["ci_high"] - large["ci_low"]) / (2 * z_value(cfg.ci))).to_numpy(dtype=np.float64)
    values = large["value"].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(cfg.seed)
    draws = values + se * rng.standard_normal((cfg.n_boot, len(large)))
    null = np.ptp(se * rng.standard_normal((max(cfg.n_perm, 1), len(large))), axis=1)
    gap = float(values.max() - values.min())
    test = Estimate(gap, np.nan, np.nan, float((1 + np.sum(null >= gap)) / (1 + len(null))), cfg.ci, details={
        "low_group": large["value"].idxmin(), "high_group": large["value"].idxmax(), "null_gap": float(null.mean())})
    return rows + gap_rows(dataset, attribute, metric, frame, draws, test, cfg)


def overall_and_groups(dataset: str, metric: str, values: np.ndarray, groups: pd.DataFrame,
                       cfg: EvalConfig, clusters: np.ndarray | None = None) -> list[dict]:
    """Overall mean of per-item ``values`` and its per-group rows for every column of ``groups``."""
    rows = mean_rows(dataset, "all", metric, values, np.full(len(values), "all", dtype=object), cfg,
                     clusters=clusters)
    for attribute in groups.columns:
        labels = groups[attribute].to_numpy(dtype=object)
        present = pd.notna(labels)
        rows += mean_rows(dataset, attribute, metric, values[present], labels[present], cfg,
                          clusters=None if clusters is None else clusters[present])
    return rows


def query_rows(dataset: str, attribute: str, metric: str, queries: Sequence[str], values: np.ndarray, n: int,
               cfg: EvalConfig) -> list[dict]:
    """One row per query (kind ``group``, ``n`` its cut-off or items) and their mean with a bootstrap interval over
    the queries (kind ``overall``; non-finite values left out)."""
    rows = [row(dataset, attribute, q, "group", metric, v, np.nan, np.nan, n) for q, v in zip(queries, values)]
    finite = values[np.isfinite(values)]
    low = high = np.nan
    if len(finite) and cfg.n_boot:
        means = bootstrap_means(finite, n_boot=cfg.n_boot, rng=np.random.default_rng(cfg.seed))
        low, high = percentile_interval(means, cfg.ci)
    return rows + [row(dataset, attribute, "all", "overall", metric, finite.mean() if len(finite) else np.nan,
                       low, high, len(finite))]
