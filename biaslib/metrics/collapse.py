"""Collapsed embeddings: a model whose image embeddings all point one way cannot rank, classify or be biased.

A CLIP that has not learnt (random weights, or a run that collapsed) maps every image to nearly one direction:
its mean pairwise cosine is ≈ 1 (measured on 32 world faces: random RN50 0.9993, the random tiny CLIP 0.99996;
the world's trained tiny CLIPs 0.30–0.54). Every group then scores alike, so its gaps are near 0 and a
leaderboard would rank it the least biased. :data:`DEGENERATE_COSINE` is the cut-off above which biaslib calls a
model degenerate (shown, flagged, never ranked as fair). It catches collapse, not every untrained model: the random
tiny ViT's embeddings of world images stay spread (mean cosine ≈ 0.93), so read a random floor against its chance
values, not by this flag.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from biaslib.metrics._checks import as_matrix, row_norms

#: Mean pairwise cosine of a model's image embeddings above which it is called degenerate.
DEGENERATE_COSINE = 0.99


def mean_pairwise_cosine(embeddings: ArrayLike) -> float:
    """Mean cosine over the n·(n − 1) ordered pairs of distinct rows of ``embeddings`` (n × d, n ≥ 2; rows
    normalised here), in O(n·d): (‖Σ uᵢ‖² − n) / (n·(n − 1)) for the unit rows uᵢ.

    Of the three pairs, only the first and third rows point the same way (cosine 1; the others 0): 1 / 3.

    >>> round(mean_pairwise_cosine([[1, 0], [0, 1], [2, 0]]), 3), round(mean_pairwise_cosine([[1, 1], [3, 3]]), 3)
    (0.333, 1.0)
    """
    matrix = as_matrix(embeddings, "embeddings").astype(np.float64)
    n = len(matrix)
    if n < 2:
        raise ValueError(f"mean_pairwise_cosine needs at least 2 rows, got {n}")
    total = (matrix / row_norms(matrix, "embeddings")[:, None]).sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def is_degenerate(mean_cosine: float) -> bool:
    """True when a mean pairwise cosine says the embeddings have collapsed (> :data:`DEGENERATE_COSINE`).

    The cut-off itself (0.99) is not degenerate.

    >>> is_degenerate(0.995), is_degenerate(0.99), is_degenerate(0.5)
    (True, False, False)
    """
    return bool(mean_cosine > DEGENERATE_COSINE)
