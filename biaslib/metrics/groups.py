"""Per-group summaries with bootstrap confidence intervals, and gaps between groups.

Group labels are matched to values **by position** (a pandas index on the inputs is ignored).
Missing labels (``None``/``NaN``/``pd.NA``) drop the item; the number dropped is stored in
``frame.attrs["dropped"]``. Several label columns (a DataFrame) give intersections, indexed by a
``pd.MultiIndex`` with one level per column; only combinations that occur are listed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import check_ci, check_finite_vector, check_same_length

GroupLabels = ArrayLike | pd.Series | pd.DataFrame

# Groups with at most this many distinct values are bootstrapped through multinomial counts over
# the distinct values (exactly the distribution of resampled means, far cheaper for 0/1 data).
_MULTINOMIAL_MAX_DISTINCT = 64
# Resampled indices held in memory at once by the generic bootstrap.
_CHUNK_ELEMENTS = 1 << 22


def factorize_groups(groups: GroupLabels, n: int) -> tuple[np.ndarray, pd.Index, int]:
    """Integer group code per item, the group index, and the number of items without a label.

    Parameters
    ----------
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Labels; a DataFrame with several columns gives intersections.
    n : int
        Number of items the labels must describe.

    Returns
    -------
    codes : ndarray of int64, shape (n,)
        Position of each item's group in ``index``; -1 where a label is missing.
    index : pd.Index or pd.MultiIndex
        Sorted observed groups (a categorical column keeps its category order).
    dropped : int
        Items with a missing label in any column.
    """
    if isinstance(groups, pd.DataFrame):
        check_same_length(n, len(groups), "values", "groups")
        if groups.shape[1] == 0:
            raise ValueError("groups DataFrame has no columns")
        if groups.shape[1] == 1:
            return factorize_groups(groups.iloc[:, 0], n)
        factorized = [pd.factorize(groups[col], sort=True) for col in groups.columns]
        level_codes = np.stack([codes for codes, _ in factorized])
        missing = (level_codes < 0).any(axis=0)
        dims = [len(uniques) for _, uniques in factorized]
        flat = np.ravel_multi_index(np.where(missing, 0, level_codes), dims)
        present, inverse = np.unique(flat[~missing], return_inverse=True)
        levels = np.unravel_index(present, dims)
        index = pd.MultiIndex.from_arrays(
            [uniques[lv] for (_, uniques), lv in zip(factorized, levels)],
            names=list(groups.columns),
        )
        codes = np.full(n, -1, dtype=np.int64)
        codes[~missing] = inverse
        return codes, index, int(missing.sum())
    labels = groups if isinstance(groups, pd.Series) else pd.Series(groups)
    check_same_length(n, len(labels), "values", "groups")
    codes, uniques = pd.factorize(labels, sort=True)
    index = pd.Index(uniques, name=labels.name)
    return codes.astype(np.int64), index, int((codes < 0).sum())


def bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, same size) of the 1-D array ``x``.

    With few distinct values (e.g. 0/1 hits) the resample is drawn as multinomial counts over the
    distinct values, which has exactly the distribution of resampling items; otherwise item
    indices are drawn in chunks.
    """
    n = len(x)
    distinct, counts = np.unique(x, return_counts=True)
    if len(distinct) <= _MULTINOMIAL_MAX_DISTINCT:
        return rng.multinomial(n, counts / n, size=n_boot) @ distinct / n
    means = np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.uint32)
        means[start:stop] = x[idx].mean(axis=1)
    return means


def summary_frame(
    index: pd.Index,
    n: np.ndarray,
    value: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    dropped: int,
) -> pd.DataFrame:
    """Assemble the standard per-group frame (columns n, value, ci_low, ci_high)."""
    frame = pd.DataFrame(
        {"n": n.astype(np.int64), "value": value, "ci_low": ci_low, "ci_high": ci_high}, index=index
    )
    frame.attrs["dropped"] = dropped
    return frame


def by_group(
    values: ArrayLike,
    groups: GroupLabels,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Mean of ``values`` per group with a percentile-bootstrap confidence interval.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One value per item (e.g. 0/1 hits, correctness, scores), finite where a label is present.
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Group label per item; several columns give intersections (MultiIndex).
    n_boot : int, default 1000
        Bootstrap resamples of the items within each group; 0 gives NaN intervals.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; groups are resampled in index order from one stream.
    ci : float, default 0.95
        Confidence level of the percentile interval.

    Returns
    -------
    pd.DataFrame
        Indexed by group: ``n`` (items), ``value`` (group mean, units of ``values``),
        ``ci_low``, ``ci_high``; ``attrs["dropped"]`` counts items without a label.
    """
    check_ci(ci)
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {vals.shape}")
    codes, index, dropped = factorize_groups(groups, len(vals))
    keep = codes >= 0
    check_finite_vector(np.where(keep, vals, 0.0), "values")
    n_groups = len(index)
    n = np.bincount(codes[keep], minlength=n_groups)
    value = np.bincount(codes[keep], weights=vals[keep], minlength=n_groups) / n
    ci_low = np.full(n_groups, np.nan)
    ci_high = np.full(n_groups, np.nan)
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        order = np.argsort(codes, kind="stable")[dropped:]  # missing labels (-1) sort first
        bounds = np.concatenate([[0], np.cumsum(n)])
        alpha = 1.0 - ci
        for g in range(n_groups):
            means = bootstrap_means(vals[order[bounds[g]:bounds[g + 1]]], n_boot, rng)
            ci_low[g], ci_high[g] = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return summary_frame(index, n, value, ci_low, ci_high, dropped)


def group_gap(frame: pd.DataFrame, higher_is_better: bool = True) -> dict[str, Any]:
    """Disparity summary of a per-group frame (NaN values are ignored).

    Parameters
    ----------
    frame : pd.DataFrame
        A frame with a ``value`` column, as returned by :func:`by_group`.
    higher_is_better : bool, default True
        Whether the worst group is the one with the lowest value (True) or the highest.

    Returns
    -------
    dict
        ``difference`` = max − min of ``value``; ``ratio`` = min / max (NaN when max is 0);
        ``worst`` = label of the worst group (a tuple for a MultiIndex).
    """
    values = frame["value"].dropna()
    if values.empty:
        raise ValueError("group_gap needs at least one group with a non-NaN value")
    low, high = float(values.min()), float(values.max())
    return {
        "difference": high - low,
        "ratio": low / high if high != 0 else float("nan"),
        "worst": values.idxmin() if higher_is_better else values.idxmax(),
    }
