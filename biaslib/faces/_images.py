"""Image inputs and face chips shared by the detectors and classifiers.

Images are RGB ``uint8`` arrays of shape ``(H, W, 3)``; PIL images and ``(H, W)`` grey or
``(H, W, 4)`` arrays are converted. Boxes are float arrays ``(k, 4+)`` of ``x0, y0, x1, y1`` in
pixels (``x1``/``y1`` exclusive), further columns (a score) are ignored here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

ImageLike = Any  # PIL.Image.Image or numpy array; kept loose so PIL is not imported here

#: FairFace's chip settings (dchen236/FairFace predict.py, formats.md B3): 300 px, padding 0.25.
CHIP_SIZE = 300
CHIP_PADDING = 0.25


def as_rgb(image: ImageLike) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB array of a PIL image or array (grey is repeated, alpha dropped)."""
    if hasattr(image, "convert"):
        image = image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"images must be (H, W), (H, W, 3) or (H, W, 4), got shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :, :3])


def as_rgb_list(images: Sequence[ImageLike]) -> list[np.ndarray]:
    """:func:`as_rgb` of every image."""
    return [as_rgb(im) for im in images]


def as_boxes(boxes: np.ndarray | Sequence) -> np.ndarray:
    """Boxes as a float64 array ``(k, c)`` with ``c ≥ 4`` columns (an empty input gives ``(0, 4)``)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, max(arr.shape[-1] if arr.ndim == 2 else 4, 4)))
    arr = arr.reshape(-1, arr.shape[-1])
    if arr.shape[1] < 4:
        raise ValueError(f"boxes need at least 4 columns (x0, y0, x1, y1), got shape {arr.shape}")
    return arr


def square_boxes(boxes: np.ndarray, padding: float) -> np.ndarray:
    """Squares ``(k, 4)`` around the box centres with side ``max(w, h) · (1 + 2·padding)``."""
    boxes = np.asarray(boxes, dtype=np.float64)[:, :4]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True) * (0.5 + padding)
    return np.hstack([centre - half, centre + half])


def crop_resize(image: np.ndarray, box: Sequence[float], size: int) -> np.ndarray:
    """Crop ``box`` (``x0, y0, x1, y1``; parts outside the image are black) and resize to ``(size, size, 3)``."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    inside = image[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if inside.size == 0:
        return np.zeros((size, size, 3), np.uint8)
    padded = cv2.copyMakeBorder(inside, max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0),
                                cv2.BORDER_CONSTANT, value=(0, 0, 0))
    shrink = padded.shape[0] > size or padded.shape[1] > size
    return cv2.resize(padded, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def face_chips(image: ImageLike, boxes: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """Square face chips with a margin, ``(k, size, size, 3)`` uint8.

    FairFace's settings by default (300 px, padding 0.25 of the face size on each side). Unlike
    FairFace's dlib ``get_face_chips`` the chips are not rotated to level the eyes (no landmarks
    needed, so every detector can feed them).
    """
    squares = square_boxes(as_boxes(boxes), padding)
    image = as_rgb(image)
    chips = [crop_resize(image, box, size) for box in squares]
    return np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8)
