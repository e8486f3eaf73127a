"""Detect, classify and measure the faces of many images: one row per image.

Images go through the detector and the classifier ``batch_size`` at a time. Only images with
exactly one face are classified (MAGBIG's rule); every image keeps its face count, so images with
no or several faces are counted, not dropped and not fatal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from biaslib.faces._images import ImageLike
from biaslib.faces.classify import FaceClassifier
from biaslib.faces.counts import image_outcomes
from biaslib.faces.detect import FaceDetector, create_detector
from biaslib.faces.skin import skin_tone

BOX_COLUMNS = ("x0", "y0", "x1", "y1", "score")


def _shifted(frames: list[pd.DataFrame], offsets: list[int]) -> pd.DataFrame:
    """Per-chunk face tables concatenated, their ``image`` positions shifted to the whole list; no ``face``."""
    frame = pd.concat(frames, ignore_index=True).drop(columns="face")
    frame["image"] += np.repeat(offsets, [len(f) for f in frames]).astype(np.int64)
    return frame


def analyse_images(images: Sequence[ImageLike], detector: FaceDetector | str = "mtcnn",
                   classifier: FaceClassifier | None = None, *, batch_size: int = 32,
                   skin: bool = False, progress: bool = False) -> pd.DataFrame:
    """One row per image: ``image`` (position), ``n_faces``, the best face's box (``x0 … score``, NaN
    without a face), the classifier's columns and, with ``skin``, ``ita``, ``monk`` and ``chardon`` — those only
    for images with exactly one face. With a gender-reading classifier an ``outcome`` column
    (:func:`biaslib.faces.counts.image_outcomes`) is added. ``progress``: a progress bar of images (stderr).
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    det = create_detector(detector) if isinstance(detector, str) else detector
    boxes: list[np.ndarray] = []
    predicted, skins, offsets = [], [], []
    bar = tqdm(total=len(images), desc="faces", unit="image", disable=not progress)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        found = det.detect(chunk)
        single = [b[:1] if len(b) == 1 else b[:0] for b in found]
        boxes += found
        offsets.append(start)
        if classifier is not None:
            predicted.append(classifier.predict(chunk, single))
        if skin:
            skins.append(skin_tone(chunk, single))
        bar.update(len(chunk))
    bar.close()
    top = np.array([b[0, :5] if len(b) else np.full(5, np.nan) for b in boxes], dtype=np.float64).reshape(-1, 5)
    n_faces = np.array([len(b) for b in boxes], dtype=np.int64)
    frame = pd.DataFrame({"image": np.arange(len(boxes), dtype=np.int64), "n_faces": n_faces,
                          **dict(zip(BOX_COLUMNS, top.T))})
    for parts in (predicted, skins):
        if parts:
            frame = frame.merge(_shifted(parts, offsets), on="image", how="left")
    for attr in classifier.labels if classifier is not None else ():  # no image at all: empty columns
        for column in (attr, f"{attr}_p"):
            if column not in frame.columns:
                frame[column] = pd.Series(dtype=object if column == attr else np.float64)
    if classifier is not None and "gender" in classifier.labels:
        frame["outcome"] = image_outcomes(frame["n_faces"], frame["gender"].tolist())
    return frame
