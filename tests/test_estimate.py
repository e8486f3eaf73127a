"""One result type per kind of measure (issue 28): every measure of :mod:`biaslib.metrics` that comes with its
uncertainty returns an :class:`~biaslib.metrics.estimate.Estimate` with the same four fields, whatever it measures
(a gap, a slope, a paired effect, a corrected mean L1); no public metric returns a dict of ``ci_low`` / ``p_value``
any more (on 8727d1b nine did, each with its own name for the estimate: ``gap``, ``difference``, ``slope``,
``effect``, ``mean_l1_corrected``, ``difference_corrected``, ``value``)."""

from __future__ import annotations

import ast
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biaslib
from biaslib.metrics.estimate import ESTIMATE_FIELDS, Estimate

METRICS = Path(biaslib.__file__).parent / "metrics"
#: The measures with an interval (and most with a test), each returning an Estimate.
ESTIMATES = {"intervals.gap_test", "intervals.contrast_test", "paired.paired_test", "trend.model_trend",
             "association.cosine_association", "association.text_association", "skin_tone_imbalance.mean_imbalance",
             "magbig.mean_l1_inference", "magbig.mean_l1_difference"}


def _public_functions() -> dict[str, ast.FunctionDef]:
    found = {}
    for path in sorted(METRICS.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found[f"{path.stem}.{node.name}"] = node
    return found


def test_no_public_metric_returns_an_interval_as_a_dict():
    """A ``return {...}`` with an interval or p-value key in a public metric is the old dict result."""
    offenders = []
    for name, node in _public_functions().items():
        for child in ast.walk(node):
            if isinstance(child, ast.Return) and isinstance(child.value, ast.Dict):
                keys = {k.value for k in child.value.keys if isinstance(k, ast.Constant)}
                if keys & {"ci_low", "ci_high", "p_value", "p_fair"}:
                    offenders.append(name)
    assert not offenders, f"interval results as dicts (return an Estimate): {sorted(set(offenders))}"


def test_the_measures_with_an_interval_are_annotated_as_estimates():
    annotated = {name for name, node in _public_functions().items()
                 if node.returns is not None and ast.unparse(node.returns) == "Estimate"}
    assert annotated == ESTIMATES


def _calls() -> dict[str, tuple[Estimate, float]]:
    """Each of :data:`ESTIMATES` on a small case with a known answer: (result, expected value)."""
    from biaslib.metrics.association import cosine_association, text_association
    from biaslib.metrics.intervals import contrast_test, gap_test
    from biaslib.metrics.magbig import corrected_mean_l1, mean_l1_difference, mean_l1_inference
    from biaslib.metrics.paired import paired_test
    from biaslib.metrics.skin_tone_imbalance import mean_imbalance
    from biaslib.metrics.trend import model_trend

    hits, groups = [1] * 8 + [0] * 2 + [1] * 2 + [0] * 8, ["a"] * 10 + ["b"] * 10
    skewed = pd.DataFrame({"occupation": ["x", "y"], "man": [10, 0], "woman": [0, 10]})
    fair = skewed.assign(man=[5, 5], woman=[5, 5])
    scores = np.array([[0.4, 0.2, 0.1, 0.1], [0.1, 0.1, 0.3, 0.1]])
    tones = pd.DataFrame({"prompt": ["p"] * 10 + ["q"] * 10, "tone": [1] * 10 + list(range(1, 11))})
    return {
        "intervals.gap_test": (gap_test(hits, groups, n_perm=200, n_boot=200), 0.6),
        "intervals.contrast_test": (contrast_test(hits, groups, "b", "a", n_perm=200, n_boot=200), -0.6),
        "paired.paired_test": (paired_test([2, 3, 5, 4], [1, 1, 2, 2]), 2.0),
        "trend.model_trend": (model_trend(np.repeat([0.0, 1.0], 2), np.array([0.0, 0.2, 1.0, 1.2]), np.zeros(4)), 1.0),
        "association.cosine_association": (cosine_association(scores, [True, True, False, False], [0.75, 0.25],
                                                              n_boot=50), 0.6),
        "association.text_association": (text_association([0.2, 0.25, 0.3], [0.3, 0.25, 0.2], [0.25, 0.5, 0.75],
                                                          n_boot=50), 0.4),
        "skin_tone_imbalance.mean_imbalance": (mean_imbalance(tones, n_boot=50), 0.09),
        "magbig.mean_l1_inference": (mean_l1_inference(skewed, n_boot=99),
                                     corrected_mean_l1(np.array([10, 0]), np.array([10, 10]))["estimate"]),
        "magbig.mean_l1_difference": (mean_l1_difference(fair, fair), 0.0),
    }


def test_every_estimate_has_the_same_fields_and_its_value_is_the_measure():
    calls = _calls()
    assert set(calls) == ESTIMATES
    for name, (result, expected) in calls.items():
        assert isinstance(result, Estimate), name
        assert list(result.as_dict())[:4] == list(ESTIMATE_FIELDS), name
        assert result.value == pytest.approx(expected, abs=1e-12), name
        assert result.ci_low <= result.ci_high and result.covers(result.value), (name, result)
        assert 0.0 < result.ci < 1.0 and (math.isnan(result.p_value) or 0.0 <= result.p_value <= 1.0), name


def test_details_read_as_attributes_and_the_object_survives_pickling():
    result = _calls()["intervals.gap_test"][0]
    assert (result.low_group, result.high_group, result.test) == ("b", "a", "permutation")
    assert result.as_dict()["low_group"] == "b"
    with pytest.raises(AttributeError, match="no field or detail 'gap'.*low_group"):
        _ = result.gap
    again = pickle.loads(pickle.dumps(result))
    assert again == result and again.low_group == "b"
    with pytest.raises(ValueError, match="reuse the names"):
        Estimate(0.0, 0.0, 0.0, details={"p_value": 0.5})
    assert not Estimate(0.0, math.nan, math.nan).covers(0.0)  # no interval computed: covers nothing
