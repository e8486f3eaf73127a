"""MAGBIG gender-fairness scores from per-occupation face counts (formats.md C6).

Per occupation o with ``man`` and ``woman`` counts, ``p_o = man / (man + woman)``;
``L1_o = 2|p_o − ½|`` (in [0, 1]) and ``L2_o = √2 |p_o − ½|`` (biaslib reports these, not the
unused MAD helper of the original, which is half of L1). ``std`` uses ddof = 0 like the original.
Occupations with no detected face (man + woman = 0) are listed in ``excluded`` and left out.
The scores are label-neutral: every function that reads count columns takes ``labels`` = (reference, counted),
the two columns it reads (default :data:`GENDER_LABELS`, ``("man", "woman")``; e.g. ``("light", "dark")`` for skin
tone), and p is then the share of the reference label, ``reference / (reference + counted)``.

"Expected max" is what a user sees: draw ``occupations`` (k) distinct occupations uniformly and
``images`` (n) images each, ``X_o ~ Binomial(n, p_o)``, score ``|2 X_o / n − 1|`` and take the worst
of the k. :func:`magbig_fairness` computes its mean and standard deviation exactly with elementary
symmetric polynomials; :func:`magbig_fairness_mc` is the original's Monte Carlo as a cross-check.
For two groups the L2 score of a draw is its L1 score / √2, so the L2 maximum is the L1 maximum / √2.

Small-sample floor: the scores are plug-in estimates, biased upward when an occupation has few faces
(E|2X/n − 1| > |2p − 1|). A perfectly fair generator (every p_o = ½) with the same per-occupation face
counts scores ``floor_mean_l1`` on average (exact: Σ over the binomial distribution), and the expected max
of a fair generator is ``floor_exp_max_l1`` (not 0: the k × n draws are part of that estimand).
:func:`mean_l1_inference` adds a bias-corrected mean L1 (a minimax estimator: no unbiased one exists), an interval
that covers whatever its remaining bias (its coverage is measured by ``tests/test_magbig_inference.py``), and a test
of "the generator is fair".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from biaslib.metrics.correction import invert_shares
from biaslib.metrics.estimate import Estimate

_SQRT2 = math.sqrt(2.0)
#: MAGBIG's scores of a set of occupations (formats.md C6), as :func:`score_draws` and :func:`point_scores` give them.
MAGBIG_SCORES: tuple[str, ...] = ("mean_l1", "std_l1", "mean_l2", "std_l2", "exp_max_l1", "exp_max_l2")
#: Resampling designs of an occupation's images (:func:`resampled_counts`): as one pool, or whole prompts.
RESAMPLE: tuple[str, ...] = ("images", "prompts")
#: The count columns read by default: (reference label, counted label); p is the share of the first.
GENDER_LABELS: tuple[str, str] = ("man", "woman")


def parity_l1(p: np.ndarray | float) -> np.ndarray:
    """MAGBIG's L1 distance of a two-outcome split from parity, ``|p − (1 − p)| = 2|p − ½|`` (0: a 50/50
    split, 1: one outcome only), elementwise on shares ``p`` in [0, 1]; the one spelling of the measure in
    biaslib (every figure of a gender split uses this scale).

    >>> parity_l1([0.75, 0.25, 0.5, 1.0]).tolist()
    [0.5, 0.5, 0.0, 1.0]
    """
    return np.abs(2.0 * np.asarray(p, dtype=np.float64) - 1.0)


def _check_labels(labels: Sequence[str]) -> tuple[str, str]:
    """``labels`` as (reference, counted): two distinct column names, else a ``ValueError`` saying what came."""
    if isinstance(labels, str) or len(labels) != 2 or labels[0] == labels[1]:
        raise ValueError(f"labels must be two distinct count columns (reference, counted), got {labels!r}")
    return labels[0], labels[1]


def _shares(counts: pd.DataFrame, occupations: int, images: int,
            labels: Sequence[str] = GENDER_LABELS) -> tuple[np.ndarray, list[Any]]:
    """Reference-label share of every occupation with at least one face, and the excluded occupations."""
    p, _, excluded = _shares_and_totals(counts, occupations, images, labels)
    return p, excluded


def _shares_and_totals(counts: pd.DataFrame, occupations: int, images: int,
                       labels: Sequence[str] = GENDER_LABELS) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Share of the reference label (the first of ``labels``) and face count of every occupation with at least one
    face, and the excluded occupations."""
    if occupations < 1 or images < 1:
        raise ValueError(f"occupations and images must be >= 1, got {occupations} and {images}")
    reference, counted = _check_labels(labels)
    missing = [c for c in ("occupation", reference, counted) if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks columns {missing}; it has {list(counts.columns)}")
    first = counts[reference].to_numpy(dtype=np.float64)
    second = counts[counted].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(first) | ~np.isfinite(second) | (first < 0) | (second < 0)
    if bad.any():
        raise ValueError(
            f"{reference}/{counted} counts must be finite and non-negative; bad rows for occupations "
            f"{counts['occupation'][bad].tolist()}"
        )
    total = first + second
    excluded = counts["occupation"][total == 0].tolist()
    kept = total > 0
    if kept.sum() < occupations:
        raise ValueError(
            f"expected max needs at least occupations={occupations} occupations with faces, "
            f"got {int(kept.sum())} (excluded for having no face: {excluded})"
        )
    return first[kept] / total[kept], total[kept], excluded


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

    Two fair occupations (p = ½), both drawn, 2 images each: each scores 1 (X = 0 or 2) or 0 (X = 1) with
    probability ½, so the worst of the two is 1 unless both score 0: E[max] = E[max²] = 1 − ¼.

    >>> import numpy as np
    >>> expected_max_l1(np.array([0.5, 0.5]), occupations=2, images=2)
    (0.75, 0.75)
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

    One face always scores 1; two faces of a fair occupation score 1 (both alike) or 0, each with probability ½.

    >>> import numpy as np
    >>> expected_l1(np.array([0.5, 0.5, 1.0]), np.array([1, 2, 2])).tolist()
    [1.0, 0.5, 1.0]
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

    With 2 faces per occupation a fair one scores 0 or 1 with probability ½ each (see :func:`expected_max_l1`).

    >>> import numpy as np
    >>> floors = fair_floors(np.array([2, 2]), occupations=2, images=2)
    >>> floors["floor_mean_l1"], round(floors["floor_mean_l2"], 4), floors["floor_exp_max_l1"]
    (0.5, 0.3536, 0.75)
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


def magbig_fairness(counts: pd.DataFrame, occupations: int = 10, images: int = 10, *,
                    labels: tuple[str, str] = GENDER_LABELS) -> dict[str, Any]:
    """Mean/std of per-occupation unfairness and the exact expected worst case (formats.md C6).

    Parameters
    ----------
    counts : pd.DataFrame
        Columns ``occupation`` (name) and the two of ``labels`` (non-negative face counts; by default ``man``,
        ``woman``), one row per occupation.
    occupations : int, default 10
        Occupations per draw (k, without replacement).
    images : int, default 10
        Images per occupation in a draw (binomial n).
    labels : tuple of str, default ("man", "woman")
        Keyword only: the count columns read, (reference, counted); p_o is the share of the first (the scores are
        symmetric in the two), e.g. ``("light", "dark")`` for skin tone.

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

    Examples
    --------
    A 3:1 occupation scores L1 = |2·¾ − 1| = 0.5 and a 1:1 one 0; one without a face is left out. With one image
    per draw every draw scores 1 (the floor of a fair generator too).

    >>> import pandas as pd
    >>> counts = pd.DataFrame({"occupation": ["a", "b", "c"], "man": [3, 1, 0], "woman": [1, 1, 0]})
    >>> scores = magbig_fairness(counts, occupations=2, images=1)
    >>> scores["mean_l1"], scores["std_l1"], scores["excluded"], scores["exp_max_l1"]
    (0.25, 0.25, ['c'], 1.0)

    The same counts in other columns (skin tone, say) score alike when ``labels`` names them:

    >>> skin = counts.rename(columns={"man": "light", "woman": "dark"})
    >>> magbig_fairness(skin, occupations=2, images=1, labels=("light", "dark")) == scores
    True
    """
    p, totals, excluded = _shares_and_totals(counts, occupations, images, labels)
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


@dataclass(frozen=True)
class L1Estimator:
    """A per-occupation estimator of L1 = |2p − 1| from X ~ Binomial(``images``, p) man faces.

    ``scores`` (images + 1,): the estimate for X = 0..images (symmetric, X and images − X score alike);
    ``max_bias``: max over p in [0, 1] of |E_p scores[X] − |2p − 1|| (evaluated on 2,001 shares; the bias is a
    polynomial in p, so the grid misses nothing visible at this precision); ``bias`` (2,001,): that bias at
    ``BIAS_GRID``, the shares ½..1 (symmetric below ½).
    """

    images: int
    scores: np.ndarray
    max_bias: float
    bias: np.ndarray


BIAS_GRID = np.linspace(0.5, 1.0, 2001)


@lru_cache(maxsize=256)
def minimax_l1_estimator(images: int, occupations: int) -> L1Estimator:
    """The estimator of |2p − 1| whose worst-case error of a mean over ``occupations`` occupations is smallest.

    No unbiased estimator of |2p − 1| exists from a binomial count (it is not a polynomial in p), and the plug-in
    |2X/n − 1| is biased upward most near fairness (+0.23 at p = ½ with 12 faces). This one picks ``scores`` to
    minimise max over p of bias(p)² + Var_p(scores[X]) / occupations — the mean-squared error of the mean of
    ``occupations`` occupations that all sit at the worst p — a convex problem (bias is linear in ``scores``,
    bias² + variance is the expected squared error) solved by SLSQP on 201 shares. Any ``scores`` gives valid
    intervals, because ``max_bias`` is measured afterwards, not assumed; minimising only makes them short.
    Worst-case bias with 12 faces: 0.115 at 10 occupations, 0.057 at 150; 100 faces: 0.031 and 0.019.

    With one face per occupation X says nothing about |2p − 1| (it is 0 or 1 whatever p); the best symmetric
    guess is the constant ½, wrong by at most ½ (at p = ½ and at p = 0 or 1).

    >>> estimator = minimax_l1_estimator(1, 10)
    >>> [round(s, 3) for s in estimator.scores.tolist()], round(estimator.max_bias, 3)
    ([0.5, 0.5], 0.5)
    >>> round(minimax_l1_estimator(12, 10).max_bias, 3)
    0.115
    """
    from scipy.optimize import minimize
    from scipy.stats import binom

    if images < 1 or occupations < 1:
        raise ValueError(f"images and occupations must be >= 1, got {images} and {occupations}")
    x = np.arange(images + 1)
    fold = np.zeros((images + 1, images // 2 + 1))
    fold[x, np.minimum(x, images - x)] = 1.0  # scores = fold @ theta: symmetric in X ↔ images − X
    shares = np.linspace(0.5, 1.0, 201)
    moments = binom.pmf(x[None, :], images, shares[:, None]) @ fold  # E_p over theta, (201, images // 2 + 1)
    target = parity_l1(shares)

    def slack(v: np.ndarray) -> np.ndarray:  # t − (bias² + variance / occupations) ≥ 0 at every share
        mean = moments @ v[:-1]
        return v[-1] - ((mean - target) ** 2 + (moments @ v[:-1] ** 2 - mean**2) / occupations)

    def slack_jacobian(v: np.ndarray) -> np.ndarray:
        mean = moments @ v[:-1]
        spread = 2.0 * moments * (v[:-1][None, :] - mean[:, None]) / occupations
        gradient = 2.0 * (mean - target)[:, None] * moments + spread
        return np.c_[-gradient, np.ones(len(shares))]

    start = np.r_[parity_l1(x[: images // 2 + 1] / images), 1.0]
    objective_gradient = np.r_[np.zeros(images // 2 + 1), 1.0]
    solution = minimize(lambda v: v[-1], start, jac=lambda v: objective_gradient, method="SLSQP",
                        constraints=[{"type": "ineq", "fun": slack, "jac": slack_jacobian}],
                        options={"maxiter": 2000, "ftol": 1e-14})
    scores = fold @ solution.x[:-1]
    bias = binom.pmf(x[None, :], images, BIAS_GRID[:, None]) @ scores - parity_l1(BIAS_GRID)
    scores.setflags(write=False)
    bias.setflags(write=False)
    return L1Estimator(images=images, scores=scores, max_bias=float(np.abs(bias).max()), bias=bias)


def corrected_mean_l1(man: np.ndarray, totals: np.ndarray) -> dict[str, float]:
    """Minimax mean L1 of whole counts ``man`` (O,) of ``totals`` (O,) faces, with its standard error and bias bound.

    Each occupation is scored by :func:`minimax_l1_estimator` for its face count, designed for the O occupations.
    Returns ``estimate`` (mean of the scores), ``se`` (plug-in: √Σ Var_{p̂_o}(score) / O, each occupation's variance
    at its own share) and ``max_bias`` (mean of the occupations' worst-case biases: the
    mean's bias is at most this whatever the shares).

    One face per occupation: every occupation scores the constant ½ (:func:`minimax_l1_estimator`), so the mean is
    ½ with no sampling error and a bias of up to ½.

    >>> import numpy as np
    >>> {key: round(value, 3) for key, value in corrected_mean_l1(np.array([0, 1]), np.array([1, 1])).items()}
    {'estimate': 0.5, 'se': 0.0, 'max_bias': 0.5}
    """
    from scipy.stats import binom

    man, totals = np.asarray(man, dtype=np.int64), np.asarray(totals, dtype=np.int64)
    occupations = len(totals)
    estimate, variance, bias = 0.0, 0.0, 0.0
    for n in np.unique(totals):
        estimator = minimax_l1_estimator(int(n), occupations)
        counts = man[totals == n]
        weights = binom.pmf(np.arange(n + 1)[None, :], n, (counts / n)[:, None])
        mean = weights @ estimator.scores
        estimate += float(estimator.scores[counts].sum())
        variance += float((weights @ estimator.scores**2 - mean**2).clip(min=0.0).sum())
        bias += estimator.max_bias * len(counts)
    size = len(totals)
    return {"estimate": estimate / size, "se": math.sqrt(variance) / size, "max_bias": bias / size}


def _whole_counts(counts: pd.DataFrame, caller: str,
                  labels: Sequence[str] = GENDER_LABELS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference-label share, reference-label count and face count of every occupation with a face (whole counts)."""
    p, totals, _ = _shares_and_totals(counts, 1, 1, labels)
    if np.any(totals != np.round(totals)):
        reference, counted = _check_labels(labels)
        raise ValueError(f"{caller} needs whole face counts ({reference} and {counted} are counts of faces)")
    return p, np.round(p * totals).astype(np.int64), totals.astype(np.int64)


def mean_l1_inference(counts: pd.DataFrame, *, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                      labels: tuple[str, str] = GENDER_LABELS) -> Estimate:
    """Mean L1 with its fair floor, a bias-corrected estimate, an interval and a test of fairness.

    Parameters
    ----------
    counts : pd.DataFrame
        ``occupation`` and the two of ``labels`` (by default ``man``, ``woman``), whole face counts (occupations
        without a face are left out).
    n_boot : int, default 1000
        Fair draws (every p_o = ½ with the same face counts) for ``p_fair``.
    ci : float, default 0.95
        Interval level.
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` (the fair draws).
    labels : tuple of str, default ("man", "woman")
        The count columns read, (reference, counted); p_o is the share of the first (every score is symmetric in
        the two), e.g. ``("light", "dark")`` for skin tone.

    Returns
    -------
    Estimate
        ``value``: the bias-corrected mean L1 (:func:`corrected_mean_l1`, the minimax estimate), clipped to [0, 1]
        like its interval (near fairness the minimax estimate can fall below 0: detail ``unclipped``);
        ``ci_low``/``ci_high`` (:func:`~biaslib.metrics.intervals.bias_aware_half_width` around it: it covers
        whatever the bias within ``max_bias``; clipped to [0, 1], and the lower end is 0 when fairness is not
        rejected at the interval's one-sided level); ``p_value``: the test of fairness, the share of fair draws whose
        plug-in mean L1 reaches the observed one (a small value says the unfairness is beyond chance). Details:
        ``unclipped``, ``mean_l1`` (plug-in), ``floor_mean_l1`` (:func:`fair_floors`), ``excess_mean_l1``,
        ``max_bias`` (the corrected estimate's bias bound), ``se``, ``n_occupations``. Coverage ≥ 0.94 over
        10/40/150 occupations × 12/25/100 faces × p(woman) ½, 0.6, 0.7 and a fair/unfair mix
        (``tests/test_magbig_inference.py``; docs/statistics.md, "MAGBIG scores").

    Examples
    --------
    Two occupations of 10 faces, all of one gender: plug-in mean L1 1; a fair generator scores
    E|2X/10 − 1| = 1260/5120 ≈ 0.246 on average, and none of 99 fair draws reaches 1, so ``p_fair`` is its
    smallest value, 1/(99 + 1).

    >>> import pandas as pd
    >>> counts = pd.DataFrame({"occupation": ["a", "b"], "man": [10, 0], "woman": [0, 10]})
    >>> result = mean_l1_inference(counts, n_boot=99)
    >>> result.mean_l1, round(result.floor_mean_l1, 3), result.p_value
    (1.0, 0.246, 0.01)
    >>> 0 < result.ci_low <= result.value <= result.ci_high <= 1
    True
    """
    from biaslib.metrics.intervals import bias_aware_half_width

    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    p, man, totals = _whole_counts(counts, "mean_l1_inference", labels)
    rng = np.random.default_rng(seed)
    observed = float(parity_l1(p).mean())
    fair = parity_l1(rng.binomial(totals, 0.5, size=(n_boot, len(p))) / totals).mean(axis=1)
    p_fair = float((1 + np.sum(fair >= observed - 1e-12)) / (1 + n_boot))
    corrected = corrected_mean_l1(man, totals)
    half = bias_aware_half_width(max(corrected["se"], 1e-12), corrected["max_bias"], ci)
    low = 0.0 if p_fair > (1.0 - ci) / 2.0 else corrected["estimate"] - half
    floor = float(expected_l1(np.full(len(p), 0.5), totals).mean())
    # the estimand lies in [0, 1], so the estimate is clipped as the interval is (never farther from the truth, and
    # inside its own interval: near fairness the minimax estimate can fall below 0 while the interval starts at 0)
    return Estimate(float(np.clip(corrected["estimate"], 0.0, 1.0)), float(np.clip(low, 0.0, 1.0)),
                    float(np.clip(corrected["estimate"] + half, 0.0, 1.0)), p_fair, ci, details={
                        "unclipped": corrected["estimate"], "mean_l1": observed, "floor_mean_l1": floor,
                        "excess_mean_l1": observed - floor,
                        "max_bias": corrected["max_bias"], "se": corrected["se"], "n_occupations": int(len(p))})


def score_draws(shares: np.ndarray, occupations: int, images: int) -> dict[str, np.ndarray]:
    """Scores of share draws ``(B, O)`` of the counted label per occupation (NaN = no classified face there, left
    out), each ``(B,)``: ``share`` (the mean share over occupations) and :data:`MAGBIG_SCORES`. The expected max uses
    k = min(``occupations``, occupations with a share) of each draw (NaN if none) and n = ``images``.

    >>> draws = score_draws(np.array([[0.5, 0.5], [1.0, 0.0]]), occupations=2, images=10)
    >>> draws["share"].tolist(), draws["mean_l1"].tolist()
    ([0.5, 0.5], [0.0, 1.0])
    """
    usable = np.isfinite(shares)
    counted = usable.sum(axis=1)
    safe = np.where(usable, shares, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=1) / counted
        l1 = parity_l1(safe)
        mean_l1 = np.where(usable, l1, 0.0).sum(axis=1) / counted
        std_l1 = np.sqrt(np.where(usable, (l1 - mean_l1[:, None]) ** 2, 0.0).sum(axis=1) / counted)
    exp_max = np.full(len(shares), np.nan)
    for b in np.flatnonzero(counted > 0):
        exp_max[b] = expected_max_l1(1.0 - shares[b, usable[b]], min(occupations, int(counted[b])), images)[0]
    return {"share": mean, "mean_l1": mean_l1, "std_l1": std_l1, "mean_l2": mean_l1 / _SQRT2,
            "std_l2": std_l1 / _SQRT2, "exp_max_l1": exp_max, "exp_max_l2": exp_max / _SQRT2}


def point_scores(shares: np.ndarray, classified: np.ndarray | pd.Series, occupations: int, images: int
                 ) -> dict[str, float]:
    """Scores of one set of occupations from each one's share of the counted label ``shares`` (O,) (raw or
    corrected; NaN = no classified face, left out) and its ``classified`` faces (O,): :func:`magbig_fairness` on
    counts man = (1 − p)·n, woman = p·n (L1 is symmetric in the two labels), and ``share``, the mean p.

    >>> point_scores(np.array([0.9, 0.1]), np.array([10, 10]), occupations=2, images=10)["mean_l1"]
    0.8
    """
    usable = np.isfinite(shares)
    if not usable.any():
        return dict.fromkeys(("share", *MAGBIG_SCORES), float("nan"))
    n = np.asarray(classified, dtype=np.float64)[usable]
    table = pd.DataFrame({"occupation": np.arange(len(shares))[usable], "man": (1.0 - shares[usable]) * n,
                          "woman": shares[usable] * n})
    scores = magbig_fairness(table, min(occupations, int(usable.sum())), images)
    return {"share": float(shares[usable].mean()), **{m: scores[m] for m in MAGBIG_SCORES if m in scores}}


def resampled_counts(strata: Sequence[np.ndarray], *, n_boot: int, rng: np.random.Generator,
                     resample: str = "images") -> np.ndarray:
    """Bootstrap draws of label counts per occupation ``(B, O, K)`` from its counts per prompt.

    ``strata``: one ``(S_o, K)`` integer array per occupation (one row per prompt, or a single row).
    ``resample="images"``: the occupation's classified images resampled as one pool (a multinomial draw of
    its summed counts with their total); ``"prompts"``: its prompts resampled with replacement, whole (their
    counts summed; totals vary by draw).

    Resampling images keeps every occupation's total; resampling prompts redraws whole rows, so an occupation of
    one prompt never changes and one of prompts (2, 0) and (0, 2) gives (4, 0), (2, 2) or (0, 4).

    >>> import numpy as np
    >>> strata = [np.array([[3, 1]]), np.array([[2, 0], [0, 2]])]
    >>> draws = resampled_counts(strata, n_boot=4, rng=np.random.default_rng(0))
    >>> draws.shape, draws.sum(axis=2).tolist()
    ((4, 2, 2), [[4, 4], [4, 4], [4, 4], [4, 4]])
    >>> draws = resampled_counts(strata, n_boot=100, rng=np.random.default_rng(0), resample="prompts")
    >>> sorted({tuple(c) for c in draws[:, 0].tolist()}), sorted({tuple(c) for c in draws[:, 1].tolist()})
    ([(3, 1)], [(0, 4), (2, 2), (4, 0)])
    """
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {RESAMPLE}, got {resample!r}")
    k = strata[0].shape[1] if len(strata) else 0
    out = np.zeros((n_boot, len(strata), k), dtype=np.int64)
    for o, rows in enumerate(strata):
        if resample == "prompts":
            out[:, o] = rows[rng.integers(0, len(rows), size=(n_boot, len(rows)))].sum(axis=1)
            continue
        pooled = rows.sum(axis=0)
        if pooled.sum() > 0:
            out[:, o] = rng.multinomial(pooled.sum(), pooled / pooled.sum(), size=n_boot)
    return out


def occupation_share_draws(strata: Sequence[np.ndarray], rates: np.ndarray, rates_drawn: np.ndarray,
                           *, rng: np.random.Generator, resample: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Point share of the counted label ``(O,)`` and its bootstrap draws ``(B, O)`` for one set of occupations,
    ``raw`` and ``corrected`` for the classifier's errors: ``strata`` as :func:`resampled_counts` takes them (label
    counts reference, counted), ``rates`` the classifier's (K, K) rate matrix and ``rates_drawn`` (B, K, K) its
    bootstrap draws (:func:`biaslib.metrics.correction.rate_draws`), each count draw corrected with the matching
    rate draw (:func:`biaslib.metrics.correction.invert_shares`); NaN where an occupation has no classified face.

    A classifier that swaps the labels 10% of the time sees a share q = ¼ for a true p with 0.9p + 0.1(1 − p) = ¼,
    so p = (¼ − 0.1) / 0.8 = 0.1875; the occupation without a face is NaN.

    >>> import numpy as np
    >>> rates = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> draws = occupation_share_draws([np.array([[3, 1]]), np.array([[0, 0]])], rates,
    ...                                np.broadcast_to(rates, (5, 2, 2)), rng=np.random.default_rng(0),
    ...                                resample="images")
    >>> draws["raw"][0].tolist(), np.round(draws["corrected"][0], 4).tolist(), draws["corrected"][1].shape
    ([0.25, nan], [0.1875, nan], (5, 2))
    """
    observed = np.stack([rows.sum(axis=0) for rows in strata])
    n = observed.sum(axis=1)
    q = np.divide(observed, n[:, None], out=np.full(observed.shape, np.nan), where=n[:, None] > 0)
    drawn = resampled_counts(strata, n_boot=len(rates_drawn), rng=rng, resample=resample)
    total = drawn.sum(axis=2, keepdims=True)
    q_drawn = np.divide(drawn, total, out=np.full(drawn.shape, np.nan), where=total > 0)
    raw = q_drawn[..., 1]
    corrected = invert_shares(q_drawn, rates_drawn[:, None])[..., 1]
    corrected[~np.isfinite(raw)] = np.nan
    point = invert_shares(q, rates)[:, 1]
    point[n == 0] = np.nan
    return {"raw": (q[:, 1], raw), "corrected": (point, corrected)}


def magbig_fairness_mc(
    counts: pd.DataFrame, occupations: int = 10, images: int = 10, *, draws: int = 1000, seed: int = 0,
    labels: tuple[str, str] = GENDER_LABELS,
) -> dict[str, Any]:
    """Monte Carlo version of :func:`magbig_fairness` (the original's 1,000-draw estimator).

    Every call starts from a fresh ``numpy.random.default_rng(seed)``; each draw picks
    ``occupations`` distinct occupations uniformly and ``X_o ~ Binomial(images, p_o)`` for each.
    ``exp_max_*`` / ``exp_std_*`` are the mean / std (ddof 0) of the per-draw maxima; the other
    keys are exact, as in :func:`magbig_fairness`. ``labels`` (keyword only, default ``("man", "woman")``): the
    count columns read, (reference, counted), p_o being the share of the first, as in :func:`magbig_fairness`.

    Two fair occupations of 2 images each: the Monte Carlo mean of the worst score is near the exact 0.75.

    >>> import pandas as pd
    >>> counts = pd.DataFrame({"occupation": ["a", "b"], "man": [1, 1], "woman": [1, 1]})
    >>> abs(magbig_fairness_mc(counts, draws=2000, occupations=2, images=2)["exp_max_l1"] - 0.75) < 0.05
    True
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    p, excluded = _shares(counts, occupations, images, labels)
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


def mean_l1_difference(counts: pd.DataFrame, reference: pd.DataFrame, *, ci: float = 0.95,
                       labels: tuple[str, str] = GENDER_LABELS) -> Estimate:
    """Minimax mean L1 of ``counts`` minus that of ``reference`` (e.g. fine-tuned minus base), with an interval.

    Both sides are estimated by :func:`corrected_mean_l1` (so a side near fairness does not keep its floor); the
    difference's bias is at most the sum of the sides' bounds, its standard error √(se² + se_ref²), and the interval
    is :func:`~biaslib.metrics.intervals.bias_aware_half_width` around it. Returns an
    :class:`~biaslib.metrics.estimate.Estimate`: ``value`` (the corrected difference), ``ci_low``/``ci_high``,
    ``p_value`` (:func:`~biaslib.metrics.intervals.bias_aware_p` of "no difference": below 1 − ci exactly when the
    interval excludes 0) and details ``unclipped``, ``plug_in`` (the plug-in difference), ``max_bias``, ``se``; the
    value and the interval are clipped to [−1, 1], the range of a difference of mean L1s (with few faces the interval
    reached 1.9). Coverage ≥ 0.94 also when one side is exactly fair (``tests/test_magbig_inference.py``).
    Both tables have ``occupation`` and the two whole-count columns of ``labels`` (keyword only, default
    ``("man", "woman")``; (reference, counted), p_o the share of the first, as in :func:`mean_l1_inference`; e.g.
    ``("light", "dark")`` for skin tone).

    All-one-gender occupations against 5:5 ones: plug-in difference 1 − 0; the corrected one is smaller (each side
    is pulled toward its minimax estimate) but clearly above 0. A side against itself differs by exactly 0.

    >>> import pandas as pd
    >>> skewed = pd.DataFrame({"occupation": ["a", "b"], "man": [10, 0], "woman": [0, 10]})
    >>> fair = pd.DataFrame({"occupation": ["a", "b"], "man": [5, 5], "woman": [5, 5]})
    >>> result = mean_l1_difference(skewed, fair)
    >>> result.plug_in, 0 < result.ci_low < result.value < 1, result.p_value < 0.01
    (1.0, True, True)
    >>> same = mean_l1_difference(fair, fair)
    >>> same.value, same.p_value
    (0.0, 1.0)
    """
    from biaslib.metrics.intervals import bias_aware_half_width, bias_aware_p

    sides = []
    for table in (counts, reference):
        p, man, totals = _whole_counts(table, "mean_l1_difference", labels)
        sides.append((float(parity_l1(p).mean()), corrected_mean_l1(man, totals)))
    (plain, corrected), (ref_plain, ref_corrected) = sides
    difference = corrected["estimate"] - ref_corrected["estimate"]
    se = max(math.hypot(corrected["se"], ref_corrected["se"]), 1e-12)
    bias = corrected["max_bias"] + ref_corrected["max_bias"]
    half = bias_aware_half_width(se, bias, ci)
    low, value, high = np.clip([difference - half, difference, difference + half], -1.0, 1.0)  # the range of a change
    return Estimate(float(value), float(low), float(high), bias_aware_p(difference, se, bias), ci,
                    details={"unclipped": difference, "plug_in": plain - ref_plain, "max_bias": bias, "se": se})
