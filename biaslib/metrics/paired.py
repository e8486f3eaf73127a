"""Paired comparison of two arms across replicate pairs: the primary test of a controlled study.

A paired design trains one model per arm and replicate, the two arms of a replicate sharing every random source but
the treatment (seed, real data, captions, data order), so that the difference ``d_r = treatment_r − reference_r``
of replicate ``r`` holds the treatment's effect and only the noise the arms do not share. Across the ``R`` pairs:

:func:`paired_test` returns an :class:`~biaslib.metrics.estimate.Estimate`:

* ``value``: the effect, the mean difference; ``ci_low``/``ci_high``: the paired t interval (t with R − 1 degrees of
  freedom). It covers the variation between replicates (training seeds, generator draws) for a fixed evaluation set.
* ``p_value``: the sign-flip permutation test of "the arms are exchangeable" (each ``d_r`` is as likely to be
  ``−d_r``) with the t statistic, exact over all 2^R sign vectors up to :data:`EXACT_PAIRS` pairs and a seeded Monte
  Carlo test beyond. Because Σ d² does not change under sign flips, the t statistic orders sign vectors as the mean
  does. Details: ``p_t``, the t distribution's p-value for comparison; ``pairs`` (R), ``sd`` (of the differences),
  ``t``, ``exact`` and ``alternative``;
* ``min_p``: the smallest p-value the test can give with R pairs (2/2^R two-sided, 1/2^R one-sided, exact): a
  threshold below it can never be reached (:func:`smallest_attainable_p`).
* ``rho``: the correlation of the two arms' values across pairs; pairing pays when it is high (the difference's
  variance is var_t + var_r − 2ρ·sd_t·sd_r).

:func:`detectable_effect` sizes a design: the effect a paired design of R pairs detects with a given power at
level α when one difference varies with standard deviation ``sd`` (the paired t test's power from the noncentral t
distribution; the sign-flip test has about its power once 2/2^R is well below α).

Measured by simulation in ``tests/test_paired.py``.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from biaslib.metrics.estimate import Estimate

#: Up to this many pairs the sign-flip test enumerates all 2^R sign vectors (2^16 = 65,536).
EXACT_PAIRS = 16
Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")


def smallest_attainable_p(pairs: int, alternative: Alternative = "two-sided", *, n_perm: int = 20000) -> float:
    """The smallest p-value :func:`paired_test` can return for ``pairs`` pairs: 2/2^R (two-sided) or 1/2^R
    (one-sided) when exact, else 1/(n_perm + 1).

    >>> smallest_attainable_p(5), smallest_attainable_p(5, "greater"), smallest_attainable_p(20, n_perm=999)
    (0.0625, 0.03125, 0.001)
    """
    _check_alternative(alternative)
    if pairs > EXACT_PAIRS:
        return 1.0 / (n_perm + 1)
    return (2.0 if alternative == "two-sided" else 1.0) / 2.0**pairs


def _signs(pairs: int, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(sign vectors, shape (draws, pairs); exact): all 2^R when R ≤ :data:`EXACT_PAIRS`, else ``n_perm`` random."""
    if pairs <= EXACT_PAIRS:
        return np.array(list(itertools.product((1.0, -1.0), repeat=pairs))), True
    return rng.choice(np.array([1.0, -1.0]), size=(n_perm, pairs)), False


