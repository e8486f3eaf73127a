"""Generator-vs-data bias amplification with bootstrap CIs, and its figure for the amplification study.

A generator amplifies bias when the attribute × task skew of its images exceeds that of the data it
was trained on. Both sides are tables of items (people), one row each, with a ``task`` column (the
occupation the image was prompted for) and an ``attribute`` column (gender: ground truth for the data,
the classifier's reading for the images). :func:`amplification_table` reports Zhao et al.'s
:func:`~biaslib.metrics.bias_amplification` on the attribute × task count tables and Wang & Russakovsky's
:func:`~biaslib.metrics.directional_bias_amplification` in both directions, three ways (column
``estimate``):

* ``raw``: the classifier's readings as they are;
* ``corrected``: each task's read shares corrected with the classifier's confusion matrix (the matrix
  method of :mod:`biaslib.faces.correction`), what the generator itself does;
* ``faithful``: the baseline, what a generator that reproduces the data exactly (p(attribute | task) of
  the data, the same prompted tasks and numbers) scores when read by the same classifier. A misreading
  classifier pulls every share toward the middle, so ``raw`` is negative even for a faithful generator:
  ``raw`` means something only against ``faithful``; ``corrected`` against 0.

Intervals are percentile bootstrap intervals that resample the items of each side independently (with
replacement, same sizes) and the classifier's calibration counts (each true label's row); the faithful
baseline's draws also draw the read labels of a faithful generator's items.

:func:`study_people` gives the two tables for an experiment of the amplification study (real people of the
web data vs the people of its generated images, the task being the occupation of the caption that prompted
each image); :func:`study_amplification` runs it for several experiments (the world classifier's confusion on
renders degraded like the images corrects a learned generator's readings) and :func:`amplification_figure`
draws them side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import Params
from biaslib.faces.correction import Confusion, invert_shares, rate_draws
from biaslib.metrics import bias_amplification, directional_bias_amplification
from biaslib.metrics._checks import check_ci
from biaslib.metrics.intervals import percentile_interval

METRICS: tuple[str, ...] = ("bias_amplification", "directional_A->T", "directional_T->A")
#: The three readings of every metric (module docstring).
ESTIMATES: tuple[str, ...] = ("raw", "corrected", "faithful")


def _codes(frame: pd.DataFrame, column: str, values: Sequence[Any]) -> np.ndarray:
    """Position of each row's ``column`` value in ``values``, ``(n,)`` int."""
    index = {v: i for i, v in enumerate(values)}
    return frame[column].map(index).to_numpy(dtype=np.int64)


def _joint(task: np.ndarray, attribute: np.ndarray, n_tasks: int, n_attributes: int) -> np.ndarray:
    """Item counts per (task, attribute value) ``(T, A)`` of coded items ``(n,)``."""
    return np.bincount(task * n_attributes + attribute, minlength=n_tasks * n_attributes).reshape(n_tasks,
                                                                                                  n_attributes)


