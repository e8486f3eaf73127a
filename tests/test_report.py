"""Findings computed from results: gaps and first-vs-last-ratio changes tested with BH q-values, slopes, sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biaslib.studies.amplification.report import findings, gap_qvalues, ratio_trends


def _rows(experiment, metric, values, half_width, p_values=None, null_gap=None):
    ratios = np.linspace(0, 1, len(values))
    p_values = p_values or [np.nan] * len(values)
    return [{"experiment": experiment, "evaluation": "retrieval", "dataset": "phase", "attribute": "gender",
             "metric": metric, "kind": "gap", "ratio_fraction": r, "value": v, "ci_low": v - half_width,
             "ci_high": v + half_width, "p_value": p, "null_gap": null_gap}
            for r, v, p in zip(ratios, values, p_values)]


def test_trends_slopes_and_directions():
    frame = pd.DataFrame(_rows("up", "R@1", [0.1, 0.2, 0.3], 0.02) + _rows("flat", "R@1", [0.1, 0.12, 0.13], 0.05)
                         + _rows("down", "R@5", [0.5, 0.3, 0.1], 0.1))
    frame = frame.sample(frac=1, random_state=0)  # order must not matter
    trends = ratio_trends(frame).set_index("experiment")
    assert trends.loc["up", "slope"] == pytest.approx(0.2) and trends.loc["up", "change"] == pytest.approx(0.2)
    assert trends.loc["down", "slope"] == pytest.approx(-0.4)
    assert trends["direction"].to_dict() == {"down": "down", "flat": "no change", "up": "up"}
    assert trends.loc["flat", "ratio_first"] == 0 and trends.loc["flat", "ratio_last"] == 1
    assert trends.loc["up", "value_last"] == pytest.approx(0.3) and trends.loc["up", "ratios"] == 3


def test_changes_are_z_tests_not_interval_overlap_and_missing_intervals_are_na():
    # touching 95% intervals: the difference is 2.77 standard errors, p = 0.0056 (overlap called it no change)
    frame = pd.DataFrame(_rows("touch", "R@1", [0.1, 0.3], 0.1) + _rows("nan", "R@1", [0.1, 0.3], np.nan))
    trends = ratio_trends(frame).set_index("experiment")
    se = 0.1 / stats.norm.ppf(0.975)
    assert trends.loc["touch", "p_change"] == pytest.approx(2 * stats.norm.sf(0.2 / (se * np.sqrt(2))))
    assert trends.loc["touch", "direction"] == "up" and trends.loc["nan", "direction"] == "n/a"


def test_change_q_values_control_false_findings_under_no_change():
    # 40 metrics whose true gap does not move, each estimated at two ratios with its standard error: at most a
    # few percent of families call any change (BH keeps the expected share of false findings under 5%)
    rng = np.random.default_rng(0)
    false_families = 0
    for _ in range(200):
        rows = []
        for m in range(40):
            se = rng.uniform(0.01, 0.05)
            values = 0.2 + se * rng.standard_normal(2)
            rows += _rows("e", f"m{m}", list(values), 1.959964 * se)
        false_families += (ratio_trends(pd.DataFrame(rows))["direction"] != "no change").any()
    assert false_families / 200 <= 0.08


def test_gap_q_values_are_benjamini_hochberg_per_family():
    """A family of the given columns (here one per model: experiment, ratio, replicate): a model's q-values do not
    depend on how many other ratios were run. With the gap tests' smallest attainable p, a family too large to call
    one gap is refused."""
    per_model = ("experiment", "ratio_fraction", "replicate")
    frame = pd.DataFrame(_rows("a", "R@1", [0.1, 0.3], 0.02, [0.01, 0.04]) + _rows("a", "R@5", [0.1, 0.1], 0.02,
                                                                                  [0.03, 0.5])
                         + _rows("b", "R@1", [0.1, 0.1], 0.02, [0.04, 0.04]))
    q = gap_qvalues(frame, family=per_model)
    np.testing.assert_allclose(q[:4], [0.02, 0.08, 0.03, 0.5])  # a at ratio 0: p .01 .03; at ratio 1: .04 .5
    np.testing.assert_allclose(q[4:], [0.04, 0.04])  # b's models on their own
    assert gap_qvalues(frame, min_p=1 / 2001, family=per_model).equals(q)
    many = pd.DataFrame([row for m in range(120) for row in _rows("c", f"R@{m}", [0.1], 0.02, [0.5])])
    with pytest.raises(ValueError, match="no finding can be called"):
        gap_qvalues(many, min_p=1 / 2001, family=per_model)  # 120 gaps × 1/2001 ≥ 0.05
    assert gap_qvalues(many, min_p=1 / 2001).notna().all()  # per measure (the default) each family is one gap


def test_adding_an_evaluation_never_moves_an_existing_q_value():
    # the default family is one measure of one model over its attributes: 54 harm gaps of a new evaluation (and a
    # new metric of an old one) leave the retrieval gaps' q-values as they were
    def attributes(metric, evaluation, p_values):
        return [{**row, "attribute": attribute, "evaluation": evaluation, "replicate": 0}
                for attribute, p in zip(("gender", "race", "age"), p_values)
                for row in _rows("a", metric, [0.1], 0.02, [p])]

    before = pd.DataFrame(attributes("R@1", "retrieval", [0.01, 0.02, 0.3]))
    harms = [row for h in range(18) for row in attributes(f"harm_{h}", "markedness", [0.5, 0.6, 0.9])]
    after = pd.concat([before, pd.DataFrame(harms + attributes("R@5", "retrieval", [0.04, 0.7, 0.8]))],
                      ignore_index=True)
    np.testing.assert_allclose(gap_qvalues(after)[:3], gap_qvalues(before))
    np.testing.assert_allclose(gap_qvalues(before), [0.03, 0.03, 0.3])  # BH over the three attributes
    # the whole model as one family would have moved them (q of p = 0.01 among 60 gaps: 0.6)
    assert gap_qvalues(after, family=("experiment", "ratio_fraction", "replicate"))[0] > 0.3


def test_findings_state_the_numbers_p_q_and_the_chance_floor():
    frame = pd.DataFrame(_rows("up", "R@1", [0.1, 0.3], 0.02, [0.2, 0.001], 0.05)
                         + _rows("up", "R@5", [0.4, 0.41], 0.05, [0.0004, 0.0002], 0.05))
    sentences = findings(ratio_trends(frame))
    assert sentences[0] == ("up · phase gender R@1: gap 0.100 [0.080, 0.120] (p = 0.2, q = 0.2, chance floor 0.050: "
                            "within chance) at ratio 0.0 → 0.300 [0.280, 0.320] (p = 0.001, q = 0.001, chance floor "
                            "0.050: beyond chance) at ratio 1.0 (up by 0.200, beyond chance: p < 0.0001, "
                            "q < 0.0001).")
    assert "+0.010, within chance: p = 0.78, q = 0.78" in sentences[1]
    assert sentences[-1] == ("up: at the highest ratio 2 of 2 tested gaps are beyond chance (q < 0.05); of 2 gaps, "
                             "1 grew and 0 shrank beyond chance from the lowest to the highest ratio; 1 changed "
                             "within it.")


def test_single_ratio_has_no_slope():
    trends = ratio_trends(pd.DataFrame(_rows("one", "R@1", [0.2], 0.01)))
    assert np.isnan(trends["slope"].iloc[0]) and trends["change"].iloc[0] == 0


def test_probe_spread_and_its_sentences():
    """A probe (another training seed at ratio 0) measures how far training moves each gap; the findings say so and
    count the first-to-last changes beyond that move. Without a probe they say that training noise is unmeasured."""
    from biaslib.studies.amplification.report import probe_findings, probe_spread

    first = pd.DataFrame(_rows("a", "R@1", [0.10, 0.30], 0.02) + _rows("a", "R@5", [0.40, 0.41], 0.05)
                         + _rows("b", "R@1", [0.5, 0.5], 0.01)).assign(replicate=0)
    probe = pd.DataFrame(_rows("a", "R@1", [0.16], 0.04) + _rows("a", "R@5", [0.39], 0.05)).assign(replicate=1)
    frame = pd.concat([first, probe], ignore_index=True)
    spread = probe_spread(frame).set_index("metric")
    assert list(spread.index) == ["R@1", "R@5"] and set(spread["ratio"]) == {0.0}  # b has no probe
    assert spread.loc["R@1", "move"] == pytest.approx(0.06) and spread.loc["R@1", "half_width"] == pytest.approx(0.03)
    sentences = probe_findings(probe_spread(frame), ratio_trends(first))
    assert sentences[0].startswith("a: another training seed at ratio 0 moved the gaps by a median of 0.035 "
                                   "(largest 0.060, phase gender R@1) against a median interval half-width of 0.040")
    # a's changes: R@1 +0.20 beyond its move 0.06; R@5 +0.01, not beyond its move 0.01
    assert sentences[1] == ("a: 1 of 2 first-to-last-ratio changes exceed the largest move another seed made in "
                            "their metric.")
    assert probe_findings(probe_spread(first))[0].startswith("Training noise is not measured")


def test_first_to_last_changes_compare_replicate_0_and_leave_the_others_to_trend():
    one = pd.DataFrame(_rows("up", "R@1", [0.1, 0.2, 0.3], 0.02)).assign(replicate=0)
    other = pd.DataFrame(_rows("up", "R@1", [0.9, 0.0, 0.9], 0.02)).assign(replicate=1)
    trends = ratio_trends(pd.concat([other, one], ignore_index=True)).set_index("experiment")
    assert trends.loc["up", "slope"] == pytest.approx(0.2) and trends.loc["up", "ratios"] == 3


def test_a_rejecting_test_with_an_interval_at_zero_says_why():
    # the simultaneous interval holds every pair at once, so it can start at 0 while the test rejects
    rows = _rows("x", "R@1", [0.05, 0.30], 0.05, [0.01, 0.0001], 0.02)
    rows[0]["ci_low"] = 0.0
    first, last = findings(ratio_trends(pd.DataFrame(rows)))[0].split(" → ")
    assert "its interval still holds 0" in first and "its interval still holds 0" not in last


def _model_rows(rng: np.random.Generator, shares: list[float], size: int, ratio: float) -> list[dict]:
    """One model's group and gap rows for 4 groups of ``size`` 0/1 values, as an evaluation writes them."""
    from biaslib.metrics import by_group, gap_test

    groups = np.repeat(list("abcd"), size)
    values = (rng.random(4 * size) < np.repeat(shares, size)).astype(float)
    frame = by_group(values, groups)
    test = gap_test(values, groups, n_perm=0, n_boot=200, seed=0)
    base = {"experiment": "e", "evaluation": "retrieval", "dataset": "phase", "attribute": "gender", "metric": "R@1",
            "ratio_fraction": ratio, "replicate": 0, "p_value": np.nan, "null_gap": np.nan}
    rows = [{**base, "kind": "group", "group": g, "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
             "low": None, "high": None} for g, r in zip(frame.index, frame.itertuples())]
    return rows + [{**base, "kind": "gap", "group": "", "value": test.value, "ci_low": test.ci_low,
                    "ci_high": test.ci_high, "low": test.low_group, "high": test.high_group}]


@pytest.mark.parametrize(("first", "last", "low", "high"), [
    ([0.2, 0.3, 0.3, 0.35], [0.2, 0.3, 0.3, 0.35], 0.01, 0.08),  # a gap of 0.15 that stays: measured 4.75%
    ([0.3] * 4, [0.3] * 4, 0.0, 0.05),  # no gap at all: conservative (measured 0%)
    ([0.3] * 4, [0.3, 0.3, 0.3, 0.45], 0.65, 1.0),  # 0 → 0.15: measured 79% (the old test: 6%)
], ids=["stable gap", "equal groups", "0 to 0.15"])
def test_a_gap_change_is_tested_with_its_groups_evaluation_rows(first, last, low, high):
    rng = np.random.default_rng(int(100 * sum(last)))
    trials = 200
    called = sum(ratio_trends(pd.DataFrame(_model_rows(rng, first, 400, 0.0) + _model_rows(rng, last, 400, 1.0)))
                 ["p_change"].iloc[0] < 0.05 for _ in range(trials))
    assert low <= called / trials <= high, called / trials
