"""``SimulatedGenerator``: a stand-in for a text-to-image model in the synthetic world.

**A simulator, not a learned model.** It reads the attributes a prompt states, draws every attribute
the prompt leaves open from the world's conditional distribution *tempered by* ``amplification``
(γ = 1 faithful, γ > 1 amplifies the majority, γ = 0 uniform over the support; all of them, or only
some: ``amplified``), and renders the person. This gives a generator whose bias is known exactly, so
tests can check that the pipeline's metrics recover it. Its call mirrors a diffusers pipeline: prompts plus
one ``torch.Generator`` (or integer seed) per prompt, returning ``.images``; it also returns the drawn
``attributes`` — the ground truth of every generated image.

Non-English prompts: ``language_shift`` maps a language to a shift of the log-odds of drawing a man
(positive = more men) applied when that language is passed to the call, modelling a generator that
is more biased for some languages. Prompts are parsed with the English vocabulary of the world's
captions; translated prompts are parsed through :mod:`biaslib.prompts` once it maps them back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image

from biaslib.world import World
from biaslib.world.attributes import AGE_LEVELS, GENDERS, PLACES, RACES
from biaslib.world.captions import (
    AGE_WORDS,
    GENDER_ADJ,
    GENDER_NOUN,
    PLACE_PHRASES,
    RACE_WORDS,
    REGION_WORDS,
    STYLE_PREFIX,
)
from biaslib.world.distribution import (
    FIXABLE,
    OBJECTS,
    REGIONS,
    WEB_REGION_WEIGHTS,
    conditional_tables,
    occupation_weights,
    occupations_index,
    people_from_uniforms,
)
from biaslib.world.objects import render_object
from biaslib.world.render import render_person

_N_UNIFORMS = 16
#: The draws an amplifying generator can temper: a person's gender, age level and race given the occupation, and
#: the region of an object whose prompt names none.
AMPLIFIABLE: tuple[str, ...] = ("gender", "age_level", "race", "region")


def _phrase_table() -> dict[str, list[tuple[str, str]]]:
    """attribute → [(phrase, value)], longest phrases first; inverted from the caption vocabulary."""
    table: dict[str, list[tuple[str, str]]] = {
        "occupation": [(o, o) for o in occupations_index() if o != "none"],
        "gender": [(GENDER_ADJ[g], g) for g in GENDERS] + [("women", "woman"), ("men", "man"), ("she", "woman"),
                                                           ("he", "man"), ("mother", "woman"), ("father", "man")],
        "age_level": [(w, lvl) for lvl, words in AGE_WORDS.items() for w in words]
        + [("child", "child"), ("kid", "child"), ("baby", "child"), ("teenage", "young"), ("aged", "senior")],
        "race": [(w, r) for r, w in RACE_WORDS.items() if r != "Southeast Asian"]
        + [("southeast asian", "Southeast Asian"), ("east asian", "East Asian"), ("hispanic", "Latino_Hispanic")],
        "place": [(p, place) for place, phrases in PLACE_PHRASES.items() for p in phrases if p != "at work"]
        + [(place, place) for place in PLACES],
        "style": [(phrase, style) for style, phrases in STYLE_PREFIX.items() for phrase in phrases]
        + [("drawing of", "sketch"), ("photograph of", "photo"), ("painting", "painting"), ("sketch", "sketch")],
        "object": [(o, o) for o in OBJECTS],
        "region": [(phrase, region) for region, phrase in REGION_WORDS.items()],
        "person": [(w, "yes") for w in ("person", "people", "child", "worker")],
    }
    for (gender, level), nouns in GENDER_NOUN.items():
        for noun in nouns:
            table["gender"].append((noun, gender))
            if level == "child" or noun.startswith(("young", "old")) or noun.startswith("grand"):
                table["age_level"].append((noun, level))
    return {k: sorted(set(v), key=lambda pv: -len(pv[0])) for k, v in table.items()}


_PHRASES = _phrase_table()
#: attribute → (one compiled alternation of its phrases, longest first; phrase → value)
_PATTERNS = {
    attribute: (re.compile(r"(?<![a-z\-])(" + "|".join(re.escape(p) for p, _ in phrases) + r")(?![a-z\-])"),
                dict(phrases))
    for attribute, phrases in _PHRASES.items()
}


@lru_cache(maxsize=65536)
def parse_prompt(prompt: str) -> dict[str, str]:
    """Attributes an English prompt states: subset of occupation, gender, age_level, race, place, style,
    and for object prompts ``object`` and ``region`` (``person`` marks a person word such as "person").

    Matching is on whole words, longest phrase first ("woman" is not read as "man", "female" not as
    "male"); the first match in the prompt wins for each attribute. Returns a new dict per call site
    (cached: do not mutate).
    """
    text = " " + re.sub(r"[^a-z0-9 \-]", " ", prompt.lower()) + " "
    found: dict[str, str] = {}
    for attribute, (pattern, values) in _PATTERNS.items():
        m = pattern.search(text)
        if m:
            found[attribute] = values[m.group(1)]
    return found


def _temper_rows(p: np.ndarray, gamma: float) -> np.ndarray:
    support = p > 0
    out = np.where(support, np.power(np.where(support, p, 1.0), gamma), 0.0)
    return out / out.sum(axis=1, keepdims=True)


@dataclass
class SimulatedOutput:
    """Result of a :class:`SimulatedGenerator` call: PIL ``images`` and their drawn ``attributes``."""

    images: list[Image.Image]
    attributes: pd.DataFrame = field(default_factory=pd.DataFrame)


class SimulatedGenerator:
    """A simulated text-to-image generator over a :class:`~biaslib.world.World` (see module docstring).

    Parameters
    ----------
    world : the world whose conditionals (at its ``bias_strength``) the generator samples.
    amplification : γ; conditionals are raised to γ over their support and renormalised.
    language_shift : language → shift of log-odds(man) for prompts in that language.
    image_size : output side in pixels (default: the world's image size).
    amplified : the draws γ tempers (:data:`AMPLIFIABLE`; default all of them). A generator that amplifies only
        some (``("gender",)``: a clean plant) draws everything else exactly as the faithful generator does (γ = 1),
        the occupation it reads off a prompt's stated attributes included: with the same seeds, its images and the
        faithful generator's differ only where an amplified draw came out otherwise (for gender: the person's
        gender and with it the hair length).
    """

    model_name = "biaslib-world-simulator"

    def __init__(self, world: World, amplification: float = 1.0, language_shift: Mapping[str, float] | None = None,
                 image_size: int | None = None, amplified: Sequence[str] = AMPLIFIABLE):
        if amplification < 0:
            raise ValueError(f"amplification must be ≥ 0, got {amplification}")
        unknown = sorted(set(amplified) - set(AMPLIFIABLE))
        if unknown or not amplified:
            raise ValueError(f"amplified must name some of {', '.join(AMPLIFIABLE)}, got {list(amplified)}")
        self.world = world
        self.amplification = float(amplification)
        self.amplified = tuple(a for a in AMPLIFIABLE if a in amplified)
        self.language_shift = dict(language_shift or {})
        self.image_size = image_size or world.config.image_size
        base = conditional_tables(world.config.bias_strength)
        self.tables = {k: _temper_rows(v, self.amplification) if k in self.amplified else v for k, v in base.items()}
        # what the occupation of a prompt without one is read from: the generator's own conditionals when γ
        # tempers all of them (a uniformly sharper world), the faithful ones for a plant of some attributes
        self._inference_tables = self.tables if self.amplified == AMPLIFIABLE else base
        self.occupation_prior = occupation_weights(world.config.p_no_occupation)
        self.occupations = occupations_index()

    @property
    def config(self) -> dict:
        """Provenance: what determines this generator's outputs."""
        config = {"model": self.model_name, "amplification": self.amplification,
                  "language_shift": self.language_shift, "world_seed": self.world.seed,
                  "bias_strength": self.world.config.bias_strength, "image_size": self.image_size}
        return config if self.amplified == AMPLIFIABLE else {**config, "amplified": list(self.amplified)}

    def sample_attributes(self, prompts: Sequence[str], seeds: Sequence[int],
                          languages: Sequence[str] | None = None) -> pd.DataFrame:
        """Draw the attributes of one image per prompt; row i depends only on (prompt i, seed i)."""
        n = len(prompts)
        if len(seeds) != n:
            raise ValueError(f"got {n} prompts but {len(seeds)} seeds")
        languages = list(languages) if languages is not None else ["english"] * n
        parsed = [parse_prompt(p) for p in prompts]
        u = np.stack([np.random.default_rng([int(s) & (2**63 - 1), 0x5117]).random(_N_UNIFORMS) for s in seeds]) \
            if n else np.zeros((0, _N_UNIFORMS))
        fixed = {col: np.array([vocab.index(p[col]) if col in p else -1 for p in parsed], dtype=int)
                 for col, vocab in FIXABLE.items()}
        occ_probs = np.empty((n, len(self.occupations)))
        for i, p in enumerate(parsed):
            if "occupation" in p:
                row = np.zeros(len(self.occupations))
                row[self.occupations.index(p["occupation"])] = 1.0
            else:
                row = self.occupation_prior.copy()
                for col, vocab in (("gender", GENDERS), ("age_level", AGE_LEVELS), ("race", RACES)):
                    if col in p:
                        row = row * self._inference_tables[col][:, vocab.index(p[col])]
                row = row if row.sum() > 0 else self.occupation_prior.copy()
            occ_probs[i] = row / row.sum()
        shift = np.array([self.language_shift.get(lang, 0.0) for lang in languages])
        frame = people_from_uniforms(u, occ_probs, self.tables, fixed=fixed, man_logit_shift=shift)
        frame["prompt"] = list(prompts)
        frame["seed"] = [int(s) for s in seeds]
        frame["language"] = languages
        frame["stated"] = [",".join(sorted(p)) for p in parsed]
        frame = frame.drop(columns=["person_id"])
        return self._objects(frame, parsed, u)

    def _objects(self, frame: pd.DataFrame, parsed: list[dict[str, str]], u: np.ndarray) -> pd.DataFrame:
        """Rows whose prompt names an object and no person become objects of the world's object renderer.

        The region is the stated one, else drawn from the web data's region mix tempered by γ (so
        γ > 1 also amplifies the geographic skew); the look follows the region with probability 0.75.
        """
        person_cols = ("occupation", "gender", "age_level", "race", "person")
        is_object = np.array([("object" in p) and not any(c in p for c in person_cols) for p in parsed], dtype=bool)
        frame["kind"] = np.where(is_object, "object", "person")
        for column in ("object", "region", "look_region"):
            frame[column] = None
        if not is_object.any():
            return frame
        gamma = self.amplification if "region" in self.amplified else 1.0
        cdf = np.cumsum(_temper_rows(np.array([WEB_REGION_WEIGHTS]), gamma)[0])[:-1]
        k = len(REGIONS)
        for i in np.flatnonzero(is_object):
            p = parsed[i]
            region = REGIONS.index(p["region"]) if "region" in p else int((u[i, 14] >= cdf).sum())
            look = region if u[i, 15] < 0.75 else (region + 1 + int((u[i, 15] - 0.75) / 0.25 * (k - 1))) % k
            frame.loc[i, ["object", "region", "look_region"]] = [p["object"], REGIONS[region], REGIONS[look]]
        keep = ("prompt", "seed", "language", "stated", "kind", "object", "region", "look_region", "render_seed")
        person_only = [c for c in frame.columns if c not in keep]
        frame[person_only] = frame[person_only].astype(object)
        frame.loc[is_object, person_only] = None
        return frame

    def __call__(self, prompt: str | Sequence[str], generator=None, seeds: Sequence[int] | None = None,
                 language: str | Sequence[str] = "english", **_diffusers_kwargs) -> SimulatedOutput:
        """Generate one image per prompt.

        ``generator``: one ``torch.Generator`` per prompt (its ``initial_seed()`` is used) or a single
        one for a single prompt; ``seeds``: integer seeds instead. Diffusers arguments such as
        ``num_inference_steps`` or ``guidance_scale`` are accepted and ignored.
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if seeds is None:
            if generator is None:
                raise ValueError("pass one torch.Generator per prompt (generator=[...]) or seeds=[...]")
            gens = generator if isinstance(generator, (list, tuple)) else [generator]
            seeds = [g.initial_seed() for g in gens]
        languages = [language] * len(prompts) if isinstance(language, str) else list(language)
        attrs = self.sample_attributes(prompts, seeds, languages)
        size = self.image_size
        images = [render_object(row, size) if row["kind"] == "object" else render_person(row, size)
                  for row in attrs.to_dict("records")]
        return SimulatedOutput(images=images, attributes=attrs)
