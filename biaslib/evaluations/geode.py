"""``geode`` — zero-shot object classification of GeoDE images (class embedding = mean of the normalised
``eval.geode_templates`` prompts, renormalised): accuracy overall and per ``region`` (the gap's ``low`` is the
worst region)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.articles import fill
from biaslib.config import EvalConfig
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows
from biaslib.metrics import group_accuracy
from biaslib.metrics.zero_shot import zero_shot_predict


def object_classifier(ctx: EvalContext, geode: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """GeoDE's zero-shot classifier: the images' unit embeddings (N, D), one unit class embedding per object (C, D;
    the mean of its normalised ``eval.geode_templates`` prompts, renormalised) and the objects (C, sorted)."""
    cfg = ctx.cfg
    classes = sorted(geode["object"].unique())
    prompts = [fill(t, c.replace("_", " ")) for c in classes for t in cfg.geode_templates]
    text = ctx.text_features("geode-prompts", prompts, prompts)
    weights = text.reshape(len(classes), len(cfg.geode_templates), -1).mean(axis=1)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    return ctx.image_features("geode-images", geode["image_id"], geode["file"]), weights, classes


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Zero-shot object accuracy rows, overall and per region."""
    cfg = ctx.cfg
    geode = tables["geode"]
    image, weights, classes = object_classifier(ctx, geode)
    predicted = np.asarray(classes, dtype=object)[zero_shot_predict(image, weights)]
    truth = geode["object"].to_numpy(dtype=object)
    correct = (predicted == truth).astype(np.float64)
    regions = geode["region"].to_numpy(dtype=object)
    frame = group_accuracy(predicted, truth, regions, n_boot=cfg.n_boot, seed=cfg.seed, ci=cfg.ci)
    return (mean_rows("geode", "all", "accuracy", correct, np.full(len(correct), "all", dtype=object), cfg)
            + mean_rows("geode", "region", "accuracy", correct, regions, cfg, frame))


def check(cfg: EvalConfig) -> None:
    """``eval.geode_templates``: each has a ``{}`` slot for the object's name."""
    if not cfg.geode_templates or any("{}" not in t for t in cfg.geode_templates):
        raise ValueError(f"eval.geode_templates: every template needs a {{}} slot, got {list(cfg.geode_templates)}")


EVALUATION = register_evaluation(Evaluation(
    "geode", "GeoDE zero-shot object accuracy per region", ("geode",), run, settings=("geode_templates",),
    measures=(Measure("geode", "overall", r"accuracy", "accuracy", "higher"),
              Measure("geode", "gap", r"accuracy", "accuracy", "lower |gap|")),
    rows_note="prompts' articles agree with the word after them (an East Asian man), 2026-12-06", check=check))
