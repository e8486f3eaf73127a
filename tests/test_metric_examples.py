"""Every public metric carries a doctest-style example that the tests run (issue 28: "a doctest-style example in
every public metric's docstring"). The examples present are run here; the metrics still without one are listed in
:data:`WITHOUT_EXAMPLE`, a list that only shrinks: a new metric without an example, or a listed one that gained
one (remove it from the list), fails."""

from __future__ import annotations

import ast
import doctest
import importlib
from pathlib import Path

import pytest

import biaslib

METRICS = Path(biaslib.__file__).parent / "metrics"
MODULES = sorted(p.stem for p in METRICS.glob("*.py") if not p.stem.startswith("_"))

#: Public metrics written before the rule, still without an example (2026-12-06). Remove a name when its example
#: lands; never add one.
WITHOUT_EXAMPLE: frozenset[str] = frozenset({
    "amplification.bias_amplification",
    "amplification.directional_bias_amplification",
    "amplification.amplification_table",
    "association.gender_cosine_gaps",
    "association.cosine_association",
    "association.text_association",
    "clipscore.paired_cosine",
    "clipscore.clip_score",
    "collapse.mean_pairwise_cosine",
    "collapse.is_degenerate",
    "correction.estimate_confusion",
    "correction.invert_shares",
    "correction.rate_draws",
    "correction.share_draws",
    "correction.corrected_shares",
    "geode.group_accuracy",
    "groups.factorize_groups",
    "groups.summary_frame",
    "groups.resolve_interval",
    "groups.by_group",
    "groups.group_gap",
    "intervals.z_value",
    "intervals.bias_aware_half_width",
    "intervals.bias_aware_p",
    "intervals.wilson_interval",
    "intervals.jeffreys_interval",
    "intervals.is_binary",
    "intervals.ratio_mean_variance",
    "intervals.effective_size",
    "intervals.cluster_wilson_interval",
    "intervals.bootstrap_means",
    "intervals.cluster_sums",
    "intervals.cluster_bootstrap_means",
    "intervals.percentile_interval",
    "intervals.ratio_acceleration",
    "intervals.bca_interval",
    "intervals.group_mean_draws",
    "intervals.binary_mean_variance",
    "intervals.binary_variance_floor",
    "intervals.gap_interval",
    "intervals.ratio_interval",
    "intervals.aligned_with_test",
    "intervals.gap_test",
    "intervals.contrast_test",
    "intervals.check_callable",
    "intervals.bh_qvalues",
    "magbig.parity_l1",
    "magbig.expected_max_l1",
    "magbig.expected_l1",
    "magbig.fair_floors",
    "magbig.magbig_fairness",
    "magbig.minimax_l1_estimator",
    "magbig.corrected_mean_l1",
    "magbig.mean_l1_inference",
    "magbig.resampled_counts",
    "magbig.occupation_share_draws",
    "magbig.magbig_fairness_mc",
    "magbig.mean_l1_difference",
    "markedness.self_similarity",
    "markedness.self_similarity_mc",
    "markedness.person_preference",
    "paired.smallest_attainable_p",
    "paired.paired_test",
    "paired.detectable_effect",
    "retrieval.tie_window",
    "retrieval.retrieval_hits",
    "skew.skew_at_k",
    "skew.max_skew",
    "skew.ndkl",
    "skew.top_k_share",
    "skew.directional_excess",
    "trend.least_squares_slopes",
    "trend.model_trend",
    "trend.trend",
    "trend.detectable_slope",
    "trend.pilot_variance_bound",
    "trend.power",
    "zero_shot.zero_shot_predict",
    "zero_shot.category_indicators",
})


def _public_functions() -> dict[str, bool]:
    """``module.function`` → whether its docstring has an example, for every public function of biaslib.metrics."""
    found = {}
    for stem in MODULES:
        for node in ast.parse((METRICS / f"{stem}.py").read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found[f"{stem}.{node.name}"] = ">>>" in (ast.get_docstring(node) or "")
    return found


@pytest.mark.parametrize("stem", MODULES)
def test_every_example_in_the_metrics_holds(stem):
    module = importlib.import_module(f"biaslib.metrics.{stem}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_a_new_metric_comes_with_an_example_and_the_list_of_old_ones_only_shrinks():
    functions = _public_functions()
    without = {name for name, has in functions.items() if not has}
    assert without <= WITHOUT_EXAMPLE, f"public metrics without an example: {sorted(without - WITHOUT_EXAMPLE)}"
    stale = WITHOUT_EXAMPLE - without
    assert not stale, f"these have an example now (or are gone): remove them from WITHOUT_EXAMPLE: {sorted(stale)}"
