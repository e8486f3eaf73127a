"""FairFace helpers shared by the evaluations that read it (markedness, association, concepts, zero-shot, harms):
its groupings, its faces' embeddings, the label sets of the CLIP paper and the skew rows of ranked queries."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.articles import fill
from biaslib.config import EvalConfig
from biaslib.errors import DataLayoutError
from biaslib.evaluations.context import EvalContext
from biaslib.evaluations.rows import query_rows
from biaslib.metrics.skew import max_skew, ndkl

#: The FairFace attributes every grouping and skew is computed for.
MARKEDNESS_AXES = ("race", "gender", "age")


def fairface_groupings(fairface: pd.DataFrame, intersections: Sequence[str]) -> dict[str, np.ndarray]:
    """Group label per image for ``race``, ``gender``, ``age`` and each intersection name
    (``race_gender`` → ``"Black Female"``: the attributes' labels joined by a space)."""
    groupings = {axis: fairface[axis].to_numpy(dtype=object) for axis in MARKEDNESS_AXES}
    for name in intersections:
        labels = functools.reduce(lambda a, b: a + " " + b, (fairface[part].astype(str) for part in name.split("_")))
        groupings[name] = labels.to_numpy(dtype=object)
    return groupings


def fairface_faces(ctx: EvalContext, fairface: pd.DataFrame) -> np.ndarray:
    """Unit embeddings of the FairFace faces, one store entry per split and margin (markedness and association
    share it)."""
    cfg = ctx.cfg
    return ctx.image_features(f"fairface-{cfg.fairface_split}-m{cfg.fairface_margin}-images", fairface["image_id"],
                              fairface["file"])


def fairface_labels(cfg: EvalConfig) -> dict[str, Any]:
    """The label sets of the ``zero_shot`` and ``harms`` evaluations: ``eval.fairface_labels`` or the package's
    ``prompt_data/fairface_labels.json`` (the CLIP paper's sets); an error names a missing file or key."""
    from importlib import resources

    keys = ("template", "race", "race4", "gender", "age", "race_gender", "race_gender_race", "harms", "child")
    if cfg.fairface_labels is None:
        text, name = (resources.files("biaslib") / "prompt_data" / "fairface_labels.json").read_text("utf-8"), "default"
    else:
        if not Path(cfg.fairface_labels).is_file():
            raise DataLayoutError(f"eval.fairface_labels: {cfg.fairface_labels} not found (expected a JSON file with "
                                  f"the keys of biaslib/prompt_data/fairface_labels.json: {', '.join(keys)})")
        text, name = Path(cfg.fairface_labels).read_text(encoding="utf-8"), str(cfg.fairface_labels)
    labels = json.loads(text)
    missing = [k for k in keys if k not in labels]
    if missing:
        raise DataLayoutError(f"fairface labels {name}: missing key(s) {', '.join(missing)}")
    return labels


def label_prompts(labels: dict[str, Any], names: Sequence[str]) -> list[str]:
    """``labels["template"]`` filled with each name (its article agreeing with the word after it)."""
    return [fill(labels["template"], name) for name in names]


def skew_rows(scores: np.ndarray, fairface: pd.DataFrame, queries: Sequence[str], k: int, prefix: str,
               cfg: EvalConfig) -> list[dict]:
    """MaxSkew@k and NDKL@k of ``scores`` (queries, faces) for gender, race and age against the uniform and the
    dataset distribution (metrics ``<prefix>max_skew@<k>_<desired>``, ``<prefix>ndkl@<k>_<desired>``): a row per
    query and their mean over queries (:func:`~biaslib.evaluations.rows.query_rows`)."""
    rows: list[dict] = []
    for attribute in MARKEDNESS_AXES:
        labels = fairface[attribute].to_numpy(dtype=object)
        for desired in ("uniform", "dataset"):
            rows += query_rows("fairface", attribute, f"{prefix}max_skew@{k}_{desired}", queries,
                               max_skew(scores, labels, k, desired), k, cfg)
            rows += query_rows("fairface", attribute, f"{prefix}ndkl@{k}_{desired}", queries,
                               ndkl(scores, labels, k, desired), k, cfg)
    return rows


