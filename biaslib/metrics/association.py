"""How strongly a CLIP associates occupations with gender, as continuous scores against the data's association.

The ranking measures (top-k share of women, MaxSkew@k, NDKL@k) keep one bit per face: in the top k or not. The
scores here keep the cosine itself. For occupation query ``q`` over faces without occupation cues:

* ``gap_q`` = mean cosine of the query to the women's faces − mean cosine to the men's (image side, shape (Q,));
* ``text_gap_q`` = cos(query, "a photo of a woman") − cos(query, "a photo of a man") (text side, no faces);

and each is summarised across the Q occupations by its least-squares **slope on the training data's
p(woman | occupation)**: cosine units per unit share, 0 for a CLIP whose gender preference does not follow the
data's association, larger the more it does. A generator that sharpens the association and a CLIP that learns from
its images should both raise it.

Intervals (:func:`cosine_association`): the image-side slope depends on which occupations were asked and which
faces answered, so its bootstrap resamples both at once — occupations with replacement and, independently, the
faces within each gender (a pigeonhole bootstrap of the crossed design, Owen 2007), ``n_boot`` draws, percentile
interval. Each query's gap gets the faces-only interval. The text-side slope resamples occupations only
(:func:`text_association`). Coverage is measured by simulation in ``tests/test_association.py``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from biaslib.metrics.estimate import Estimate
from biaslib.metrics.intervals import percentile_interval
from biaslib.metrics.trend import least_squares_slopes


def _check(shares: np.ndarray, queries: int) -> None:
    if shares.shape != (queries,) or not np.isfinite(shares).all():
        raise ValueError(f"shares must be {queries} finite values (one per query), got shape {shares.shape}")
    if np.ptp(shares) == 0:
        raise ValueError("the shares do not vary across the queries: no slope can be fitted")


def gender_cosine_gaps(scores: ArrayLike, is_woman: ArrayLike) -> np.ndarray:
    """Per query, the mean cosine to women's faces − the mean cosine to men's: ``scores`` (Q, F) cosines of Q
    queries to F faces, ``is_woman`` (F,) booleans (both genders present) → (Q,).

    The first query's mean cosine is 0.3 to the two women and 0.1 to the two men; the second's 0.1 and 0.2.

    >>> import numpy as np
    >>> scores = np.array([[0.4, 0.2, 0.1, 0.1], [0.1, 0.1, 0.3, 0.1]])
    >>> np.round(gender_cosine_gaps(scores, [True, True, False, False]), 3).tolist()
    [0.2, -0.1]
    """
    s, woman = np.asarray(scores, dtype=np.float64), np.asarray(is_woman, dtype=bool)
    if s.ndim != 2 or woman.shape != (s.shape[1],) or woman.all() or not woman.any():
        raise ValueError(f"scores must be (queries, faces) with is_woman one boolean per face and both genders "
                         f"present, got {s.shape} and {woman.shape} ({int(woman.sum())} women)")
    return s[:, woman].mean(axis=1) - s[:, ~woman].mean(axis=1)


def cosine_association(scores: ArrayLike, is_woman: ArrayLike, shares: ArrayLike, *, n_boot: int = 1000,
                       ci: float = 0.95, seed: int = 0) -> Estimate:
    """The image-side association (module docstring): ``value`` = slope of :func:`gender_cosine_gaps` on
    ``shares`` (Q,) with its pigeonhole interval (``ci_low``, ``ci_high``; no test: ``p_value`` NaN), and as details
    per query ``gaps`` (Q,) with faces-only intervals (``gap_low``, ``gap_high``).

    Gaps of 0.2 and −0.1 (as in :func:`gender_cosine_gaps`) at shares 0.75 and 0.25: a slope of 0.3 / 0.5.

    >>> import numpy as np
    >>> scores = np.array([[0.4, 0.2, 0.1, 0.1], [0.1, 0.1, 0.3, 0.1]])
    >>> result = cosine_association(scores, [True, True, False, False], [0.75, 0.25], n_boot=50)
    >>> round(result.value, 3), result.covers(result.value)
    (0.6, True)
    """
    s, woman = np.asarray(scores, dtype=np.float64), np.asarray(is_woman, dtype=bool)
    gaps = gender_cosine_gaps(s, woman)
    p = np.asarray(shares, dtype=np.float64)
    _check(p, len(gaps))
    value = float(least_squares_slopes(p, gaps))
    if n_boot < 1:
        nan = np.full(len(gaps), np.nan)
        return Estimate(value, np.nan, np.nan, ci=ci, details={"gaps": gaps, "gap_low": nan, "gap_high": nan})
    rng = np.random.default_rng(seed)
    draws = np.zeros((len(gaps), n_boot))
    for members, sign in ((np.flatnonzero(woman), 1.0), (np.flatnonzero(~woman), -1.0)):
        counts = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)), size=n_boot)  # (B, n)
        draws += sign * (s[:, members] @ counts.T) / len(members)  # (Q, B): each draw's mean over its faces
    gap_low, gap_high = np.percentile(draws, [50 * (1 - ci), 50 * (1 + ci)], axis=1)
    rows = rng.integers(0, len(gaps), size=(n_boot, len(gaps)))  # the occupations of each draw
    slopes = least_squares_slopes(p[rows], draws[rows, np.arange(n_boot)[:, None]])
    low, high = percentile_interval(slopes[np.isfinite(slopes)], ci)
    return Estimate(value, float(low), float(high), ci=ci,
                    details={"gaps": gaps, "gap_low": gap_low, "gap_high": gap_high})


def text_association(to_woman: ArrayLike, to_man: ArrayLike, shares: ArrayLike, *, n_boot: int = 1000,
                     ci: float = 0.95, seed: int = 0) -> Estimate:
    """The text-side association (module docstring): ``to_woman``/``to_man`` (Q,) cosines of each occupation query
    to the gendered prompts; ``value`` = slope of their difference (detail ``gaps``) on ``shares`` with a bootstrap
    interval over the occupations (no test: ``p_value`` NaN).

    Gaps of −0.1, 0 and 0.1 at shares 0.25, 0.5 and 0.75 lie on a line of slope 0.4, so every resample of the
    occupations finds that slope too.

    >>> result = text_association([0.2, 0.25, 0.3], [0.3, 0.25, 0.2], [0.25, 0.5, 0.75], n_boot=50)
    >>> round(result.value, 3), round(result.ci_low, 3), round(result.ci_high, 3)
    (0.4, 0.4, 0.4)
    """
    gaps = np.asarray(to_woman, dtype=np.float64) - np.asarray(to_man, dtype=np.float64)
    p = np.asarray(shares, dtype=np.float64)
    _check(p, len(gaps))
    value = float(least_squares_slopes(p, gaps))
    low = high = np.nan
    if n_boot >= 1:
        rows = np.random.default_rng(seed).integers(0, len(gaps), size=(n_boot, len(gaps)))
        slopes = least_squares_slopes(p[rows], gaps[rows])
        low, high = percentile_interval(slopes[np.isfinite(slopes)], ci)
    return Estimate(value, float(low), float(high), ci=ci, details={"gaps": gaps})


__all__ = ["cosine_association", "gender_cosine_gaps", "text_association"]
