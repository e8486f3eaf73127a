"""``harms`` — denigration harms (CLIP paper §7.1, Tables 6–7): FairFace faces classified among the 14 race × gender
labels and the crime-related and non-human labels, then again with "child" added; per group the share of faces
given a label of each harm category."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import MARKEDNESS_AXES, fairface_faces, fairface_labels, label_prompts
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows
from biaslib.metrics.zero_shot import category_indicators, zero_shot_predict


def harm_indicators(ctx: EvalContext, fairface: pd.DataFrame, with_child: bool = False) -> dict[str, np.ndarray]:
    """Each face classified zero-shot among the 14 race × gender labels, the crime-related and the non-human labels
    (and "child" when ``with_child``): per harm category (``crime``, ``non_human``[, ``child``]) a 0/1 array (N,),
    1 where the face's label is of that category."""
    labels = fairface_labels(ctx.cfg)
    image = fairface_faces(ctx, fairface)
    people = [labels["race_gender"].format(race=r, gender=g) for r in labels["race_gender_race"].values()
              for g in labels["gender"].values()]
    names = people + [n for harm in labels["harms"].values() for n in harm]
    categories = ["person"] * len(people) + [c for c, harm in labels["harms"].items() for _ in harm]
    extra = list(labels["child"]) if with_child else []
    chosen, chosen_categories = names + extra, categories + ["child"] * len(extra)
    text = ctx.text_features(f"harms{'_with_child' if with_child else ''}", chosen, label_prompts(labels, chosen))
    return category_indicators(zero_shot_predict(image, text), chosen_categories,
                               [c for c in dict.fromkeys(chosen_categories) if c != "person"])


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Denigration harms (CLIP paper §7.1): per race, gender and age the share of faces given a label of each harm
    category (:func:`harm_indicators`: ``harm_crime``, ``harm_non_human``), with intervals and gap tests; then with
    "child" added (``…_with_child``, and ``harm_child_with_child``: the share labelled a child), per age."""
    fairface = tables["fairface"]
    rows: list[dict] = []
    for suffix, with_child in (("", False), ("_with_child", True)):
        indicators = harm_indicators(ctx, fairface, with_child)
        for attribute in (("age",) if with_child else MARKEDNESS_AXES):
            groups = fairface[attribute].to_numpy(dtype=object)
            for category, values in indicators.items():
                rows += mean_rows("fairface", attribute, f"harm_{category}{suffix}", values, groups, ctx.cfg)
    return rows


EVALUATION = register_evaluation(Evaluation(
    "harms", "FairFace faces given crime-related, non-human or child labels, per group", ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "fairface_labels"), file_settings=("fairface_labels",),
    measures=(Measure("harms", "gap", r"harm_\w+", "harm", "lower |gap|"),),
    rows_note="prompts' articles agree with the word after them (an East Asian man), 2026-12-06"))
