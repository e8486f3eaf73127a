"""GeoDE-like objects with region-dependent looks.

Every object class has three shape variants; each region has a typical variant, a body colour and a
ground colour. An object looks like its ``look_region`` (usually its own region), so a model that saw
mostly some regions' looks in training recognises those regions' objects better: the geographic
bias that GeoDE measures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from biaslib.world.distribution import REGIONS
from biaslib.world.render import Canvas, jitter, stylise

#: region → (shape variant 0…2, body colour, ground colour)
REGION_LOOKS: dict[str, tuple[int, tuple[int, int, int], tuple[int, int, int]]] = {
    "Africa": (2, (200, 120, 60), (190, 150, 90)),
    "Americas": (0, (200, 50, 50), (100, 150, 80)),
    "EastAsia": (1, (60, 60, 60), (150, 150, 150)),
    "Europe": (0, (60, 90, 170), (110, 160, 90)),
    "SouthEastAsia": (1, (40, 150, 110), (80, 140, 70)),
    "WestAsia": (2, (220, 200, 150), (210, 190, 140)),
}


def _house(c: Canvas, v: int, body, rng) -> None:
    c.rect(0.2, 0.45, 0.8, 0.85, body)
    c.rect(0.45, 0.62, 0.57, 0.85, (70, 45, 30))
    roof = jitter((120, 50, 40), rng, 20)
    if v == 0:
        c.polygon([(0.14, 0.46), (0.86, 0.46), (0.5, 0.18)], roof)
    elif v == 1:
        c.rect(0.16, 0.38, 0.84, 0.46, roof)
    else:
        c.chord(0.2, 0.22, 0.8, 0.7, 180, 360, roof)


def _car(c: Canvas, v: int, body, rng) -> None:
    c.rect(0.12, 0.52, 0.88, 0.72, body)
    if v == 0:
        c.polygon([(0.28, 0.52), (0.72, 0.52), (0.62, 0.38), (0.36, 0.38)], body)
    elif v == 1:
        c.rect(0.2, 0.32, 0.8, 0.52, body)
    else:
        c.rect(0.14, 0.38, 0.46, 0.52, body)
    for x in (0.28, 0.72):
        c.circle(x, 0.74, 0.08, (25, 25, 25))


def _chair(c: Canvas, v: int, body, rng) -> None:
    c.rect(0.3, 0.55, 0.7, 0.61, body)
    for x in (0.31, 0.65):
        c.rect(x, 0.61, x + 0.04, 0.86, body)
    if v == 0:
        c.rect(0.62, 0.2, 0.7, 0.58, body)
    elif v == 1:
        c.rect(0.62, 0.38, 0.7, 0.58, body)
        c.rect(0.3, 0.38, 0.7, 0.44, body)


def _bag(c: Canvas, v: int, body, rng) -> None:
    if v == 0:
        c.rect(0.28, 0.45, 0.72, 0.82, body)
        c.chord(0.36, 0.3, 0.64, 0.6, 180, 360, (40, 30, 20))
    elif v == 1:
        c.ellipse(0.3, 0.3, 0.7, 0.85, body)
        c.rect(0.36, 0.55, 0.64, 0.72, jitter(body, rng, 40))
    else:
        c.circle(0.5, 0.62, 0.22, body)
        c.rect(0.44, 0.3, 0.56, 0.42, body)


def _hat(c: Canvas, v: int, body, rng) -> None:
    if v == 0:
        c.ellipse(0.15, 0.6, 0.85, 0.72, body)
        c.rect(0.32, 0.38, 0.68, 0.66, body)
    elif v == 1:
        c.polygon([(0.12, 0.7), (0.88, 0.7), (0.5, 0.3)], body)
    else:
        c.chord(0.28, 0.4, 0.72, 0.86, 180, 360, body)
        c.rect(0.5, 0.6, 0.86, 0.64, body)


def _stove(c: Canvas, v: int, body, rng) -> None:
    if v == 2:
        c.ellipse(0.22, 0.4, 0.78, 0.88, body)
        c.circle(0.5, 0.55, 0.1, (40, 20, 10))
        return
    c.rect(0.2, 0.45, 0.8, 0.88, body)
    burners = (0.35, 0.65) if v == 0 else (0.3, 0.5, 0.7)
    for x in burners:
        c.ellipse(x - 0.07, 0.40, x + 0.07, 0.48, (30, 30, 30))


def _boat(c: Canvas, v: int, body, rng) -> None:
    c.rect(0.0, 0.72, 1.0, 1.0, (60, 100, 170))
    c.polygon([(0.12, 0.6), (0.88, 0.6), (0.75, 0.74), (0.25, 0.74)], body)
    if v == 0:
        c.rect(0.49, 0.2, 0.52, 0.6, (90, 60, 30))
        c.polygon([(0.53, 0.22), (0.53, 0.56), (0.8, 0.56)], (240, 240, 240))
    elif v == 1:
        c.rect(0.45, 0.46, 0.75, 0.6, jitter(body, rng, 50))


def _bicycle(c: Canvas, v: int, body, rng) -> None:
    for x in (0.28, 0.72):
        c.circle(x, 0.7, 0.14, (30, 30, 30))
        c.circle(x, 0.7, 0.11, (200, 200, 200))
    c.polygon([(0.28, 0.7), (0.5, 0.5), (0.72, 0.7), (0.48, 0.72)], body)
    if v == 1:
        c.rect(0.7, 0.42, 0.86, 0.52, (120, 90, 50))
    elif v == 2:
        c.rect(0.14, 0.46, 0.36, 0.56, body)


_DRAW = {"house": _house, "car": _car, "chair": _chair, "bag": _bag, "hat": _hat, "stove": _stove,
         "boat": _boat, "bicycle": _bicycle}


def render_object(row: Mapping, size: int = 64) -> Image.Image:
    """Render one object row of :func:`~biaslib.world.distribution.sample_objects` as an RGB image."""
    rng = np.random.default_rng([int(row["render_seed"]), 17])
    variant, body, ground = REGION_LOOKS[row["look_region"]]
    if row["region"] not in REGIONS:
        raise ValueError(f"unknown region {row['region']!r}")
    c = Canvas(size, (0.0, 0.0, 1.0, 1.0), jitter((165, 200, 235), rng, 12))
    c.rect(0.0, 0.7, 1.0, 1.0, jitter(ground, rng, 12))
    _DRAW[row["object"]](c, variant, jitter(body, rng, 18), rng)
    small = c.image.resize((size, size), Image.Resampling.BOX)
    return Image.fromarray(stylise(np.asarray(small), "photo", rng))


