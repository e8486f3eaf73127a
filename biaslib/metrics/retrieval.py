"""Text→image retrieval hits (PHASE, COCO-bias; formats.md A6, A7).

Each caption ranks the whole image gallery by cosine similarity (every row of both matrices is
normalised on its own — the original divided all image rows by the norm of one row). The rank of
the caption's own image is the number of images whose cosine with the caption is **higher than the own
image's**, ties favouring the own image; hit@k = rank < k.

Rounding cannot decide a rank. The fast product (float32 for float32 inputs, torch or numpy, CPU or GPU)
errs by at most :func:`tie_window` ``/ 2`` per cosine of unit vectors of dimension d (the worst-case bound
of a d-term dot product and of the normalisation, whatever the cosine), so an image decided by it lies more
than that window above or below the own score. The few images within the window are scored again in float64
on the CPU by one routine (row-wise products summed in a fixed order, so identical rows give identical
cosines): an exact duplicate of the own image ties with it and never outranks it, and both backends give the
same ranks. (A relative window of a few ulps of the own score, used until 2026-12-06, was too narrow for
cosines near 0: a duplicate of the own image outranked it for 8.5% of captions whose own cosine was < 0.05.)
Similarities are computed for ``chunk_size`` captions at a time, so memory is O(chunk_size × n_images);
torch is imported only when this function runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import as_matrix, check_same_length, row_list, row_norms


def tie_window(dim: int, dtype: np.dtype | type) -> float:
    """Twice the worst-case rounding error of one cosine of unit vectors of dimension ``dim`` computed in
    ``dtype``: (4·dim + 16)·eps. Two cosines that differ by more than this are in the right order.

    >>> import numpy as np
    >>> tie_window(4, np.float64) == 32 * 2.0**-52, tie_window(1, np.float32) == 20 * 2.0**-23
    (True, True)
    """
    return (4 * dim + 16) * float(np.finfo(dtype).eps)


class _Refiner:
    """Cosines in float64 of chosen (caption, image) pairs, each computed the same way for identical rows; only the
    rows of those pairs are widened (the few near the own score), never whole matrices."""

    def __init__(self, text: np.ndarray, image: np.ndarray, target: np.ndarray) -> None:
        self.text, self.image, self.target = text, image, target
        self.window = tie_window(text.shape[1], np.float64)

    def cosines(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.multiply(_unit_rows(self.text[rows]), _unit_rows(self.image[cols])).sum(axis=1)

    def count_above(self, chunk_rows: np.ndarray, near_rows: np.ndarray, near_cols: np.ndarray) -> np.ndarray:
        """Per caption of a chunk (``chunk_rows``, its captions' rows), how many of the pairs ``near_rows`` (indices
        into the chunk) × ``near_cols`` (images) other than its own image score above its own image in float64."""
        rows = chunk_rows[near_rows]
        keep = near_cols != self.target[rows]
        rows, near_rows, near_cols = rows[keep], near_rows[keep], near_cols[keep]
        above = self.cosines(rows, near_cols) > self.cosines(rows, self.target[rows]) + self.window
        return np.bincount(near_rows[above], minlength=len(chunk_rows))


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    """``emb`` (k, d) in float64 with each row divided by its norm, summed in a fixed order (identical rows,
    identical results)."""
    wide = emb.astype(np.float64)
    return wide / np.sqrt(np.multiply(wide, wide).sum(axis=1))[:, None]


def _ranks_from_sims(sims: np.ndarray, own: np.ndarray, rows: np.ndarray, refiner: _Refiner) -> np.ndarray:
    """Ranks of one chunk (numpy): images surely above the own score, plus those within the window that float64
    puts above it. ``sims`` (chunk × n_images), ``own`` (chunk × 1), ``rows`` the chunk's caption rows."""
    window = tie_window(refiner.text.shape[1], sims.dtype)
    ranks = np.greater(sims, own + window).view(np.uint8).sum(axis=1, dtype=np.int64)
    within = np.greater_equal(sims, own - window).view(np.uint8).sum(axis=1, dtype=np.int64) - ranks
    unsure = np.flatnonzero(within > 1)  # the own image is always within its window; rows with others are rare
    near_rows, near_cols = np.nonzero(np.abs(sims[unsure] - own[unsure]) <= window)
    return ranks + refiner.count_above(rows, unsure[near_rows], near_cols)


def _ranks_numpy(text: np.ndarray, image: np.ndarray, target: np.ndarray, chunk_size: int) -> np.ndarray:
    """0-based rank of each target (numpy)."""
    refiner = _Refiner(text, image, target)
    unit_image = image / row_norms(image, "image_emb")[:, None].astype(image.dtype)
    inv_text = 1.0 / row_norms(text, "text_emb")
    ranks = np.empty(len(text), dtype=np.int64)
    for start in range(0, len(text), chunk_size):
        stop = min(len(text), start + chunk_size)
        chunk = text[start:stop] * inv_text[start:stop, None].astype(text.dtype)
        sims = chunk @ unit_image.T
        own = sims[np.arange(stop - start), target[start:stop], None]
        ranks[start:stop] = _ranks_from_sims(sims, own, np.arange(start, stop), refiner)
    return ranks


