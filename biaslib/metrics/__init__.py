"""Bias metrics: exact estimands with bootstrap or analytic confidence intervals.

Importing this package loads numpy and pandas only; torch is imported inside
:func:`retrieval_hits` when it runs. Definitions: ``design.md`` ("Metric definitions") and
``reference/formats.md`` (A6–A9, C6, D). Every measure that comes with its uncertainty returns an
:class:`Estimate` (``value``, ``ci_low``, ``ci_high``, ``p_value`` and its details); the kinds of result and their
one type each: :mod:`biaslib.metrics.estimate`.
"""

from biaslib.metrics.amplification import (
    amplification_table,
    bias_amplification,
    directional_amplification_table,
    directional_bias_amplification,
)
from biaslib.metrics.clipscore import clip_score, paired_cosine
from biaslib.metrics.estimate import Estimate
from biaslib.metrics.geode import group_accuracy
from biaslib.metrics.groups import by_group, group_gap
from biaslib.metrics.intervals import (
    bh_qvalues,
    contrast_test,
    gap_interval,
    gap_test,
    ratio_interval,
    wilson_interval,
)
from biaslib.metrics.magbig import (
    magbig_fairness,
    magbig_fairness_mc,
    mean_l1_difference,
    mean_l1_inference,
    parity_l1,
)
from biaslib.metrics.markedness import person_preference, self_similarity, self_similarity_mc
from biaslib.metrics.retrieval import retrieval_hits
from biaslib.metrics.skew import max_skew, ndkl
from biaslib.metrics.zero_shot import category_indicators, zero_shot_predict

__all__ = [
    "Estimate",
    "amplification_table",
    "bh_qvalues",
    "bias_amplification",
    "by_group",
    "category_indicators",
    "clip_score",
    "contrast_test",
    "directional_amplification_table",
    "directional_bias_amplification",
    "gap_interval",
    "gap_test",
    "group_accuracy",
    "group_gap",
    "magbig_fairness",
    "magbig_fairness_mc",
    "max_skew",
    "mean_l1_difference",
    "mean_l1_inference",
    "ndkl",
    "parity_l1",
    "paired_cosine",
    "person_preference",
    "ratio_interval",
    "retrieval_hits",
    "self_similarity",
    "self_similarity_mc",
    "wilson_interval",
    "zero_shot_predict",
]
