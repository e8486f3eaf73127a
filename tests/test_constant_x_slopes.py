"""least_squares_slopes: x that does not vary gives NaN exactly, also for x values that are not exact in binary.

The mean of three 0.1s is 0.10000000000000002, so Σ (x − x̄)² of a constant row used to be a tiny positive number
and its "slope" rounding noise over rounding noise (0, 10.67, …) instead of NaN. In the occupation bootstrap of
text_association / cosine_association, a resample that draws a single occupation then counted as a slope instead
of being dropped, pulling the interval towards 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from biaslib.metrics.association import cosine_association, text_association
from biaslib.metrics.trend import least_squares_slopes, model_trend

NOT_BINARY_EXACT = [0.1, 0.3, 0.7]
#: lengths at which the mean of n copies of 0.1 / 0.3 / 0.7 is off by a rounding (0.1 and 0.7: 3, 6, 7; 0.3: 10)
LENGTHS = [2, 3, 6, 7, 10, 11]


def _reference(x: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope by a plain Python loop with exactly rounded sums; NaN when every x is equal."""
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if all(v == xs[0] for v in xs):
        return math.nan
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    return math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys)) / math.fsum((a - mx) ** 2 for a in xs)


@pytest.mark.parametrize("value", NOT_BINARY_EXACT)
@pytest.mark.parametrize("n", LENGTHS)
def test_constant_x_is_nan_1d(value, n):
    y = np.arange(n, dtype=np.float64) ** 2  # not symmetric: the old code's noise slope was not even 0
    assert np.isnan(least_squares_slopes(np.full(n, value), y))


def test_constant_x_is_nan_row_wise():
    # rows of bootstrap draws (draws, models): constant rows NaN, the varying row its slope, whatever the row order
    x = np.array([[0.1, 0.1, 0.1], [0.7, 0.7, 0.7], [0.3, 0.3, 0.3], [0.1, 0.5, 0.9], [0.7, 0.7, 0.7]])
    y = np.tile([1.0, 2.0, 4.0], (5, 1))
    got = least_squares_slopes(x, y)
    assert np.isnan(got[[0, 1, 2, 4]]).all(), got
    assert got[3] == pytest.approx(3.75, abs=1e-12)
    # x of shape (models,) broadcast over the rows of y
    assert np.isnan(least_squares_slopes(np.full(6, 0.1), np.arange(18.0).reshape(3, 6) ** 2)).all()


def test_text_association_drops_single_occupation_resamples():
    # gaps 0.1, 0, −0.1 at shares 0.9, 0.5, 0.1 lie exactly on a line of slope 0.25, so every resample with two or
    # more distinct occupations has slope 0.25 (up to rounding); resamples of one occupation (1/9 of them) have no
    # slope and must be dropped. The interval therefore holds 0.25 only.
    result = text_association([0.3, 0.25, 0.2], [0.2, 0.25, 0.3], [0.9, 0.5, 0.1], n_boot=50)
    assert result.value == pytest.approx(0.25, abs=1e-12)
    assert result.ci_low == pytest.approx(0.25, abs=1e-12)
    assert result.ci_high == pytest.approx(0.25, abs=1e-12)


def test_cosine_association_drops_single_occupation_resamples():
    # every woman's face scores 0.25 · share + 0.1 and every man's 0.1, so the face resampling leaves each gap at
    # 0.25 · share and every resample with two or more distinct occupations has slope 0.25
    shares = np.array([0.8, 0.5, 0.2])
    woman = np.array([True, True, False, False])
    scores = np.column_stack([0.25 * shares + 0.1, 0.25 * shares + 0.1, np.full(3, 0.1), np.full(3, 0.1)])
    result = cosine_association(scores, woman, shares, n_boot=200, seed=0)
    assert result.value == pytest.approx(0.25, abs=1e-12)
    assert result.ci_low == pytest.approx(0.25, abs=1e-12)
    assert result.ci_high == pytest.approx(0.25, abs=1e-12)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # model_trend's np.nanmax of the all-NaN null
def test_model_trend_at_one_ratio_has_no_slope():
    # three models at the single ratio 0.1: no slope, no interval, no p-value (was slope −5.33, interval ±2.7e17)
    with np.errstate(all="ignore"):
        result = model_trend(np.full(3, 0.1), np.array([0.0, 1.0, 3.0]), np.zeros(3), n_boot=10)
    assert np.isnan([result.value, result.ci_low, result.ci_high, result.p_value]).all(), result


def test_slopes_match_brute_force():
    # bootstrap-like rows: occupations' shares (two decimals, so rarely exact in binary) drawn with replacement from
    # a few values, so some rows are constant; every row must equal a plain loop (NaN for constant rows) and
    # numpy.polyfit (varying rows) to 1e-12
    rng = np.random.default_rng(12345)
    pool = np.round(rng.uniform(0.05, 0.95, size=4), 2)
    x = pool[rng.integers(0, len(pool), size=(400, 6))]
    x[:20] = rng.choice(NOT_BINARY_EXACT, size=(20, 1))  # constant rows (6 × 0.1 or 0.7 used to give a slope)
    y = rng.normal(size=x.shape)
    got = least_squares_slopes(x, y)
    want = np.array([_reference(a, b) for a, b in zip(x, y)])
    constant = (x == x[:, :1]).all(axis=1)
    assert constant.sum() >= 20
    np.testing.assert_array_equal(np.isnan(got), constant)
    np.testing.assert_allclose(got[~constant], want[~constant], rtol=1e-12, atol=1e-12)
    fitted = np.array([np.polyfit(a, b, 1)[0] for a, b in zip(x[~constant], y[~constant])])
    np.testing.assert_allclose(got[~constant], fitted, rtol=1e-10, atol=1e-12)
    # 1-D x broadcast over the rows of y
    x1 = rng.uniform(size=7)
    y2 = rng.normal(size=(50, 7))
    np.testing.assert_allclose(least_squares_slopes(x1, y2), [_reference(x1, b) for b in y2], rtol=1e-12,
                               atol=1e-12)


def test_varying_x_bit_identical_to_the_previous_formula():
    # the fix only changes rows whose x are all equal: every other slope is the same float as before
    rng = np.random.default_rng(7)
    x = np.round(rng.uniform(size=(300, 6)), 2)
    y = rng.normal(size=x.shape)
    dx = x - x.mean(axis=-1, keepdims=True)
    sxx = (dx * dx).sum(axis=-1)
    previous = (dx * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / sxx
    np.testing.assert_array_equal(least_squares_slopes(x, y), previous)


def test_detectable_slope_refuses_a_single_ratio_that_is_not_exact_in_binary():
    # [0.1] * 3 has Σ (x − x̄)² ≈ 6e-34 from rounding, not 0: it gave a "detectable slope" of ~4e15
    from biaslib.metrics.trend import detectable_slope

    with pytest.raises(ValueError, match="two distinct ratios"):
        detectable_slope(0.01, 3, [0.1, 0.1, 0.1])
    assert detectable_slope(0.01, 3, [0.1, 0.2]) > 0
