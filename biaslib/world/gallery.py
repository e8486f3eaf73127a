"""Pick and render world samples for figures: controlled attribute sweeps and per-category examples.

These helpers keep notebooks thin: each returns images plus labels that
:func:`biaslib.figures.image_grid` lays out.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from PIL import Image

from biaslib.world import World
from biaslib.world.attributes import AGE_LEVELS, GENDERS, PLACES, SKIN_TONES, STYLES
from biaslib.world.distribution import OBJECTS, REGIONS


def examples_by(
    world: World, frame: pd.DataFrame, column: str, values: Sequence[str], per_value: int
) -> tuple[list, list[str]]:
    """Up to ``per_value`` rendered examples of each value of ``column`` (rows of ``frame``, in order).

    Returns (images row-major, one row per value, blanks as ``None``; row labels).
    """
    images: list[Image.Image | None] = []
    for value in values:
        rows = frame[frame[column] == value].head(per_value).to_dict("records")
        images += world.render_many(rows) + [None] * (per_value - len(rows))
    return images, list(values)


def attribute_sweep(world: World, base_stream: str = "gallery") -> tuple[list[Image.Image], list[str], list[str]]:
    """One person per (gender × age level) row and skin tone column, other attributes fixed.

    Every cell re-renders the same base person with only gender, age and skin changed, so the grid
    shows exactly the cues that carry those attributes.
    """
    base = world.people(1, stream=base_stream, occupations=["teacher"]).iloc[0].to_dict()
    base.update(place="home", style="photo", dressing="work clothes")
    ages = {"child": "3-9", "young": "20-29", "adult": "40-49", "senior": "more than 70"}
    images, rows = [], []
    for gender in GENDERS:
        for level in AGE_LEVELS:
            rows.append(f"{gender}, {level}")
            for tone in SKIN_TONES:
                person = {**base, "gender": gender, "age_level": level, "age": ages[level], "skin_tone": tone,
                          "hair_long": gender == "woman", "occupation": "none" if level == "child" else "teacher"}
                images.append(world.render(person))
    return images, rows, [f"skin {t}" for t in SKIN_TONES]


def style_place_sweep(world: World, stream: str = "gallery/styles") -> tuple[list[Image.Image], list[str], list[str]]:
    """The same person in every style (rows) and place (columns)."""
    base = world.people(1, stream=stream, occupations=["doctor"]).iloc[0].to_dict()
    images = [world.render({**base, "style": s, "place": p}) for s in STYLES for p in PLACES]
    return images, list(STYLES), list(PLACES)


def object_sweep(world: World, stream: str = "gallery/objects") -> tuple[list[Image.Image], list[str], list[str]]:
    """Every object class (rows) as it typically looks in every region (columns)."""
    seeds = world.objects(len(OBJECTS) * len(REGIONS), stream=stream)["render_seed"]
    images = []
    for i, obj in enumerate(OBJECTS):
        for j, region in enumerate(REGIONS):
            seed = int(seeds.iloc[i * len(REGIONS) + j])
            images.append(world.render({"object": obj, "region": region, "look_region": region, "render_seed": seed}))
    return images, list(OBJECTS), list(REGIONS)


def most_skewed(table: pd.DataFrame, column: str = "woman", k: int = 10) -> list[str]:
    """The ``k`` rows with the highest and the ``k`` lowest ``column`` (e.g. p(woman | o)), without ``none``."""
    ranked = table.drop(index="none", errors="ignore")[column].sort_values(ascending=False)
    return list(ranked.index[:k]) + list(ranked.index[-k:])


def browser(world: World, frame: pd.DataFrame, max_images: int = 12):
    """An ipywidgets browser: pick occupation, gender, age level and skin tone; shows matching samples.

    ``frame`` is a people table (e.g. the web caption set); returns the widget to display.
    """
    import ipywidgets as widgets

    def choices(column: str) -> list:
        return ["any", *sorted(frame[column].dropna().unique().tolist())]

    columns = ("occupation", "gender", "age_level", "skin_tone")
    controls = {c: widgets.Dropdown(options=choices(c), description=c) for c in columns}
    output = widgets.Output()

    def update(_=None) -> None:
        sel = frame
        for column, control in controls.items():
            if control.value != "any":
                sel = sel[sel[column] == control.value]
        rows = sel.head(max_images).to_dict("records")
        output.clear_output(wait=True)
        with output:
            from IPython.display import display

            from biaslib.figures import image_grid

            print(f"{len(sel)} matching samples; showing {len(rows)} with their captions")
            if rows:
                import matplotlib.pyplot as plt

                fig = image_grid(world.render_many(rows), ncols=min(6, len(rows)), cell_inches=1.3)
                display(fig)
                plt.close(fig)  # shown once, here; an open figure would be drawn again and kept per change
                for r in rows:
                    print("-", r["caption"])

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return widgets.VBox([widgets.HBox(list(controls.values())[:2]), widgets.HBox(list(controls.values())[2:]), output])
