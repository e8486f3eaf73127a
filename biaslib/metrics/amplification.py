"""Bias amplification between a reference ("train") distribution and a model's outputs.

* :func:`bias_amplification` — Zhao et al. 2017 ("Men also like shopping") on attribute × task
  count tables.
* :func:`directional_bias_amplification` — Wang & Russakovsky 2021, BiasAmp→ in either direction,
  on per-item 0/1 indicator arrays.

Use them for a generator against its training data (attributes detected on generated images) or
for a CLIP model's retrievals against the data it was trained on.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import check_same_length


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
) -> dict[str, Any]:
    """Wang & Russakovsky (2021) directional bias amplification BiasAmp→.

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
    dict
        ``value`` (float, share units) and ``table`` (DataFrame with columns ``attribute``,
        ``task``, ``y``, ``delta``, ``contribution``, one row per (a, t)).
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
    table = pd.DataFrame(
        {
            "attribute": np.repeat(a_names if a_names is not None else np.arange(n_a), n_t),
            "task": np.tile(t_names if t_names is not None else np.arange(n_t), n_a),
            "y": y.ravel().astype(np.int64),
            "delta": delta.ravel(),
            "contribution": contribution.ravel(),
        }
    )
    return {"value": float(np.nanmean(contribution)), "table": table}
