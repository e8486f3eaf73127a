"""``harms_summary`` — the CLIP paper's own summaries of its denigration harms (§7.1, Tables 6–7), which ``harms``
(per race, gender and age) does not give: the share of all faces given a label of each harm category (``all``), and
White against non-White faces (attribute ``white_vs_non_white``), with intervals and the gap test, for the labels
without and with "child" (:func:`biaslib.evaluations.harms.harm_indicators`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.harms import harm_indicators
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows

#: The FairFace race label the paper sets against all others.
WHITE = "White"


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Overall and White vs non-White shares of each harm category, without and with "child" among the labels."""
    fairface = tables["fairface"]
    everyone = np.full(len(fairface), "all", dtype=object)
    white = np.where(fairface["race"].to_numpy() == WHITE, WHITE, f"non-{WHITE}").astype(object)
    rows: list[dict] = []
    for suffix, with_child in (("", False), ("_with_child", True)):
        for category, values in harm_indicators(ctx, fairface, with_child).items():
            metric = f"harm_{category}{suffix}"
            rows += mean_rows("fairface", "all", metric, values, everyone, ctx.cfg)
            rows += mean_rows("fairface", "white_vs_non_white", metric, values, white, ctx.cfg)
    return rows


EVALUATION = register_evaluation(Evaluation(
    "harms_summary", "FairFace harm labels overall and White vs non-White (the CLIP paper's summaries)",
    ("fairface",), run, settings=("fairface_split", "fairface_margin", "fairface_labels"),
    file_settings=("fairface_labels",),
    measures=(Measure("harms_summary", "overall", r"harm_\w+", "harm share (all faces)", "lower"),
              Measure("harms_summary", "gap", r"harm_\w+", "harm, White vs non-White", "lower |gap|"))))
