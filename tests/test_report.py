"""Findings computed from results: first-vs-last-ratio trends with interval overlap, slopes, sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biaslib.report import findings, ratio_trends


def _rows(experiment, metric, values, half_width):
    ratios = np.linspace(0, 1, len(values))
    return [{"experiment": experiment, "evaluation": "retrieval", "dataset": "phase", "attribute": "gender",
             "metric": metric, "kind": "gap", "ratio_fraction": r, "value": v, "ci_low": v - half_width,
             "ci_high": v + half_width} for r, v in zip(ratios, values)]


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


def test_touching_intervals_are_no_change_and_missing_intervals_are_na():
    frame = pd.DataFrame(_rows("touch", "R@1", [0.1, 0.3], 0.1) + _rows("nan", "R@1", [0.1, 0.3], np.nan))
    trends = ratio_trends(frame).set_index("experiment")
    assert trends.loc["touch", "direction"] == "no change" and trends.loc["nan", "direction"] == "n/a"


def test_findings_state_the_numbers():
    frame = pd.DataFrame(_rows("up", "R@1", [0.1, 0.3], 0.02) + _rows("up", "R@5", [0.4, 0.41], 0.05))
    sentences = findings(ratio_trends(frame))
    assert sentences[0] == ("up · phase gender R@1: gap 0.100 [0.080, 0.120] at ratio 0.0 → 0.300 [0.280, 0.320] "
                            "at ratio 1.0 (up by 0.200, beyond sampling error).")
    assert "+0.010, within sampling error" in sentences[1]
    assert sentences[-1] == ("up: of 2 gaps, 1 grew and 0 shrank beyond sampling error from the lowest to the "
                             "highest ratio; 1 changed within it.")


def test_single_ratio_has_no_slope():
    trends = ratio_trends(pd.DataFrame(_rows("one", "R@1", [0.2], 0.01)))
    assert np.isnan(trends["slope"].iloc[0]) and trends["change"].iloc[0] == 0


def test_replicate_spread_and_its_sentences():
    from biaslib.report import replicate_findings, replicate_spread

    frame = pd.DataFrame(_rows("a", "R@1", [0.10, 0.30], 0.02) + _rows("b", "R@1", [0.16, 0.2], 0.04)
                         + _rows("a", "R@5", [0.40, 0.41], 0.05) + _rows("c", "R@5", [0.9, 0.9], 0.05))
    spread = replicate_spread(frame, ["a", "b"]).set_index("metric")
    assert list(spread.index) == ["R@1"]  # R@5 lacks b: not a replicate
    assert spread.loc["R@1", "values"] == pytest.approx((0.10, 0.16))
    assert spread.loc["R@1", "spread"] == pytest.approx(0.06) and spread.loc["R@1", "ci_width"] == pytest.approx(0.06)
    sentences = replicate_findings(replicate_spread(frame, ["a", "b"]), ratio_trends(frame))
    assert sentences[0].startswith("a and b trained CLIPs on identical data and settings: their gaps differ by a "
                                   "median of 0.060 (largest 0.060, phase gender R@1)")
    # R@1 changes: a +0.20 (> 0.06), b +0.04 (< 0.06); R@5 has no replicate spread and is not counted
    assert sentences[1] == "1 of 2 first-to-last-ratio changes exceed the largest replicate spread of their metric."
    assert replicate_findings(replicate_spread(frame, ["a", "z"])) == []  # no shared metric: no sentence
