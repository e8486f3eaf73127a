"""Image→text retrieval (CLIP_benchmark's ``image_retrieval_recall@k`` direction reversed: its
``text_retrieval_recall@k``): each image is a query over every caption, and it is a hit at k when any of its own
captions ranks among the k highest.

An image's rank is the number of captions scoring strictly higher than its best own caption, with scores computed
in float64 (no float32 rounding decides a rank); a caption tied with the best own one does not push it down, as in
a stable order that puts the image's own captions first. CLIP_benchmark ranks with ``torch.topk`` on float32
scores, whose order among exact ties is unspecified; away from ties the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def image_to_text_ranks(image_emb: np.ndarray, text_emb: np.ndarray, caption_image: np.ndarray,
                        chunk_size: int = 1024) -> np.ndarray:
    """0-based rank of each image's best own caption among all captions, shape (n_images,) int (rows of both
    embeddings normalised here; ``caption_image[t]`` is caption t's image row). Every image needs a caption. Memory:
    the captions in float64 (n_texts × d × 8 bytes) and ``chunk_size`` × n_texts scores.

    >>> image = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> text = np.array([[0.0, 1.0], [1.0, 0.1], [0.9, 0.5]])
    >>> image_to_text_ranks(image, text, np.array([0, 0, 1])).tolist()
    [0, 1]
    """
    images, texts = _unit(image_emb), _unit(text_emb)
    owner = np.asarray(caption_image)
    if images.ndim != 2 or texts.ndim != 2 or images.shape[1] != texts.shape[1] or owner.shape != (len(texts),):
        raise ValueError(f"need image (I, d), text (T, d) and caption_image (T,); got {images.shape}, "
                         f"{texts.shape} and {owner.shape}")
    if len(owner) and (owner.min() < 0 or owner.max() >= len(images)):
        raise ValueError(f"caption_image holds rows outside 0…{len(images) - 1}")
    uncaptioned = np.setdiff1d(np.arange(len(images)), owner)
    if len(uncaptioned):
        raise ValueError(f"{len(uncaptioned)} image(s) without a caption (rows {uncaptioned[:5].tolist()}…)")
    ranks = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(images), chunk_size):
        stop = min(start + chunk_size, len(images))
        scores = images[start:stop] @ texts.T  # (chunk, T)
        best = np.full(stop - start, -np.inf)
        mine = np.flatnonzero((owner >= start) & (owner < stop))
        np.maximum.at(best, owner[mine] - start, scores[owner[mine] - start, mine])
        ranks[start:stop] = (scores > best[:, None]).sum(axis=1)
    return ranks


def image_to_text_hits(image_emb: np.ndarray, text_emb: np.ndarray, caption_image: np.ndarray,
                       ks: Sequence[int] = (1, 5, 10), chunk_size: int = 1024) -> pd.DataFrame:
    """Per-image 0/1 hits ``R@k`` (one column per k): any own caption among the k highest-scoring captions
    (:func:`image_to_text_ranks` < k).

    >>> image_to_text_hits(np.eye(2), np.array([[0.0, 1.0], [1.0, 0.1], [0.9, 0.5]]), np.array([0, 0, 1]),
    ...                    ks=(1,))["R@1"].tolist()
    [1.0, 0.0]
    """
    if not ks or any(isinstance(k, bool) or int(k) != k or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    ranks = image_to_text_ranks(image_emb, text_emb, caption_image, chunk_size)
    return pd.DataFrame({f"R@{k}": (ranks < k).astype(np.float64) for k in ks})


__all__ = ["image_to_text_hits", "image_to_text_ranks"]
