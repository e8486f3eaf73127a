"""The one interval kernel: proportions, bootstrap intervals, cluster bootstrap, gap tests, q-values.

Every interval, test and q-value biaslib prints comes from here; the tests measure their coverage and
false-positive rates by simulation (``tests/test_intervals.py``).

- :func:`wilson_interval`, :func:`jeffreys_interval`: a binomial share k/n. Never zero-width: 0/12 gives
  [0, 0.24] (Wilson), where a percentile bootstrap gives [0, 0]. :func:`cluster_wilson_interval`: the same when rows
  come in clusters (a design-effect Wilson interval, :func:`effective_size`).
- :func:`bootstrap_means`, :func:`cluster_bootstrap_means`: replicates of a mean, resampling rows, or
  whole clusters (rows that share a unit: COCO's 5 captions of one image, the images of one prompt). A
  cluster replicate is Σ cluster sums / Σ cluster sizes of the resampled clusters.
- :func:`percentile_interval`, :func:`bca_interval`: an interval from replicates (BCa: bias-corrected and
  accelerated, Efron 1987, acceleration from the jackknife).
- :func:`gap_interval`, :func:`ratio_interval`: intervals for max − min and min / max of group means that hold
  for every group at once (bootstrap max-t bands). The max − min of each resample, with the two groups re-selected
  in each, is no interval for the true gap: it lies above the gap whenever groups are close, and with all groups
  equal it covered the true 0 in none of 200 simulated datasets (tests/test_intervals.py measures both).
- :func:`gap_test`: max − min of group means with :func:`gap_interval`, a permutation p-value for "all groups
  equal" and the null gap a fair model shows.
- :func:`bh_qvalues`: Benjamini–Hochberg q-values over a family of p-values.
- :func:`bias_aware_half_width`, :func:`bias_aware_p`: an interval and a test for an estimator whose bias is only
  bounded (MAGBIG's corrected mean L1: :func:`biaslib.metrics.magbig.mean_l1_inference`).

Everything is seeded by ``numpy.random.default_rng(seed)`` and vectorised over replicates.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from biaslib.metrics._checks import check_ci
from biaslib.metrics.estimate import Estimate

# Groups with at most this many distinct values are bootstrapped (and permuted) through counts over the
# distinct values, which has exactly the distribution of resampling (permuting) rows and costs O(levels).
MULTINOMIAL_MAX_DISTINCT = 64
# Resampled or permuted indices held in memory at once.
_CHUNK_ELEMENTS = 1 << 22


def z_value(ci: float) -> float:
    """Two-sided standard-normal quantile of a ``ci`` interval (1.959964 for 0.95).

    >>> round(z_value(0.95), 3), round(z_value(0.90), 3)
    (1.96, 1.645)
    """
    check_ci(ci)
    return NormalDist().inv_cdf(0.5 + ci / 2.0)


def bias_aware_half_width(se: float, bias_bound: float, ci: float = 0.95) -> float:
    """Half-width ``se · cv`` of an interval that covers at level ``ci`` whatever the estimator's bias in
    ``[−bias_bound, bias_bound]`` (Armstrong & Kolesár 2020, "Simple and honest confidence intervals in
    nonparametric regression"): ``cv`` is the ``ci`` quantile of |N(bias_bound / se, 1)|, so it is ``z_value(ci)``
    at no bias and ≈ bias_bound / se + z one-sided when the bias dominates. ``se`` > 0, ``bias_bound`` ≥ 0, both in
    the estimate's units.

    No bias gives z (1.96); a bias bound of 5 standard errors gives about 5 + the one-sided z (1.645).

    >>> round(bias_aware_half_width(1.0, 0.0), 3), round(bias_aware_half_width(1.0, 5.0), 3)
    (1.96, 6.645)
    """
    check_ci(ci)
    if not se > 0 or not bias_bound >= 0:
        raise ValueError(f"se must be > 0 and bias_bound >= 0, got {se} and {bias_bound}")
    from scipy.optimize import brentq
    from scipy.stats import norm

    shift = bias_bound / se
    covered = lambda c: norm.cdf(c - shift) - norm.cdf(-c - shift) - ci  # noqa: E731
    return float(se * brentq(covered, 0.0, shift + 10.0, xtol=1e-10))


def bias_aware_p(estimate: float, se: float, bias_bound: float, null: float = 0.0) -> float:
    """Two-sided p-value of "the estimand is ``null``" for an estimate with standard error ``se`` and a bias of at
    most ``bias_bound``: P(|Z + bias_bound / se| ≥ |estimate − null| / se), Z ~ N(0, 1) (the worst bias). It is below
    1 − ci exactly when :func:`bias_aware_half_width`'s interval excludes ``null``.

    With no bias an estimate 1.96 se from the null has p = 0.05; with a bias of up to 1 se, one 3 se away has
    p = Φ(1 − 3) + Φ(−1 − 3) = 0.0228.

    >>> round(bias_aware_p(1.96, 1.0, 0.0), 3), round(bias_aware_p(3.0, 1.0, 1.0), 4)
    (0.05, 0.0228)
    """
    if not se > 0 or not bias_bound >= 0:
        raise ValueError(f"se must be > 0 and bias_bound >= 0, got {se} and {bias_bound}")
    from scipy.stats import norm

    shift, distance = bias_bound / se, abs(estimate - null) / se
    return float(min(1.0, norm.cdf(shift - distance) + norm.cdf(-shift - distance)))


# ---- proportions -------------------------------------------------------------------------------------

def _counts(successes: ArrayLike, n: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    k = np.asarray(successes, dtype=np.float64)
    total = np.asarray(n, dtype=np.float64)
    if np.any(total < 1) or np.any(k < 0) or np.any(k > total):
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got successes={successes}, n={n}")
    return k, total


def wilson_interval(successes: ArrayLike, n: ArrayLike, ci: float = 0.95) -> tuple[Any, Any]:
    """Wilson score interval of the share ``successes / n`` (scalars or arrays, broadcast).

    Returns ``(low, high)`` in [0, 1]: floats for scalar input, arrays otherwise. 0/n gives
    ``[0, z²/(n + z²)]`` and n/n its mirror, never a zero-width interval.

    3 of 10 gives the textbook [0.108, 0.603]; 0 of 12 gives [0, z²/(12 + z²)] = [0, 0.242].

    >>> import numpy as np
    >>> low, high = wilson_interval(3, 10)
    >>> round(low, 3), round(high, 3)
    (0.108, 0.603)
    >>> np.round(wilson_interval([3, 0], [10, 12]), 3).tolist()
    [[0.108, 0.0], [0.603, 0.242]]
    """
    k, total = _counts(successes, n)
    z = z_value(ci)
    p = k / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2.0 * total)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total)) / denominator
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(k == total, 1.0, np.clip(centre + half, 0.0, 1.0))
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


def jeffreys_interval(successes: ArrayLike, n: ArrayLike, ci: float = 0.95) -> tuple[Any, Any]:
    """Jeffreys interval (equal-tailed Beta(k + ½, n − k + ½) quantiles; 0 at k = 0, 1 at k = n).

    3 of 10: the 2.5% and 97.5% quantiles of Beta(3.5, 7.5); 0 of 10 starts at exactly 0.

    >>> import numpy as np
    >>> np.round(jeffreys_interval(3, 10), 3).tolist(), jeffreys_interval(0, 10)[0]
    ([0.093, 0.606], 0.0)
    """
    from scipy.stats import beta

    k, total = _counts(successes, n)
    alpha = (1.0 - ci) / 2.0
    check_ci(ci)
    low = np.where(k == 0, 0.0, beta.ppf(alpha, k + 0.5, total - k + 0.5))
    high = np.where(k == total, 1.0, beta.ppf(1.0 - alpha, k + 0.5, total - k + 0.5))
    return (float(low), float(high)) if low.ndim == 0 else (low, high)


def is_binary(values: ArrayLike) -> bool:
    """True when every value is 0 or 1 (hits, correct answers): the values Wilson intervals, the variance floor and
    the exact permutation test are for.

    >>> is_binary([0, 1, 1.0]), is_binary([True, False]), is_binary([0, 0.5])
    (True, True, False)
    """
    return bool(np.isin(values, (0.0, 1.0)).all())


def ratio_mean_variance(sums: ArrayLike, sizes: ArrayLike, squares: ArrayLike, cross: ArrayLike,
                        size_squares: ArrayLike, units: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean Σ S / Σ n of units (clusters, or rows: n = 1) and its linearised variance
    Σ (S − m n)² / (Σ n)² · C / (C − 1), from the totals over the units of S, n, S², S·n, n² and their count C
    (any broadcastable shapes; the sample variance / n for rows). Undefined (NaN) where C < 2 or Σ n = 0: for C < 2
    the variance is set to NaN, not computed (the rounded numerator would give 0, +inf or NaN by chance).

    For rows (n = 1, S = x) it is the mean and the sample variance / n: (4 + 1 + 0 + 9) / 3 / 4 = 1.1667. One cluster
    (C = 1, here of sum 0.7 and 3 rows) has no variance.

    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 3.0, 6.0])
    >>> mean, variance = ratio_mean_variance(x.sum(), 4, (x * x).sum(), x.sum(), 4, 4)
    >>> float(mean), round(float(variance), 4)
    (3.0, 1.1667)
    >>> float(ratio_mean_variance(0.7, 3, 0.7 * 0.7, 0.7 * 3, 9, 1)[1])
    nan
    """
    sums, sizes = np.asarray(sums, dtype=np.float64), np.asarray(sizes, dtype=np.float64)
    units = np.asarray(units, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / sizes
        variances = ((np.asarray(squares) - 2.0 * means * np.asarray(cross) + means**2 * np.asarray(size_squares))
                     / sizes**2 * units / (units - 1.0)).clip(min=0.0)
    # C < 2: the numerator is 0 only up to rounding (so 0, +inf or NaN), hence set to NaN, not computed
    variances = np.where(units < 2.0, np.nan, variances)[()]
    return means, variances


def effective_size(cluster_hits: ArrayLike, cluster_sizes: ArrayLike) -> float:
    """Effective number of independent rows of a 0/1 mean over clusters: n / design effect (Kish 1965).

    ``cluster_hits`` and ``cluster_sizes`` (C,): each cluster's hits and rows. The design effect is the clustered
    variance of the mean (linearised ratio variance, Σ (hits − p̂ n_c)² / n² · C / (C − 1)) over the independent
    rows' p̂(1 − p̂)/n; the size it gives is clipped to [n² / Σ n_c², n]: between each cluster acting like one row
    (all its rows agree) and clusters that do not matter (rows independent). With no hit, no miss or one cluster the
    design effect cannot be estimated and the smaller (cautious) size is returned.

    Two clusters of two rows: all-hit and all-miss clusters count as one row each (4² / 8 = 2); clusters split
    evenly count all 4 rows.

    >>> effective_size([2, 0], [2, 2]), effective_size([1, 1], [2, 2])
    (2.0, 4.0)
    """
    hits, sizes = np.asarray(cluster_hits, dtype=np.float64), np.asarray(cluster_sizes, dtype=np.float64)
    n = float(sizes.sum())
    fewest = n * n / float((sizes * sizes).sum())
    share = float(hits.sum()) / n
    if not 0.0 < share < 1.0 or len(sizes) < 2:
        return fewest
    _, clustered = ratio_mean_variance(hits.sum(), n, (hits * hits).sum(), (hits * sizes).sum(),
                                       (sizes * sizes).sum(), len(sizes))
    if clustered <= 0.0:
        return n
    return float(np.clip(share * (1.0 - share) / clustered, fewest, n))


def cluster_wilson_interval(cluster_hits: ArrayLike, cluster_sizes: ArrayLike, ci: float = 0.95) -> tuple[float, float]:
    """Wilson interval of a 0/1 share whose rows come in clusters: :func:`wilson_interval` at the share with
    :func:`effective_size` rows (a design-effect Wilson interval). Never zero-width, also for a rare outcome with
    no hit in any cluster (then it is Wilson's with n² / Σ n_c² rows). Coverage ≥ 0.90 from 5 clusters of 5 rows,
    p from 0.02 to 0.5, cluster correlation 0 to 1 (tests/test_intervals.py).

    Two clusters of two rows, one all hits and one all misses: Wilson's interval of 1 hit in 2 rows.

    >>> import numpy as np
    >>> np.round(cluster_wilson_interval([2, 0], [2, 2]), 3).tolist(), np.round(wilson_interval(1, 2), 3).tolist()
    ([0.095, 0.905], [0.095, 0.905])
    """
    hits, sizes = np.asarray(cluster_hits, dtype=np.float64), np.asarray(cluster_sizes, dtype=np.float64)
    rows = effective_size(hits, sizes)
    return wilson_interval(float(hits.sum() / sizes.sum()) * rows, rows, ci)


# ---- bootstrap replicates ------------------------------------------------------------------------------

def bootstrap_means(x: np.ndarray, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means ``(n_boot,)`` of resamples (with replacement, same size) of the 1-D array ``x``.

    With few distinct values (e.g. 0/1 hits) a resample is drawn as multinomial counts over the distinct
    values (exactly the distribution of resampling rows); otherwise row indices are drawn in chunks.

    A resample of [0, 1] holds two of its values, so its mean is 0, 0.5 or 1.

    >>> import numpy as np
    >>> draws = bootstrap_means(np.array([0.0, 1.0]), n_boot=200, rng=np.random.default_rng(0))
    >>> draws.shape, sorted(set(draws.tolist()))
    ((200,), [0.0, 0.5, 1.0])
    """
    n = len(x)
    if n == 0:
        return np.full(n_boot, np.nan)
    distinct, counts = np.unique(x, return_counts=True)
    if len(distinct) <= MULTINOMIAL_MAX_DISTINCT:
        return rng.multinomial(n, counts / n, size=n_boot) @ distinct / n
    means = np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int64)
        means[start:stop] = x[idx].mean(axis=1)
    return means


def cluster_sums(values: np.ndarray, clusters: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cluster sums and sizes of ``values`` and each row's cluster code.

    Returns ``(sums (C,), sizes (C,), codes (n,))`` with clusters in sorted label order.

    >>> import numpy as np
    >>> sums, sizes, codes = cluster_sums(np.array([1.0, 0.0, 1.0, 1.0, 0.0]), ["b", "a", "b", "c", "a"])
    >>> sums.tolist(), sizes.tolist(), codes.tolist()
    ([0.0, 2.0, 1.0], [2.0, 2.0, 1.0], [1, 0, 1, 2, 0])
    """
    import pandas as pd

    labels = pd.Series(np.asarray(clusters, dtype=object) if not isinstance(clusters, pd.Series) else clusters)
    if len(labels) != len(values):
        raise ValueError(f"length mismatch: values has {len(values)} rows but clusters has {len(labels)}")
    codes, uniques = pd.factorize(labels.reset_index(drop=True), sort=True)
    if (codes < 0).any():
        raise ValueError(f"clusters has missing labels at positions {np.flatnonzero(codes < 0)[:5].tolist()}")
    sums = np.bincount(codes, weights=values, minlength=len(uniques))
    sizes = np.bincount(codes, minlength=len(uniques)).astype(np.float64)
    return sums, sizes, codes.astype(np.int64)


def cluster_bootstrap_means(sums: np.ndarray, sizes: np.ndarray, *, n_boot: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Ratio means ``(n_boot,)`` of resamples of whole clusters: Σ resampled sums / Σ resampled sizes.

    ``sums``/``sizes`` (C,) are one group's clusters (:func:`cluster_sums`); C clusters are drawn with
    replacement as multinomial counts, in chunks of rows.

    A cluster of 3 rows with 3 hits and one of 1 row with none: a replicate holding one of each is
    (3 + 0) / (3 + 1) = 0.75 (not 0.5, the mean of the two cluster means), two of one cluster give 1 or 0.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sorted(set(cluster_bootstrap_means(np.array([3.0, 0.0]), np.array([3.0, 1.0]), n_boot=200, rng=rng).tolist()))
    [0.0, 0.75, 1.0]
    """
    c = len(sums)
    if c == 0:
        return np.full(n_boot, np.nan)
    means = np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // c)
    uniform = np.full(c, 1.0 / c)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        counts = rng.multinomial(c, uniform, size=stop - start).astype(np.float64)
        means[start:stop] = (counts @ sums) / (counts @ sizes)
    return means


# ---- intervals from replicates -------------------------------------------------------------------------

def percentile_interval(draws: np.ndarray, ci: float = 0.95) -> tuple[Any, Any]:
    """Equal-tailed percentile interval over axis 0 of ``draws`` (B, …), ignoring NaN/inf draws.

    NaN where no draw is finite; floats for 1-D ``draws``, arrays of shape ``draws.shape[1:]`` otherwise.

    The 2.5% and 97.5% quantiles of 0, 1, …, 100; no finite draw gives NaN.

    >>> import numpy as np
    >>> low, high = percentile_interval(np.arange(101.0))
    >>> round(low, 3), round(high, 3)
    (2.5, 97.5)
    >>> percentile_interval(np.array([np.nan, np.inf]))
    (nan, nan)
    """
    check_ci(ci)
    draws = np.asarray(draws, dtype=np.float64)
    alpha = (1.0 - ci) / 2.0
    finite = np.where(np.isfinite(draws), draws, np.nan)
    any_finite = np.isfinite(finite).any(axis=0)
    low = np.full(draws.shape[1:], np.nan)
    high = np.full(draws.shape[1:], np.nan)
    if np.any(any_finite):
        if draws.ndim == 1:
            low, high = np.nanquantile(finite, [alpha, 1.0 - alpha])
        else:
            low[any_finite] = np.nanquantile(finite[:, any_finite], alpha, axis=0)
            high[any_finite] = np.nanquantile(finite[:, any_finite], 1.0 - alpha, axis=0)
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def ratio_acceleration(sums: np.ndarray, sizes: np.ndarray) -> float:
    """Jackknife acceleration of the ratio mean Σ sums / Σ sizes, leaving out one unit (row or cluster) at a time.

    a = Σ d³ / (6 (Σ d²)^{3/2}) with d_u = mean of the leave-one-out means − the mean without unit u; for rows
    (all sizes 1) this is Σ (x − x̄)³ / (6 (Σ (x − x̄)²)^{3/2}). 0 when there are fewer than two units or every
    leave-one-out mean is the same.

    For rows [0, 0, 3] the deviations −1, −1, 2 give 6 / (6 · 6^1.5) = 0.068; symmetric rows give 0.

    >>> import numpy as np
    >>> round(ratio_acceleration(np.array([0.0, 0.0, 3.0]), np.ones(3)), 3)
    0.068
    >>> ratio_acceleration(np.array([1.0, 2.0, 3.0]), np.ones(3))
    0.0
    """
    sums = np.asarray(sums, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    if len(sums) < 2:
        return 0.0
    leave_out = (sums.sum() - sums) / (sizes.sum() - sizes)
    d = leave_out.mean() - leave_out
    spread = float(np.sum(d * d))
    return float(np.sum(d**3) / (6.0 * spread**1.5)) if spread > 1e-300 else 0.0


def bca_interval(draws: np.ndarray, estimate: float, acceleration: float, ci: float = 0.95) -> tuple[float, float]:
    """BCa interval from bootstrap replicates ``draws (B,)`` of a statistic whose value is ``estimate``.

    Bias correction z₀ = Φ⁻¹(share of draws below the estimate, ties counted half); the percentile levels
    Φ(z₀ + (z₀ + z_α)/(1 − a(z₀ + z_α))) are read off the draws. Falls back to the percentile interval
    when every draw lies on one side of the estimate (z₀ infinite).

    With the estimate at the draws' median and no acceleration (z₀ = 0, a = 0) it is the percentile interval; a = 0.1
    reads the levels Φ(−1.96 / 1.196) = 5.06% and Φ(1.96 / 0.804) = 99.26%.

    >>> import numpy as np
    >>> draws = np.arange(101.0)
    >>> np.round(bca_interval(draws, 50.0, 0.0), 3).tolist(), np.round(bca_interval(draws, 50.0, 0.1), 3).tolist()
    ([2.5, 97.5], [5.063, 99.261])
    """
    check_ci(ci)
    finite = np.asarray(draws, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / len(finite)
    if below <= 0.0 or below >= 1.0:
        return percentile_interval(finite, ci)
    normal = NormalDist()
    z0 = normal.inv_cdf(below)
    levels = []
    for tail in ((1.0 - ci) / 2.0, (1.0 + ci) / 2.0):
        z = z0 + normal.inv_cdf(tail)
        levels.append(normal.cdf(z0 + z / (1.0 - acceleration * z)))
    low, high = np.quantile(finite, levels)
    return float(low), float(high)


# ---- gaps between groups -------------------------------------------------------------------------------

def _group_codes(groups: ArrayLike, n: int) -> tuple[np.ndarray, list[Any]]:
    import pandas as pd

    labels = groups.reset_index(drop=True) if isinstance(groups, pd.Series) else pd.Series(
        np.asarray(groups, dtype=object))
    if len(labels) != n:
        raise ValueError(f"length mismatch: values has {n} rows but groups has {len(labels)}")
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), list(uniques)


def _permuted_sums_discrete(values: np.ndarray, sizes: np.ndarray, n_perm: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Per-group sums ``(n_perm, G)`` after permuting the group labels of the rows, for few distinct values.

    Dealing rows to groups of fixed sizes at random gives each group multivariate-hypergeometric counts of
    every distinct value; they are drawn group after group, value after value, from what is left.
    """
    distinct, counts = np.unique(values, return_counts=True)
    left = np.broadcast_to(counts.astype(np.int64), (n_perm, len(distinct))).copy()
    sums = np.zeros((n_perm, len(sizes)))
    for g, size in enumerate(sizes.astype(np.int64)):
        need = np.full(n_perm, size, dtype=np.int64)
        for j in range(len(distinct)):
            others = left[:, j + 1:].sum(axis=1)
            taken = rng.hypergeometric(left[:, j], others, need) if j < len(distinct) - 1 else need
            sums[:, g] += taken * distinct[j]
            left[:, j] -= taken
            need -= taken
    return sums


def _permuted_totals(unit_weights: np.ndarray, unit_codes: np.ndarray, n_groups: int, n_perm: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Per-group totals ``(n_perm, G, W)`` of ``unit_weights`` (U, W) after shuffling the units' group codes.

    One shuffle per permutation moves every column of a unit together (a cluster's sum and its size).
    """
    u, w = unit_weights.shape
    out = np.empty((n_perm, n_groups, w))
    step = max(1, _CHUNK_ELEMENTS // max(u, 1))
    for start in range(0, n_perm, step):
        stop = min(n_perm, start + step)
        labels = rng.permuted(np.broadcast_to(unit_codes, (stop - start, u)), axis=1)
        flat = (labels + n_groups * np.arange(stop - start)[:, None]).ravel()
        for j in range(w):
            out[start:stop, :, j] = np.bincount(flat, weights=np.broadcast_to(unit_weights[:, j], labels.shape).ravel(),
                                                minlength=(stop - start) * n_groups).reshape(stop - start, n_groups)
    return out


def group_mean_draws(values: np.ndarray, codes: np.ndarray, n_groups: int, *, n_boot: int, rng: np.random.Generator,
                     clusters: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap replicates ``(n_boot, G)`` of every group's mean, each group resampled on its own.

    ``codes`` (n,) is each row's group in 0..G−1; ``clusters`` (n,), integer cluster codes, makes each group
    resample its clusters (:func:`cluster_bootstrap_means`) instead of its rows (:func:`bootstrap_means`).
    Groups are drawn in code order from ``rng``. The gap's and the ratio's intervals come from these replicates
    through :func:`gap_interval` and :func:`ratio_interval`.

    Group 0 holds [0, 1] (replicates 0, 0.5 or 1), group 1 only 5s (always 5).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> draws = group_mean_draws(np.array([0.0, 1.0, 5.0, 5.0, 5.0]), np.array([0, 0, 1, 1, 1]), 2, n_boot=200, rng=rng)
    >>> draws.shape, sorted(set(draws[:, 0].tolist())), set(draws[:, 1].tolist())
    ((200, 2), [0.0, 0.5, 1.0], {5.0})
    """
    boot = np.empty((n_boot, n_groups))
    for g in range(n_groups):
        rows = codes == g
        if clusters is None:
            boot[:, g] = bootstrap_means(values[rows], n_boot=n_boot, rng=rng)
        else:
            sums, sizes, _ = cluster_sums(values[rows], clusters[rows])
            boot[:, g] = cluster_bootstrap_means(sums, sizes, n_boot=n_boot, rng=rng)
    return boot


def binary_mean_variance(sums: ArrayLike, sizes: ArrayLike) -> np.ndarray:
    """Variance of each group's 0/1 mean with one success and one failure added (Agresti & Caffo 2000):
    p̃(1 − p̃)/(n + 2), p̃ = (x + 1)/(n + 2), shape of ``sums``. A floor for :func:`gap_interval`: a group with 0 or
    n hits has bootstrap replicates without spread, which would make its difference from the others look exact.

    0 of 2: p̃ = 1/4, (1/4)(3/4)/4 = 3/64; 1 of 2: p̃ = 1/2, (1/2)(1/2)/4 = 1/16.

    >>> binary_mean_variance([0, 1], [2, 2]).tolist()
    [0.046875, 0.0625]
    """
    x, n = np.asarray(sums, dtype=np.float64), np.asarray(sizes, dtype=np.float64)
    share = (x + 1.0) / (n + 2.0)
    return share * (1.0 - share) / (n + 2.0)


def binary_variance_floor(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray | None:
    """:func:`binary_mean_variance` of each of ``n_groups`` groups (``codes`` (n,) in 0..G−1) when ``values`` (n,)
    are all 0 or 1, else None (continuous values need no floor): the ``variance_floor`` of :func:`gap_interval`.

    Groups of 0 of 2 and 2 of 2 hits both get 3/64; values that are not 0/1 get no floor.

    >>> import numpy as np
    >>> binary_variance_floor(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1]), 2).tolist()
    [0.046875, 0.046875]
    >>> binary_variance_floor(np.array([0.0, 0.5]), np.array([0, 1]), 2) is None
    True
    """
    if not is_binary(values):
        return None
    hits = np.bincount(codes, weights=values, minlength=n_groups)
    return binary_mean_variance(hits, np.bincount(codes, minlength=n_groups))


def _max_t_bands(estimates: np.ndarray, draws: np.ndarray, ci: float,
                 variance_floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous bands (low, high), each of shape (K,), for K ``estimates`` from their replicates ``draws``
    (B, K): estimate ± c·se, se the replicates' sd (at least √``variance_floor``), c the ``ci`` quantile over
    replicates of max_k |draw_k − estimate_k| / se_k, so that all K bands hold together with probability ``ci``;
    c is at least the normal quantile of one band (replicates without any spread, e.g. groups of 0/1 values
    without a hit, would give c = 0)."""
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.maximum(np.nanvar(draws, axis=0, ddof=1), variance_floor))
    finite = np.isfinite(se) & (se > 0)
    if not finite.any():
        return estimates.copy(), estimates.copy()
    t = np.nanmax(np.abs(draws[:, finite] - estimates[finite]) / se[finite], axis=1)
    c = max(float(np.quantile(t[np.isfinite(t)], ci)), z_value(ci)) if np.isfinite(t).any() else float("nan")
    spread = np.where(finite, c * se, 0.0)
    return estimates - spread, estimates + spread


def _band_inputs(name: str, means: ArrayLike, draws: ArrayLike, ci: float,
                 variance_floor: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``means`` (G,), ``draws`` (B, G) and the variance floor (G,; zeros when None) as float arrays, checked."""
    check_ci(ci)
    m = np.asarray(means, dtype=np.float64)
    d = np.asarray(draws, dtype=np.float64)
    if m.ndim != 1 or len(m) < 2 or d.ndim != 2 or d.shape[1] != len(m):
        raise ValueError(f"{name} needs means (G >= 2,) and draws (B, G); got {m.shape} and {d.shape}")
    floor = np.zeros(len(m)) if variance_floor is None else np.asarray(variance_floor, dtype=np.float64)
    return m, d, floor


def gap_interval(means: ArrayLike, draws: ArrayLike, ci: float = 0.95, *,
                 variance_floor: ArrayLike | None = None) -> tuple[float, float]:
    """Interval for the gap max_g μ_g − min_g μ_g between G group means that holds for every pair at once.

    Parameters
    ----------
    means : array-like of float, shape (G,)
        The groups' observed means (G ≥ 2).
    draws : array-like of float, shape (B, G)
        Replicates of the means (:func:`group_mean_draws`, or normal draws around each mean).
    ci : float, default 0.95
        Confidence level.
    variance_floor : array-like of float, shape (G,), optional
        A lower bound on each mean's variance (:func:`binary_mean_variance` for 0/1 values).

    Returns
    -------
    (low, high) : tuple of float
        Every pair's difference m_i − m_j gets a band ± c·se_ij (se_ij from the replicates, at least
        √(floor_i + floor_j); c the max-t quantile over all pairs, a bootstrap Tukey band). The true gap is the
        largest |μ_i − μ_j|, so it lies in [max over pairs of the band's distance from 0, max over pairs of the
        band's farthest end] whenever every band holds. ``low`` is 0 when every band contains 0; with all groups
        equal the bands alone left 0 out in 6–11% (rows; clustered 0/1 values), so :func:`gap_test` and the
        evaluations also start it at 0 when the test does not reject (:func:`aligned_with_test`). Always
        ``low`` ≤ observed gap ≤ ``high``. Measured coverage (tests/test_intervals.py): 0.90–0.99 of the true
        gap over five planted truths, from all groups equal to far apart.

    Replicates without spread: the difference's se is √(0.005 + 0.005) = 0.1 and c the normal 1.96, so the gap 0.6
    gets 0.6 ± 0.196; with equal means the band holds 0 and the interval starts at 0.

    >>> import numpy as np
    >>> means = np.array([0.2, 0.8])
    >>> np.round(gap_interval(means, np.tile(means, (10, 1)), variance_floor=[0.005, 0.005]), 3).tolist()
    [0.404, 0.796]
    >>> equal = np.array([0.5, 0.5])
    >>> np.round(gap_interval(equal, np.tile(equal, (10, 1)), variance_floor=[0.005, 0.005]), 3).tolist()
    [0.0, 0.196]
    """
    m, d, floor = _band_inputs("gap_interval", means, draws, ci, variance_floor)
    if len(d) < 2:
        return float("nan"), float("nan")
    i, j = np.triu_indices(len(m), 1)
    low, high = _max_t_bands(m[i] - m[j], d[:, i] - d[:, j], ci, floor[i] + floor[j])
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        return float("nan"), float("nan")
    nearest = np.maximum(0.0, np.maximum(low, -high))  # the band's smallest |difference|
    return float(nearest.max()), float(np.maximum(np.abs(low), np.abs(high)).max())


def ratio_interval(means: ArrayLike, draws: ArrayLike, ci: float = 0.95, *,
                   variance_floor: ArrayLike | None = None) -> tuple[float, float]:
    """Interval for min_g μ_g / max_g μ_g of G non-negative group means that holds for every group at once.

    ``means`` (G,), ``draws`` (B, G) and ``variance_floor`` (G,) as in :func:`gap_interval`. Each mean gets a
    simultaneous max-t band [l_g, u_g]; the true ratio then lies in [max(0, min l) / max u, min(1, min u / max l)]
    (NaN low when max u ≤ 0; high 1 when max l ≤ 0). Conservative: it needs every group's band at once.

    Replicates without spread and se √0.0025 = 0.05: the bands 0.4 ± 0.098 and 0.8 ± 0.098 give
    [0.302 / 0.898, 0.498 / 0.702].

    >>> import numpy as np
    >>> means = np.array([0.4, 0.8])
    >>> np.round(ratio_interval(means, np.tile(means, (10, 1)), variance_floor=[0.0025, 0.0025]), 3).tolist()
    [0.336, 0.709]
    """
    m, d, floor = _band_inputs("ratio_interval", means, draws, ci, variance_floor)
    if len(d) < 2:
        return float("nan"), float("nan")
    low, high = _max_t_bands(m, d, ci, floor)
    if not (np.isfinite(low).all() and np.isfinite(high).all()) or high.max() <= 0:
        return float("nan"), float("nan")
    ratio_low = max(0.0, float(low.min())) / float(high.max())
    ratio_high = 1.0 if low.max() <= 0 else min(1.0, float(high.min()) / float(low.max()))
    return min(ratio_low, ratio_high), ratio_high


def aligned_with_test(low: float, high: float, p_value: float, ci: float = 0.95, *,
                      null: float = 0.0) -> tuple[float, float]:
    """An interval made to agree with the test of its ``null`` value: when the test does not reject at the interval's
    level (``p_value`` ≥ 1 − ``ci``) the interval is stretched to hold ``null`` (the gap's 0, the min/max ratio's 1).
    Only ever wider, so coverage does not drop; "the interval leaves the null out" then implies p < 1 − ci, and the
    rate at which equal groups get an interval without 0 is at most the test's false-positive rate (it was 6–11%
    with the bootstrap bands alone). The other way round — the test rejects, the simultaneous interval still holds
    the null — can remain: the test is the decision, the interval a conservative range.

    >>> aligned_with_test(0.1, 0.5, p_value=0.2), aligned_with_test(0.1, 0.5, p_value=0.01)
    ((0.0, 0.5), (0.1, 0.5))
    >>> aligned_with_test(0.3, 0.8, p_value=0.5, null=1.0)
    (0.3, 1.0)
    """
    if not np.isfinite(p_value) or p_value < 1.0 - ci:
        return low, high
    return min(low, null), max(high, null)


def _cluster_units(vals: np.ndarray, codes: np.ndarray,
                   clusters: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit of each row (n,), the units' [sum, size] (U, 2) and group codes (U,)) of ``clusters``; every cluster
    must lie in one group."""
    unit_sums, unit_sizes, unit_of_row = cluster_sums(vals, clusters)
    unit_group = np.full(len(unit_sums), -1, dtype=np.int64)
    unit_group[unit_of_row] = codes
    if np.any(unit_group[unit_of_row] != codes):
        raise ValueError("every cluster must lie in one group (a cluster's rows carry different groups)")
    return unit_of_row, np.stack([unit_sums, unit_sizes], axis=1), unit_group


def _permuted_gaps(vals: np.ndarray, codes: np.ndarray, sizes: np.ndarray, units: tuple | None, n_perm: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Max − min of the group means ``(n_perm,)`` after permuting the group labels over rows, or over whole
    clusters when ``units`` (:func:`_cluster_units`) is given; groups keep their sizes (clusters: their counts)."""
    n_groups = len(sizes)
    if units is not None:
        totals = _permuted_totals(units[1], units[2], n_groups, n_perm, rng)
        perm_sums, perm_sizes = totals[..., 0], totals[..., 1]
    elif len(np.unique(vals)) <= MULTINOMIAL_MAX_DISTINCT:
        perm_sums, perm_sizes = _permuted_sums_discrete(vals, sizes, n_perm, rng), sizes
    else:
        perm_sums, perm_sizes = _permuted_totals(vals[:, None], codes, n_groups, n_perm, rng)[..., 0], sizes
    with np.errstate(invalid="ignore", divide="ignore"):
        perm_means = perm_sums / perm_sizes
    return np.nanmax(perm_means, axis=1) - np.nanmin(perm_means, axis=1)


def _unit_moments(vals: np.ndarray, codes: np.ndarray, units: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit (sum, size) (U, 2) and group code (U,): a unit is a cluster (``units`` from :func:`_cluster_units`)
    or, without clusters, a row."""
    if units is not None:
        return units[1], units[2]
    return np.stack([vals, np.ones_like(vals)], axis=1), codes


def _studentised_gaps(sums: np.ndarray, sizes: np.ndarray, squares: np.ndarray, cross: np.ndarray,
                      size_squares: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group means (…, G) and the max over pairs of |m_i − m_j| / √(v_i + v_j) (…,), from the groups' totals over
    units of sum S, size n, S², S·n, n² and the unit counts C (each (…, G)); v is :func:`ratio_mean_variance`.
    Pairs with a one-unit group (one row, or one cluster: C < 2, variance NaN) are left out (NaN), also when
    their means tie, so with no pair left the statistic is −inf; a pair of groups of ≥ 2 units without any spread
    counts 0 when its means tie, else infinity."""
    means, variances = ratio_mean_variance(sums, sizes, squares, cross, size_squares, units)
    with np.errstate(invalid="ignore", divide="ignore"):
        i, j = np.triu_indices(sums.shape[-1], 1)
        difference = np.abs(means[..., i] - means[..., j])
        spread = variances[..., i] + variances[..., j]
        t = np.where((difference == 0.0) & ~np.isnan(spread), 0.0, difference / np.sqrt(spread))
    statistic = np.nanmax(np.where(np.isnan(t), -np.inf, t), axis=-1)
    return means, statistic


def _moment_totals(unit_stats: np.ndarray, unit_codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Per-group totals of S, n, S², S·n, n² and the unit count, each (G,), of units (U, 2) = (S, n)."""
    s, n = unit_stats[:, 0], unit_stats[:, 1]
    return [np.bincount(unit_codes, weights=w, minlength=n_groups) for w in (s, n, s * s, s * n, n * n)] + [
        np.bincount(unit_codes, minlength=n_groups).astype(np.float64)]


def _studentised_null(unit_stats: np.ndarray, unit_codes: np.ndarray, means: np.ndarray, units: np.ndarray,
                      n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap of the max studentised gap under "all group means are equal" (n_boot,), and of the raw gap: each
    group's units are centred on the group's mean (``means`` (G,); S − m n) and resampled within the group (its
    ``units`` (G,) kept); groups in code order, rows of replicates in chunks."""
    n_groups = len(means)
    centred = unit_stats[:, 0] - means[unit_codes] * unit_stats[:, 1]
    totals = np.zeros((5, n_boot, n_groups))
    for g in range(n_groups):
        members = np.flatnonzero(unit_codes == g)
        s, n = centred[members], unit_stats[members, 1]
        step = max(1, _CHUNK_ELEMENTS // max(len(members), 1))
        for start in range(0, n_boot, step):
            picked = rng.integers(0, len(members), size=(min(step, n_boot - start), len(members)))
            ps, pn = s[picked], n[picked]
            for k, w in enumerate((ps, pn, ps * ps, ps * pn, pn * pn)):
                totals[k, start:start + len(picked), g] = w.sum(axis=1)
    null_means, statistic = _studentised_gaps(*totals, np.broadcast_to(units, (n_boot, n_groups)))
    return statistic, np.nanmax(null_means, axis=1) - np.nanmin(null_means, axis=1)


def gap_test(values: ArrayLike, groups: ArrayLike, *, clusters: ArrayLike | None = None, n_perm: int = 2000,
             n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> Estimate:
    """Gap between the highest and the lowest group mean, with an interval and a test against chance.

    Parameters
    ----------
    values : array-like of float, shape (n,)
        One finite value per row (0/1 hits, correctness, scores).
    groups : array-like, shape (n,)
        Group label per row (no missing labels: drop those rows first); at least two groups.
    clusters : array-like, shape (n,), optional
        Unit label per row (an image of several captions, a prompt of several images). Each cluster must lie
        in one group; the bootstrap resamples clusters within each group and the permutation moves whole
        clusters between groups.
    n_perm : int, default 2000
        Label permutations for the p-value and the null gap (0: NaN).
    n_boot : int, default 1000
        Bootstrap resamples (within each group, fixed group sizes) for the interval (0: NaN).
    ci : float, default 0.95
        Confidence level of the percentile interval.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``: permutations first, then resamples.

    Returns
    -------
    Estimate
        ``value``: the gap (max − min of the group means, units of ``values``); details ``low_group``,
        ``high_group``; ``ci_low``/``ci_high`` (:func:`gap_interval` over the bootstrap resamples; 0/1 values floor
        each group's variance with :func:`binary_variance_floor`; starting at 0 when the test does not reject,
        :func:`aligned_with_test`), ``p_value`` of "all group means are equal" and ``null_gap``
        (the mean gap under that null: what a fair model shows by chance with these group sizes), ``n`` (rows),
        ``n_groups``, ``interval`` (what the bootstrap resampled) and ``test``:

        - ``permutation`` for 0/1 values: (1 + #{permuted gap ≥ gap}) / (1 + n_perm), labels permuted over rows
          (or whole clusters). For 0/1 values equal means are equal distributions, so the test is exact.
        - ``studentised bootstrap`` for other values, where a permutation would test "identical distributions" and
          reject equal means with unequal spreads (52.8% at the 5% level, sd 2 / 1 / 1 / 0.5): the statistic is the
          max over pairs of Welch's |m_i − m_j| / √(v_i + v_j), its null distribution from ``n_perm`` resamples of
          the groups' units (rows or clusters) each centred on its own mean. False positives 4–7% with unequal
          spreads, sizes and clusters (tests/test_intervals.py). A group of a single unit (one row, or all its
          rows in one cluster) has no variance: its pairs are left out, and with no pair left (two groups, one of
          them a single unit) p = 1.

    Six hits against six misses: a gap of 1, far beyond chance (only 2 of the 924 splits of the rows reach it).

    >>> result = gap_test([1] * 6 + [0] * 6, ["a"] * 6 + ["b"] * 6, n_perm=200, n_boot=200)
    >>> result.value, result.high_group, result.low_group, result.test
    (1.0, 'a', 'b', 'permutation')
    >>> result.p_value < 0.05, result.covers(1.0)
    (True, True)
    """
    check_ci(ci)
    if n_perm < 0 or n_boot < 0:
        raise ValueError(f"n_perm and n_boot must be >= 0, got {n_perm} and {n_boot}")
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim != 1 or not np.isfinite(vals).all():
        raise ValueError("values must be a 1-D array of finite numbers")
    codes, names = _group_codes(groups, len(vals))
    if (codes < 0).any():
        raise ValueError("groups has missing labels: drop those rows before gap_test")
    n_groups = len(names)
    if n_groups < 2:
        raise ValueError(f"gap_test needs at least two groups, got {names}")
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)
    means = np.bincount(codes, weights=vals, minlength=n_groups) / sizes
    low_g, high_g = int(np.argmin(means)), int(np.argmax(means))
    if low_g == high_g:  # all means tie: any two distinct groups
        high_g = 1 if low_g == 0 else 0
    gap = float(means[high_g] - means[low_g])
    rng = np.random.default_rng(seed)
    tolerance = 1e-12 * max(1.0, float(np.max(np.abs(vals))))

    units = _cluster_units(vals, codes, clusters) if clusters is not None else None
    binary = is_binary(vals)
    p_value = null_gap = float("nan")
    if n_perm > 0 and binary:
        perm_gaps = _permuted_gaps(vals, codes, sizes, units, n_perm, rng)
        p_value = float((1 + np.sum(perm_gaps >= gap - tolerance)) / (1 + n_perm))
        null_gap = float(np.mean(perm_gaps))
    elif n_perm > 0:
        unit_stats, unit_codes = _unit_moments(vals, codes, units)
        totals = _moment_totals(unit_stats, unit_codes, n_groups)
        _, observed = _studentised_gaps(*totals)
        null_t, null_gaps = _studentised_null(unit_stats, unit_codes, means, totals[-1], n_perm, rng)
        p_value = float((1 + np.sum(null_t >= observed * (1.0 - 1e-12))) / (1 + n_perm))
        null_gap = float(np.mean(null_gaps))

    ci_low = ci_high = float("nan")
    if n_boot > 0:
        boot = group_mean_draws(vals, codes, n_groups, n_boot=n_boot, rng=rng,
                                clusters=None if units is None else units[0])
        floor = binary_variance_floor(vals, codes, n_groups)
        ci_low, ci_high = aligned_with_test(*gap_interval(means, boot, ci, variance_floor=floor), p_value, ci)
    return Estimate(gap, ci_low, ci_high, p_value, ci, details={
        "low_group": names[low_g], "high_group": names[high_g], "null_gap": null_gap, "n": int(len(vals)),
        "n_groups": n_groups, "interval": "cluster bootstrap" if clusters is not None else "bootstrap",
        "test": "permutation" if binary else "studentised bootstrap",
    })


def contrast_test(values: ArrayLike, groups: ArrayLike, first: Any, second: Any, *,
                  clusters: ArrayLike | None = None, n_perm: int = 2000, n_boot: int = 1000, ci: float = 0.95,
                  seed: int = 0) -> Estimate:
    """Signed difference of two pre-specified groups' means (``first`` − ``second``, e.g. female − male).

    Only the rows of the two groups are used. Unlike :func:`gap_test` the pair is fixed in advance, so the
    difference can be negative and its interval is the percentile interval of the per-resample difference (each
    group resampled on its own, rows or whole ``clusters``); ``p_value`` is :func:`gap_test`'s two-sided test of
    "the two means are equal" (with two groups its max − min is |first − second|): a permutation for 0/1 values,
    a studentised (Welch) bootstrap for others. When either group is a single unit (one row, or one cluster) the
    pair has no variance and, for values other than 0/1, ``p_value`` is 1 (:func:`gap_test`).

    Returns an :class:`~biaslib.metrics.estimate.Estimate`: ``value`` (the difference), ``ci_low``, ``ci_high``,
    ``p_value``; details ``n_first``, ``n_second`` (rows).

    f has 1 hit in 4, m 3 in 4 (rows of x are left out): f − m = −0.5.

    >>> values, groups = [0, 0, 1, 0, 1, 1, 1, 0, 1, 1], ["f"] * 4 + ["m"] * 4 + ["x"] * 2
    >>> result = contrast_test(values, groups, "f", "m", n_perm=200, n_boot=200)
    >>> result.value, result.n_first, result.n_second, result.covers(-0.5)
    (-0.5, 4, 4, True)
    >>> 0.0 < result.p_value <= 1.0
    True
    """
    vals = np.asarray(values, dtype=np.float64)
    labels = np.asarray(groups, dtype=object)
    if len(labels) != len(vals):
        raise ValueError(f"length mismatch: values has {len(vals)} rows but groups has {len(labels)}")
    keep = (labels == first) | (labels == second)
    if not (labels == first).any() or not (labels == second).any():
        raise ValueError(f"both groups need rows: {first!r} has {int((labels == first).sum())}, "
                         f"{second!r} has {int((labels == second).sum())}")
    pair = np.where(labels[keep] == first, 0, 1)
    kept_clusters = None if clusters is None else np.asarray(clusters, dtype=object)[keep]
    result = gap_test(vals[keep], pair, clusters=kept_clusters, n_perm=n_perm, n_boot=0, ci=ci, seed=seed)
    means = [vals[keep][pair == g].mean() for g in (0, 1)]
    ci_low = ci_high = float("nan")
    if n_boot > 0:
        units = None if kept_clusters is None else cluster_sums(vals[keep], kept_clusters)[2]
        draws = group_mean_draws(vals[keep], pair, 2, n_boot=n_boot, rng=np.random.default_rng(seed + 1),
                                 clusters=units)
        ci_low, ci_high = percentile_interval(draws[:, 0] - draws[:, 1], ci)
    return Estimate(float(means[0] - means[1]), ci_low, ci_high, result.p_value, ci,
                    details={"n_first": int((pair == 0).sum()), "n_second": int((pair == 1).sum())})


# ---- multiplicity --------------------------------------------------------------------------------------

#: A finding is "beyond chance" when its Benjamini–Hochberg q-value (:func:`bh_qvalues`) is below this.
Q_LEVEL = 0.05


def check_callable(min_p: float, family_size: int, q_level: float = Q_LEVEL, what: str = "the table") -> None:
    """Refuse a family of tests that can call nothing: with ``family_size`` tests whose smallest attainable
    p-value is ``min_p``, one finding alone gets the Benjamini–Hochberg q-value ``family_size · min_p``, so unless
    that is below ``q_level`` a single true effect, however large, is never called and the table would be a list of
    non-findings by construction (e.g. 3 ratios × 3 replicates: exact permutation p ≥ 2/1,680 = 0.00119; over 44
    rows q ≥ 0.052). Raises ``ValueError`` naming ``what``, the numbers and the ways out.

    10 tests with p ≥ 0.001 can reach q = 0.01; with p ≥ 0.01 a lone finding gets q ≥ 0.1 and nothing is callable.

    >>> check_callable(0.001, 10) is None
    True
    >>> check_callable(0.01, 10)
    Traceback (most recent call last):
        ...
    ValueError: the table: no finding can be called: its smallest attainable p-value is 0.01, ...
    """
    if family_size < 1:
        return
    floor = family_size * min_p
    if not floor < q_level:
        raise ValueError(f"{what}: no finding can be called: its smallest attainable p-value is {min_p:.4g}, so one "
                         f"finding among {family_size} tests gets q ≥ {min(floor, 1.0):.4g}, not below {q_level:g}; "
                         "test fewer measures (a smaller declared family) or add replicates")


def bh_qvalues(p_values: ArrayLike) -> np.ndarray:
    """Benjamini–Hochberg q-values of a family of p-values (NaN p-values stay NaN and do not count).

    q_(i) = min over j ≥ i of m · p_(j) / j (sorted ascending, m = number of finite p-values), capped at 1:
    calling every test with q < α a finding keeps the expected share of false findings at most α
    (independent or positively dependent tests).

    Sorted p 0.01, 0.03, 0.04 give 3 · p / rank = 0.03, 0.045, 0.04; the minimum over later ranks lowers 0.045 to
    0.04. NaN stays NaN and is not counted (m = 3).

    >>> import numpy as np
    >>> np.round(bh_qvalues([0.04, 0.01, 0.03, np.nan]), 3).tolist()
    [0.04, 0.03, 0.04, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    m = int(finite.sum())
    if m == 0:
        return q
    order = np.argsort(p[finite])
    ranked = p[finite][order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(ranked[::-1])[::-1]
    values = np.empty(m)
    values[order] = np.minimum(monotone, 1.0)
    q[finite] = values
    return q
