"""CC3M-style captions for the world's people and objects.

Like real web alt-text (hypernymised in CC3M), a caption mentions each attribute only with some
probability: gender words are often missing, so a model trained on the captions must read most of
the bias from the pixels. Choices are seeded by the item's ``render_seed``, so a caption is a pure
function of the row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from biaslib.config import CaptionConfig

_ARTICLE_VOWELS = tuple("aeiou")


AGE_WORDS = {"young": ("young",), "adult": ("middle-aged", "adult"), "senior": ("elderly", "senior", "old")}
GENDER_ADJ = {"woman": "female", "man": "male"}
GENDER_NOUN = {
    ("woman", "child"): ("girl",), ("man", "child"): ("boy",),
    ("woman", "young"): ("young woman", "woman"), ("man", "young"): ("young man", "man"),
    ("woman", "adult"): ("woman", "lady"), ("man", "adult"): ("man",),
    ("woman", "senior"): ("old woman", "grandmother"), ("man", "senior"): ("old man", "grandfather"),
}
RACE_WORDS = {
    "White": "white", "Black": "black", "Latino_Hispanic": "latino", "East Asian": "asian",
    "Southeast Asian": "asian", "Indian": "indian", "Middle Eastern": "middle eastern",
}
PLACE_PHRASES = {
    "office": ("in the office", "at the office", "at work"),
    "workshop": ("in a workshop", "in the garage", "at work"),
    "outdoors": ("outdoors", "in the park", "on the street"),
    "shop": ("in a shop", "at the store", "behind the counter"),
    "home": ("at home", "in the living room", "in the kitchen"),
}
STYLE_PREFIX = {
    "painting": ("painting of", "illustration of", "artwork depicting"),
    "sketch": ("sketch of", "drawing of", "pencil sketch of"),
    "photo": ("photo of", "portrait of", "stock photo of"),
}
_ACTIVITIES = (
    "posing for a photo", "smiles at the camera", "at work", "standing", "looking at the camera",
    "during a working day", "waiting",
)
_CHILD_ACTIVITIES = ("playing", "smiles at the camera", "standing", "posing for a photo")


def _a(word: str) -> str:
    return f"an {word}" if word.startswith(_ARTICLE_VOWELS) else f"a {word}"


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def person_caption(row: Mapping, params: CaptionConfig | None = None, variant: int = 0) -> str:
    """One caption for a person row; ``variant`` gives independent alternatives (COCO has 5).

    ``params``: mention probabilities (default :class:`~biaslib.config.CaptionConfig`).
    """
    params = params or CaptionConfig()
    rng = np.random.default_rng([int(row["render_seed"]), 11, variant])
    flags = rng.random(6)
    gender, level, occ = row["gender"], row["age_level"], row["occupation"]
    has_occ = occ != "none" and flags[2] < params.p_occupation
    adjs: list[str] = []
    if level != "child" and flags[1] < params.p_age:
        adjs.append(_pick(rng, AGE_WORDS[level]))
    if flags[4] < params.p_race:
        adjs.append(RACE_WORDS[row["race"]])
    if has_occ:
        if flags[0] < params.p_gender:
            adjs.append(GENDER_ADJ[gender])
        noun = occ
    elif flags[0] < params.p_gender or level == "child":
        noun = _pick(rng, GENDER_NOUN[(gender, level)]) if flags[0] < params.p_gender else "child"
    else:
        noun = "person"
    subject = _a(" ".join([*adjs, noun]))
    parts = []
    if row["style"] != "photo" and flags[5] < params.p_style:
        parts.append(_pick(rng, STYLE_PREFIX[row["style"]]))
    elif row["style"] == "photo" and flags[5] < 0.2:
        parts.append(_pick(rng, STYLE_PREFIX["photo"]))
    parts.append(subject)
    parts.append(_pick(rng, _CHILD_ACTIVITIES if level == "child" else _ACTIVITIES))
    if flags[3] < params.p_place:
        parts.append(_pick(rng, PLACE_PHRASES[row["place"]]))
    return " ".join(parts)


_OBJECT_COLORS = ("red", "blue", "white", "old", "new", "small", "large")
REGION_WORDS = {
    "Africa": "in africa", "Americas": "in america", "EastAsia": "in east asia", "Europe": "in europe",
    "SouthEastAsia": "in southeast asia", "WestAsia": "in the middle east",
}
_OBJECT_SCENES = ("on the street", "in the village", "in the city", "near the house", "in the sun")


def object_caption(row: Mapping, variant: int = 0) -> str:
    """One caption for an object row (mentions the region in 20% of captions)."""
    rng = np.random.default_rng([int(row["render_seed"]), 13, variant])
    flags = rng.random(3)
    words = [_a(f"{_pick(rng, _OBJECT_COLORS)} {row['object']}" if flags[0] < 0.4 else row["object"])]
    if flags[1] < 0.2:
        words.append(REGION_WORDS[row["region"]])
    elif flags[2] < 0.5:
        words.append(_pick(rng, _OBJECT_SCENES))
    return " ".join(words)
