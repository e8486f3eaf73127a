"""Skin tone from face pixels: individual typology angle (ITA) in Monk-style bins and Chardon's categories.

``ITA = atan((L* − 50) / b*)`` in degrees, from CIELAB (D65) values of skin pixels; lighter skin
has a larger angle. Skin pixels of a face: the central part of its box (``inner`` = 0.3 of the
width and height: nose and cheeks, which leaves out hair, background and most of the eyes; on the
world's face renders 0.5 still takes in the fringe), then the pixels between the
``trim`` percentiles of L* (drops shadows, eyebrows, highlights); the face's ITA is computed from
the medians of L* and b* over those pixels. Everything runs on stacks of equal-size patches.

Bins: the ten Monk Skin Tone swatches (Monk 2019, the sRGB values Google publishes) have ITAs
that fall monotonically from 83° (MST 1) to −84° (MST 10); a face gets the Monk tone whose swatch
ITA is nearest (bin edges at the midpoints). This is an ITA binning *anchored* on the Monk
swatches, not an annotation on the Monk scale, which is judged by people on whole images. The Monk swatches
are all light in ITA terms at the top: MST 1–4 all lie above 57.5°, so these bins split light skin finely and
dark skin coarsely.

Chardon et al. (1991) categories, the standard ITA classes in dermatology: very light (> 55°), light (41–55°),
intermediate (28–41°), tan (10–28°), brown (−30–10°), dark (< −30°); a value on an edge goes to the darker
class. Figures and tables say which of the two binnings they use (column ``monk`` or ``chardon``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from skimage.color import rgb2lab

from biaslib.faces._images import ImageLike, as_boxes, as_rgb, crop_resize

#: sRGB hex of Monk Skin Tone swatches MST 1 (lightest) … MST 10 (darkest).
MONK_HEX: tuple[str, ...] = (
    "f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420",
)


def ita_from_lab(lab: np.ndarray) -> np.ndarray:
    """ITA in degrees of CIELAB values ``(..., 3)`` → ``(...)``, in [−90, 90] (b* ≤ 0 clipped to the ends)."""
    lab = np.asarray(lab, dtype=np.float64)
    return np.clip(np.degrees(np.arctan2(lab[..., 0] - 50.0, lab[..., 2])), -90.0, 90.0)


def _hex_rgb(code: str) -> tuple[int, int, int]:
    return tuple(int(code[i:i + 2], 16) for i in (0, 2, 4))


#: ITA (degrees) of each Monk swatch, MST 1 … MST 10 (decreasing).
MONK_ITA: np.ndarray = ita_from_lab(rgb2lab(np.array([[_hex_rgb(h) for h in MONK_HEX]], np.uint8))[0])
#: Bin edges: midpoints between consecutive swatch ITAs (decreasing, 9 values).
MONK_EDGES: np.ndarray = (MONK_ITA[:-1] + MONK_ITA[1:]) / 2


def monk_bin(ita: np.ndarray) -> np.ndarray:
    """Monk tone 1…10 of each ITA (degrees); 0 where the ITA is NaN."""
    ita = np.asarray(ita, dtype=np.float64)
    tone = 1 + np.searchsorted(-MONK_EDGES, -ita, side="right")
    return np.where(np.isnan(ita), 0, tone).astype(np.int64)


#: Chardon et al. (1991) ITA categories, lightest first, and their lower edges in degrees.
CHARDON_CATEGORIES: tuple[str, ...] = ("very light", "light", "intermediate", "tan", "brown", "dark")
CHARDON_EDGES: np.ndarray = np.array([55.0, 41.0, 28.0, 10.0, -30.0])


def chardon_category(ita: np.ndarray) -> np.ndarray:
    """Chardon category of each ITA (degrees), an object array; None where the ITA is NaN."""
    ita = np.asarray(ita, dtype=np.float64)
    index = np.searchsorted(-CHARDON_EDGES, -ita, side="right")  # ITA > 55 → 0, 41 < ITA ≤ 55 → 1, …
    names = np.asarray(CHARDON_CATEGORIES, dtype=object)[np.minimum(index, len(CHARDON_CATEGORIES) - 1)]
    return np.where(np.isnan(ita), None, names)


def skin_patches(image: ImageLike, boxes: np.ndarray, size: int = 32, inner: float = 0.3) -> np.ndarray:
    """Central ``inner`` part of each face box, resized to ``(k, size, size, 3)`` uint8."""
    image = as_rgb(image)
    boxes = as_boxes(boxes)
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, :2]) * inner / 2
    regions = np.hstack([centre - half, centre + half])
    patches = [crop_resize(image, r, size) for r in regions]
    return np.stack(patches) if patches else np.zeros((0, size, size, 3), np.uint8)


def patch_ita(patches: np.ndarray, trim: tuple[float, float] = (10.0, 90.0)) -> np.ndarray:
    """ITA (degrees) of each skin patch ``(k, H, W, 3)`` uint8 → ``(k,)``.

    Pixels outside the ``trim`` percentiles of the patch's L* are ignored; ITA of the median L*
    and median b* of the rest.
    """
    patches = np.asarray(patches)
    if len(patches) == 0:
        return np.zeros(0)
    lab = rgb2lab(patches).reshape(len(patches), -1, 3)
    low, high = np.percentile(lab[..., 0], trim, axis=1)
    keep = (lab[..., 0] >= low[:, None]) & (lab[..., 0] <= high[:, None])
    medians = np.stack([np.nanmedian(np.where(keep, lab[..., c], np.nan), axis=1) for c in range(3)], axis=1)
    return ita_from_lab(medians)


def skin_tone(images: Sequence[ImageLike], boxes: Sequence[np.ndarray], *, size: int = 32, inner: float = 0.3,
              trim: tuple[float, float] = (10.0, 90.0)) -> pd.DataFrame:
    """ITA, Monk tone and Chardon category of every face: one row per box with ``image``, ``face``, ``ita``
    (degrees), ``monk`` (1–10) and ``chardon`` (:data:`CHARDON_CATEGORIES`)."""
    if len(images) != len(boxes):
        raise ValueError(f"got {len(images)} images but {len(boxes)} box arrays")
    patches, image_index, face_index = [], [], []
    for i, (image, b) in enumerate(zip(images, boxes)):
        p = skin_patches(image, b, size, inner)
        patches.append(p)
        image_index += [i] * len(p)
        face_index += list(range(len(p)))
    ita = patch_ita(np.concatenate(patches) if patches else np.zeros((0, size, size, 3), np.uint8), trim)
    return pd.DataFrame({"image": np.array(image_index, np.int64), "face": np.array(face_index, np.int64),
                         "ita": ita, "monk": monk_bin(ita), "chardon": chardon_category(ita)})
