"""Shares corrected for classifier error, with bootstrap CIs that include the confusion matrix's uncertainty.

A classifier reads attribute labels with error. With ``M[t, c] = P(predicted c | true t)``
estimated on faces whose attribute is known (world renders, generated images whose prompt states
it, or a labelled set), the predicted-label shares ``q`` of a group relate to its true shares
``p`` by ``q = Mᵀ p``; the corrected share is ``p = (Mᵀ)⁻¹ q`` (matrix-method correction). For two
labels this is the Rogan–Gladen estimator ``p = (q + spec − 1) / (sens + spec − 1)``. Estimates
outside the simplex are clipped to it (negative parts set to 0, then renormalised; for two labels,
clipping to [0, 1]).

CIs (percentile bootstrap, ``n_boot`` draws, seeded): each draw resamples the group's classified
faces (multinomial on its predicted counts) *and* every row of the calibration confusion counts
(multinomial on that true label's predictions), then corrects. The raw share's CI resamples the
group only. Groups with no classified face and classifiers no better than chance
(``det M ≤ 0`` for two labels) are reported with a status, never divided by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from biaslib.metrics._checks import check_ci
from biaslib.metrics.intervals import percentile_interval

STATUS_OK, STATUS_EMPTY, STATUS_UNINFORMATIVE = "ok", "no_classified_face", "uninformative_classifier"


@dataclass(frozen=True)
class Confusion:
    """Calibration counts ``counts[t, c]`` = faces of true label ``labels[t]`` predicted as ``labels[c]``."""

    labels: tuple[str, ...]
    counts: np.ndarray

    @property
    def n(self) -> np.ndarray:
        """Faces per true label, ``(K,)``."""
        return self.counts.sum(axis=1)

    @property
    def rates(self) -> np.ndarray:
        """``P(predicted | true)``, rows summing to 1, ``(K, K)``."""
        return self.counts / self.n[:, None]

    def frame(self) -> pd.DataFrame:
        """The counts as a labelled DataFrame (index: true label, columns: predicted label)."""
        return pd.DataFrame(self.counts, index=pd.Index(self.labels, name="true"),
                            columns=pd.Index(self.labels, name="predicted"))


def estimate_confusion(true: Sequence[str], predicted: Sequence[str],
                       labels: Sequence[str] = ("man", "woman")) -> Confusion:
    """Count (true, predicted) pairs of calibration faces whose true label is known.

    Pairs where either label is not in ``labels`` (e.g. ``unsure``, a missing prediction) are
    left out. Raises ``ValueError`` when a true label has no calibration face.

    The ``unsure`` reading of the last woman is left out: one of two men and both women are read right.

    >>> confusion = estimate_confusion(["man", "man", "woman", "woman", "woman"],
    ...                                ["man", "woman", "woman", "woman", "unsure"])
    >>> confusion.counts.tolist(), confusion.rates.tolist()
    ([[1, 1], [0, 2]], [[0.5, 0.5], [0.0, 1.0]])
    """
    if len(true) != len(predicted):
        raise ValueError(f"true has {len(true)} labels but predicted has {len(predicted)}")
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in true])
    c = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in predicted])
    keep = (t >= 0) & (c >= 0)
    counts = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(counts, (t[keep], c[keep]), 1)
    empty = [labels[i] for i in np.flatnonzero(counts.sum(axis=1) == 0)]
    if empty:
        raise ValueError(f"no calibration face with true label {empty}; the confusion matrix needs every label")
    return Confusion(tuple(labels), counts)


def _project(p: np.ndarray) -> np.ndarray:
    """Rows of ``(..., K)`` with negative entries set to 0 and renormalised (NaN rows stay NaN)."""
    p = np.clip(p, 0.0, None)
    total = p.sum(axis=-1, keepdims=True)
    return np.divide(p, total, out=np.full_like(p, np.nan), where=total > 0)


def invert_shares(q: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """True shares from observed shares: solve ``Mᵀ p = q`` for ``q (..., K)``, ``rates (..., K, K)``.

    Two labels use the Rogan–Gladen form (NaN where ``det M ≤ 0``, a classifier no better than
    chance); more labels use a linear solve (NaN where ``M`` is singular). Results are clipped to
    the simplex.

    A reader with specificity 0.9 and sensitivity 0.8 reads a 50/50 group as 55/45 (Mᵀ p); inverting gives back
    50/50, and observed shares beyond the reader's reach are clipped (Rogan–Gladen would give −0.07 women).

    >>> import numpy as np
    >>> rates = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> np.round(invert_shares(np.array([[0.55, 0.45], [0.95, 0.05]]), rates), 3).tolist()
    [[0.5, 0.5], [1.0, 0.0]]
    >>> invert_shares(np.array([0.5, 0.5]), np.full((2, 2), 0.5)).tolist()  # a reader no better than chance
    [nan, nan]
    """
    q, rates = np.asarray(q, np.float64), np.asarray(rates, np.float64)
    if q.shape[-1] == 2:
        sens, spec = rates[..., 1, 1], rates[..., 0, 0]  # recall of label 1 and of label 0
        youden = sens + spec - 1.0
        p1 = np.divide(q[..., 1] + spec - 1.0, youden, out=np.full(np.broadcast(youden, q[..., 1]).shape, np.nan),
                       where=youden > 0)
        p1 = np.clip(p1, 0.0, 1.0)
        return np.stack([1.0 - p1, p1], axis=-1)
    transposed = np.swapaxes(rates, -1, -2)
    singular = np.abs(np.linalg.det(transposed)) < 1e-12
    safe = np.where(singular[..., None, None], np.eye(q.shape[-1]), transposed)
    shape = np.broadcast_shapes(q.shape, safe.shape[:-1])
    p = np.linalg.solve(np.broadcast_to(safe, shape + shape[-1:]), np.broadcast_to(q, shape)[..., None])[..., 0]
    return _project(np.where(singular[..., None], np.nan, p))


def rate_draws(confusion: Confusion, *, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of the confusion rates ``(B, K, K)``: each true label's row of counts resampled.

    Every drawn row sums to 1, and a row of perfect readings (all 4 women read as women) draws itself every time.

    >>> import numpy as np
    >>> confusion = Confusion(("man", "woman"), np.array([[3, 1], [0, 4]]))
    >>> draws = rate_draws(confusion, n_boot=5, rng=np.random.default_rng(0))
    >>> draws.shape, bool(np.allclose(draws.sum(axis=2), 1)), np.unique(draws[:, 1], axis=0).tolist()
    ((5, 2, 2), True, [[0.0, 1.0]])
    """
    return np.stack([rng.multinomial(confusion.n[t], confusion.rates[t], size=n_boot) for t in
                     range(len(confusion.labels))], axis=1) / confusion.n[None, :, None]


