"""``geode_classification`` — GeoDE zero-shot object classification as CLIP_benchmark reports it: top-5 accuracy
(``accuracy_top5``) and mean per-class recall (``mean_per_class_recall``), overall and per region, with gaps
between regions (:mod:`biaslib.metrics.classification`; the classifier is ``geode``'s: the mean of the normalised
``eval.geode_templates`` prompts per object). ``geode`` reports top-1 accuracy; a region whose objects are rarer
in the data weighs its classes equally here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.geode import object_classifier
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows
from biaslib.metrics.classification import recall_weights, top_k_correct
from biaslib.metrics.zero_shot import zero_shot_predict


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Top-5 accuracy and mean per-class recall rows, overall and per region."""
    cfg = ctx.cfg
    geode = tables["geode"]
    image, weights, classes = object_classifier(ctx, geode)
    truth = pd.Index(classes).get_indexer(geode["object"])
    regions = geode["region"].to_numpy(dtype=object)
    everyone = np.full(len(geode), "all", dtype=object)
    top5 = top_k_correct(image @ weights.T, truth, 5)
    correct = (zero_shot_predict(image, weights) == truth).astype(np.float64)
    return (mean_rows("geode", "all", "accuracy_top5", top5, everyone, cfg)
            + mean_rows("geode", "region", "accuracy_top5", top5, regions, cfg)
            + mean_rows("geode", "all", "mean_per_class_recall", correct * recall_weights(truth), everyone, cfg)
            + mean_rows("geode", "region", "mean_per_class_recall", correct * recall_weights(truth, regions), regions,
                        cfg))


EVALUATION = register_evaluation(Evaluation(
    "geode_classification", "GeoDE zero-shot top-5 accuracy and mean per-class recall per region", ("geode",), run,
    settings=("geode_templates",),
    measures=(Measure("geode_classification", "overall", r"mean_per_class_recall", "mean per-class recall", "higher"),
              Measure("geode_classification", "gap", r"mean_per_class_recall", "mean per-class recall",
                      "lower |gap|"))))
