"""Input checks shared by the metric modules (private)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

_SHOW_ROWS = 5


def row_list(rows: np.ndarray) -> str:
    """Format the first few row indices of ``rows`` for an error message."""
    shown = ", ".join(str(int(r)) for r in rows[:_SHOW_ROWS])
    return f"[{shown}{', …' if len(rows) > _SHOW_ROWS else ''}] ({len(rows)} in all)"


def check_same_length(n_a: int, n_b: int, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` naming both lengths when they differ."""
    if n_a != n_b:
        raise ValueError(f"length mismatch: {name_a} has {n_a} rows but {name_b} has {n_b}")


def as_matrix(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a 2-D float array; float32 stays float32, anything else becomes float64."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows × dimensions), got shape {arr.shape}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64, copy=False)
    return arr


def row_norms(emb: np.ndarray, name: str) -> np.ndarray:
    """Euclidean norm of every row (float64), refusing rows with NaN/inf values or zero norm.

    One pass over ``emb``: a NaN or inf anywhere in a row makes its squared norm non-finite.
    """
    squared = np.einsum("ij,ij->i", emb, emb).astype(np.float64)
    not_finite = np.flatnonzero(~np.isfinite(squared))
    if len(not_finite):
        raise ValueError(f"{name} has NaN or infinite values in rows {row_list(not_finite)}")
    zero = np.flatnonzero(squared == 0)
    if len(zero):
        raise ValueError(f"{name} has rows of zero norm (cosine undefined): rows {row_list(zero)}")
    return np.sqrt(squared)


def check_finite_vector(values: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming the positions of NaN/inf entries of a 1-D array."""
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"{name} has NaN or infinite values at positions {row_list(bad)}")


def check_ci(ci: float) -> None:
    """Confidence level must lie strictly between 0 and 1."""
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must lie strictly between 0 and 1, got {ci}")