def share_draws(observed: np.ndarray, rates_drawn: np.ndarray, k: int,
                *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws ``(B, G)`` of label ``k``'s raw and corrected share per group of predicted counts
    ``observed`` ``(G, K)``: each group's counts resampled (multinomial), corrected with the matching draw
    of ``rates_drawn`` ``(B, K, K)``; NaN columns for groups without a count.

    With exact readings (identity rates) the corrected draws are the raw ones; a group of 3 women always draws a
    share of 1 and a group without faces NaN.

    >>> import numpy as np
    >>> observed, exact = np.array([[0, 3], [2, 2], [0, 0]]), np.broadcast_to(np.eye(2), (4, 2, 2))
    >>> raw, corrected = share_draws(observed, exact, 1, rng=np.random.default_rng(0))
    >>> raw[:, 0].tolist(), bool(np.array_equal(raw[:, 1], corrected[:, 1])), bool(np.isnan(raw[:, 2]).all())
    ([1.0, 1.0, 1.0, 1.0], True, True)
    """
    n_boot = len(rates_drawn)
    n = observed.sum(axis=1)
    raw = np.full((n_boot, len(observed)), np.nan)
    corrected = np.full((n_boot, len(observed)), np.nan)
    for row in np.flatnonzero(n > 0):
        q_draws = rng.multinomial(n[row], observed[row] / n[row], size=n_boot) / n[row]  # (B, K)
        raw[:, row] = q_draws[:, k]
        corrected[:, row] = invert_shares(q_draws, rates_drawn)[:, k]
    return raw, corrected


def corrected_shares(counts: pd.DataFrame, confusion: Confusion, *, label: str | None = None, n_boot: int = 1000,
                     seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Raw and error-corrected share of ``label`` per row of ``counts``, with bootstrap CIs.

    Parameters
    ----------
    counts : DataFrame
        One row per group (e.g. :func:`biaslib.faces.counts.face_counts`), with one column of
        predicted-face counts per label of ``confusion`` (``man``, ``woman``).
    confusion : Confusion
        Calibration counts from :func:`estimate_confusion`.
    label : the label whose share is reported (default: the last of ``confusion.labels``, ``woman``).
    n_boot, seed, ci : bootstrap draws, ``numpy.random.default_rng`` seed, interval level.

    Returns
    -------
    DataFrame
        ``counts`` plus ``classified`` (faces with a label), ``share_raw``, ``share_raw_low``,
        ``share_raw_high``, ``share_corrected``, ``share_corrected_low``, ``share_corrected_high``
        (shares in [0, 1]; NaN for a group with no classified face) and ``status`` (``ok``,
        ``no_classified_face``, ``uninformative_classifier``).

    Examples
    --------
    The reader of :func:`invert_shares`' example (specificity 9/10, sensitivity 8/10) reads 45 women in 100
    faces of a 50/50 group; a group without classified faces gets NaN and its status.

    >>> import numpy as np
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"man": [55, 0], "woman": [45, 0]}, index=["doctor", "nurse"])
    >>> out = corrected_shares(counts, Confusion(("man", "woman"), np.array([[9, 1], [2, 8]])), n_boot=50)
    >>> out[["share_raw", "share_corrected"]].round(3).to_numpy().tolist(), out["status"].tolist()
    ([[0.45, 0.5], [nan, nan]], ['ok', 'no_classified_face'])
    >>> bool(out["share_corrected_low"].iloc[0] <= 0.5 <= out["share_corrected_high"].iloc[0])
    True
    """
    check_ci(ci)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    labels = list(confusion.labels)
    label = label or labels[-1]
    if label not in labels:
        raise ValueError(f"label {label!r} is not one of the confusion labels {labels}")
    missing = [c for c in labels if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks label columns {missing}; it has {list(counts.columns)}")
    k = labels.index(label)
    observed = counts[labels].to_numpy(dtype=np.int64)
    if (observed < 0).any():
        raise ValueError("label counts must be non-negative")
    n = observed.sum(axis=1)
    q = np.divide(observed, n[:, None], out=np.full(observed.shape, np.nan), where=n[:, None] > 0)
    corrected = invert_shares(q, confusion.rates)

    rng = np.random.default_rng(seed)
    raw_draws, corrected_draws = share_draws(observed, rate_draws(confusion, n_boot=n_boot, rng=rng), k, rng=rng)

    out = counts.copy()
    out["classified"] = n
    out["share_raw"] = q[:, k]
    out["share_raw_low"], out["share_raw_high"] = percentile_interval(raw_draws, ci)
    out["share_corrected"] = corrected[:, k]
    out["share_corrected_low"], out["share_corrected_high"] = percentile_interval(corrected_draws, ci)
    informative = np.isfinite(invert_shares(np.full(len(labels), 1.0 / len(labels)), confusion.rates)).all()
    out["status"] = np.where(n == 0, STATUS_EMPTY, STATUS_OK if informative else STATUS_UNINFORMATIVE)
    out.attrs.update({"label": label, "n_boot": n_boot, "seed": seed, "ci": ci,
                      "confusion": confusion.counts.tolist(), "labels": labels})
    return out
