"""Generator-vs-data bias amplification with bootstrap CIs, and its figure for the amplification study.

A generator amplifies bias when the attribute × task skew of its images exceeds that of the data it
was trained on. Both sides are tables of items (people), one row each, with a ``task`` column (the
occupation the image shows, or was prompted for) and an ``attribute`` column (perceived gender).
:func:`amplification_table` reports Zhao et al.'s :func:`~biaslib.metrics.bias_amplification` on the
attribute × task count tables and Wang & Russakovsky's
:func:`~biaslib.metrics.directional_bias_amplification` in both directions, with percentile bootstrap
CIs that resample the items of each side independently (with replacement, same sizes).

:func:`study_people` gives those two tables for an experiment of the amplification study (real people
of the web data vs the people of its generated images: simulator ground truth or the world's attribute
classifier); :func:`study_amplification` runs it for several experiments and
:func:`amplification_figure` draws them side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import Params
from biaslib.metrics import bias_amplification, directional_bias_amplification
from biaslib.metrics._checks import check_ci
from biaslib.metrics.intervals import percentile_interval

METRICS: tuple[str, ...] = ("bias_amplification", "directional_A->T", "directional_T->A")


def _codes(frame: pd.DataFrame, column: str, values: Sequence[Any]) -> np.ndarray:
    """Position of each row's ``column`` value in ``values``, ``(n,)`` int."""
    index = {v: i for i, v in enumerate(values)}
    return frame[column].map(index).to_numpy(dtype=np.int64)


def _metrics(train: tuple[np.ndarray, np.ndarray], generated: tuple[np.ndarray, np.ndarray],
             attributes: Sequence[Any], tasks: Sequence[Any]) -> dict[str, float]:
    """The :data:`METRICS` of coded items: each side is (task codes, attribute codes), both ``(n,)``.

    Zhao's BiasAmp uses the tasks present on both sides (a resample can lose a rare task); NaN when none.
    """
    n_t, n_a = len(tasks), len(attributes)
    tables = []
    for task, attribute in (train, generated):
        counts = np.bincount(task * n_a + attribute, minlength=n_t * n_a).reshape(n_t, n_a)
        tables.append(pd.DataFrame(counts, index=list(tasks), columns=list(attributes)))
    present = (tables[0].sum(axis=1) > 0) & (tables[1].sum(axis=1) > 0)
    zhao = bias_amplification(tables[0][present], tables[1][present]) if present.any() else float("nan")
    eye_a, eye_t = np.eye(n_a), np.eye(n_t)
    sides = [(eye_a[a], eye_t[t]) for t, a in (train, generated)]
    out = {"bias_amplification": zhao}
    for direction in ("A->T", "T->A"):
        value = directional_bias_amplification(*sides[0], *sides[1], direction=direction)["value"]
        out[f"directional_{direction}"] = value
    return out


