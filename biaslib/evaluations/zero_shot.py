"""``zero_shot`` — FairFace classified zero-shot by gender, race (7 classes and FairFace's 4, "race4") and age (CLIP
paper §7.1, Tables 3–5): per task the accuracy overall and per race, gender, age and race × gender, with gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import fairface_faces, fairface_groupings, fairface_labels, label_prompts
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import overall_and_groups
from biaslib.metrics.zero_shot import zero_shot_predict


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """FairFace classified zero-shot by gender, race (7 classes and the 4 of FairFace's "race4") and age: per
    task the accuracy overall, per race, gender, age and race × gender, with gaps (worst group = the gap's
    ``low``)."""
    fairface = tables["fairface"]
    labels = fairface_labels(ctx.cfg)
    image = fairface_faces(ctx, fairface)
    groupings = fairface_groupings(fairface, ("race_gender",))
    rows: list[dict] = []
    for task, column in (("gender", "gender"), ("race", "race"), ("race4", "race"), ("age", "age")):
        classes = labels[task]  # dataset label → class text (race4: several labels share one class)
        names = list(dict.fromkeys(classes.values()))
        text = ctx.text_features(f"zero-shot-{task}", names, label_prompts(labels, names))
        truth = fairface[column].map({k: names.index(v) for k, v in classes.items()})
        keep = truth.notna().to_numpy()
        correct = (zero_shot_predict(image[keep], text) == truth[keep].to_numpy(dtype=np.int64)).astype(np.float64)
        rows += overall_and_groups("fairface", f"accuracy_{task}", correct,
                                   pd.DataFrame({k: v[keep] for k, v in groupings.items()}), ctx.cfg)
    return rows



EVALUATION = register_evaluation(Evaluation(
    "zero_shot", "FairFace zero-shot gender, race and age accuracy per group", ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "fairface_labels"), file_settings=("fairface_labels",),
    measures=(Measure("zero_shot", "overall", r"accuracy_\w+", "accuracy", "higher"),
              Measure("zero_shot", "gap", r"accuracy_\w+", "accuracy", "lower |gap|")),
    rows_note="prompts' articles agree with the word after them (an East Asian man), 2026-12-06"))
