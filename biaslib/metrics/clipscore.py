"""CLIP score and raw cosine of image–text pairs.

Two conventions are in use: the *CLIP score* ``100 · max(cos, 0)`` (torchmetrics' ``CLIPScore``; Hessel et
al. 2021 use the weight 2.5 instead of 100) and the *raw cosine* that MAGBIG's and mm-debias' scripts average
(formats.md C7: no scaling, no clipping at 0). biaslib reports both.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from biaslib.metrics._checks import as_matrix, row_norms


def paired_cosine(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cosine similarity of row i of ``a`` with row i of ``b``.

    Parameters
    ----------
    a, b : array-like, shape (n, d)
        Paired embeddings (any norm; rows are normalised).

    Returns
    -------
    ndarray of float64, shape (n,)
        Cosines in [-1, 1] (the raw score the MAGBIG/mm-debias scripts average).

    Examples
    --------
    Orthogonal, opposite, and a 3-4-5 pair (cos = 24 / 25); the rows' lengths do not matter.

    >>> import numpy as np
    >>> a, b = np.array([[1, 0], [1, 0], [3, 4]]), np.array([[0, 2], [-1, 0], [4, 3]])
    >>> np.round(paired_cosine(a, b), 3).tolist()
    [0.0, -1.0, 0.96]
    """
    left = as_matrix(a, "image_emb")
    right = as_matrix(b, "text_emb")
    if left.shape != right.shape:
        raise ValueError(f"image_emb has shape {left.shape} but text_emb has shape {right.shape}")
    dots = np.einsum("ij,ij->i", left, right).astype(np.float64)
    return dots / (row_norms(left, "image_emb") * row_norms(right, "text_emb"))


def clip_score(image_emb: ArrayLike, text_emb: ArrayLike) -> np.ndarray:
    """CLIP score ``100 · max(cos(image_i, text_i), 0)`` per pair (torchmetrics' convention, not formats.md C7).

    Parameters
    ----------
    image_emb : array-like, shape (n, d)
        Image embeddings.
    text_emb : array-like, shape (n, d)
        Text embeddings, row i paired with image i.

    Returns
    -------
    ndarray of float64, shape (n,)
        Scores in [0, 100]; average them for a per-prompt or per-model score. MAGBIG's evaluation
        (formats.md C7) averages the raw cosine instead: :func:`paired_cosine`.

    Examples
    --------
    The pairs of :func:`paired_cosine`'s example: the negative cosine counts as 0.

    >>> import numpy as np
    >>> image, text = np.array([[1, 0], [1, 0], [3, 4]]), np.array([[0, 2], [-1, 0], [4, 3]])
    >>> np.round(clip_score(image, text), 3).tolist()
    [0.0, 0.0, 96.0]
    """
    return 100.0 * np.maximum(paired_cosine(image_emb, text_emb), 0.0)
