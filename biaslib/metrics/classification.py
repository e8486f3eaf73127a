"""Zero-shot classification measures as CLIP_benchmark reports them (``acc1``, ``acc5``, ``mean_per_class_recall``),
per item so that they take group intervals and gap tests like every other 0/1 or score value.

* :func:`top_k_correct` — whether the true class is among an item's k highest scores (CLIP_benchmark's ``acc@k``
  is its mean; its ``torch.topk`` breaks ties by position as the stable order here does).
* :func:`mean_per_class_recall` — the mean over the classes present of the share of each class's items predicted
  as that class (CLIP_benchmark's ``mean_per_class_recall``, computed there with scikit-learn's
  ``balanced_accuracy_score``).
* :func:`recall_weights` — per-item weights that make a group's mean of ``weight × correct`` its own mean per-class
  recall, so group rows, gaps and tests come from :func:`biaslib.evaluations.rows.mean_rows` unchanged (the
  bootstrap then holds each group's class counts fixed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_k_correct(scores: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """1.0 where ``truth[i]`` (class index) is among the ``k`` highest of ``scores[i]`` (N, C), else 0.0; shape (N,).
    Ties at the k-th score keep the lower class index (a stable order); ``k`` is capped at C.

    >>> top_k_correct(np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]), np.array([2, 2]), 2).tolist()
    [1.0, 0.0]
    """
    scores, truth = np.asarray(scores, dtype=np.float64), np.asarray(truth)
    if scores.ndim != 2 or truth.shape != (len(scores),):
        raise ValueError(f"scores must be (N, C) and truth (N,), got {scores.shape} and {truth.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if len(truth) and (truth.min() < 0 or truth.max() >= scores.shape[1]):
        raise ValueError(f"truth holds class indices outside 0…{scores.shape[1] - 1}")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :min(int(k), scores.shape[1])]
    return (top == truth[:, None]).any(axis=1).astype(np.float64)


def mean_per_class_recall(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The mean over the classes in ``truth`` of the share of their items ``predicted`` as them (NaN for no items).

    >>> mean_per_class_recall(np.array([0, 0, 1, 1, 1, 0]), np.array([0, 0, 0, 0, 1, 1]))
    0.5
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape or predicted.ndim != 1:
        raise ValueError(f"predicted and truth must be (N,) alike, got {predicted.shape} and {truth.shape}")
    if not len(truth):
        return float("nan")
    correct = pd.Series(predicted == truth)
    return float(correct.groupby(truth).mean().mean())


def recall_weights(truth: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Weights (N,) with mean over each group's items of ``weight × (predicted == truth)`` equal to that group's
    :func:`mean_per_class_recall`: an item of class c in group g weighs n_g / (C_g · n_{g,c}) (n_g items and C_g
    classes in g, n_{g,c} of them of class c). ``groups`` None: one group.

    >>> recall_weights(np.array(["a", "a", "a", "b"])).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    truth = np.asarray(truth)
    groups = np.zeros(len(truth), dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != truth.shape or truth.ndim != 1:
        raise ValueError(f"truth and groups must be (N,) alike, got {truth.shape} and {groups.shape}")
    frame = pd.DataFrame({"group": groups, "truth": truth})
    in_group = frame.groupby("group")["truth"].transform("size")
    classes = frame.groupby("group")["truth"].transform("nunique")
    in_class = frame.groupby(["group", "truth"])["truth"].transform("size")
    return (in_group / (classes * in_class)).to_numpy(dtype=np.float64)


__all__ = ["mean_per_class_recall", "recall_weights", "top_k_correct"]
