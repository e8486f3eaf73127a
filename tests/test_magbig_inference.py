"""MAGBIG's mean L1 inference: the minimax estimator, its bias bound, and the coverage of its intervals.

Coverage is measured by simulation over the grid real studies span (10, 40 and 150 occupations — real MAGBIG has
≈ 150 — × 12, 25 and 100 faces each × every occupation at p(woman) ½, 0.6 or 0.7, or half fair and half at 0.8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biaslib.metrics import mean_l1_difference, mean_l1_inference
from biaslib.metrics.intervals import bias_aware_half_width, bias_aware_p
from biaslib.metrics.magbig import BIAS_GRID, minimax_l1_estimator, parity_l1

SETTINGS = {"0.5": lambda o: np.full(o, 0.5), "0.6": lambda o: np.full(o, 0.6), "0.7": lambda o: np.full(o, 0.7),
            "mix": lambda o: np.where(np.arange(o) % 2 == 0, 0.5, 0.8)}


def _table(man: np.ndarray, images: int) -> pd.DataFrame:
    return pd.DataFrame({"occupation": range(len(man)), "man": man, "woman": images - man})


def test_bias_aware_half_width_covers_the_worst_bias_exactly():
    # closed form: at bias b the interval estimate ± h covers with P(|Z + b/se| <= h/se); at the bound it is ci
    for se, bound in ((0.02, 0.0), (0.02, 0.05), (0.1, 0.01)):
        half = bias_aware_half_width(se, bound, 0.95)
        worst = stats.norm.cdf(half / se - bound / se) - stats.norm.cdf(-half / se - bound / se)
        assert worst == pytest.approx(0.95, abs=1e-9)
        assert bias_aware_p(half, se, bound) == pytest.approx(0.05, abs=1e-9)  # p and interval agree
    assert bias_aware_half_width(1.0, 0.0) == pytest.approx(1.959964, abs=1e-6)


@pytest.mark.parametrize(("images", "occupations"), [(12, 10), (12, 150), (25, 40), (100, 150)])
def test_the_bias_bound_holds_at_shares_off_the_design_grid(images, occupations):
    # brute force: E_p scores[X] − |2p − 1| at random shares, by scipy's binomial, never beyond max_bias
    estimator = minimax_l1_estimator(images, occupations)
    shares = np.random.default_rng(0).uniform(0.0, 1.0, 500)
    expected = stats.binom.pmf(np.arange(images + 1)[None, :], images, shares[:, None]) @ estimator.scores
    assert np.abs(expected - parity_l1(shares)).max() <= estimator.max_bias + 1e-9
    assert estimator.max_bias == pytest.approx(np.abs(estimator.bias).max())
    # and it beats the plug-in, whose bias at a fair occupation is the floor (0.23 with 12 faces)
    plug_in = stats.binom.pmf(np.arange(images + 1), images, 0.5) @ parity_l1(np.arange(images + 1) / images)
    assert estimator.max_bias < plug_in


@pytest.mark.parametrize("occupations", [10, 40, 150])
def test_mean_l1_interval_coverage_over_the_grid(occupations):
    rng = np.random.default_rng(occupations)
    trials = 300
    for images in (12, 25, 100):
        estimator = minimax_l1_estimator(images, occupations)
        for name, setting in SETTINGS.items():
            p = setting(occupations)
            truth = parity_l1(p).mean()
            covered, estimates = 0, []
            for trial in range(trials):
                result = mean_l1_inference(_table(rng.binomial(images, p), images), n_boot=200, seed=trial)
                covered += result.ci_low - 1e-12 <= truth <= result.ci_high + 1e-12
                estimates.append(result.unclipped)  # the closed form's bias is the minimax estimate's
                assert result.value == min(max(result.unclipped, 0.0), 1.0) and result.covers(result.value)
            assert covered / trials >= 0.90, (occupations, images, name, covered / trials)
            # the estimate's bias is the closed form's (its curve at these shares), within Monte Carlo error
            predicted = np.interp(np.maximum(p, 1 - p), BIAS_GRID, estimator.bias).mean()
            error = np.std(estimates) / np.sqrt(trials)
            assert np.mean(estimates) - truth == pytest.approx(predicted, abs=4 * error + 1e-3), (images, name)
            assert abs(predicted) <= estimator.max_bias + 1e-12


def test_p_fair_is_calibrated_at_the_fair_generator_and_rejects_an_unfair_one():
    rng = np.random.default_rng(11)
    fair, unfair = [], []
    for trial in range(300):
        fair.append(mean_l1_inference(_table(rng.binomial(12, 0.5, size=40), 12), n_boot=300, seed=trial).p_value)
        unfair.append(mean_l1_inference(_table(rng.binomial(12, 0.85, size=10), 12), n_boot=300, seed=trial).p_value)
    assert np.mean(np.array(fair) < 0.05) == pytest.approx(0.05, abs=0.035)
    assert stats.kstest(fair, "uniform").pvalue > 0.001
    assert np.mean(np.array(unfair) < 0.05) >= 0.9


@pytest.mark.parametrize(("base", "tuned"), [(0.84, 0.64), (0.84, 0.5), (0.7, 0.7)])
def test_mean_l1_difference_covers_also_when_one_side_is_exactly_fair(base, tuned):
    # the plug-in shrinks a change toward a fair side (its floor remains); the corrected difference does not, and
    # its interval covers where the earlier bootstrap covered 34% (a change to an exactly fair side)
    rng = np.random.default_rng(12)
    truth = abs(2 * tuned - 1) - abs(2 * base - 1)
    plain, covered, called = [], 0, 0
    trials = 300
    for _ in range(trials):
        tuned_table = _table(rng.binomial(12, tuned, size=40), 12)
        result = mean_l1_difference(tuned_table, _table(rng.binomial(12, base, size=40), 12))
        plain.append(result.plug_in)
        covered += result.ci_low <= truth <= result.ci_high
        called += result.p_value < 0.05
    assert covered / trials >= 0.9
    if truth == 0:
        assert called / trials <= 0.05
    else:
        assert np.mean(plain) > truth + 0.04  # what the correction is for
        assert called / trials >= 0.8  # a change of 0.28–0.68 in L1 over 40 occupations is found


def test_the_corrected_mean_l1_lies_inside_its_own_interval_near_fairness():
    # ten occupations of 6 + 6 faces: the minimax estimate falls below 0 (−0.146) while the interval, like the
    # estimand, starts at 0; the reported value is clipped as the interval is (it was −0.146 against [0, 0.092])
    result = mean_l1_inference(_table(np.full(10, 6), 12), n_boot=200)
    assert result.unclipped < -0.1 and result.value == 0.0 == result.ci_low < result.ci_high
    assert result.p_value == 1.0  # no fair draw is fairer than every occupation at 6:6


def test_the_corrected_difference_and_its_interval_stay_within_the_range_of_a_change():
    # two occupations of 2 faces, all of one gender against 1:1: the bias-aware interval reached 1.91 (a change of
    # mean L1s lies in [−1, 1]); it is clipped there like the value, in both directions, and the p-value is unchanged
    skewed = pd.DataFrame({"occupation": ["x", "y"], "man": [2, 0], "woman": [0, 2]})
    fair = pd.DataFrame({"occupation": ["x", "y"], "man": [1, 1], "woman": [1, 1]})
    up, down = mean_l1_difference(skewed, fair), mean_l1_difference(fair, skewed)
    assert up.ci_high == 1.0 and down.ci_low == -1.0 and up.unclipped + up.max_bias + 4 * up.se > 1.0
    assert up.covers(up.value) and down.covers(down.value) and up.p_value == down.p_value > 0.05
