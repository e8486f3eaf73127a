"""``ranking_ndkl`` — NDKL over each query's whole ranking (Geyik et al. 2019, the definition DebiasCLIP (Berg et al.
2022) reports): the concept queries (``eval.concepts`` in ``eval.concept_template``) rank every FairFace face, and
for gender, race and age NDKL = Σ_{i=1..N} KL(p_i ‖ D) / log2(i + 1) / Z over all N faces, against the uniform and
the dataset distribution D (:func:`biaslib.metrics.skew.ndkl` with k = N). ``concepts`` reports NDKL@k only, at
cut-offs of ``eval.concept_ks``; published DebiasCLIP numbers are over the whole ranking. Rows per query and their
mean over queries with a bootstrap interval over queries (metric ``ndkl_full_<desired>``)."""

from __future__ import annotations

import pandas as pd

from biaslib.articles import fill
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import MARKEDNESS_AXES, fairface_faces
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import query_rows
from biaslib.metrics.skew import ndkl


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """NDKL of every concept query's ranking of all FairFace faces, per attribute and desired distribution."""
    cfg = ctx.cfg
    faces = tables["fairface"]
    prompts = [fill(cfg.concept_template, concept) for concept in cfg.concepts]
    scores = ctx.text_features("concept-prompts", prompts, prompts) @ fairface_faces(ctx, faces).T  # (queries, faces)
    rows: list[dict] = []
    for attribute in MARKEDNESS_AXES:
        labels = faces[attribute].to_numpy(dtype=object)
        for desired in ("uniform", "dataset"):
            rows += query_rows("fairface", attribute, f"ndkl_full_{desired}", list(cfg.concepts),
                               ndkl(scores, labels, len(faces), desired), len(faces), cfg)
    return rows


EVALUATION = register_evaluation(Evaluation(
    "ranking_ndkl", "NDKL of the concept queries over the whole FairFace ranking (Geyik et al.)", ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "concepts", "concept_template"),
    measures=(Measure("ranking_ndkl", "overall", r"ndkl_full_\w+", "ndkl (whole ranking)", "lower"),)))
