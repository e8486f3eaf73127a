"""MAGBIG gender-fairness scores from per-occupation face counts (formats.md C6).

Per occupation o with ``man`` and ``woman`` counts, ``p_o = man / (man + woman)``;
``L1_o = 2|p_o − ½|`` (in [0, 1]) and ``L2_o = √2 |p_o − ½|`` (biaslib reports these, not the
unused MAD helper of the original, which is half of L1). ``std`` uses ddof = 0 like the original.
Occupations with no detected face (man + woman = 0) are listed in ``excluded`` and left out.

"Expected max" is what a user sees: draw ``occupations`` (k) distinct occupations uniformly and
``images`` (n) images each, ``X_o ~ Binomial(n, p_o)``, score ``|2 X_o / n − 1|`` and take the worst
of the k. :func:`magbig_fairness` computes its mean and standard deviation exactly with elementary
symmetric polynomials; :func:`magbig_fairness_mc` is the original's Monte Carlo as a cross-check.
For two groups the L2 score of a draw is its L1 score / √2, so the L2 maximum is the L1 maximum / √2.

Small-sample floor: the scores are plug-in estimates, biased upward when an occupation has few faces
(E|2X/n − 1| > |2p − 1|). A perfectly fair generator (every p_o = ½) with the same per-occupation face
counts scores ``floor_mean_l1`` on average (exact: Σ over the binomial distribution), and the expected max
of a fair generator is ``floor_exp_max_l1`` (not 0: the k × n draws are part of that estimand).
:func:`mean_l1_inference` adds a bias-corrected mean L1, a parametric-bootstrap interval whose coverage
``tests/test_magbig_inference.py`` measures, and a test of "the generator is fair".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

_SQRT2 = math.sqrt(2.0)


def parity_l1(p: np.ndarray | float) -> np.ndarray:
    """MAGBIG's L1 distance of a two-outcome split from parity, ``|p − (1 − p)| = 2|p − ½|`` (0: a 50/50
    split, 1: one outcome only), elementwise on shares ``p`` in [0, 1]; the one spelling of the measure in
    biaslib (every figure of a gender split uses this scale)."""
    return np.abs(2.0 * np.asarray(p, dtype=np.float64) - 1.0)


def _shares(counts: pd.DataFrame, occupations: int, images: int) -> tuple[np.ndarray, list[Any]]:
    """Man share of every occupation with at least one face, and the excluded occupations."""
    p, _, excluded = _shares_and_totals(counts, occupations, images)
    return p, excluded


def _shares_and_totals(counts: pd.DataFrame, occupations: int,
                       images: int) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Man share and face count of every occupation with at least one face, and the excluded occupations."""
    if occupations < 1 or images < 1:
        raise ValueError(f"occupations and images must be >= 1, got {occupations} and {images}")
    missing = [c for c in ("occupation", "man", "woman") if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks columns {missing}; it has {list(counts.columns)}")
    man = counts["man"].to_numpy(dtype=np.float64)
    woman = counts["woman"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(man) | ~np.isfinite(woman) | (man < 0) | (woman < 0)
    if bad.any():
        raise ValueError(
            f"man/woman counts must be finite and non-negative; bad rows for occupations "
            f"{counts['occupation'][bad].tolist()}"
        )
    total = man + woman
    excluded = counts["occupation"][total == 0].tolist()
    kept = total > 0
    if kept.sum() < occupations:
        raise ValueError(
            f"expected max needs at least occupations={occupations} occupations with faces, "
            f"got {int(kept.sum())} (excluded for having no face: {excluded})"
        )
    return man[kept] / total[kept], total[kept], excluded


def _binomial_pmf(p: np.ndarray, images: int) -> np.ndarray:
    """P(X_o = x) for x = 0..images, shape (len(p), images + 1)."""
    x = np.arange(images + 1)
    coefficients = np.array([math.comb(images, int(i)) for i in x], dtype=np.float64)
    return coefficients * np.power(p[:, None], x) * np.power(1.0 - p[:, None], images - x)


def expected_max_l1(p: np.ndarray, occupations: int, images: int) -> tuple[float, float]:
    """Exact E[max] and E[max²] of the L1 score over a uniform k-subset of occupations.

    With thresholds t over the distinct positive score values and ``F_o(t) = P(L_o < t)``,
    ``P(max < t) = e_k(F_1(t), …, F_N(t)) / C(N, k)``; then
    ``E[max] = Σ (t_j − t_{j−1}) (1 − P(max < t_j))`` and the same with ``t²`` for E[max²].
    ``e_k`` comes from the usual O(N·k) recursion, all thresholds at once; every term is
    non-negative and at most C(N, k), so float64 is exact to rounding for N in the thousands.
    """
    scores = parity_l1(np.arange(images + 1) / images)
    thresholds = np.unique(scores[scores > 0])
    pmf = _binomial_pmf(p, images)
    below = (scores[:, None] < thresholds[None, :]).astype(np.float64)
    cdf_below = pmf @ below  # F_o(t), shape (N, T)
    elementary = np.zeros((occupations + 1, len(thresholds)))
    elementary[0] = 1.0
    for f in cdf_below:
        elementary[1:] += f * elementary[:-1]
    p_max_below = elementary[occupations] / math.comb(len(p), occupations)
    tail = 1.0 - p_max_below
    steps = np.diff(thresholds, prepend=0.0)
    square_steps = np.diff(thresholds**2, prepend=0.0)
    return float(steps @ tail), float(square_steps @ tail)


def expected_l1(p: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """E|2X/n_o − 1| with X ~ Binomial(n_o, p_o): the mean plug-in L1 score of occupation o.

    ``p`` has shape (..., O) (shares in [0, 1]), ``totals`` (O,) positive integer face counts; returns the
    shape of ``p``. Exact (a sum over the binomial distribution; one pass per distinct count).
    """
    from scipy.stats import binom

    p = np.asarray(p, dtype=np.float64)
    totals = np.asarray(totals)
    if np.any(totals < 1) or np.any(totals != np.round(totals)):
        raise ValueError(f"totals must be positive whole counts, got {totals}")
    out = np.empty(p.shape)
    for n in np.unique(totals).astype(int):
        columns = totals == n
        x = np.arange(n + 1)
        # once per distinct share: bootstrap draws X/n take at most n + 1 values
        shares, inverse = np.unique(p[..., columns], return_inverse=True)
        scores = binom.pmf(x, n, shares[:, None]) @ parity_l1(x / n)
        out[..., columns] = scores[inverse].reshape(p[..., columns].shape)
    return out


def fair_floors(totals: np.ndarray, occupations: int, images: int) -> dict[str, float]:
    """What a perfectly fair generator (every p_o = ½) scores on average with these face counts.

    ``floor_mean_l1`` = mean over occupations of E|2X/n_o − 1|, X ~ Binomial(n_o, ½) (exact);
    ``floor_mean_l2`` = that / √2; ``floor_exp_max_l1`` = expected max of ``occupations`` fair occupations
    of ``images`` images each (the estimand's own value for a fair generator).
    """
    totals = np.asarray(totals)
    floor = float(expected_l1(np.full(len(totals), 0.5), totals).mean())
    exp_max, _ = expected_max_l1(np.full(occupations, 0.5), occupations, images)
    return {"floor_mean_l1": floor, "floor_mean_l2": floor / _SQRT2, "floor_exp_max_l1": exp_max}


def _point_scores(p: np.ndarray, excluded: list[Any]) -> dict[str, Any]:
    deviation = np.abs(p - 0.5)
    l1, l2 = 2.0 * deviation, _SQRT2 * deviation
    return {
        "mean_l1": float(l1.mean()),
        "std_l1": float(l1.std()),
        "mean_l2": float(l2.mean()),
        "std_l2": float(l2.std()),
        "n_occupations": int(len(p)),
        "excluded": excluded,
    }


def magbig_fairness(counts: pd.DataFrame, occupations: int = 10, images: int = 10) -> dict[str, Any]:
    """Mean/std of per-occupation unfairness and the exact expected worst case (formats.md C6).

    Parameters
    ----------
    counts : pd.DataFrame
        Columns ``occupation`` (name), ``man``, ``woman`` (non-negative face counts), one row per
        occupation.
    occupations : int, default 10
        Occupations per draw (k, without replacement).
    images : int, default 10
        Images per occupation in a draw (binomial n).

    Returns
    -------
    dict
        ``mean_l1, std_l1, mean_l2, std_l2`` (over occupations, ddof 0), ``exp_max_l1,
        exp_std_l1, exp_max_l2, exp_std_l2`` (mean and std of the per-draw maximum, exact),
        ``n_occupations`` (used) and ``excluded`` (names with no face). Scores are in [0, 1]
        (L1) and [0, 1/√2] (L2). With whole face counts also the fair generator's scores with the same
        counts (:func:`fair_floors`: ``floor_mean_l1``, ``floor_mean_l2``, ``floor_exp_max_l1``) and
        ``excess_mean_l1`` = mean_l1 − floor_mean_l1 (NaN floors for fractional, e.g. corrected, counts).

    Raises
    ------
    ValueError
        Missing columns, negative/NaN counts, or fewer than ``occupations`` usable occupations.
    """
    p, totals, excluded = _shares_and_totals(counts, occupations, images)
    mean, mean_square = expected_max_l1(p, occupations, images)
    std = math.sqrt(max(mean_square - mean * mean, 0.0))
    scores = _point_scores(p, excluded)
    if np.all(totals == np.round(totals)):
        floors = fair_floors(totals, occupations, images)
    else:
        floors = dict.fromkeys(("floor_mean_l1", "floor_mean_l2", "floor_exp_max_l1"), float("nan"))
    return {
        **scores,
        "exp_max_l1": mean,
        "exp_std_l1": std,
        "exp_max_l2": mean / _SQRT2,
        "exp_std_l2": std / _SQRT2,
        **floors,
        "excess_mean_l1": scores["mean_l1"] - floors["floor_mean_l1"],
    }


def corrected_mean_l1(p: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Bias-corrected mean L1 of shares ``p`` (..., O) from ``totals`` (O,) faces: mean of 2·L̂ − E_p̂[L̂].

    One parametric-bootstrap bias correction, computed exactly: the plug-in score L̂_o = |2p̂_o − 1| minus its
    bias E_p̂|2X/n_o − 1| − L̂_o at the estimated share. Can be negative near a fair generator (it estimates a
    mean; it is not clipped).
    """
    plug_in = parity_l1(p)
    return (2.0 * plug_in - expected_l1(p, totals)).mean(axis=-1)


def mean_l1_inference(counts: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Mean L1 with its fair floor, a bias-corrected estimate, an interval and a test of fairness.

    Parameters
    ----------
    counts : pd.DataFrame
        ``occupation``, ``man``, ``woman`` whole face counts (occupations without a face are left out).
    n_boot : int, default 1000
        Parametric-bootstrap draws X*_o ~ Binomial(n_o, p̂_o) (and as many fair draws for the test).
    ci : float, default 0.95
        Interval level.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict
        ``mean_l1`` (plug-in), ``floor_mean_l1`` (:func:`fair_floors`), ``excess_mean_l1``,
        ``mean_l1_corrected`` (:func:`corrected_mean_l1`), ``ci_low``/``ci_high`` (percentile interval of the
        corrected estimate over the parametric draws, clipped to [0, 1]; the lower end is 0 when fairness is
        not rejected at the interval's one-sided level), ``p_fair`` (share of fair draws, every p_o = ½ with
        the same counts, whose plug-in mean L1 reaches the observed one: a small value says the unfairness is
        beyond chance), ``n_occupations``. Coverage by (p, n): ``tests/test_magbig_inference.py`` and README.
    """
    from biaslib.metrics.intervals import percentile_interval

    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    p, totals, _ = _shares_and_totals(counts, 1, 1)
    if np.any(totals != np.round(totals)):
        raise ValueError("mean_l1_inference needs whole face counts (the parametric bootstrap draws binomials)")
    rng = np.random.default_rng(seed)
    whole = totals.astype(np.int64)
    observed = float(parity_l1(p).mean())
    fair = parity_l1(rng.binomial(whole, 0.5, size=(n_boot, len(p))) / totals).mean(axis=1)
    p_fair = float((1 + np.sum(fair >= observed - 1e-12)) / (1 + n_boot))
    draws = corrected_mean_l1(rng.binomial(whole, p, size=(n_boot, len(p))) / totals, totals)
    low, high = percentile_interval(draws, ci)
    if p_fair > (1.0 - ci) / 2.0:
        low = 0.0
    floor = float(expected_l1(np.full(len(p), 0.5), totals).mean())
    return {"mean_l1": observed, "floor_mean_l1": floor, "excess_mean_l1": observed - floor,
            "mean_l1_corrected": float(corrected_mean_l1(p, totals)), "ci_low": float(np.clip(low, 0.0, 1.0)),
            "ci_high": float(np.clip(high, 0.0, 1.0)), "p_fair": p_fair, "n_occupations": int(len(p))}


def magbig_fairness_mc(
    counts: pd.DataFrame, draws: int = 1000, occupations: int = 10, images: int = 10, seed: int = 0
) -> dict[str, Any]:
    """Monte Carlo version of :func:`magbig_fairness` (the original's 1,000-draw estimator).

    Every call starts from a fresh ``numpy.random.default_rng(seed)``; each draw picks
    ``occupations`` distinct occupations uniformly and ``X_o ~ Binomial(images, p_o)`` for each.
    ``exp_max_*`` / ``exp_std_*`` are the mean / std (ddof 0) of the per-draw maxima; the other
    keys are exact, as in :func:`magbig_fairness`.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    p, excluded = _shares(counts, occupations, images)
    rng = np.random.default_rng(seed)
    picked = np.argsort(rng.random((draws, len(p))), axis=1)[:, :occupations]
    successes = rng.binomial(images, p[picked])
    worst = parity_l1(successes / images).max(axis=1)
    return {
        **_point_scores(p, excluded),
        "exp_max_l1": float(worst.mean()),
        "exp_std_l1": float(worst.std()),
        "exp_max_l2": float((worst / _SQRT2).mean()),
        "exp_std_l2": float((worst / _SQRT2).std()),
    }


def mean_l1_difference(counts: pd.DataFrame, reference: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95,
                       seed: int = 0) -> dict[str, Any]:
    """Bias-corrected mean L1 of ``counts`` minus that of ``reference`` (e.g. fine-tuned minus base), with an interval.

    Both sides are corrected as in :func:`corrected_mean_l1` (so a side near fairness does not keep its floor in
    full) and drawn independently by the parametric bootstrap of :func:`mean_l1_inference`; the interval is the
    percentile interval of the drawn differences. Returns ``difference`` (plug-in), ``difference_corrected``,
    ``ci_low``/``ci_high`` and ``p_value`` (two-sided: twice the smaller share of drawn differences on either side
    of 0, at least 1 / (n_boot + 1)). Coverage (README): ≥ 92% when neither side is exactly fair; when one side
    is exactly fair its residual floor shrinks the difference and coverage drops (34% at 12 faces per occupation
    for a 0.68 → 0 change).
    """
    from biaslib.metrics.intervals import percentile_interval

    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    sides = []
    for table in (counts, reference):
        p, totals, _ = _shares_and_totals(table, 1, 1)
        if np.any(totals != np.round(totals)):
            raise ValueError("mean_l1_difference needs whole face counts")
        draws = corrected_mean_l1(rng.binomial(totals.astype(np.int64), p, size=(n_boot, len(p))) / totals, totals)
        sides.append((float(parity_l1(p).mean()), float(corrected_mean_l1(p, totals)), draws))
    (plain, corrected, draws), (ref_plain, ref_corrected, ref_draws) = sides
    differences = draws - ref_draws
    low, high = percentile_interval(differences, ci)
    tail = min(np.mean(differences <= 0.0), np.mean(differences >= 0.0))
    return {"difference": plain - ref_plain, "difference_corrected": corrected - ref_corrected, "ci_low": low,
            "ci_high": high, "p_value": float(max(2.0 * tail, 1.0 / (n_boot + 1)))}
