"""``retrieval_i2t`` — image→text retrieval on PHASE and COCO-bias: each image queries every caption of its dataset
and is a hit at k when one of its own captions ranks in the top k (:mod:`biaslib.metrics.image_to_text`; COCO-bias
has 5 captions per image, PHASE one). R@k overall and per group of the image (``retrieval``'s groups), with
intervals over images and gap tests. ``retrieval`` is the text→image direction; CLIP_benchmark reports both."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.retrieval import retrieval_sets
from biaslib.evaluations.rows import overall_and_groups
from biaslib.metrics.image_to_text import image_to_text_hits


def _dataset_rows(ctx: EvalContext, dataset: str, store: str, images: pd.DataFrame, texts: pd.DataFrame,
                  caption_image: np.ndarray, groups: pd.DataFrame) -> list[dict]:
    """R@k rows of one dataset: ``images`` (image_id, file), ``texts`` (text_id, caption), caption t's image row
    ``caption_image[t]``, image i's group labels ``groups.iloc[i]`` (the features ``retrieval`` stores)."""
    image = ctx.image_features(f"{store}-images", images["image_id"], images["file"])
    text = ctx.text_features(f"{store}-captions", texts["text_id"], texts["caption"])
    hits = image_to_text_hits(image, text, caption_image, ks=ctx.cfg.ks, chunk_size=ctx.cfg.chunk_size)
    return [row for metric in hits.columns
            for row in overall_and_groups(dataset, metric, hits[metric].to_numpy(), groups, ctx.cfg)]


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """PHASE (image i ↔ caption i) and COCO-bias (each image ↔ its captions) image→text rows."""
    return [row for part in retrieval_sets(tables, ctx.cfg)
            for row in _dataset_rows(ctx, part.dataset, part.store, part.images, part.texts, part.caption_image,
                                     part.image_groups)]


EVALUATION = register_evaluation(Evaluation(
    "retrieval_i2t", "PHASE and COCO-bias image→text R@k per group", ("phase", "coco_bias"), run,
    settings=("phase_split", "coco_bias_split", "ks"),
    measures=(Measure("retrieval_i2t", "overall", r"R@1", "R@1 (image→text)", "higher"),
              Measure("retrieval_i2t", "gap", r"R@1", "R@1 (image→text)", "lower |gap|"))))
