"""Ranking skew of a retrieval: MaxSkew@k and NDKL (Geyik et al. 2019, as Berg et al. 2022 use them for CLIP).

For each text query the images are ranked by similarity, highest first; equal scores keep the images' order
(the earlier image ranks first), so a ranking never depends on the sort algorithm. With ``groups`` the label of
each image and ``D`` the desired distribution over the G labels present in ``groups``:

* ``"uniform"``: D(a) = 1/G; ``"dataset"``: D(a) = the share of label a in ``groups``.
* Skew_a@k = ln(p_k(a) / D(a)), p_k(a) = the share of label a among the top k. MaxSkew@k = the maximum over the
  labels present in the top k (an absent label has Skew = −∞ and is never the maximum), so MaxSkew@k ≥ 0
  for the uniform D and for the dataset D alike (some label's top-k share is at least its desired share).
* NDKL@k = Σ_{i=1..k} KL(p_i ‖ D) / log2(i + 1) / Z, Z = Σ_{i=1..k} 1 / log2(i + 1), with KL in nats and
  0 · ln 0 = 0: 0 when every prefix of the ranking has the desired shares, larger the more skewed the top.

Where this differs from oxai/debias-vision-lang's code (the implementation most CLIP-bias papers quote): it
keeps every image tied with the k-th score in the "top k" while dividing by k; it replaces a zero top-k share by
1/k before the log; it clips MaxSkew at 0; and its default k is the whole dataset, where the dataset-desired
skew is 0 by construction. Here the top k are exactly k images, absent labels are left out of the maximum,
nothing is clipped, and k is always the caller's (capped at the number of images).

All functions take ``scores`` of shape (queries, images) (any real similarity; NaN is refused) and ``groups`` of
shape (images,); they return one value per query, shape (queries,).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Desired = Literal["uniform", "dataset"]


def _ranked_counts(scores: np.ndarray, groups: np.ndarray, k: int, desired: Desired
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """(cumulative label counts of each query's top 1…k, shape (queries, k, G); desired shares, shape (G,); k)."""
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.asarray(groups)
    if scores.ndim != 2 or groups.ndim != 1 or scores.shape[1] != len(groups):
        raise ValueError(f"scores must be (queries, images) and groups (images,), got {scores.shape} and "
                         f"{groups.shape}")
    if len(groups) == 0:
        raise ValueError("no images to rank")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; a ranking needs every similarity")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if desired not in ("uniform", "dataset"):
        raise ValueError(f"desired must be 'uniform' or 'dataset', got {desired!r}")
    k = min(int(k), len(groups))
    labels, codes = np.unique(groups, return_inverse=True)
    target = (np.full(len(labels), 1.0 / len(labels)) if desired == "uniform"
              else np.bincount(codes, minlength=len(labels)) / len(codes))
    # stable sort of the negated scores: highest first, ties in image order
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    onehot = np.eye(len(labels))[codes[order]]  # (queries, k, G)
    return np.cumsum(onehot, axis=1), target, k


def skew_at_k(scores: np.ndarray, groups: np.ndarray, k: int, desired: Desired = "uniform") -> np.ndarray:
    """Skew_a@k of every label (columns in sorted label order), shape (queries, G); −inf for a label absent
    from the top k.

    Images f, f, m, m ranked in that order against a uniform ½: the top 2 are all f, Skew_f = ln(1 / ½) = ln 2 and
    m is absent; the top 3 give ln(⅔ / ½) = ln(4/3) and ln(⅓ / ½) = ln(2/3).

    >>> import numpy as np
    >>> scores, groups = np.array([[0.9, 0.8, 0.7, 0.1]]), np.array(["f", "f", "m", "m"])
    >>> np.round(skew_at_k(scores, groups, 2), 3).tolist(), np.round(skew_at_k(scores, groups, 3), 3).tolist()
    ([[0.693, -inf]], [[0.288, -0.405]])
    """
    counts, target, k = _ranked_counts(scores, groups, k, desired)
    with np.errstate(divide="ignore"):
        return np.log(counts[:, -1, :] / k / target)


def max_skew(scores: np.ndarray, groups: np.ndarray, k: int, desired: Desired = "uniform") -> np.ndarray:
    """MaxSkew@k of each query, shape (queries,) (see the module docstring).

    The top 2 of f, f, m, m are all f: ln(1 / ½) = ln 2; the top 4 are the whole, balanced set: 0.

    >>> import numpy as np
    >>> scores, groups = np.array([[0.9, 0.8, 0.7, 0.1]]), np.array(["f", "f", "m", "m"])
    >>> np.round(max_skew(scores, groups, 2), 3).tolist(), max_skew(scores, groups, 4).tolist()
    ([0.693], [0.0])
    """
    return skew_at_k(scores, groups, k, desired).max(axis=1)


def ndkl(scores: np.ndarray, groups: np.ndarray, k: int, desired: Desired = "uniform") -> np.ndarray:
    """NDKL@k of each query, shape (queries,) (see the module docstring).

    Query 0 ranks f, f first: both prefixes have KL(p ‖ ½, ½) = ln 2, and so has their weighted mean. Query 1
    ranks f, m: only the first prefix is skewed, ln 2 · 1 / (1 + 1/log2 3) ≈ 0.425.

    >>> import numpy as np
    >>> scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.7, 0.8, 0.1]])
    >>> np.round(ndkl(scores, np.array(["f", "f", "m", "m"]), 2), 3).tolist()
    [0.693, 0.425]
    """
    counts, target, k = _ranked_counts(scores, groups, k, desired)
    shares = counts / np.arange(1, k + 1)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(shares > 0, shares * np.log(shares / target), 0.0)
    weights = 1.0 / np.log2(np.arange(2, k + 2))
    return terms.sum(axis=2) @ weights / weights.sum()


def top_k_share(scores: np.ndarray, positive: np.ndarray, k: int) -> np.ndarray:
    """Share of images with ``positive`` (bool, shape (images,)) among each query's top k, shape (queries,)
    (the ranking of the module docstring; k capped at the number of images).

    >>> import numpy as np
    >>> scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.7, 0.8, 0.1]])
    >>> positive = np.array([True, True, False, False])
    >>> top_k_share(scores, positive, 2).tolist(), top_k_share(scores, positive, 10).tolist()
    ([1.0, 0.5], [0.5, 0.5])
    """
    labels = np.asarray(positive, dtype=bool)
    counts, _, k = _ranked_counts(scores, labels, k, "uniform")
    if len(np.unique(labels)) == 1:  # one label only: every top k is all of it
        return np.full(len(counts), float(labels[0]))
    return counts[:, -1, 1] / k  # column 1 is True (sorted labels)


def directional_excess(top_share: np.ndarray, data_share: np.ndarray) -> np.ndarray:
    """Retrieval-vs-data amplification per query: (top-k share − data share) · sign(data share − ½), so a
    positive value means the retrieval is *more* stereotyped than the data in the data's own direction (an
    occupation with mostly women in the data retrieves still more women); 0 where the data is at ½.

    Data at 0.8 retrieved at 0.9 is amplified (+0.1), at 0.7 softened (−0.1); data at 0.2 retrieved at 0.1 is
    amplified too (+0.1, toward its own side).

    >>> import numpy as np
    >>> np.round(directional_excess(np.array([0.9, 0.7, 0.1, 0.7]), np.array([0.8, 0.8, 0.2, 0.5])), 3).tolist()
    [0.1, -0.1, 0.1, 0.0]
    """
    top, data = np.asarray(top_share, dtype=np.float64), np.asarray(data_share, dtype=np.float64)
    return (top - data) * np.sign(data - 0.5)


__all__ = ["directional_excess", "max_skew", "ndkl", "skew_at_k", "top_k_share"]
