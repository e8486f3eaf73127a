"""``association`` — occupation queries over FairFace faces (no occupation cues): MaxSkew@k and NDKL@k of gender,
race and age against the uniform and the dataset distribution, per occupation the top-k share of women against the
training data's p(woman | occupation) (``eval.association_shares``, else the world's table), and the continuous
association: per occupation the women-minus-men cosine gap and its slope on the data's shares
(:mod:`biaslib.metrics.association`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biaslib.articles import with_article
from biaslib.config import Params
from biaslib.errors import DataLayoutError
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import fairface_faces, skew_rows
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import query_rows, row
from biaslib.metrics.association import cosine_association, text_association
from biaslib.metrics.skew import directional_excess, top_k_share

#: The gendered prompts of the text-side association (:func:`biaslib.metrics.association.text_association`).
GENDER_PROMPTS = {"woman": "a photo of a woman", "man": "a photo of a man"}


def occupation_prompt(occupation: str) -> str:
    """The association query of an occupation: ``a photo of a nurse`` / ``an engineer`` (``_`` → space)."""
    return f"a photo of {with_article(occupation.replace('_', ' '))}"


def association_shares(params: Params) -> pd.Series:
    """The training data's p(woman | occupation) the association compares with: ``eval.association_shares``
    (CSV ``occupation,share_woman``), else the world's table at the params' bias strength."""
    path = params.eval.association_shares
    if path is not None:
        if not Path(path).is_file():
            raise DataLayoutError(f"eval.association_shares: {path} not found (expected a CSV with columns "
                                  "occupation,share_woman: the training data's share of women per occupation)")
        table = pd.read_csv(path)
        if not {"occupation", "share_woman"} <= set(table.columns):
            raise DataLayoutError(f"{path}: expected columns occupation,share_woman, got {list(table.columns)}")
        return table.set_index("occupation")["share_woman"].astype(float)
    from biaslib.world import World

    return World(params.world, params.seed).conditionals()["gender"]["woman"].drop(index="none", errors="ignore")


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Occupation queries over FairFace faces (no occupation cues): MaxSkew@k and NDKL of gender, race and age
    against the uniform and the dataset distribution, and per occupation the top-k share of women against the
    data's p(woman | occupation) (:func:`~biaslib.metrics.skew.directional_excess`)."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = fairface_faces(ctx, fairface)
    shares = association_shares(ctx.params)
    occupations = list(cfg.association_occupations or shares.index)
    prompts = [occupation_prompt(o) for o in occupations]
    scores = ctx.text_features("association-occupations", prompts, prompts) @ image.T  # (queries, faces)
    is_woman = fairface["gender"].to_numpy() == "Female"
    data = shares.reindex(occupations).to_numpy(dtype=np.float64)
    rows = _cosine_rows(ctx, prompts, scores, is_woman, occupations, data)
    for k in cfg.association_ks:
        rows += skew_rows(scores, fairface, occupations, k, "", cfg)
        women = top_k_share(scores, is_woman, k)
        rows += query_rows("fairface", "gender", f"share_woman@{k}", occupations, women, k, cfg)
        rows += query_rows("fairface", "gender", f"retrieval_vs_data@{k}", occupations,
                           directional_excess(women, data), k, cfg)
    return rows


def _cosine_rows(ctx: EvalContext, prompts: Sequence[str], scores: np.ndarray, is_woman: np.ndarray,
                 occupations: Sequence[str], shares: np.ndarray) -> list[dict]:
    """The continuous association (:mod:`biaslib.metrics.association`): per occupation the women-minus-men cosine
    gap (``cosine_gap``, faces-only interval) and the text-side gap (``text_cosine_gap``); overall their slopes on
    the data's p(woman | occupation) (``cosine_vs_data``: interval over occupations and faces; ``text_vs_data``:
    over occupations)."""
    cfg = ctx.cfg
    image = cosine_association(scores, is_woman, shares, n_boot=cfg.n_boot, ci=cfg.ci, seed=cfg.seed)
    occupation_text = ctx.text_features("association-occupations", prompts, prompts)
    gender_text = ctx.text_features("association-genders", list(GENDER_PROMPTS), list(GENDER_PROMPTS.values()))
    text = text_association(occupation_text @ gender_text[0], occupation_text @ gender_text[1], shares,
                            n_boot=cfg.n_boot, ci=cfg.ci, seed=cfg.seed)
    n = len(occupations)
    rows = [row("fairface", "gender", o, "group", "cosine_gap", v, low, high, len(is_woman))
            for o, v, low, high in zip(occupations, image.gaps, image.gap_low, image.gap_high)]
    rows += [row("fairface", "gender", o, "group", "text_cosine_gap", v, np.nan, np.nan, 1)
             for o, v in zip(occupations, text.gaps)]
    return rows + [row("fairface", "gender", "all", "overall", metric, part.value, part.ci_low,
                        part.ci_high, n) for metric, part in (("cosine_vs_data", image), ("text_vs_data", text))]



EVALUATION = register_evaluation(Evaluation(
    "association", "occupation queries over FairFace faces: MaxSkew, NDKL, share of women vs the data",
    ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "association_ks", "association_occupations", "association_shares"),
    file_settings=("association_shares",),
    measures=(Measure("association", "overall", r"max_skew@\d+_\w+", "max_skew", "lower"),
              Measure("association", "overall", r"ndkl@\d+_\w+", "ndkl", "lower")),
    rows_note="cosine_vs_data and text_vs_data: continuous association slopes (2026-12-06)"))
