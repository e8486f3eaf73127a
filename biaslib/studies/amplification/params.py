"""The amplification study's own params sections: ``control`` (its paired design with positive and negative
controls) and ``analysis`` (how its dose-response table calls trends). Both only say how results are analysed:
no step reads them and the study's digest leaves them out (:mod:`biaslib.studies.amplification.declaration`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from biaslib.ratios import RatioCode


@dataclass(frozen=True)
class PrimaryTest:
    """The one test a controlled study declares before it runs (``control.primary``): its estimand is the paired
    difference treatment − reference of ``measure`` (``dataset:attribute:metric[:kind]``, kind ``overall`` unless
    named: one row of every model's results) at mixing ratio ``ratio``, across the replicate pairs; its test the
    sign-flip permutation test with the paired t statistic (:func:`biaslib.metrics.paired.paired_test`,
    ``alternative``), called at level ``alpha`` with no multiplicity correction: it is one test per pair."""

    measure: str = "fairface:gender:cosine_vs_data"
    ratio: RatioCode = RatioCode("100")
    alternative: Literal["two-sided", "greater", "less"] = "two-sided"
    alpha: float = 0.01


@dataclass(frozen=True)
class ControlConfig:
    """A paired design of the amplification study (``control`` section; :mod:`biaslib.studies.amplification.control`).

    The arms are the params file's ``variants`` (e.g. a faithful and a planted generator); ``pairs`` names each
    comparison ``name: [treatment variant, reference variant]``. The arms of a pair must share every random source
    but the treatment: the same ``train.replicates`` seeds, captions, real data and data order (the variants
    change only ``generate``), with ``generate.per_replicate`` so that each replicate pair has generated data of
    its own (its generator seed, shared by both arms). ``positive``: pairs with a planted effect the primary test
    must call (positive controls); ``negative``: A/A pairs that differ only by chance and must stay quiet.
    ``primary``: the declared test (:class:`PrimaryTest`). ``secondary``: every other measure compared, the
    Benjamini–Hochberg family (per pair) whose q-values below ``q_level`` are findings; fixed here, so adding a
    measure elsewhere never moves them. Analysis only: no step reads this section, and the study's digest leaves
    it out (the declaration is recorded when the study runs, :func:`biaslib.studies.amplification.control.declare`).
    """

    pairs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    primary: PrimaryTest = field(default_factory=PrimaryTest)
    secondary: tuple[str, ...] = ()
    q_level: float = 0.05


#: Results columns a family of gap tests may be split by (``analysis.gap_family``).
GAP_FAMILY_COLUMNS = ("experiment", "ratio_fraction", "replicate", "evaluation", "dataset", "metric", "attribute")


@dataclass(frozen=True)
class AnalysisConfig:
    """How the amplification study's dose-response table calls trends (``analysis`` section; analysis only).

    ``trend_family``: the measures (``dataset:attribute:metric[:kind]``) whose slopes are tested together, with
    Benjamini–Hochberg q-values below ``q_level`` called; empty: every headline measure. The rest of the table keeps
    its p-values and is not called. Fixed in the params, so adding an evaluation never moves an existing q-value.
    ``gap_family``: the results columns whose values together make one family of gap tests (default: the gaps of
    one measure — evaluation, dataset, metric — of one trained model, over its attributes), so adding an
    evaluation or a metric (the 54 harm gaps) never moves an existing gap's q-value.
    """

    trend_family: tuple[str, ...] = ()
    q_level: float = 0.05
    gap_family: tuple[str, ...] = ("experiment", "ratio_fraction", "replicate", "evaluation", "dataset", "metric")
