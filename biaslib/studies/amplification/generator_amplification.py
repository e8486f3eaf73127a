"""Generator-vs-data bias amplification in the amplification study, and its figure.

A generator amplifies bias when the attribute × task skew of its images exceeds that of the data it was
trained on. The measure itself, :func:`~biaslib.metrics.amplification.amplification_table` (raw, corrected
for the reader's errors, and a faithful generator's baseline, with intervals), lives in
:mod:`biaslib.metrics.amplification` and is re-exported here. This module supplies the study's two sides:
:func:`study_people` (real people of the web data vs the people of an experiment's generated images, the task
being the occupation of the caption that prompted each image), :func:`reader_confusion` (the world
classifier's confusion on renders degraded like the images), :func:`study_amplification` (every experiment)
and :func:`amplification_figure`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from biaslib.config import Params
from biaslib.layout import RunLayout
from biaslib.metrics.amplification import AMPLIFICATION_METRICS as METRICS
from biaslib.metrics.amplification import ESTIMATES, amplification_table
from biaslib.metrics.correction import Confusion


def study_people(params: Params, world: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real, generated) people of an amplification-study experiment, each with ``occupation`` and ``gender``.

    Real: the world's web (CC3M-like) people with an occupation (ground truth). Generated: the images of the
    experiment's generation run (``RunLayout(params).generated()``) of those people's captions that state an
    occupation, with that occupation (the prompted task; images of captions without one are left out) and the
    gender shown: the simulator's record (``labels`` =
    ``simulator``, ground truth) or the world classifier's reading of a learned generator's image
    (``classifier``; correct it with :func:`reader_confusion`).
    """
    from biaslib.world import World
    from biaslib.world.export import cc3m_table
    from biaslib.world.simulator import parse_prompt
    from biaslib.world_models.measure import generated_attributes

    world = world or World(params.world, params.seed)
    web = cc3m_table(world, params.export.cc3m_samples)
    layout = RunLayout(params)
    web["key"] = pd.read_parquet(layout.captions / "captions.parquet")["key"]
    real = web[(web["kind"] == "person") & (web["occupation"] != "none")]
    generated = generated_attributes(layout.generated(), world, layout.cache)
    prompted = generated["prompt"].map(lambda prompt: parse_prompt(str(prompt)).get("occupation"))
    generated = generated.assign(occupation=prompted)[prompted.notna() & generated["key"].isin(real["key"])]
    return real[["key", "occupation", "gender"]], generated[["key", "occupation", "gender", "labels"]]


def reader_confusion(params: Params, generated: pd.DataFrame, world: Any = None, n: int = 1000) -> Confusion | None:
    """The gender confusion of whoever read ``generated`` (:func:`study_people`): None for the simulator's
    ground truth; for the world classifier its confusion on ``n`` world renders degraded through the generated
    images' size (:func:`biaslib.faces.world_confusion.render_confusion`)."""
    if generated["labels"].iloc[0] != "classifier":
        return None
    from biaslib.data.generated import load_generated_images
    from biaslib.faces.world_confusion import render_confusion, through_resolution
    from biaslib.world import World

    world = world or World(params.world, params.seed)
    layout = RunLayout(params)
    first = load_generated_images(layout.generated(), [generated["key"].iloc[0]])
    return render_confusion(world, layout.cache, n=n,
                            resolution=through_resolution(list(first.values()), world))


def study_amplification(experiments: Sequence[Params], *, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """:func:`amplification_table` of every experiment (its real vs generated people, :func:`study_people`,
    a classifier's readings corrected with :func:`reader_confusion`).

    Returns its rows plus ``experiment``, ``generator`` (``generate.model``, γ for the simulator) and
    ``labels`` (``simulator`` or ``classifier``).
    """
    parts = []
    for params in experiments:
        real, generated = study_people(params)
        table = amplification_table(real, generated, confusion=reader_confusion(params, generated), n_boot=n_boot,
                                    seed=seed)
        model = params.generate.model
        generator = f"simulator γ={params.generate.amplification:g}" if model == "simulator" else str(model)
        parts.append(table.assign(experiment=params.experiment, generator=generator,
                                  labels=generated["labels"].iloc[0]))
    return pd.concat(parts, ignore_index=True)


def amplification_figure(frame: pd.DataFrame, x: str = "experiment") -> Any:
    """Bars of each metric per ``x`` value with 95% CIs (one panel per metric; bars: the raw reading, the
    corrected one and the faithful generator's baseline), a line at 0 (no amplification)."""
    from biaslib import figures

    fig = figures.group_bars(frame, col="metric", x=x, hue="estimate" if "estimate" in frame.columns else None,
                             ylabel="amplification (share units)",
                             title="generator vs its training data: gender × occupation amplification (95% CI; "
                                   "faithful: a generator that copies the data, read the same way)")
    for ax in fig.axes:
        ax.axhline(0.0, color="0.3", lw=0.8, ls="--")
    return fig


__all__ = ["ESTIMATES", "METRICS", "amplification_figure", "amplification_table", "reader_confusion",
           "study_amplification", "study_people"]
