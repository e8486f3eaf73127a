"""Attributes of generated world images and their comparison with the real (training) data.

For the simulated generator the drawn attributes are recorded with every image (exact ground truth).
For a learned generator (the tiny diffusion pipeline, or any other) they are read from pixels by the
world's attribute classifier, whose own accuracy is known (:func:`~biaslib.world.classifier.world_classifier`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from biaslib.generate import load_generated_images, read_generated
from biaslib.world import World
from biaslib.world.classifier import HEADS, classify_images, world_classifier

ATTRIBUTES = tuple(HEADS)


def generated_attributes(out_dir: str | Path, world: World, cache_dir: str | Path) -> pd.DataFrame:
    """One row per generated image: ``key``, ``prompt`` and the attributes of :data:`ATTRIBUTES`.

    Column ``labels`` says where they come from: ``simulator`` (ground truth) or ``classifier``.
    """
    records = read_generated(out_dir)
    if "sim_gender" in records.columns:
        frame = records[["key", "prompt"]].copy()
        for column in ATTRIBUTES:
            frame[column] = records[f"sim_{column}"]
        frame["labels"] = "simulator"
        return frame
    images = load_generated_images(out_dir, list(records["key"]))
    native = min(min(im.size) for im in images.values()) if images else world.config.image_size
    through = native if native < world.config.image_size else None
    model, _ = world_classifier(world, cache_dir, through_resolution=through)
    keys = list(records["key"])
    labels = classify_images(model, [images[k] for k in keys], world.config.image_size)
    frame = pd.concat([records[["key", "prompt"]].reset_index(drop=True), labels[list(ATTRIBUTES)]], axis=1)
    frame["labels"] = "classifier"
    return frame


def share_table(frames: Mapping[str, pd.DataFrame], column: str = "gender", value: str = "woman",
                by: str = "occupation") -> pd.DataFrame:
    """Tidy shares of ``column == value`` per ``by`` group for several sources.

    Returns columns ``by``, ``source``, ``share``, ``n``.
    """
    parts = []
    for source, frame in frames.items():
        grouped = frame.groupby(by)[column]
        parts.append(pd.DataFrame({by: grouped.size().index, "source": source,
                                   "share": grouped.apply(lambda s: float((s == value).mean())).values,
                                   "n": grouped.size().values}))
    return pd.concat(parts, ignore_index=True)
