"""Per-group summaries with confidence intervals (:mod:`biaslib.metrics.intervals`), and gaps between groups.

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
from biaslib.metrics.intervals import (
    bca_interval,
    cluster_sums,
    cluster_wilson_interval,
    group_mean_draws,
    is_binary,
    jeffreys_interval,
    percentile_interval,
    ratio_acceleration,
    wilson_interval,
)

GroupLabels = ArrayLike | pd.Series | pd.DataFrame

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

    Examples
    --------
    >>> codes, index, dropped = factorize_groups(["b", "a", None, "b"], 4)
    >>> codes.tolist(), index.tolist(), dropped
    ([1, 0, -1, 1], ['a', 'b'], 1)

    Two columns give the intersections that occur (here not ``("m", "y")``):

    >>> import pandas as pd
    >>> codes, index, _ = factorize_groups(pd.DataFrame({"gender": ["m", "w", "w"], "region": ["x", "x", "y"]}), 3)
    >>> codes.tolist(), index.tolist()
    ([0, 1, 2], [('m', 'x'), ('w', 'x'), ('w', 'y')])
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


def summary_frame(
    index: pd.Index,
    n: np.ndarray,
    value: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    dropped: int,
) -> pd.DataFrame:
    """Assemble the standard per-group frame (columns n, value, ci_low, ci_high).

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = summary_frame(pd.Index(["a", "b"]), np.array([4, 2]), np.array([0.75, 0.5]),
    ...                       np.array([0.3, 0.1]), np.array([0.95, 0.9]), dropped=1)
    >>> frame.columns.tolist(), frame["n"].tolist(), frame["value"].tolist(), frame.attrs["dropped"]
    (['n', 'value', 'ci_low', 'ci_high'], [4, 2], [0.75, 0.5], 1)
    """
    frame = pd.DataFrame(
        {"n": n.astype(np.int64), "value": value, "ci_low": ci_low, "ci_high": ci_high}, index=index
    )
    frame.attrs["dropped"] = dropped
    return frame


INTERVALS = ("auto", "wilson", "jeffreys", "percentile", "bca")


def resolve_interval(interval: str, values: np.ndarray, clustered: bool) -> str:
    """The interval method :func:`by_group` uses: ``"auto"`` resolved, requests checked against the data.

    >>> import numpy as np
    >>> binary, scores = np.array([0.0, 1.0, 1.0]), np.array([0.5, 1.0])
    >>> resolve_interval("auto", binary, False), resolve_interval("auto", scores, False)
    ('wilson', 'percentile')
    >>> resolve_interval("wilson", scores, False)
    Traceback (most recent call last):
    ...
    ValueError: interval='wilson' is for 0/1 values; ...
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    binary = is_binary(values)
    if interval == "auto":
        return "wilson" if binary else "percentile"
    if interval in ("wilson", "jeffreys"):
        if not binary:
            raise ValueError(f"interval={interval!r} is for 0/1 values; these values are not all 0 or 1")
        if clustered and interval == "jeffreys":
            raise ValueError("interval='jeffreys' assumes independent rows; with clusters use 'wilson' (a "
                             "design-effect Wilson interval) or 'percentile'/'bca' (a cluster bootstrap)")
    return interval


