"""Bias amplification between a reference ("train") distribution and a model's outputs.

* :func:`bias_amplification` — Zhao et al. 2017 ("Men also like shopping") on attribute × task
  count tables.
* :func:`directional_bias_amplification` — Wang & Russakovsky 2021, BiasAmp→ in either direction,
  on per-item 0/1 indicator arrays (or probability rows).
* :func:`amplification_table` — both, on two tables of items (``train`` and a generator's), three ways:
  ``raw`` (the generator's attribute as read), ``corrected`` (each task's read shares corrected with the
  reader's confusion matrix, :mod:`biaslib.metrics.correction`) and ``faithful`` (what a generator that copies
  the data scores when read the same way — a misreading reader pulls every share to the middle, so ``raw``
  means something only against ``faithful``, ``corrected`` against 0), with percentile bootstrap intervals that
  resample the items of each side and the reader's calibration counts (the faithful baseline's draws also draw
  the read labels of a faithful generator's items).

Use them for a generator against its training data (attributes detected on generated images) or
for a CLIP model's retrievals against the data it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import check_ci, check_same_length
from biaslib.metrics.correction import Confusion, invert_shares, rate_draws
from biaslib.metrics.intervals import percentile_interval


def _attribute_shares(table: pd.DataFrame, name: str) -> np.ndarray:
    """b(o, g) = c(o, g) / Σ_g c(o, g), refusing negative counts and empty tasks."""
    counts = table.to_numpy(dtype=np.float64)
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"{name} counts must be finite and non-negative")
    totals = counts.sum(axis=1)
    empty = table.index[totals == 0].tolist()
    if empty:
        raise ValueError(f"{name} has tasks with no counts (share undefined): {empty}")
    return counts / totals[:, None]


def bias_amplification(train: pd.DataFrame, pred: pd.DataFrame) -> float:
    """Zhao et al. (2017) mean bias amplification.

    ``b(o, g) = c(o, g) / Σ_g c(o, g)`` for task (occupation) o and attribute value g;
    ``BiasAmp = 1/|O| · Σ_o Σ_{g : b_train(o,g) > 1/|G|} (b_pred(o, g) − b_train(o, g))``.
    With two attribute values and no exact 50/50 task this is the mean over the selected (o, g)
    pairs (one per task). Positive: the model exaggerates the training skew.

    Parameters
    ----------
    train : pd.DataFrame
        Counts, index = tasks, columns = attribute values (e.g. ``man``, ``woman``).
    pred : pd.DataFrame
        Counts in the model's outputs with the same task and attribute labels (any order).

    Returns
    -------
    float
        Bias amplification in share units (range [-1, 1]).

    Examples
    --------
    The data's doctors are 3 in 4 men, the model's 4 in 4: (1 − 0.75 + 0) / 2 tasks.

    >>> import pandas as pd
    >>> train = pd.DataFrame({"man": [3, 1], "woman": [1, 3]}, index=["doctor", "nurse"])
    >>> pred = pd.DataFrame({"man": [4, 1], "woman": [0, 3]}, index=["doctor", "nurse"])
    >>> bias_amplification(train, pred)
    0.125
    """
    if set(train.index) != set(pred.index) or set(train.columns) != set(pred.columns):
        raise ValueError(
            "train and pred must have the same tasks and attribute values; "
            f"tasks only in train {sorted(set(train.index) - set(pred.index), key=str)}, "
            f"only in pred {sorted(set(pred.index) - set(train.index), key=str)}; attribute values "
            f"train {list(train.columns)}, pred {list(pred.columns)}"
        )
    if train.shape[1] < 2:
        raise ValueError(f"need at least two attribute values, got {list(train.columns)}")
    b_train = _attribute_shares(train, "train")
    b_pred = _attribute_shares(pred.loc[train.index, train.columns], "pred")
    selected = b_train > 1.0 / train.shape[1]
    return float(((b_pred - b_train) * selected).sum() / len(train))


def _indicator(x: ArrayLike, name: str, soft: bool = False) -> tuple[np.ndarray, list[Any] | None]:
    """0/1 matrix (n × k), or with ``soft`` values in [0, 1], and its column names when given as a DataFrame."""
    names = list(x.columns) if isinstance(x, pd.DataFrame) else None
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (items × classes), got shape {arr.shape}")
    if soft and not ((arr >= 0.0) & (arr <= 1.0)).all():
        raise ValueError(f"{name} must contain values in [0, 1]")
    if not soft and not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return arr, names


def _conditional(attr: np.ndarray, task: np.ndarray, given: Literal["attribute", "task"]) -> np.ndarray:
    """P(T=t | A=a) (given="attribute") or P(A=a | T=t) (given="task"), shape (|A|, |T|).

    NaN where the conditioning class has no item.
    """
    joint = attr.T @ task
    with np.errstate(divide="ignore", invalid="ignore"):
        if given == "attribute":
            return joint / attr.sum(axis=0)[:, None]
        return joint / task.sum(axis=0)[None, :]


def directional_bias_amplification(
    train_attr: ArrayLike,
    train_task: ArrayLike,
    pred_attr: ArrayLike,
    pred_task: ArrayLike,
    direction: Literal["A->T", "T->A"] = "A->T",
    *,
    soft: bool = False,
) -> float:
    """Wang & Russakovsky (2021) directional bias amplification BiasAmp→ (share units): the mean of the
    ``contribution`` column of :func:`directional_amplification_table` over its defined cells.

    In the data, 3 of 4 women are cooks and 3 of 4 men doctors; a model that makes every woman a cook and every
    man a doctor moves each P(task | attribute) 0.25 the way of the data's association.

    >>> import numpy as np
    >>> attr = np.eye(2)[[0, 0, 0, 0, 1, 1, 1, 1]]  # columns: woman, man
    >>> task = np.eye(2)[[0, 0, 0, 1, 0, 1, 1, 1]]  # columns: cook, doctor
    >>> directional_bias_amplification(attr, task, attr, np.eye(2)[[0, 0, 0, 0, 1, 1, 1, 1]])
    0.25
    """
    table = directional_amplification_table(train_attr, train_task, pred_attr, pred_task, direction, soft=soft)
    return float(np.nanmean(table["contribution"].to_numpy(dtype=np.float64)))


def directional_amplification_table(
    train_attr: ArrayLike,
    train_task: ArrayLike,
    pred_attr: ArrayLike,
    pred_task: ArrayLike,
    direction: Literal["A->T", "T->A"] = "A->T",
    *,
    soft: bool = False,
) -> pd.DataFrame:
    """The cells of Wang & Russakovsky's (2021) directional bias amplification BiasAmp→, one row per (a, t).

    ``y_at = 1[P(A=a, T=t) > P(A=a) P(T=t)]`` on the reference (train) items;
    A→T: ``Δ_at = P(T̂=t | Â=a) − P(T=t | A=a)``; T→A: ``Δ_at = P(Â=a | T̂=t) − P(A=a | T=t)``,
    where hatted probabilities are taken over the model's items (``pred_*``) and the others over
    the reference items; ``BiasAmp→ = 1/(|A||T|) Σ_at [y_at Δ_at + (1 − y_at)(−Δ_at)]``.
    Cells whose conditioning class is empty are NaN and left out of the mean.

    For a classifier evaluated on a labelled set (the paper's setting) pass that set's ground
    truth as ``train_*`` and, for A→T, ``pred_attr`` = ground-truth attributes with
    ``pred_task`` = predicted tasks (for T→A, predicted attributes with ground-truth tasks).
    For a generator, ``pred_*`` describe its images (prompted task, detected attribute).

    Parameters
    ----------
    train_attr : array-like of 0/1, shape (n_train, |A|)
    train_task : array-like of 0/1, shape (n_train, |T|)
    pred_attr : array-like of 0/1, shape (n_pred, |A|)
    pred_task : array-like of 0/1, shape (n_pred, |T|)
        One-hot or multi-label indicators; DataFrames lend their column names to the table.
    direction : {"A->T", "T->A"}, default "A->T"
    soft : bool, default False
        Attribute rows may be probability vectors (values in [0, 1]): expected indicators, e.g. an
        attribute reading corrected for classifier error. Every probability is then taken over the
        expected counts (a joint of ``Σ attr ⊗ task``), which equals the hard-indicator value whenever the
        rows are 0/1.

    Returns
    -------
    pd.DataFrame
        Columns ``attribute``, ``task``, ``y``, ``delta``, ``contribution`` (share units), one row per (a, t);
        :func:`directional_bias_amplification` is the mean of ``contribution``.

    Examples
    --------
    In the data, 3 of 4 women are cooks and 3 of 4 men doctors; a model that makes every woman a cook and every
    man a doctor moves each P(task | attribute) 0.25 the way of the data's association, in each of the four cells.

    >>> import numpy as np
    >>> attr = np.eye(2)[[0, 0, 0, 0, 1, 1, 1, 1]]  # columns: woman, man
    >>> task = np.eye(2)[[0, 0, 0, 1, 0, 1, 1, 1]]  # columns: cook, doctor
    >>> table = directional_amplification_table(attr, task, attr, np.eye(2)[[0, 0, 0, 0, 1, 1, 1, 1]])
    >>> table["y"].tolist(), table["contribution"].tolist()
    ([1, 0, 0, 1], [0.25, 0.25, 0.25, 0.25])
    """
    if direction not in ("A->T", "T->A"):
        raise ValueError(f"direction must be 'A->T' or 'T->A', got {direction!r}")
    a_train, a_names = _indicator(train_attr, "train_attr", soft)
    t_train, t_names = _indicator(train_task, "train_task")
    a_pred, _ = _indicator(pred_attr, "pred_attr", soft)
    t_pred, _ = _indicator(pred_task, "pred_task")
    check_same_length(len(a_train), len(t_train), "train_attr", "train_task")
    check_same_length(len(a_pred), len(t_pred), "pred_attr", "pred_task")
    if a_train.shape[1] != a_pred.shape[1] or t_train.shape[1] != t_pred.shape[1]:
        raise ValueError(
            f"class counts differ: train has |A|={a_train.shape[1]}, |T|={t_train.shape[1]}; "
            f"pred has |A|={a_pred.shape[1]}, |T|={t_pred.shape[1]}"
        )
    n = len(a_train)
    y = (a_train.T @ t_train) / n > np.outer(a_train.mean(axis=0), t_train.mean(axis=0))
    given: Literal["attribute", "task"] = "attribute" if direction == "A->T" else "task"
    delta = _conditional(a_pred, t_pred, given) - _conditional(a_train, t_train, given)
    contribution = np.where(y, delta, -delta)
    n_a, n_t = y.shape
    return pd.DataFrame(
        {
            "attribute": np.repeat(a_names if a_names is not None else np.arange(n_a), n_t),
            "task": np.tile(t_names if t_names is not None else np.arange(n_t), n_a),
            "y": y.ravel().astype(np.int64),
            "delta": delta.ravel(),
            "contribution": contribution.ravel(),
        }
    )


# ---- generator vs its data, three readings --------------------------------------------------------

AMPLIFICATION_METRICS: tuple[str, ...] = ("bias_amplification", "directional_A->T", "directional_T->A")
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
    """The :data:`AMPLIFICATION_METRICS` of two (task × attribute) count tables ``(T, A)`` (counts may be fractional).

    Zhao's BiasAmp uses the tasks present on both sides (a resample can lose a rare task); NaN when none.
    Directional BiasAmp takes the tables as soft items (:func:`_soft_items`). Any NaN count → all NaN.
    """
    if not (np.isfinite(train).all() and np.isfinite(generated).all()):
        return dict.fromkeys(AMPLIFICATION_METRICS, float("nan"))
    present = (train.sum(axis=1) > 0) & (generated.sum(axis=1) > 0)
    frames = [pd.DataFrame(t[present], index=np.asarray(tasks, dtype=object)[present], columns=list(attributes))
              for t in (train, generated)]
    out = {"bias_amplification": bias_amplification(*frames) if present.any() else float("nan")}
    sides = [_soft_items(t) for t in (train, generated)]
    for direction in ("A->T", "T->A"):
        out[f"directional_{direction}"] = directional_bias_amplification(*sides[0], *sides[1], direction=direction,
                                                                         soft=True)
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
        One row per (metric of :data:`AMPLIFICATION_METRICS`, estimate of :data:`ESTIMATES`): ``metric``, ``estimate``,
        ``value`` (share units, in [-1, 1]; > 0: the generator exaggerates the data's skew), ``ci_low``,
        ``ci_high``, ``n_train``, ``n_generated``, ``tasks`` (number of tasks).

    Examples
    --------
    The data's doctors are 3 in 4 men, the generator's 4 in 4 (Zhao's BiasAmp (1 − 0.75 + 0) / 2 tasks); with
    exact readings ``corrected`` is ``raw`` and a faithful generator scores 0.

    >>> import pandas as pd
    >>> train = pd.DataFrame({"occupation": ["doctor"] * 4 + ["nurse"] * 4, "gender": list("mmmwmwww")})
    >>> generated = pd.DataFrame({"occupation": ["doctor"] * 4 + ["nurse"] * 4, "gender": list("mmmmmwww")})
    >>> table = amplification_table(train, generated, n_boot=20)
    >>> table[table["metric"] == "bias_amplification"]["value"].round(3).tolist()
    [0.125, 0.125, 0.0]
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
    rates_drawn = (rate_draws(aligned, n_boot=n_boot, rng=rng) if aligned is not None
                   else np.broadcast_to(rates, (n_boot, n_a, n_a)))
    draws = {(m, e): np.empty(n_boot) for m in AMPLIFICATION_METRICS for e in ESTIMATES}
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
            for m in AMPLIFICATION_METRICS for e in ESTIMATES]
    return pd.DataFrame(rows)
