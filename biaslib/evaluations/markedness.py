"""``markedness`` — FairFace: exact self-similarity (``self_similarity``, mean cosine between distinct members;
``self_similarity_wr``, the original's with-replacement estimand ‖ū‖²) and person preference
(``person_preference_<axis>``: share of a group's images closer to "a photo of a person" than to every prompt of
the axis race, gender or age, formats.md A9 prompts), for the groups ``race``, ``gender``, ``age`` and each
``eval.intersections`` entry (``race_gender`` → labels such as ``"Black Female"``). Self-similarity's gaps come
from normal draws with each group's standard error (half its interval width / z)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.articles import with_article
from biaslib.config import EvalConfig
from biaslib.data.fairface import AGE_LABELS, GENDER_LABELS, RACE_LABELS
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.fairface import MARKEDNESS_AXES, fairface_faces, fairface_groupings
from biaslib.evaluations.registry import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows, normal_rows
from biaslib.metrics import person_preference, self_similarity

UNMARKED_PROMPT = "a photo of a person"
UNMARKED = "person"


def markedness_prompts() -> dict[str, dict[str, str]]:
    """Group-marked prompts per axis, keyed by FairFace label (formats.md A9); the unmarked prompt is
    :data:`UNMARKED_PROMPT`."""
    race = {"East Asian": "East Asian", "Indian": "Indian", "Black": "Black", "White": "White",
            "Middle Eastern": "Middle Eastern", "Latino_Hispanic": "Latino or Hispanic",
            "Southeast Asian": "Southeast Asian"}
    age = {label: f"a photo of a person between {label.replace('-', ' and ')} years old"
           for label in AGE_LABELS if "-" in label}
    age["more than 70"] = "a photo of a person 70 or more years old"
    return {
        "race": {label: f"a photo of {with_article(race[label])} person" for label in RACE_LABELS},
        "gender": {label: f"a photo of a {label.lower()} person" for label in GENDER_LABELS},
        "age": {label: age[label] for label in AGE_LABELS},
    }


def run(ctx: EvalContext, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Self-similarity and person-preference rows per FairFace grouping."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = fairface_faces(ctx, fairface)
    prompts = markedness_prompts()
    texts = [UNMARKED_PROMPT, *(p for axis in prompts.values() for p in axis.values())]
    text = ctx.text_features("markedness-prompts", texts, texts)
    row_of = {t: i for i, t in enumerate(texts)}
    axes = {axis: ([UNMARKED, *labels], text[[row_of[UNMARKED_PROMPT], *(row_of[p] for p in labels.values())]])
            for axis, labels in prompts.items()}
    # Per-image 0/1 "unmarked wins" (each image its own group), for the bootstrap of gaps.
    unmarked = {axis: person_preference(image, emb, names, np.arange(len(image)))["value"].to_numpy()
                for axis, (names, emb) in axes.items()}
    rows: list[dict] = []
    method = cfg.self_similarity_ci
    for attribute, labels in fairface_groupings(fairface, cfg.intersections).items():
        for metric, with_replacement in (("self_similarity", False), ("self_similarity_wr", True)):
            frame = self_similarity(image, labels, n_boot=cfg.n_boot, seed=cfg.seed, ci_method=method, ci=cfg.ci,
                                    with_replacement=with_replacement)
            rows += normal_rows("fairface", attribute, metric, frame, cfg)
        for axis, (names, emb) in axes.items():
            frame = person_preference(image, emb, names, labels, unmarked=UNMARKED, n_boot=cfg.n_boot,
                                      seed=cfg.seed, ci=cfg.ci)
            rows += mean_rows("fairface", attribute, f"person_preference_{axis}", unmarked[axis], labels, cfg, frame)
    return rows



def check(cfg: EvalConfig) -> None:
    """``eval.intersections``: each joins two or more distinct FairFace attributes with ``_``."""
    for name in cfg.intersections:
        parts = name.split("_")
        if len(parts) < 2 or len(set(parts)) != len(parts) or not set(parts) <= set(MARKEDNESS_AXES):
            raise ValueError(f"eval.intersections: {name!r} must join two or more distinct attributes of "
                             f"{', '.join(MARKEDNESS_AXES)} with '_' (e.g. race_gender)")


EVALUATION = register_evaluation(Evaluation(
    "markedness", "FairFace self-similarity and person preference per group", ("fairface",), run,
    settings=("fairface_split", "fairface_margin", "intersections", "self_similarity_ci"),
    measures=(Measure("markedness", "gap", r"self_similarity", "self_similarity", "lower |gap|"),), check=check))
