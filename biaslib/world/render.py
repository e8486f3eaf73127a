"""Procedural renderer of the world's people.

A person is drawn with large-area cues that small networks (and a tiny generator) can learn at
64×64: silhouette and torso shape (gender), figure height, torso width and hair colour (age look),
face and hand colour (skin tone), hair colour and texture (race-correlated), clothing cut, headwear,
a held prop and outfit colour (occupation), background (place), and a global style filter.

Drawing happens on a canvas twice the output size (PIL primitives) that is box-downsampled, so edges
are anti-aliased; the output is a pure function of the person's row, so the same row gives
byte-identical pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from biaslib.world.attributes import HAIR_RGB, PALETTE, SKIN_RGB, occupation_spec

_SUPERSAMPLE = 2
_BACKGROUND_RGB = {
    "office": (200, 206, 216), "workshop": (96, 90, 84), "outdoors": (140, 192, 235),
    "shop": (228, 200, 160), "home": (226, 214, 188),
}
_AGE_HEIGHT = {"0-2": 0.50, "3-9": 0.66, "child": 0.66, "young": 0.80, "adult": 0.80, "senior": 0.76}
_AGE_WIDTH = {"child": 0.95, "young": 0.86, "adult": 1.16, "senior": 1.10}


@dataclass(frozen=True)
class Figure:
    """Geometry of a drawn person in unit coordinates (0…1, y down)."""

    cx: float
    head_x: float
    head_y: float
    head_r: float
    top: float
    shoulder_y: float
    hip_y: float
    feet_y: float
    shoulder_hw: float
    hip_hw: float
    arm_w: float

    def box(self) -> tuple[float, float, float, float]:
        """Bounding box (x1, y1, x2, y2) of the person incl. arms and a held prop."""
        half = max(self.shoulder_hw, self.hip_hw) + self.arm_w
        return (self.cx - half - 0.02, self.top - 0.05, self.cx + half + 0.14, self.feet_y)

    def face_box(self) -> tuple[float, float, float, float]:
        """Box around the face disc."""
        r = self.head_r
        return (self.head_x - r, self.head_y - r, self.head_x + r, self.head_y + r)


def figure_geometry(row: Mapping, rng: np.random.Generator) -> Figure:
    """Place the figure: height from the age bin/level, widths from gender and age look."""
    level = row["age_level"]
    height = _AGE_HEIGHT.get(row["age"], _AGE_HEIGHT[level]) * rng.uniform(0.97, 1.03)
    feet = 0.96
    top = feet - height
    r = 0.082 * (height / 0.8) ** 0.45
    cx = 0.44 + rng.uniform(-0.04, 0.04)
    stoop = 0.035 if level == "senior" else 0.0
    shoulder_y = top + 2 * r + 0.018 * height / 0.8
    hip_y = shoulder_y + 0.36 * height
    scale = height / 0.8 * _AGE_WIDTH[level]
    if row["gender"] == "man":
        shoulder_hw, hip_hw = 0.165 * scale, 0.095 * scale
    else:
        shoulder_hw, hip_hw = 0.105 * scale, 0.150 * scale
    return Figure(cx, cx + stoop, top + r, r, top, shoulder_y, hip_y, feet, shoulder_hw, hip_hw, 0.045 * height / 0.8)


def jitter(rgb: tuple[int, int, int], rng: np.random.Generator, amount: int) -> tuple[int, int, int]:
    j = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(np.clip(c + d, 0, 255)) for c, d in zip(rgb, j))  # type: ignore[return-value]


class Canvas:
    """ImageDraw in unit coordinates mapped through a crop box."""

    def __init__(self, size: int, crop: tuple[float, float, float, float], background: tuple[int, int, int]):
        self.px = size * _SUPERSAMPLE
        self.image = Image.new("RGB", (self.px, self.px), background)
        self.draw = ImageDraw.Draw(self.image)
        x0, y0, x1, y1 = crop
        self.x0, self.y0 = x0, y0
        self.sx, self.sy = self.px / (x1 - x0), self.px / (y1 - y0)

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.x0) * self.sx, (y - self.y0) * self.sy)

    def rect(self, x1, y1, x2, y2, fill) -> None:
        self.draw.rectangle([*self.xy(x1, y1), *self.xy(x2, y2)], fill=fill)

    def ellipse(self, x1, y1, x2, y2, fill) -> None:
        self.draw.ellipse([*self.xy(x1, y1), *self.xy(x2, y2)], fill=fill)

    def circle(self, x, y, r, fill) -> None:
        self.ellipse(x - r, y - r, x + r, y + r, fill)

    def polygon(self, points, fill) -> None:
        self.draw.polygon([self.xy(x, y) for x, y in points], fill=fill)

    def chord(self, x1, y1, x2, y2, start, end, fill) -> None:
        self.draw.chord([*self.xy(x1, y1), *self.xy(x2, y2)], start, end, fill=fill)


def _background(c: Canvas, place: str, rng: np.random.Generator) -> None:
    if place == "office":
        wx = rng.uniform(0.55, 0.7)
        c.rect(wx, 0.08, wx + 0.32, 0.42, (235, 235, 240))
        c.rect(wx + 0.02, 0.10, wx + 0.30, 0.40, jitter((150, 200, 240), rng, 15))
        c.rect(0.0, 0.72, 1.0, 1.0, jitter((170, 175, 185), rng, 10))
        c.rect(0.62, 0.62, 1.0, 0.70, jitter((120, 85, 55), rng, 12))
    elif place == "workshop":
        for y in (0.22, 0.40):
            c.rect(0.0, y, 1.0, y + 0.03, jitter((130, 95, 60), rng, 12))
        for x in rng.uniform(0.0, 0.95, size=4):
            c.rect(x, 0.15, x + 0.05, 0.22, jitter((180, 180, 60), rng, 40))
        c.rect(0.0, 0.75, 1.0, 1.0, jitter((60, 58, 56), rng, 8))
    elif place == "outdoors":
        c.rect(0.0, 0.68, 1.0, 1.0, jitter((90, 160, 70), rng, 15))
        c.circle(rng.uniform(0.75, 0.92), rng.uniform(0.08, 0.18), 0.06, (250, 225, 90))
        tx = rng.uniform(0.78, 0.92)
        c.rect(tx - 0.02, 0.45, tx + 0.02, 0.70, (100, 70, 40))
        c.circle(tx, 0.42, 0.09, jitter((50, 120, 50), rng, 15))
    elif place == "shop":
        for y in (0.18, 0.34):
            c.rect(0.55, y, 1.0, y + 0.02, (140, 100, 70))
            for i in range(3):
                x = 0.58 + 0.13 * i
                c.rect(x, y - 0.08, x + 0.08, y, jitter(tuple(PALETTE["blue"]), rng, 60))
        c.rect(0.0, 0.62, 1.0, 0.72, jitter((150, 105, 70), rng, 12))
        c.rect(0.0, 0.72, 1.0, 1.0, jitter((200, 190, 175), rng, 8))
    elif place == "home":
        c.rect(0.0, 0.80, 1.0, 1.0, jitter((150, 110, 70), rng, 12))
        fx = rng.uniform(0.62, 0.75)
        c.rect(fx, 0.12, fx + 0.2, 0.3, (90, 60, 40))
        c.rect(fx + 0.02, 0.14, fx + 0.18, 0.28, jitter((120, 170, 200), rng, 40))
        c.rect(0.6, 0.58, 1.0, 0.80, jitter((160, 60, 60), rng, 30))
    else:
        raise ValueError(f"unknown place {place!r}")


def _hair(c: Canvas, f: Figure, row: Mapping, color, back: bool) -> None:
    """Long hair mass behind the head (``back``) or the cap of hair over the head."""
    r, hx, hy = f.head_r, f.head_x, f.head_y
    curly = bool(row["hair_curly"])
    if back:
        if row["hair_long"]:
            c.ellipse(hx - 1.25 * r, hy - 1.1 * r, hx + 1.25 * r, f.shoulder_y + 0.09, color)
        if curly:
            c.circle(hx, hy - 0.15 * r, 1.35 * r, color)
        return
    c.chord(hx - 1.08 * r, hy - 1.12 * r, hx + 1.08 * r, hy + 0.9 * r, 180, 360, color)


def _headwear(c: Canvas, f: Figure, kind: str, color) -> None:
    r, hx, hy = f.head_r, f.head_x, f.head_y
    if kind == "cap":
        c.chord(hx - 1.1 * r, hy - 1.25 * r, hx + 1.1 * r, hy + 0.6 * r, 180, 360, color)
        c.rect(hx, hy - 0.38 * r, hx + 1.7 * r, hy - 0.2 * r, color)
    elif kind == "helmet":
        c.chord(hx - 1.35 * r, hy - 1.45 * r, hx + 1.35 * r, hy + 0.5 * r, 180, 360, color)
        c.rect(hx - 1.5 * r, hy - 0.5 * r, hx + 1.5 * r, hy - 0.3 * r, color)
    elif kind == "tallhat":
        c.rect(hx - 0.9 * r, hy - 2.6 * r, hx + 0.9 * r, hy - 0.55 * r, (245, 245, 245))
        c.ellipse(hx - 1.2 * r, hy - 3.0 * r, hx + 1.2 * r, hy - 1.9 * r, (245, 245, 245))


def _prop(c: Canvas, kind: str, x: float, y: float, rng: np.random.Generator) -> None:
    """A held prop at the hand position (x, y)."""
    if kind == "tool":
        c.rect(x - 0.012, y - 0.16, x + 0.012, y + 0.02, (70, 70, 75))
        c.rect(x - 0.05, y - 0.17, x + 0.05, y - 0.12, (70, 70, 75))
    elif kind == "board":
        c.rect(x - 0.02, y - 0.15, x + 0.10, y + 0.02, (120, 85, 50))
        c.rect(x - 0.005, y - 0.13, x + 0.085, y, (245, 245, 245))
    elif kind == "bag":
        c.rect(x - 0.06, y + 0.0, x + 0.10, y + 0.12, (80, 50, 30))
        c.rect(x - 0.01, y - 0.03, x + 0.05, y + 0.005, (50, 30, 20))
    elif kind == "book":
        c.rect(x - 0.02, y - 0.12, x + 0.10, y + 0.04, jitter((170, 30, 40), rng, 30))
        c.rect(x + 0.0, y - 0.10, x + 0.08, y + 0.02, (240, 235, 220))
    elif kind == "tray":
        c.ellipse(x - 0.09, y - 0.03, x + 0.11, y + 0.01, (200, 200, 210))
        c.rect(x - 0.03, y - 0.09, x + 0.03, y - 0.02, jitter((240, 220, 140), rng, 40))


def _person(c: Canvas, f: Figure, row: Mapping, rng: np.random.Generator) -> None:
    spec = occupation_spec(row["occupation"])
    skin = jitter(SKIN_RGB[int(row["skin_tone"]) - 1], rng, 4)
    hair_name = row["hair_color"]
    if row["age_level"] == "senior":
        hair_name = "white" if rng.random() < 0.4 else "grey"
    hair = jitter(HAIR_RGB[hair_name], rng, 8)
    outfit_name = row["outfit_color"]
    if row["dressing"] == "casual clothes":
        outfit_name = list(PALETTE)[int(rng.integers(len(PALETTE)))]
    outfit = jitter(PALETTE[outfit_name], rng, 14)
    trousers = jitter((45, 50, 70) if spec.cut != "casual" else (60, 90, 150), rng, 10)
    cx, sy, hy_ = f.cx, f.shoulder_y, f.hip_y

    _hair(c, f, row, hair, back=True)
    # legs
    leg_w = f.hip_hw * 0.8
    leg_color = outfit if spec.cut == "overalls" else trousers
    c.rect(cx - f.hip_hw, hy_ - 0.01, cx - f.hip_hw + leg_w, f.feet_y - 0.02, leg_color)
    c.rect(cx + f.hip_hw - leg_w, hy_ - 0.01, cx + f.hip_hw, f.feet_y - 0.02, leg_color)
    c.rect(cx - f.hip_hw - 0.01, f.feet_y - 0.03, cx - f.hip_hw + leg_w, f.feet_y, (30, 25, 25))
    c.rect(cx + f.hip_hw - leg_w, f.feet_y - 0.03, cx + f.hip_hw + 0.01, f.feet_y, (30, 25, 25))
    # arms (sleeves), hands
    arm_len = hy_ - sy
    sleeve = skin if spec.cut == "shirt" else outfit
    for side in (-1, 1):
        x_out = cx + side * (f.shoulder_hw + f.arm_w * 0.6)
        x1, x2 = sorted((x_out, x_out - side * f.arm_w))
        c.rect(x1, sy + 0.01, x2, sy + arm_len, outfit)
        if spec.cut == "shirt":
            c.rect(x1, sy + arm_len * 0.45, x2, sy + arm_len, sleeve)
        c.circle((x1 + x2) / 2, sy + arm_len + 0.01, f.arm_w * 0.8, skin)
    # torso
    bottom = hy_
    if spec.cut == "coat":
        bottom = hy_ + 0.45 * (f.feet_y - hy_)
    torso = [(cx - f.shoulder_hw, sy), (cx + f.shoulder_hw, sy), (cx + f.hip_hw, bottom), (cx - f.hip_hw, bottom)]
    c.polygon(torso, (120, 120, 125) if spec.cut == "apron" else outfit)
    neck_w = f.head_r * 0.45
    c.rect(f.head_x - neck_w, f.head_y + f.head_r * 0.6, f.head_x + neck_w, sy + 0.01, skin)
    if spec.cut == "suit":
        c.polygon([(cx - 0.035, sy), (cx + 0.035, sy), (cx, sy + 0.09)], (240, 240, 240))
        c.polygon([(cx - 0.01, sy + 0.01), (cx + 0.01, sy + 0.01), (cx, sy + 0.11)], (150, 20, 30))
    elif spec.cut == "apron":
        aw = min(f.shoulder_hw, f.hip_hw) * 0.85
        c.rect(cx - aw, sy + 0.04, cx + aw, hy_ + 0.4 * (f.feet_y - hy_), outfit)
    elif spec.cut == "overalls":
        c.rect(cx - f.shoulder_hw * 0.6, sy, cx - f.shoulder_hw * 0.4, sy + 0.08, (230, 230, 230))
        c.rect(cx + f.shoulder_hw * 0.4, sy, cx + f.shoulder_hw * 0.6, sy + 0.08, (230, 230, 230))
    elif spec.cut == "uniform":
        c.rect(cx - f.hip_hw * 1.05, hy_ - 0.035, cx + f.hip_hw * 1.05, hy_ - 0.01, (20, 20, 20))
        c.rect(cx - f.shoulder_hw * 0.6, sy + 0.04, cx - f.shoulder_hw * 0.3, sy + 0.07, (240, 200, 40))
    if row["dressing"] == "ethnic clothes":
        band = jitter((215, 170, 40), rng, 20)
        for k in range(3):
            y = sy + (k + 1) * (bottom - sy) / 4
            half = f.shoulder_hw + (f.hip_hw - f.shoulder_hw) * (y - sy) / (bottom - sy)
            c.rect(cx - half, y - 0.012, cx + half, y + 0.012, band)
    # head, face, hair cap, headwear
    c.circle(f.head_x, f.head_y, f.head_r, skin)
    eye = (25, 20, 20)
    for side in (-1, 1):
        c.circle(f.head_x + side * 0.38 * f.head_r, f.head_y - 0.05 * f.head_r, 0.11 * f.head_r, eye)
    c.rect(f.head_x - 0.3 * f.head_r, f.head_y + 0.45 * f.head_r, f.head_x + 0.3 * f.head_r,
           f.head_y + 0.55 * f.head_r, (150, 60, 60))
    if spec.headwear == "none" or row["hair_long"]:
        _hair(c, f, row, hair, back=False)
    helmet_color = PALETTE["yellow"] if spec.occupation != "firefighter" else PALETTE["red"]
    _headwear(c, f, spec.headwear, helmet_color if spec.headwear == "helmet" else outfit)
    hand_x = cx + f.shoulder_hw + f.arm_w * 0.1
    _prop(c, spec.prop, hand_x, sy + arm_len, rng)


def stylise(arr: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """Apply the global style filter to an ``(H, W, 3)`` uint8 array; returns uint8."""
    x = arr.astype(np.float32)
    if style == "photo":
        h, w = x.shape[:2]
        gy, gx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
        a, b = rng.uniform(-0.12, 0.12, size=2)
        x *= (1.0 + a * (gx - 0.5) + b * (gy - 0.5))[..., None]
        x += rng.normal(0.0, 3.0, size=x.shape).astype(np.float32)
    elif style == "painting":
        x = (x + np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)) / 5
        x = np.floor(x / 20.0) * 20.0 + 10.0
        x += rng.normal(0.0, 6.0, size=x.shape[:2] + (1,)).astype(np.float32)
    elif style == "sketch":
        lum = x.mean(axis=2)
        edges = np.abs(np.diff(lum, axis=0, prepend=lum[:1])) + np.abs(np.diff(lum, axis=1, prepend=lum[:, :1]))
        x = 0.55 * x + 0.45 * 250.0
        x -= np.clip(edges * 1.5, 0, 160)[..., None]
    else:
        raise ValueError(f"unknown style {style!r}")
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def render_person(row: Mapping, size: int = 64, crop: str | tuple[float, float, float, float] = "full") -> Image.Image:
    """Render one person (a row of :func:`~biaslib.world.distribution.sample_people`).

    Parameters
    ----------
    row : mapping with the person's attributes and ``render_seed``.
    size : output side in pixels (square).
    crop : ``"full"`` (the whole scene), ``"face125"`` / ``"face025"`` (FairFace-like crops: the face
        box padded by 1.25 or 0.25 face widths on each side), or an explicit unit box (x1, y1, x2, y2).

    Returns
    -------
    ``PIL.Image`` in RGB mode, ``size × size``.
    """
    rng = np.random.default_rng([int(row["render_seed"]), 7])
    f = figure_geometry(row, rng)
    box = _crop_box(f, crop)
    canvas = Canvas(size, box, jitter(_BACKGROUND_RGB[row["place"]], rng, 10))
    _background(canvas, row["place"], rng)
    _person(canvas, f, row, rng)
    small = canvas.image.resize((size, size), Image.Resampling.BOX)
    return Image.fromarray(stylise(np.asarray(small), row["style"], rng))


def _crop_box(f: Figure, crop: str | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if crop == "full":
        return (0.0, 0.0, 1.0, 1.0)
    if crop in ("face125", "face025"):
        pad = 1.25 if crop == "face125" else 0.25
        w = 2 * f.head_r * (1 + 2 * pad)
        return (f.head_x - w / 2, f.head_y - w / 2, f.head_x + w / 2, f.head_y + w / 2)
    if isinstance(crop, tuple) and len(crop) == 4:
        return crop
    raise ValueError(f"crop must be 'full', 'face125', 'face025' or a 4-tuple, got {crop!r}")


def person_boxes(row: Mapping) -> dict[str, tuple[float, float, float, float]]:
    """Unit-coordinate boxes of the full-scene render: ``person`` and ``face``."""
    f = figure_geometry(row, np.random.default_rng([int(row["render_seed"]), 7]))
    return {"person": f.box(), "face": f.face_box()}
