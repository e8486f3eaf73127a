"""biaslib.metrics.paired: the paired test of two arms across replicate pairs, checked against scipy's paired t test
and sign-flip permutation test, and by simulation: null p-values uniform (also with unequal arm spreads and heavy
tails), the interval's coverage, and the power :func:`detectable_effect` claims."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from biaslib.metrics.paired import detectable_effect, paired_test, smallest_attainable_p

LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5)


def _mc_bound(share: float, n: int) -> float:
    """Three Monte Carlo standard errors of a share estimated from ``n`` simulated studies."""
    return 3 * np.sqrt(share * (1 - share) / n)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_equals_scipy_paired_t_and_exact_sign_flip_test(alternative):
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.3, 1, 9), rng.normal(0, 1, 9)
    result = paired_test(a, b, alternative=alternative)
    t = stats.ttest_rel(a, b, alternative=alternative)
    assert result.t == pytest.approx(t.statistic) and result.p_t == pytest.approx(t.pvalue)
    low, high = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high))
    flip = stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                  alternative=alternative, n_resamples=np.inf)
    assert result.exact and result.p_value == pytest.approx(flip.pvalue)
    assert result.rho == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_smallest_attainable_p_is_reached_by_a_consistent_difference():
    consistent = paired_test(np.arange(1.0, 9.0), np.zeros(8))
    assert consistent.p_value == consistent.min_p == smallest_attainable_p(8) == 2 / 256
    assert paired_test(np.arange(1.0, 9.0), np.zeros(8), alternative="greater").p_value == 1 / 256
    assert smallest_attainable_p(3) == 0.25  # three pairs can never reach 0.05
    assert np.isnan(detectable_effect(1.0, 5, alpha=0.05))  # 2/32 > 0.05: nothing is detectable
    assert smallest_attainable_p(20, n_perm=999) == 1e-3


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="two pairs"):
        paired_test([1.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        paired_test([1.0, np.nan, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="aligned"):
        paired_test([1.0, 2.0], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="alternative"):
        paired_test([1.0, 2.0], [0.0, 0.0], alternative="up")


@pytest.mark.parametrize("noise", ["normal, unequal arm spreads", "heavy tails (t, 3 df)", "correlated arms"])
def test_null_p_values_are_uniform(noise):
    """600 simulated A/A studies of 10 pairs: the share of p ≤ α stays within Monte Carlo error of α (the exact test
    is discrete: never above α by more than that error)."""
    rng = np.random.default_rng(11)
    ps = []
    for _ in range(600):
        if noise.startswith("normal"):
            a, b = rng.normal(0, 2, 10), rng.normal(0, 0.5, 10)
        elif noise.startswith("heavy"):
            a, b = rng.standard_t(3, 10), rng.standard_t(3, 10)
        else:
            shared = rng.normal(0, 3, 10)
            a, b = shared + rng.normal(0, 0.3, 10), shared + rng.normal(0, 0.3, 10)
        ps.append(paired_test(a, b).p_value)
    ps = np.array(ps)
    for level in LEVELS:
        assert abs(np.mean(ps <= level) - level) <= _mc_bound(level, len(ps)), (level, np.mean(ps <= level))
    assert stats.kstest(ps, "uniform").pvalue > 0.001


@pytest.mark.parametrize(("pairs", "alpha"), [(10, 0.05), (10, 0.01), (8, 0.05)])
def test_detectable_effect_is_detected_at_the_claimed_power(pairs, alpha):
    """Plant the effect detectable_effect names (sd 1): the sign-flip test detects it in 80% of 600 studies within
    Monte Carlo error (measured 77–79%: the exact test's steps cost a little against the t test it is sized by)."""
    rng = np.random.default_rng(5)
    effect = detectable_effect(1.0, pairs, alpha=alpha)
    power = np.mean([paired_test(rng.normal(effect, 1.0, pairs), np.zeros(pairs)).p_value < alpha
                     for _ in range(600)])
    assert abs(power - 0.8) <= _mc_bound(0.8, 600) + 0.02, power
    assert detectable_effect(2.0, pairs, alpha=alpha) == pytest.approx(2 * effect)  # proportional to the sd


def test_interval_covers_the_planted_effect():
    rng = np.random.default_rng(7)
    covered = []
    for _ in range(600):
        result = paired_test(rng.normal(0.4, 1.0, 10) + 5, rng.normal(0, 0.3, 10) + 5)
        covered.append(result.ci_low <= 0.4 <= result.ci_high)
    assert abs(np.mean(covered) - 0.95) <= _mc_bound(0.95, 600), np.mean(covered)
