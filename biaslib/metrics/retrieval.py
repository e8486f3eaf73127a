"""Text→image retrieval hits (PHASE, COCO-bias; formats.md A6, A7).

Each caption ranks the whole image gallery by cosine similarity (every row of both matrices is
normalised on its own — the original divided all image rows by the norm of one row). The rank of
the caption's own image is the number of images scoring **higher than the own score by more than
:data:`TIE_ULPS` units of its last place** (relative float precision), so ties favour the target: an exact
duplicate of the own image, whose cosine can differ from the own one in the last bit depending on where
the matrix product puts it, never outranks it, on either backend; hit@k = rank < k. Similarities are
computed for ``chunk_size`` captions at a time, so memory is O(chunk_size × n_images) instead of the full
caption × image matrix. torch is imported only when this function runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import as_matrix, check_same_length, row_list, row_norms

#: Scores within this many units of the last place (eps · |own score|) of the own image's score count as ties.
TIE_ULPS = 4


def _threshold(own: np.ndarray) -> np.ndarray:
    """The score an image must exceed to rank above the own image: own + TIE_ULPS · eps · |own|."""
    return own + TIE_ULPS * np.finfo(own.dtype).eps * np.abs(own)


def _count_greater(sims: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Per row, how many entries of ``sims`` (chunk × n_images) exceed ``own`` (chunk × 1) beyond a tie."""
    return np.greater(sims, _threshold(own)).view(np.uint8).sum(axis=1, dtype=np.int64)


def _ranks_numpy(text: np.ndarray, image: np.ndarray, target: np.ndarray, chunk_size: int) -> np.ndarray:
    """0-based rank of each target: images with a strictly higher cosine (numpy)."""
    unit_image = image / row_norms(image, "image_emb")[:, None].astype(image.dtype)
    inv_text = 1.0 / row_norms(text, "text_emb")
    ranks = np.empty(len(text), dtype=np.int64)
    for start in range(0, len(text), chunk_size):
        stop = min(len(text), start + chunk_size)
        chunk = text[start:stop] * inv_text[start:stop, None].astype(text.dtype)
        sims = chunk @ unit_image.T
        ranks[start:stop] = _count_greater(sims, sims[np.arange(stop - start), target[start:stop], None])
    return ranks


def _ranks_torch(
    text: np.ndarray, image: np.ndarray, target: np.ndarray, chunk_size: int, device: str | None
) -> np.ndarray:
    """0-based rank of each target (torch; GPU when available or asked for)."""
    import torch

    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    image_t = torch.from_numpy(image).to(dev)
    unit_image = image_t / torch.linalg.vector_norm(image_t, dim=1, keepdim=True)
    text_t = torch.from_numpy(text)
    target_t = torch.from_numpy(target)
    ranks = np.empty(len(text), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(text), chunk_size):
            chunk = text_t[start:start + chunk_size].to(dev)
            chunk = chunk / torch.linalg.vector_norm(chunk, dim=1, keepdim=True)
            sims = chunk @ unit_image.T
            own = sims.gather(1, target_t[start:start + chunk_size, None].to(dev))
            if dev.type == "cpu":  # numpy's compare-and-count is several times faster on CPU
                ranks[start:start + chunk_size] = _count_greater(sims.numpy(), own.numpy())
            else:
                threshold = own + TIE_ULPS * torch.finfo(own.dtype).eps * own.abs()
                ranks[start:start + chunk_size] = (sims > threshold).sum(dim=1).cpu().numpy()
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
        higher cosine than the own image beyond a tie of :data:`TIE_ULPS` ulp, so ties favour it), optionally
        ``rank``.
        float32 inputs are scored in float32, anything else in float64.
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
