"""Visual semantic markedness: self-similarity and person preference (formats.md A8, A9, D).

The original study estimated both with 10,000-iteration Monte Carlo loops; here the estimands are
computed exactly in O(n·d):

* self-similarity of group g = mean cosine over pairs of distinct members,
  ``S_g = (‖Σ u_i‖² − n_g) / (n_g (n_g − 1))`` with ``u_i`` the row-normalised embeddings;
  the original's 22 draws *with replacement* estimate ``‖ū‖² = ((n_g − 1) S_g + 1) / n_g`` instead
  (``with_replacement=True``), which is biased upward for small groups;
* person preference of group g = share of g's images whose most similar label is the unmarked one
  (balanced down-sampling in the original has this same expectation).

:func:`self_similarity_mc` re-implements the sampling estimator as a cross-check.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import as_matrix, check_ci, check_same_length, row_norms
from biaslib.metrics.groups import GroupLabels, by_group, factorize_groups, summary_frame
from biaslib.metrics.intervals import percentile_interval, z_value

# Rows of the embedding matrix per BLAS call when summing unit vectors by group.
_ROW_CHUNK = 16384
# Elements held at once by the bootstrap weights (8 bytes each with the draws) and by the Monte
# Carlo gathers; large chunks keep the (replicates × members) @ (members × d) product efficient.
_CHUNK_ELEMENTS = 1 << 24


def _prepare(emb: ArrayLike, groups: GroupLabels) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.Index, int]:
    """Validated embeddings, 1/row norm (float64), group codes, group index, dropped count."""
    matrix = as_matrix(emb, "emb")
    inv_norm = 1.0 / row_norms(matrix, "emb")
    codes, index, dropped = factorize_groups(groups, len(matrix))
    return matrix, inv_norm, codes, index, dropped


def _members(codes: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices of every group, in index order."""
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes[codes >= 0], minlength=n_groups)
    bounds = np.concatenate([[0], np.cumsum(counts)]) + (len(codes) - counts.sum())
    return [order[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


def _unit_group_sums(emb: np.ndarray, inv_norm: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Σ u_i per group, shape (n_groups, d), float64.

    Row chunks are summed by a (groups × chunk) weight matrix in the embeddings' dtype (BLAS, no
    normalised copy of ``emb``); the chunk sums are accumulated in float64.
    """
    sums = np.zeros((n_groups, emb.shape[1]))
    for start in range(0, len(emb), _ROW_CHUNK):
        chunk_codes = codes[start:start + _ROW_CHUNK]
        rows = np.flatnonzero(chunk_codes >= 0)
        weights = np.zeros((n_groups, len(chunk_codes)), dtype=emb.dtype)
        weights[chunk_codes[rows], rows] = inv_norm[start + rows]
        sums += weights @ emb[start:start + _ROW_CHUNK]
    return sums


def _dot_with_group_sum(emb: np.ndarray, inv_norm: np.ndarray, codes: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``u_i · Σ_{j∈g(i)} u_j`` for every item (0 where the label is missing), float64."""
    sums_t = sums.T.astype(emb.dtype)
    dots = np.zeros(len(emb))
    for start in range(0, len(emb), _ROW_CHUNK):
        chunk_codes = codes[start:start + _ROW_CHUNK]
        rows = np.flatnonzero(chunk_codes >= 0)
        scores = emb[start:start + _ROW_CHUNK] @ sums_t
        dots[start + rows] = scores[rows, chunk_codes[rows]] * inv_norm[start + rows]
    return dots


def _u_statistic_se(dots: np.ndarray, codes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Standard error of S_g from the Hoeffding decomposition of the U-statistic.

    ``Var(S_g) ≈ 4/n_g · Var(h1)`` with ``h1(u_i) = u_i · (Σu − u_i) / (n_g − 1)``, the mean cosine
    of member i with the other members (= (dots_i − 1)/(n_g − 1) for unit vectors); Var(h1) is the
    sample variance (ddof 1) over members. The neglected term is O(1/n_g²). NaN for n_g < 3.
    """
    keep = codes >= 0
    g = codes[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        h1 = (dots[keep] - 1.0) / (n[g] - 1)
        mean_h1 = np.bincount(g, weights=h1, minlength=len(n)) / n
        var_h1 = np.bincount(g, weights=(h1 - mean_h1[g]) ** 2, minlength=len(n)) / (n - 1)
        se = np.sqrt(4.0 * var_h1 / n)
    se[n < 3] = np.nan
    return se


def _bootstrap_replicates(unit: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of S for one group of unit vectors ``unit`` (n × d).

    A resample of n draws with replacement is summarised by its counts w (multinomial). The
    replicate is the mean cosine over pairs of draws that are *distinct items*, each item pair
    weighted by the product of its counts:
    ``(‖Σ w_i u_i‖² − Σ w_i²) / (n² − Σ w_i²)``
    (pairs of draws of the same item, whose cosine is 1, are left out exactly as S leaves out
    i = j). ``Σ w_i u_i`` is a (replicates × n) @ (n × d) product done in chunks in the dtype of
    ``unit``; a resample of a single repeated item gives NaN (ignored by the percentiles).
    """
    n = len(unit)
    replicates = np.empty(n_boot)
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, step):
        b = min(n_boot, start + step) - start
        draws = rng.integers(0, n, size=(b, n), dtype=np.uint32)
        counts = np.empty((b, n), dtype=unit.dtype)
        for row in range(b):
            counts[row] = np.bincount(draws[row], minlength=n)
        totals = (counts @ unit).astype(np.float64)
        squared = np.einsum("ij,ij->i", totals, totals)
        repeats = np.einsum("ij,ij->i", counts, counts, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            replicates[start:start + b] = (squared - repeats) / (float(n) * n - repeats)
    return replicates


def _warn_singletons(index: pd.Index, n: np.ndarray) -> None:
    single = [index[g] for g in np.flatnonzero(n == 1)]
    if single:
        warnings.warn(
            f"self-similarity is undefined for groups with one member; value set to NaN for {single}",
            RuntimeWarning,
            stacklevel=3,
        )


def self_similarity(
    emb: ArrayLike,
    groups: GroupLabels,
    *,
    n_boot: int = 0,
    seed: int = 0,
    with_replacement: bool = False,
    ci_method: Literal["u_statistic", "bootstrap"] = "u_statistic",
    ci: float = 0.95,
) -> pd.DataFrame:
    """Exact mean pairwise cosine similarity within each group, with a confidence interval.

    Parameters
    ----------
    emb : array-like, shape (n, d)
        Embeddings (any norm; each row is normalised). float32 is computed in float32 BLAS with
        float64 accumulation across row chunks (≈1e-6 relative); other dtypes in float64.
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Group label per row; several columns give intersections (MultiIndex). Missing labels drop
        the row (count in ``attrs["dropped"]``).
    n_boot : int, default 0
        Resamples for ``ci_method="bootstrap"`` (0 gives NaN intervals); unused by ``"u_statistic"``.
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` for the bootstrap.
    with_replacement : bool, default False
        False: ``S_g`` = mean cosine over pairs of distinct members. True: ``‖ū_g‖²``, the
        expectation of the original's sampling with replacement, ``((n_g − 1) S_g + 1) / n_g``
        (the interval is mapped by the same increasing affine function).
    ci_method : {"u_statistic", "bootstrap"}, default "u_statistic"
        ``"u_statistic"``: normal interval ``S_g ± z·SE`` with the Hoeffding variance
        ``4/n_g · Var_i(h1(u_i))``, O(n·d), no resampling. ``"bootstrap"``: percentile interval
        over ``n_boot`` multinomial resamples (counts w) of the members, replicate
        ``(‖Σ w_i u_i‖² − Σ w_i²) / (n_g² − Σ w_i²)`` (pairs of draws of distinct items),
        O(n_boot·n·d) in BLAS (≈6–20 s for 86,744 × 1024 here, against ≈0.1 s for the default).
    ci : float, default 0.95
        Confidence level.

    Returns
    -------
    pd.DataFrame
        Indexed by group: ``n``, ``value`` (cosine, in [-1, 1]), ``ci_low``, ``ci_high``. A group
        with one member gets NaN (with a RuntimeWarning naming it); intervals are NaN for n < 3.

    Examples
    --------
    Group a holds two equal directions and one orthogonal to them: of its 3 pairs one has cosine 1 and two 0, so
    S = 1/3 (with replacement: (2 · 1/3 + 1) / 3 = 5/9); group b's two rows point the same way (norms do not count).

    >>> import numpy as np
    >>> emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    >>> groups = ["a", "a", "a", "b", "b"]
    >>> self_similarity(emb, groups)["value"].round(3).to_dict()
    {'a': 0.333, 'b': 1.0}
    >>> self_similarity(emb, groups, with_replacement=True)["value"].round(3).to_dict()
    {'a': 0.556, 'b': 1.0}
    """
    check_ci(ci)
    if ci_method not in ("u_statistic", "bootstrap"):
        raise ValueError(f"ci_method must be 'u_statistic' or 'bootstrap', got {ci_method!r}")
    matrix, inv_norm, codes, index, dropped = _prepare(emb, groups)
    n_groups = len(index)
    n = np.bincount(codes[codes >= 0], minlength=n_groups)
    sums = _unit_group_sums(matrix, inv_norm, codes, n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (np.einsum("ij,ij->i", sums, sums) - n) / (n * (n - 1.0))
    value[n < 2] = np.nan
    _warn_singletons(index, n)
    ci_low = np.full(n_groups, np.nan)
    ci_high = np.full(n_groups, np.nan)
    if ci_method == "u_statistic":
        se = _u_statistic_se(_dot_with_group_sum(matrix, inv_norm, codes, sums), codes, n)
        z = z_value(ci)
        ci_low, ci_high = value - z * se, value + z * se
    elif n_boot > 0:
        rng = np.random.default_rng(seed)
        for g, rows in enumerate(_members(codes, n_groups)):
            if len(rows) >= 3:
                unit = matrix[rows] * inv_norm[rows, None].astype(matrix.dtype)
                ci_low[g], ci_high[g] = percentile_interval(_bootstrap_replicates(unit, n_boot, rng), ci)
    if with_replacement:
        value, ci_low, ci_high = (((n - 1.0) * x + 1.0) / n for x in (value, ci_low, ci_high))
    return summary_frame(index, n, value, ci_low, ci_high, dropped)


def self_similarity_mc(
    emb: ArrayLike,
    groups: GroupLabels,
    iterations: int = 10_000,
    sample_size: int = 22,
    *,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Monte Carlo self-similarity as in the original study (cross-check of :func:`self_similarity`).

    Each iteration draws ``sample_size`` members with replacement and takes the mean cosine over
    the ``sample_size·(sample_size−1)/2`` pairs of distinct *positions*; the value is the mean over
    iterations. Its expectation is ``self_similarity(..., with_replacement=True)``.

    Parameters
    ----------
    emb : array-like, shape (n, d)
        Embeddings (rows are normalised).
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Group label per row.
    iterations : int, default 10000
        Monte Carlo iterations per group.
    sample_size : int, default 22
        Draws per iteration (≥ 2).
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` (fresh generator per call; groups in index order).
    ci : float, default 0.95
        Level of the Monte Carlo error interval ``value ± z·sd/√iterations``.

    Returns
    -------
    pd.DataFrame
        Indexed by group: ``n``, ``value``, ``ci_low``, ``ci_high`` (Monte Carlo error only).
        Groups with one member are NaN with a RuntimeWarning.

    Examples
    --------
    Two orthogonal members: two draws are the same member (cosine 1) half the time, so the expectation is ½, the
    ``with_replacement=True`` value of :func:`self_similarity`; two members pointing the same way give exactly 1.

    >>> import numpy as np
    >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [3.0, 0.0]])
    >>> self_similarity_mc(emb, ["a", "a", "b", "b"], iterations=1000)["value"].round(2).to_dict()
    {'a': 0.5, 'b': 1.0}
    """
    check_ci(ci)
    if sample_size < 2 or iterations < 1:
        raise ValueError(f"need sample_size >= 2 and iterations >= 1, got {sample_size} and {iterations}")
    matrix, inv_norm, codes, index, dropped = _prepare(emb, groups)
    n_groups = len(index)
    n = np.bincount(codes[codes >= 0], minlength=n_groups)
    _warn_singletons(index, n)
    value = np.full(n_groups, np.nan)
    se = np.full(n_groups, np.nan)
    rng = np.random.default_rng(seed)
    pairs = sample_size * (sample_size - 1.0)
    step = max(1, _CHUNK_ELEMENTS // (sample_size * matrix.shape[1]))
    for g, rows in enumerate(_members(codes, n_groups)):
        if len(rows) < 2:
            continue
        unit = matrix[rows] * inv_norm[rows, None].astype(matrix.dtype)
        draws = np.empty(iterations)
        for start in range(0, iterations, step):
            stop = min(iterations, start + step)
            picks = rng.integers(0, len(rows), size=(stop - start, sample_size))
            totals = unit[picks].sum(axis=1, dtype=np.float64)
            draws[start:stop] = (np.einsum("ij,ij->i", totals, totals) - sample_size) / pairs
        value[g] = draws.mean()
        se[g] = draws.std(ddof=1) / np.sqrt(iterations) if iterations > 1 else np.nan
    z = z_value(ci)
    return summary_frame(index, n, value, value - z * se, value + z * se, dropped)


def person_preference(
    image_emb: ArrayLike,
    label_emb: ArrayLike,
    labels: Sequence[str],
    groups: GroupLabels,
    unmarked: str = "person",
    *,
    n_boot: int = 0,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Share of each group's images whose most similar label is the unmarked one.

    Parameters
    ----------
    image_emb : array-like, shape (n, d)
        Image embeddings (any positive row scale: it does not change which label is closest).
    label_emb : array-like, shape (n_labels, d)
        Text embeddings of the candidate labels (normalised here), e.g. the unmarked
        "a photo of a person" and one axis's marked prompts (formats.md A9).
    labels : sequence of str, length n_labels
        Names of the rows of ``label_emb``; one of them equals ``unmarked``.
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Group label per image.
    unmarked : str, default "person"
        Name of the unmarked label.
    n_boot, seed, ci
        Bootstrap settings passed to :func:`by_group` (``n_boot=0``: NaN intervals).

    Returns
    -------
    pd.DataFrame
        Indexed by group: ``n``, ``value`` (fraction in [0, 1]), ``ci_low``, ``ci_high``.
        An image whose unmarked score ties with the best marked score counts as unmarked (as an
        argmax over columns with the unmarked label first, like the original).

    Examples
    --------
    Group a: one image on the "person" direction and one halfway between (a tie, counted as unmarked); group b: one
    image on the "woman" direction and one nearer "person".

    >>> import numpy as np
    >>> images = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [2.0, 0.1]])
    >>> labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> person_preference(images, labels, ["person", "woman"], ["a", "a", "b", "b"])["value"].to_dict()
    {'a': 1.0, 'b': 0.5}
    """
    names = list(labels)
    if unmarked not in names:
        raise ValueError(f"unmarked label {unmarked!r} is not among labels {names}")
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"labels must be at least two distinct names, got {names}")
    images = as_matrix(image_emb, "image_emb")
    texts = as_matrix(label_emb, "label_emb")
    check_same_length(len(names), len(texts), "labels", "label_emb")
    if images.shape[1] != texts.shape[1]:
        raise ValueError(f"image_emb has dimension {images.shape[1]} but label_emb has {texts.shape[1]}")
    row_norms(images, "image_emb")
    unit_texts = (texts / row_norms(texts, "label_emb")[:, None]).astype(images.dtype)
    scores = images @ unit_texts.T
    column = names.index(unmarked)
    prefers_unmarked = scores[:, column] >= np.delete(scores, column, axis=1).max(axis=1)
    return by_group(prefers_unmarked.astype(np.float64), groups, n_boot=n_boot, seed=seed, ci=ci)
