"""The synthetic world: procedurally drawn people and objects with known attributes.

``World`` ties the pieces together: the biased joint distribution (:mod:`.distribution`), the
renderers (:mod:`.render`, :mod:`.objects`), captions (:mod:`.captions`) and exporters to the real
datasets' formats (:mod:`.export`). Everything is a pure function of the parameters and a seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd
from PIL import Image

from biaslib.config import WorldConfig
from biaslib.world.attributes import (
    AGE_BINS,
    AGE_LEVELS,
    GENDERS,
    PLACES,
    RACES,
    SKIN_TONES,
    STYLES,
    occupations,
)
from biaslib.world.captions import object_caption, person_caption
from biaslib.world.distribution import (
    OBJECTS,
    REGIONS,
    WEB_REGION_WEIGHTS,
    age_level_table,
    gender_table,
    race_table,
    sample_objects,
    sample_people,
)
from biaslib.world.objects import render_object
from biaslib.world.render import person_boxes, render_person


class World:
    """A seeded world built from a :class:`~biaslib.config.WorldConfig`.

    Examples
    --------
    >>> w = World(WorldConfig(), seed=0)
    >>> people = w.people(4, stream="demo")
    >>> w.render(people.iloc[0]).size
    (64, 64)
    """

    def __init__(self, config: WorldConfig | None = None, seed: int = 0):
        self.config = config or WorldConfig()
        self.seed = int(seed)

    def people(self, n: int, stream: str = "people", occupations: list[str] | None = None) -> pd.DataFrame:
        """``n`` people of stream ``stream`` with a ``caption`` column added."""
        frame = sample_people(
            n, seed=self.seed, stream=stream, bias_strength=self.config.bias_strength,
            p_no_occupation=self.config.p_no_occupation, occupations=occupations,
        )
        frame["caption"] = [person_caption(r, self.config.captions) for r in frame.to_dict("records")]
        return frame

    def objects(self, n: int, stream: str = "objects", web: bool = False) -> pd.DataFrame:
        """``n`` objects; ``web=True`` uses the skewed web region mix, else balanced regions."""
        frame = sample_objects(n, seed=self.seed, stream=stream,
                               region_weights=WEB_REGION_WEIGHTS if web else None)
        frame["caption"] = [object_caption(r) for r in frame.to_dict("records")]
        return frame

    def render(self, row: Mapping, crop: str = "full", size: int | None = None) -> Image.Image:
        """Render a person or object row (objects have an ``object`` field)."""
        size = size or self.config.image_size
        if "object" in row and isinstance(row["object"], str):
            return render_object(row, size)
        return render_person(row, size, crop)

    def render_many(self, rows: Iterable[Mapping], crop: str = "full", size: int | None = None) -> list[Image.Image]:
        """Render several rows in order."""
        return [self.render(r, crop, size) for r in rows]

    def conditionals(self) -> dict[str, pd.DataFrame]:
        """The tabled conditionals at this world's bias strength: gender, age level, race | occupation."""
        s = self.config.bias_strength
        return {"gender": gender_table(s), "age_level": age_level_table(s), "race": race_table(s)}


__all__ = [
    "AGE_BINS", "AGE_LEVELS", "GENDERS", "OBJECTS", "PLACES", "RACES", "REGIONS", "SKIN_TONES", "STYLES",
    "World", "occupations", "person_boxes",
]
