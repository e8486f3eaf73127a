"""Vocabularies of the synthetic world and their mapping onto the real datasets' label sets.

Every attribute the world draws is listed here once. The world's own labels are the FairFace
labels where FairFace has one (age bins, race); the functions at the bottom translate them into the
label strings of PHASE and COCO-bias so that exporters and tests share one mapping.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

GENDERS: tuple[str, ...] = ("woman", "man")

#: FairFace's nine age bins, youngest first.
AGE_BINS: tuple[str, ...] = (
    "0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70",
)
#: Four visibly distinct age looks (the renderer draws one look per level).
AGE_LEVELS: tuple[str, ...] = ("child", "young", "adult", "senior")
AGE_BIN_LEVEL: dict[str, str] = {
    "0-2": "child", "3-9": "child",
    "10-19": "young", "20-29": "young",
    "30-39": "adult", "40-49": "adult", "50-59": "adult",
    "60-69": "senior", "more than 70": "senior",
}
#: Within a level, how the bins share it (the population's age pyramid inside a look).
AGE_BIN_WEIGHTS: dict[str, float] = {
    "0-2": 0.3, "3-9": 0.7, "10-19": 0.25, "20-29": 0.75,
    "30-39": 0.36, "40-49": 0.34, "50-59": 0.30, "60-69": 0.6, "more than 70": 0.4,
}

#: Skin tone levels 1 (lightest) … 6 (darkest), Fitzpatrick-like.
SKIN_TONES: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
#: sRGB of each skin tone level (index 0 = level 1); well separated in luminance.
SKIN_RGB: tuple[tuple[int, int, int], ...] = (
    (250, 222, 200), (234, 190, 155), (206, 150, 110),
    (165, 110, 72), (118, 74, 46), (72, 44, 28),
)

#: FairFace's seven race labels.
RACES: tuple[str, ...] = (
    "White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern",
)
#: Population share of each race in the world (before any occupational skew).
RACE_BASE: dict[str, float] = {
    "White": 0.30, "Black": 0.15, "Latino_Hispanic": 0.15, "East Asian": 0.13,
    "Southeast Asian": 0.09, "Indian": 0.10, "Middle Eastern": 0.08,
}
#: Mean skin tone level of each race; skin | race is a discretised normal around it (sd SKIN_SD).
RACE_SKIN_MEAN: dict[str, float] = {
    "White": 1.4, "East Asian": 2.2, "Middle Eastern": 3.0, "Latino_Hispanic": 3.2,
    "Southeast Asian": 3.6, "Indian": 4.3, "Black": 5.4,
}
SKIN_SD = 0.65
#: Hair colour weights by race: (black, dark brown, brown, blonde, red).
HAIR_COLORS: tuple[str, ...] = ("black", "dark brown", "brown", "blonde", "red")
HAIR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (25, 22, 22), "dark brown": (60, 38, 24), "brown": (110, 70, 40),
    "blonde": (220, 190, 110), "red": (170, 70, 30), "grey": (170, 170, 170), "white": (235, 235, 235),
}
RACE_HAIR: dict[str, tuple[float, ...]] = {
    "White": (0.10, 0.25, 0.30, 0.28, 0.07), "Black": (0.85, 0.15, 0, 0, 0),
    "Latino_Hispanic": (0.50, 0.40, 0.10, 0, 0), "East Asian": (0.95, 0.05, 0, 0, 0),
    "Southeast Asian": (0.90, 0.10, 0, 0, 0), "Indian": (0.85, 0.15, 0, 0, 0),
    "Middle Eastern": (0.65, 0.35, 0, 0, 0),
}
#: Probability of curly (textured) hair by race.
RACE_CURLY: dict[str, float] = {
    "White": 0.1, "Black": 0.85, "Latino_Hispanic": 0.3, "East Asian": 0.02,
    "Southeast Asian": 0.1, "Indian": 0.15, "Middle Eastern": 0.3,
}

PLACES: tuple[str, ...] = ("office", "workshop", "outdoors", "shop", "home")
STYLES: tuple[str, ...] = ("photo", "painting", "sketch")
STYLE_WEIGHTS: tuple[float, ...] = (0.8, 0.12, 0.08)
DRESSINGS: tuple[str, ...] = ("work clothes", "casual clothes", "ethnic clothes")
DRESSING_WEIGHTS: tuple[float, ...] = (0.75, 0.15, 0.10)

CUTS: tuple[str, ...] = ("suit", "coat", "apron", "overalls", "uniform", "shirt", "casual")
HEADWEAR: tuple[str, ...] = ("none", "cap", "helmet", "tallhat")
PROPS: tuple[str, ...] = ("none", "tool", "board", "bag", "book", "tray")
#: The shared outfit palette: occupations draw from it, so colour alone never names an occupation.
PALETTE: dict[str, tuple[int, int, int]] = {
    "navy": (30, 40, 100), "black": (30, 30, 35), "white": (235, 235, 230), "grey": (128, 128, 128),
    "blue": (50, 110, 200), "green": (40, 140, 60), "red": (190, 40, 40), "orange": (235, 130, 30),
    "yellow": (235, 205, 50), "brown": (120, 80, 45), "teal": (30, 150, 150), "pink": (230, 130, 170),
    "purple": (120, 60, 160),
}

#: The role of people who are shown without an occupation (children among them).
NO_OCCUPATION = "none"


@dataclass(frozen=True)
class OccupationSpec:
    """One row of ``occupations.csv``: the tabled conditionals and the visual cues of an occupation."""

    occupation: str
    p_woman: float
    age_weights: tuple[float, float, float, float]  # over AGE_LEVELS
    darker_skew: float
    workplace: str
    cut: str
    headwear: str
    prop: str
    colors: tuple[str, str]
    description: str


@lru_cache(maxsize=1)
def occupation_table() -> tuple[OccupationSpec, ...]:
    """The tabled occupations (package data ``biaslib/world/occupations.csv``), ``none`` last."""
    text = resources.files("biaslib.world").joinpath("occupations.csv").read_text(encoding="utf-8")
    specs = []
    for row in csv.DictReader(text.splitlines()):
        spec = OccupationSpec(
            occupation=row["occupation"],
            p_woman=float(row["p_woman"]),
            age_weights=tuple(float(row[f"age_{lvl}"]) for lvl in AGE_LEVELS),  # type: ignore[arg-type]
            darker_skew=float(row["darker_skew"]),
            workplace=row["workplace"],
            cut=row["cut"],
            headwear=row["headwear"],
            prop=row["prop"],
            colors=(row["color1"], row["color2"]),
            description=row["description"],
        )
        for field, vocab in (("workplace", PLACES), ("cut", CUTS), ("headwear", HEADWEAR), ("prop", PROPS)):
            if getattr(spec, field) not in vocab:
                raise ValueError(f"occupations.csv: {spec.occupation}: unknown {field} {getattr(spec, field)!r}")
        specs.append(spec)
    return tuple(specs)


def occupations(include_none: bool = False) -> list[str]:
    """Names of the world's occupations (MAGBIG keys), optionally with the ``none`` role."""
    return [s.occupation for s in occupation_table() if include_none or s.occupation != NO_OCCUPATION]