def by_group(
    values: ArrayLike,
    groups: GroupLabels,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    clusters: ArrayLike | None = None,
    interval: str = "auto",
) -> pd.DataFrame:
    """Mean of ``values`` per group with a confidence interval from :mod:`biaslib.metrics.intervals`.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One value per item (e.g. 0/1 hits, correctness, scores), finite where a label is present.
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Group label per item; several columns give intersections (MultiIndex).
    n_boot : int, default 1000
        Bootstrap resamples within each group; 0 gives NaN intervals (no interval at all).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; groups are resampled in index order from one stream.
    ci : float, default 0.95
        Confidence level.
    clusters : array-like of shape (n,), optional
        Unit of each item (an image with several captions, a prompt with several images): the bootstrap
        resamples whole clusters within each group (a group's mean is Σ sums / Σ sizes of its clusters).
    interval : {"auto", "wilson", "jeffreys", "percentile", "bca"}, default "auto"
        ``"auto"``: Wilson for 0/1 values (a small group never gets a zero-width interval; with clusters the
        design-effect Wilson interval, :func:`~biaslib.metrics.intervals.cluster_wilson_interval`: a cluster
        bootstrap of a rare clustered outcome covered 0.46 and was zero-width in 53% of small groups), otherwise a
        percentile bootstrap (over clusters when given). ``"bca"``: bias-corrected and accelerated bootstrap
        (acceleration from the row or cluster jackknife).

    Returns
    -------
    pd.DataFrame
        Indexed by group: ``n`` (items), ``value`` (group mean, units of ``values``),
        ``ci_low``, ``ci_high``; ``attrs["dropped"]`` counts items without a label and
        ``attrs["interval"]`` names the method (``"cluster percentile"``/``"cluster bca"`` with clusters).

    Examples
    --------
    0/1 values get Wilson intervals; a group with no hit in n = 4 gets [0, z² / (n + z²)].

    >>> frame = by_group([1, 1, 1, 0, 0, 0, 0, 0], ["a"] * 4 + ["b"] * 4)
    >>> frame["value"].tolist(), frame.attrs["interval"], float(frame.loc["b", "ci_low"])
    ([0.75, 0.0], 'wilson', 0.0)
    >>> round(float(frame.loc["b", "ci_high"]), 3), round(1.96**2 / (4 + 1.96**2), 3)
    (0.49, 0.49)
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
    method = resolve_interval(interval, vals[keep], clusters is not None)
    n_groups = len(index)
    n = np.bincount(codes[keep], minlength=n_groups)
    sums = np.bincount(codes[keep], weights=vals[keep], minlength=n_groups)
    value = sums / n
    ci_low = np.full(n_groups, np.nan)
    ci_high = np.full(n_groups, np.nan)
    clustered = n_boot > 0 and clusters is not None
    unit_of_row = cluster_sums(np.where(keep, vals, 0.0), clusters)[2] if clustered else None
    if unit_of_row is not None and method == "wilson":
        for g in range(n_groups):
            rows = codes == g
            hits, sizes, _ = cluster_sums(vals[rows], unit_of_row[rows])
            ci_low[g], ci_high[g] = cluster_wilson_interval(hits, sizes, ci)
    elif n_boot > 0 and method in ("wilson", "jeffreys"):
        ci_low, ci_high = (wilson_interval if method == "wilson" else jeffreys_interval)(sums, n, ci)
    elif n_boot > 0:
        rng = np.random.default_rng(seed)
        draws = group_mean_draws(vals, codes, n_groups, n_boot=n_boot, rng=rng, clusters=unit_of_row)
        for g in range(n_groups):
            if method == "bca":
                rows = codes == g
                unit_sums, unit_sizes = ((vals[rows], np.ones(int(rows.sum()))) if unit_of_row is None
                                         else cluster_sums(vals[rows], unit_of_row[rows])[:2])
                ci_low[g], ci_high[g] = bca_interval(draws[:, g], value[g], ratio_acceleration(unit_sums, unit_sizes),
                                                     ci)
            else:
                ci_low[g], ci_high[g] = percentile_interval(draws[:, g], ci)
    frame = summary_frame(index, n, value, np.asarray(ci_low, dtype=np.float64),
                          np.asarray(ci_high, dtype=np.float64), dropped)
    frame.attrs["interval"] = f"cluster {method}" if clusters is not None else method
    return frame


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

    Examples
    --------
    Group ``c`` without a value is ignored.

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"value": [1.0, 0.25, np.nan]}, index=["a", "b", "c"])
    >>> group_gap(frame)
    {'difference': 0.75, 'ratio': 0.25, 'worst': 'b'}
    >>> group_gap(frame, higher_is_better=False)["worst"]
    'a'
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