def _soft_items(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(attribute rows, task one-hots) of items with task totals ``table.sum(1)`` (rounded; corrected tables
    keep each task's total) whose attribute row is the task's share vector: their expected joint is ``table``."""
    totals = np.rint(table.sum(axis=1)).astype(np.int64)
    shares = np.divide(table, table.sum(axis=1, keepdims=True), out=np.zeros(table.shape),
                       where=table.sum(axis=1, keepdims=True) > 0)
    rows = np.repeat(np.arange(len(table)), totals)
    return shares[rows], np.eye(len(table))[rows]


def _metrics(train: np.ndarray, generated: np.ndarray, attributes: Sequence[Any],
             tasks: Sequence[Any]) -> dict[str, float]:
    """The :data:`METRICS` of two (task × attribute) count tables ``(T, A)`` (counts may be fractional).

    Zhao's BiasAmp uses the tasks present on both sides (a resample can lose a rare task); NaN when none.
    Directional BiasAmp takes the tables as soft items (:func:`_soft_items`). Any NaN count → all NaN.
    """
    if not (np.isfinite(train).all() and np.isfinite(generated).all()):
        return dict.fromkeys(METRICS, float("nan"))
    present = (train.sum(axis=1) > 0) & (generated.sum(axis=1) > 0)
    frames = [pd.DataFrame(t[present], index=np.asarray(tasks, dtype=object)[present], columns=list(attributes))
              for t in (train, generated)]
    out = {"bias_amplification": bias_amplification(*frames) if present.any() else float("nan")}
    sides = [_soft_items(t) for t in (train, generated)]
    for direction in ("A->T", "T->A"):
        out[f"directional_{direction}"] = directional_bias_amplification(*sides[0], *sides[1], direction=direction,
                                                                         soft=True)["value"]
    return out


def _corrected(table: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Read counts per task ``(T, A)`` corrected with confusion rates ``(A, A)`` (rows: true, columns: read):
    each task's total times its corrected share vector; NaN rows where no correction exists (Youden's J ≤ 0)."""
    totals = table.sum(axis=1, keepdims=True)
    q = np.divide(table, totals, out=np.full(table.shape, 0.5), where=totals > 0)
    return invert_shares(q, rates) * totals


def _faithful(train: np.ndarray, generated_totals: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Expected read counts ``(T, A)`` of a faithful generator: ``generated_totals`` ``(T,)`` items per task with
    the data's p(attribute | task) (a task without data: no item), read through ``rates``."""
    totals = train.sum(axis=1, keepdims=True)
    p = np.divide(train, totals, out=np.zeros(train.shape), where=totals > 0)
    return (p @ rates) * np.where(totals[:, 0] > 0, generated_totals, 0)[:, None]


def _aligned_rates(confusion: Confusion | None, attributes: Sequence[Any]) -> tuple[np.ndarray, Confusion | None]:
    """The confusion's rates with rows and columns in ``attributes`` order (identity without one), and the
    confusion with its labels in that order (for drawing)."""
    if confusion is None:
        return np.eye(len(attributes)), None
    labels = [str(v) for v in confusion.labels]
    if sorted(labels) != sorted(map(str, attributes)):
        raise ValueError(f"the confusion's labels {labels} are not the attribute values {list(attributes)}")
    order = [labels.index(str(a)) for a in attributes]
    counts = np.asarray(confusion.counts)[np.ix_(order, order)]
    aligned = Confusion(tuple(attributes), counts)
    return aligned.rates, aligned


def amplification_table(train: pd.DataFrame, generated: pd.DataFrame, *, task: str = "occupation",
                        attribute: str = "gender", confusion: Confusion | None = None, n_boot: int = 500,
                        seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Bias amplification of ``generated`` items against ``train`` items, raw, corrected and its faithful baseline.

    Parameters
    ----------
    train, generated : one row per item with ``task`` and ``attribute`` columns (generated: the prompted task
        and the read attribute). Items whose task or attribute is missing are dropped; only tasks and
        attribute values seen in ``train`` count (generated items of other tasks or values are dropped: the
        metrics compare like with like).
    confusion : the reader's confusion (true × read counts, labels = the attribute values); None: exact
        readings (``corrected`` = ``raw``, ``faithful`` is the sampling-only baseline).
    n_boot, seed, ci : bootstrap draws (module docstring), ``numpy.random.default_rng`` seed, interval level.

    Returns
    -------
    DataFrame
        One row per (metric of :data:`METRICS`, estimate of :data:`ESTIMATES`): ``metric``, ``estimate``,
        ``value`` (share units, in [-1, 1]; > 0: the generator exaggerates the data's skew), ``ci_low``,
        ``ci_high``, ``n_train``, ``n_generated``, ``tasks`` (number of tasks).
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
    rates, aligned = _aligned_rates(confusion, attributes)
    n_t, n_a = len(tasks), len(attributes)
    sides = [(_codes(f, task, tasks), _codes(f, attribute, attributes)) for f in (train, generated)]

    def estimates(train_table: np.ndarray, read: np.ndarray, rates: np.ndarray,
                  faithful_read: np.ndarray) -> dict[str, dict[str, float]]:
        return {"raw": _metrics(train_table, read, attributes, tasks),
                "corrected": _metrics(train_table, _corrected(read, rates), attributes, tasks),
                "faithful": _metrics(train_table, faithful_read, attributes, tasks)}

    train_table, read = (_joint(t, a, n_t, n_a) for t, a in sides)
    point = estimates(train_table, read, rates, _faithful(train_table, read.sum(axis=1), rates))
    rng = np.random.default_rng(seed)
    rates_drawn = (rate_draws(aligned, n_boot, rng) if aligned is not None
                   else np.broadcast_to(rates, (n_boot, n_a, n_a)))
    draws = {(m, e): np.empty(n_boot) for m in METRICS for e in ESTIMATES}
    for b in range(n_boot):
        tables = []
        for t, a in sides:
            pick = rng.integers(0, len(t), size=len(t))
            tables.append(_joint(t[pick], a[pick], n_t, n_a))
        expected = _faithful(tables[0], tables[1].sum(axis=1), rates_drawn[b])
        faithful_read = np.stack([rng.multinomial(int(round(row.sum())), row / row.sum()) if row.sum() > 0
                                  else np.zeros(n_a, np.int64) for row in expected])
        for e, values in estimates(tables[0], tables[1], rates_drawn[b], faithful_read).items():
            for m, value in values.items():
                draws[(m, e)][b] = value
    rows = [{"metric": m, "estimate": e, "value": point[e][m],
             **dict(zip(("ci_low", "ci_high"), percentile_interval(draws[(m, e)], ci))),
             "n_train": len(train), "n_generated": len(generated), "tasks": n_t}
            for m in METRICS for e in ESTIMATES]
    return pd.DataFrame(rows)


def study_people(params: Params, world: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real, generated) people of an amplification-study experiment, each with ``occupation`` and ``gender``.

    Real: the world's web (CC3M-like) people with an occupation (ground truth). Generated: the images of the
    experiment's generation run (:func:`biaslib.study.generated_dir`) of those people's captions, with the
    caption's occupation (the prompted task) and the gender shown: the simulator's record (``labels`` =
    ``simulator``, ground truth) or the world classifier's reading of a learned generator's image
    (``classifier``; correct it with :func:`reader_confusion`).
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
    generated = generated.drop(columns="occupation").merge(real[["key", "occupation"]], on="key")
    return real[["key", "occupation", "gender"]], generated[["key", "occupation", "gender", "labels"]]


def reader_confusion(params: Params, generated: pd.DataFrame, world: Any = None, n: int = 1000) -> Confusion | None:
    """The gender confusion of whoever read ``generated`` (:func:`study_people`): None for the simulator's
    ground truth; for the world classifier its confusion on ``n`` world renders degraded through the generated
    images' size (:func:`biaslib.faces.world_confusion.render_confusion`)."""
    if generated["labels"].iloc[0] != "classifier":
        return None
    from biaslib.faces.world_confusion import render_confusion, through_resolution
    from biaslib.generate import load_generated_images
    from biaslib.study import generated_dir
    from biaslib.world import World

    world = world or World(params.world, params.seed)
    first = load_generated_images(generated_dir(params), [generated["key"].iloc[0]])
    return render_confusion(world, params.runs_dir / "cache", n=n,
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