def occupation_spec(name: str) -> OccupationSpec:
    """The :class:`OccupationSpec` of ``name``; ``KeyError`` lists the known names."""
    for spec in occupation_table():
        if spec.occupation == name:
            return spec
    raise KeyError(f"unknown occupation {name!r}; known: {', '.join(occupations(True))}")


# ---- mappings onto the real datasets' label sets -------------------------------------------------

def fairface_gender(gender: str) -> str:
    """World gender → FairFace label (``Female``/``Male``)."""
    return {"woman": "Female", "man": "Male"}[gender]


def phase_gender(gender: str) -> str:
    """World gender → PHASE label (``female``/``male``)."""
    return {"woman": "female", "man": "male"}[gender]


def coco_gender(gender: str) -> str:
    """World gender → COCO-bias ``bb_gender`` (``Female``/``Male``)."""
    return fairface_gender(gender)


def phase_age(age_bin: str) -> str:
    """FairFace age bin → PHASE age (baby 0–2, child 3–14, young 15–29, adult 30–64, senior 65+)."""
    return {
        "0-2": "baby", "3-9": "child", "10-19": "young", "20-29": "young", "30-39": "adult",
        "40-49": "adult", "50-59": "adult", "60-69": "senior", "more than 70": "senior",
    }[age_bin]


def binary_skin(level: int) -> str:
    """Skin tone level → ``lighter`` (1–3) or ``darker`` (4–6), PHASE's binarised Fitzpatrick."""
    return "lighter" if int(level) <= 3 else "darker"


def coco_skin(level: int) -> str:
    """Skin tone level → COCO-bias ``Light``/``Dark``."""
    return "Light" if int(level) <= 3 else "Dark"


def phase_ethnicity(race: str) -> str:
    """FairFace race → PHASE ethnicity string (underscored, lower case)."""
    return {
        "White": "white", "Black": "black", "Latino_Hispanic": "latino", "East Asian": "east_asian",
        "Southeast Asian": "southeast_asian", "Indian": "indian", "Middle Eastern": "middle_eastern",
    }[race]