def paired_test(treatment: ArrayLike, reference: ArrayLike, *, alternative: Alternative = "two-sided",
                ci: float = 0.95, n_perm: int = 20000, seed: int = 0) -> Estimate:
    """The paired comparison of ``treatment`` and ``reference`` (one value per replicate pair, aligned; module
    docstring). Needs at least two pairs; NaN pairs are an error (a lost model must be named, not skipped).

    Four pairs, every difference (1, 2, 3, 2) positive: only the all-plus and all-minus sign vectors of the 2^4
    reach |mean| 2, so p = 2/16, the smallest attainable; one-sided 1/16. The t interval is 2 ± t_{3, 0.975} ·
    √(2/3) / 2.

    >>> result = paired_test([2, 3, 5, 4], [1, 1, 2, 2])
    >>> result.value, result.p_value, result.min_p, result.exact
    (2.0, 0.125, 0.125, True)
    >>> round(result.ci_low, 3), round(result.ci_high, 3)
    (0.701, 3.299)
    >>> paired_test([2, 3, 5, 4], [1, 1, 2, 2], alternative="greater").p_value
    0.0625
    """
    from scipy import stats

    _check_alternative(alternative)
    a, b = np.asarray(treatment, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"treatment and reference must be aligned 1-d arrays, got shapes {a.shape} and {b.shape}")
    if len(a) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"a paired test needs at least two pairs of finite values, got {len(a)}: {a} vs {b}")
    d = a - b
    r = len(d)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(r)
    t_crit = float(stats.t.ppf(0.5 + ci / 2, r - 1))
    t_value = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    signs, exact = _signs(r, n_perm, np.random.default_rng(seed))
    null = (signs * d).mean(axis=1)  # the mean orders sign vectors as t does (Σ d² is fixed)
    tol = 1e-12 * max(abs(mean), float(np.abs(d).max()), 1e-300)
    if alternative == "two-sided":
        hits = int((np.abs(null) >= abs(mean) - tol).sum())
        p_t = 2 * float(stats.t.sf(abs(t_value), r - 1))
    elif alternative == "greater":
        hits = int((null >= mean - tol).sum())
        p_t = float(stats.t.sf(t_value, r - 1))
    else:
        hits = int((null <= mean + tol).sum())
        p_t = float(stats.t.cdf(t_value, r - 1))
    p = hits / len(null) if exact else (1 + hits) / (1 + len(null))
    rho = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    min_p = smallest_attainable_p(r, alternative, n_perm=n_perm)
    return Estimate(mean, mean - t_crit * se, mean + t_crit * se, float(p), ci, details={
        "pairs": r, "sd": sd, "t": float(t_value), "p_t": p_t, "min_p": min_p, "exact": exact, "rho": rho,
        "alternative": alternative})


def detectable_effect(sd: float, pairs: int, *, alpha: float = 0.05, power: float = 0.8,
                      alternative: Alternative = "two-sided") -> float:
    """The smallest mean difference a paired design of ``pairs`` pairs detects with probability ``power`` at level
    ``alpha`` when one difference has standard deviation ``sd``: solved from the noncentral t distribution of the
    paired t statistic (R − 1 degrees of freedom, noncentrality δ√R/sd). NaN where the exact sign-flip test cannot
    reach ``alpha`` at all (:func:`smallest_attainable_p` > α).

    With many pairs it is close to the normal approximation (z_{0.975} + z_{0.8}) · sd / √R = 2.80 · sd / √R and
    proportional to ``sd``; 4 pairs can never reach 0.05 two-sided (2/16 > 0.05).

    >>> round(detectable_effect(1.0, 100), 3), round(detectable_effect(2.0, 100), 3)
    (0.283, 0.566)
    >>> detectable_effect(1.0, 4)
    nan
    """
    from scipy import optimize, stats

    _check_alternative(alternative)
    if pairs < 2 or not np.isfinite(sd) or sd < 0:
        raise ValueError(f"a paired design needs ≥ 2 pairs and a finite sd ≥ 0, got {pairs} pairs, sd {sd}")
    if smallest_attainable_p(pairs, alternative) > alpha:
        return float("nan")
    df = pairs - 1
    crit = float(stats.t.ppf(1 - (alpha / 2 if alternative == "two-sided" else alpha), df))

    def shortfall(noncentrality: float) -> float:
        reached = float(np.nan_to_num(stats.nct.sf(crit, df, noncentrality)))
        if alternative == "two-sided":  # the far tail, ≈ 0 (NaN in scipy far out)
            reached += float(np.nan_to_num(stats.nct.cdf(-crit, df, noncentrality)))
        return reached - power

    noncentrality = optimize.brentq(shortfall, 0.0, 20.0)
    return float(noncentrality * sd / math.sqrt(pairs))


__all__ = ["ALTERNATIVES", "EXACT_PAIRS", "detectable_effect", "paired_test", "smallest_attainable_p"]