def amplification_table(train: pd.DataFrame, generated: pd.DataFrame, *, task: str = "occupation",
                        attribute: str = "gender", n_boot: int = 500, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Bias amplification of ``generated`` items against ``train`` items, with bootstrap CIs.

    Parameters
    ----------
    train, generated : one row per item with ``task`` and ``attribute`` columns. Items whose task or
        attribute is missing are dropped; only tasks and attribute values seen in ``train`` count
        (generated items of other tasks or values are dropped: the metrics compare like with like).
    n_boot, seed, ci : bootstrap draws (items of each side resampled independently, with replacement),
        ``numpy.random.default_rng`` seed, interval level.

    Returns
    -------
    DataFrame
        One row per metric of :data:`METRICS`: ``metric``, ``value`` (share units, in [-1, 1]; > 0: the
        generator exaggerates the data's skew), ``ci_low``, ``ci_high``, ``n_train``, ``n_generated``,
        ``tasks`` (number of tasks).
    """
    check_ci(ci)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    for name, frame in (("train", train), ("generated", generated)):
        missing = [c for c in (task, attribute) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}; it has {list(frame.columns)}")
    train = train.dropna(subset=[task, attribute])
    tasks = sorted(train[task].unique(), key=str)
    attributes = sorted(train[attribute].unique(), key=str)
    generated = generated[generated[task].isin(tasks) & generated[attribute].isin(attributes)]
    if len(attributes) < 2 or len(generated) == 0:
        raise ValueError(f"need two attribute values in train and generated items of its tasks; got attribute "
                         f"values {attributes} and {len(generated)} generated items")
    sides = [(_codes(f, task, tasks), _codes(f, attribute, attributes)) for f in (train, generated)]
    point = _metrics(sides[0], sides[1], attributes, tasks)
    rng = np.random.default_rng(seed)
    draws = {m: np.empty(n_boot) for m in METRICS}
    for b in range(n_boot):
        resampled = []
        for t, a in sides:
            pick = rng.integers(0, len(t), size=len(t))
            resampled.append((t[pick], a[pick]))
        for metric, value in _metrics(*resampled, attributes, tasks).items():
            draws[metric][b] = value
    rows = [{"metric": m, "value": point[m], **dict(zip(("ci_low", "ci_high"), percentile_interval(draws[m], ci))),
             "n_train": len(train), "n_generated": len(generated), "tasks": len(tasks)} for m in METRICS]
    return pd.DataFrame(rows)


def study_people(params: Params, world: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real, generated) people of an amplification-study experiment, each with ``occupation`` and ``gender``.

    Real: the world's web (CC3M-like) people with an occupation (ground truth). Generated: the people of
    the experiment's generation run (:func:`biaslib.study.generated_dir`) with their ``labels`` source;
    the simulator's images of those captions (ground truth), or a learned generator's images that the
    world's classifier reads as someone with an occupation (as notebook 01 compares them).
    """
    from biaslib.study import data_dir, generated_dir
    from biaslib.world import World
    from biaslib.world.export import cc3m_table
    from biaslib.world.measure import generated_attributes

    world = world or World(params.world, params.seed)
    web = cc3m_table(world, params.export.cc3m_samples)
    web["key"] = pd.read_parquet(data_dir(params) / "cc3m" / "captions.parquet")["key"]
    real = web[(web["kind"] == "person") & (web["occupation"] != "none")]
    generated = generated_attributes(generated_dir(params), world, params.runs_dir / "cache")
    if generated["labels"].iloc[0] == "classifier":
        generated = generated[generated["occupation"] != "none"]
    else:
        generated = generated[generated["key"].isin(real["key"])]
    return real[["key", "occupation", "gender"]], generated[["key", "occupation", "gender", "labels"]]


def study_amplification(experiments: Sequence[Params], *, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """:func:`amplification_table` of every experiment (its real vs generated people, :func:`study_people`).

    Returns its rows plus ``experiment``, ``generator`` (``generate.model``, γ for the simulator) and
    ``labels`` (``simulator`` or ``classifier``).
    """
    parts = []
    for params in experiments:
        real, generated = study_people(params)
        table = amplification_table(real, generated, n_boot=n_boot, seed=seed)
        model = params.generate.model
        generator = f"simulator γ={params.generate.amplification:g}" if model == "simulator" else str(model)
        parts.append(table.assign(experiment=params.experiment, generator=generator,
                                  labels=generated["labels"].iloc[0]))
    return pd.concat(parts, ignore_index=True)


def amplification_figure(frame: pd.DataFrame, x: str = "experiment") -> Any:
    """Bars of each metric per ``x`` value with 95% CIs (one panel per metric), a line at 0 (no amplification)."""
    from biaslib import figures

    fig = figures.group_bars(frame, col="metric", x=x, ylabel="amplification (share units)",
                             title="generator vs its training data: gender × occupation amplification (95% CI)")
    for ax in fig.axes:
        ax.axhline(0.0, color="0.3", lw=0.8, ls="--")
    return fig


__all__ = ["METRICS", "amplification_figure", "amplification_table", "study_amplification", "study_people"]
