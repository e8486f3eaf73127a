"""``retrieval`` — PHASE and COCO-bias text→image retrieval over each dataset's whole gallery: hit@k per caption
(:func:`biaslib.metrics.retrieval_hits`), then R@k overall and per group with intervals over captions. PHASE groups
are the loader's ``age``, ``gender``, ``skintone``, ``ethnicity`` (image-level, all persons agree); COCO-bias groups
are ``bb_gender`` (largest person; Male/Female), ``bb_skin`` (largest person; Light/Dark) and ``skin`` (every
annotated person Light, or every one Dark: the study's definition); COCO-bias's 5 captions per image make every
interval and test resample whole images."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from biaslib.config import EvalConfig
from biaslib.data import coco_caption_table
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import overall_and_groups
from biaslib.metrics import retrieval_hits

PHASE_ATTRIBUTES = ("age", "gender", "skintone", "ethnicity")
COCO_GENDERS = ("Male", "Female")
COCO_SKINS = ("Light", "Dark")


def _dataset_rows(ctx: EvalContext, dataset: str, store: str, images: pd.DataFrame, texts: pd.DataFrame,
                  target: np.ndarray, groups: pd.DataFrame) -> list[dict]:
    """R@k rows of one dataset: ``images`` (image_id, file), ``texts`` (text_id, caption), caption i's
    image row ``target[i]``, caption i's group labels ``groups.iloc[i]``."""
    image = ctx.image_features(f"{store}-images", images["image_id"], images["file"])
    text = ctx.text_features(f"{store}-captions", texts["text_id"], texts["caption"])
    device = None if ctx.cfg.device == "auto" else ctx.cfg.device
    hits = retrieval_hits(text, image, target, ks=ctx.cfg.ks, chunk_size=ctx.cfg.chunk_size, device=device)
    clusters = np.asarray(target) if len(np.unique(target)) < len(target) else None  # several captions per image
    rows = []
    for metric in hits.columns:
        rows += overall_and_groups(dataset, metric, hits[metric].to_numpy(dtype=np.float64), groups, ctx.cfg,
                                    clusters)
    return rows


def coco_groups(coco: pd.DataFrame) -> pd.DataFrame:
    """COCO-bias group labels per image: ``bb_gender`` (Male/Female), ``bb_skin`` (Light/Dark) and
    ``skin`` (Light or Dark when every listed person has it); other values are missing."""
    def agreed(skins: list[str]) -> str | None:
        return skins[0] if skins and len(set(skins)) == 1 and skins[0] in COCO_SKINS else None

    return pd.DataFrame({
        "bb_gender": coco["bb_gender"].where(coco["bb_gender"].isin(COCO_GENDERS)),
        "bb_skin": coco["bb_skin"].where(coco["bb_skin"].isin(COCO_SKINS)),
        "skin": [agreed(list(s)) for s in coco["skin"]],
    })


class RetrievalSet(NamedTuple):
    """One retrieval dataset as both directions read it: ``images`` (image_id, file), ``texts`` (text_id, caption),
    ``caption_image`` (T,) the image row of each caption, ``image_groups`` the group labels of each image, and the
    feature-store prefix ``store``."""

    dataset: str
    store: str
    images: pd.DataFrame
    texts: pd.DataFrame
    caption_image: np.ndarray
    image_groups: pd.DataFrame


def retrieval_sets(tables: dict[str, pd.DataFrame], cfg: EvalConfig) -> list[RetrievalSet]:
    """PHASE (caption i ↔ image i; the loader's groups) and COCO-bias (5 captions per image; :func:`coco_groups`)."""
    phase, coco = tables["phase"], tables["coco_bias"]
    captions = coco_caption_table(coco)
    return [RetrievalSet("phase", f"phase-{cfg.phase_split}", phase,
                         pd.DataFrame({"text_id": phase["image_id"], "caption": phase["caption"]}),
                         np.arange(len(phase)), phase[list(PHASE_ATTRIBUTES)].reset_index(drop=True)),
            RetrievalSet("coco_bias", f"coco_bias-{cfg.coco_bias_split}", coco, captions,
                         pd.Series(np.arange(len(coco)), index=coco["image_id"]).loc[captions["image_id"]].to_numpy(),
                         coco_groups(coco).reset_index(drop=True))]


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """PHASE and COCO-bias text→image rows: each caption's group labels are its image's."""
    return [row for part in retrieval_sets(tables, ctx.cfg)
            for row in _dataset_rows(ctx, part.dataset, part.store, part.images, part.texts, part.caption_image,
                                     part.image_groups.iloc[part.caption_image].reset_index(drop=True))]


def check(cfg: EvalConfig) -> None:
    """``eval.ks``: positive cut-offs."""
    if not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"eval.ks: need positive cut-offs, got {list(cfg.ks)}")


EVALUATION = register_evaluation(Evaluation(
    "retrieval", "PHASE and COCO-bias text→image R@k per group", ("phase", "coco_bias"), run,
    settings=("phase_split", "coco_bias_split", "ks"),
    measures=(Measure("retrieval", "overall", r"R@1", "R@1", "higher"),
              Measure("retrieval", "gap", r"R@1", "R@1", "lower |gap|")),
    rows_note="ranks decided in float64 where float32 rounding could decide them (2026-12-06)", check=check))