def _ranks_torch(
    text: np.ndarray, image: np.ndarray, target: np.ndarray, chunk_size: int, device: str | None
) -> np.ndarray:
    """0-based rank of each target (torch; GPU when available or asked for)."""
    import torch

    refiner = _Refiner(text, image, target)
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    image_t = torch.from_numpy(image).to(dev)
    unit_image = image_t / torch.linalg.vector_norm(image_t, dim=1, keepdim=True)
    text_t = torch.from_numpy(text)
    target_t = torch.from_numpy(target)
    window = tie_window(text.shape[1], text.dtype)
    ranks = np.empty(len(text), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(text), chunk_size):
            stop = min(len(text), start + chunk_size)
            chunk = text_t[start:stop].to(dev)
            chunk = chunk / torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            sims = chunk @ unit_image.T
            own = sims.gather(1, target_t[start:stop, None].to(dev))
            rows = np.arange(start, stop)
            if dev.type == "cpu":  # numpy's compare-and-count is several times faster on CPU
                ranks[start:stop] = _ranks_from_sims(sims.numpy(), own.numpy(), rows, refiner)
                continue
            near = torch.nonzero((sims - own).abs() <= window).cpu().numpy()
            ranks[start:stop] = ((sims > own + window).sum(dim=1).cpu().numpy()
                                 + refiner.count_above(rows, near[:, 0], near[:, 1]))
    return ranks


def retrieval_hits(
    text_emb: ArrayLike,
    image_emb: ArrayLike,
    text_image_index: ArrayLike,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
    device: str | None = None,
    backend: Literal["torch", "numpy"] | None = None,
    return_rank: bool = False,
) -> pd.DataFrame:
    """Per-caption text→image retrieval hits at several cut-offs.

    Parameters
    ----------
    text_emb : array-like, shape (n_texts, d)
        Caption embeddings (rows normalised here).
    image_emb : array-like, shape (n_images, d)
        Gallery image embeddings (rows normalised here).
    text_image_index : array-like of int, shape (n_texts,)
        Row of ``image_emb`` that is caption i's own image. A pandas Series keeps its index as
        the index of the result.
    ks : sequence of int, default (1, 5, 10)
        Cut-offs; one 0/1 column ``R@k`` each.
    chunk_size : int, default 1024
        Captions scored per step; peak memory ≈ chunk_size × n_images similarities.
    device : str, optional
        torch device ("cpu", "cuda", "cuda:1", …); default CUDA when available, else CPU.
    backend : {"torch", "numpy"}, optional
        Default torch if it can be imported, else numpy. Both give the same ranks.
    return_rank : bool, default False
        Also return the 0-based rank in a ``rank`` column.

    Returns
    -------
    pd.DataFrame
        One row per caption: int columns ``R@k`` (1 when rank < k, rank = number of images with a
        higher cosine than the own image, ties favouring it, decided in float64 where rounding could; see the
        module docstring), optionally ``rank``.
        float32 inputs are scored in float32, anything else in float64.

    Examples
    --------
    Caption 0's own image is an exact duplicate of image 0 (a tie, which favours the own image: rank 0); caption
    1's own image (1, 1) is beaten by image 1, which points exactly along the caption (rank 1).

    >>> import numpy as np
    >>> text = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> images = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    >>> retrieval_hits(text, images, np.array([3, 2]), ks=(1, 2), backend="numpy", return_rank=True).to_dict("list")
    {'R@1': [1, 0], 'R@2': [1, 1], 'rank': [0, 1]}
    """
    text = as_matrix(text_emb, "text_emb")
    image = as_matrix(image_emb, "image_emb")
    if text.shape[1] != image.shape[1]:
        raise ValueError(f"text_emb has dimension {text.shape[1]} but image_emb has {image.shape[1]}")
    if text.dtype != image.dtype:
        text, image = text.astype(np.float64), image.astype(np.float64)
    target = np.asarray(text_image_index)
    check_same_length(len(text), len(target), "text_emb", "text_image_index")
    if target.ndim != 1 or not np.issubdtype(target.dtype, np.integer):
        raise ValueError("text_image_index must be a 1-D array of integer image rows")
    outside = np.flatnonzero((target < 0) | (target >= len(image)))
    if len(outside):
        raise ValueError(f"text_image_index outside [0, {len(image)}) at positions {row_list(outside)}")
    cutoffs = [int(k) for k in ks]
    if not cutoffs or min(cutoffs) < 1:
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    target = target.astype(np.int64)
    if backend is None:
        backend = "torch" if importlib.util.find_spec("torch") is not None else "numpy"
    if backend == "torch":
        row_norms(text, "text_emb")
        row_norms(image, "image_emb")
        ranks = _ranks_torch(text, image, target, chunk_size, device)
    elif backend == "numpy":
        ranks = _ranks_numpy(text, image, target, chunk_size)
    else:
        raise ValueError(f"backend must be 'torch' or 'numpy', got {backend!r}")
    columns = {f"R@{k}": (ranks < k).astype(np.int64) for k in cutoffs}
    if return_rank:
        columns["rank"] = ranks
    index = text_image_index.index if isinstance(text_image_index, pd.Series) else None
    return pd.DataFrame(columns, index=index)
