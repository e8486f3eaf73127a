"""``concepts`` — the concept queries of Berg et al. 2022 ("a photo of a good person", …) over FairFace faces:
MaxSkew@k and NDKL@k of gender, race and age against the uniform and the dataset distribution."""

from __future__ import annotations

import pandas as pd

from biaslib.articles import fill
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import fairface_faces, skew_rows
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """The concept queries of Berg et al. 2022 (``eval.concepts`` in ``eval.concept_template``: "a photo of a good
    person", …) over FairFace faces: MaxSkew@k and NDKL@k of gender, race and age against both desired
    distributions for each ``eval.concept_ks`` (capped at the number of faces), per query and averaged over the
    queries with a bootstrap interval over queries."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = fairface_faces(ctx, fairface)
    prompts = [fill(cfg.concept_template, c) for c in cfg.concepts]
    scores = ctx.text_features("concept-prompts", prompts, prompts) @ image.T  # (queries, faces)
    return [row for k in dict.fromkeys(min(k, len(fairface)) for k in cfg.concept_ks)
            for row in skew_rows(scores, fairface, list(cfg.concepts), k, "concept_", cfg)]



EVALUATION = register_evaluation(Evaluation(
    "concepts", "Berg et al.'s concept queries over FairFace faces: MaxSkew, NDKL", ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "concepts", "concept_template", "concept_ks"),
    measures=(Measure("concepts", "overall", r"concept_max_skew@\d+_\w+", "concept_max_skew", "lower"),
              Measure("concepts", "overall", r"concept_ndkl@\d+_\w+", "concept_ndkl", "lower")),
    rows_note="prompts' articles agree with the word after them (an East Asian man), 2026-12-06"))
