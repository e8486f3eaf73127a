"""GeoDE: zero-shot classification accuracy per region (formats.md B4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from biaslib.metrics._checks import check_same_length
from biaslib.metrics.groups import GroupLabels, by_group


def group_accuracy(
    pred: ArrayLike,
    target: ArrayLike,
    groups: GroupLabels,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Accuracy per group (e.g. GeoDE region) with bootstrap confidence intervals.

    Parameters
    ----------
    pred : array-like, shape (n,)
        Predicted class per image (any comparable labels).
    target : array-like, shape (n,)
        True class per image.
    groups : array-like of shape (n,) or DataFrame of shape (n, k)
        Region (or other group) per image.
    n_boot, seed, ci
        Bootstrap settings of :func:`by_group`.

    Returns
    -------
    pd.DataFrame
        :func:`by_group` frame of correctness: ``value`` is the accuracy in [0, 1]. The worst
        region and the gap come from :func:`group_gap`.

    Examples
    --------
    One of two African images is classified right and both European ones; a group with every item right gets the
    Wilson interval [n / (n + z²), 1].

    >>> frame = group_accuracy(["cat", "dog", "cat", "dog"], ["cat", "cat", "cat", "dog"],
    ...                        ["Africa", "Africa", "Europe", "Europe"])
    >>> frame["value"].to_dict(), round(float(frame.loc["Europe", "ci_low"]), 3), round(2 / (2 + 1.96**2), 3)
    ({'Africa': 0.5, 'Europe': 1.0}, 0.342, 0.342)
    """
    predicted = np.asarray(pred)
    truth = np.asarray(target)
    check_same_length(len(predicted), len(truth), "pred", "target")
    return by_group((predicted == truth).astype(np.float64), groups, n_boot=n_boot, seed=seed, ci=ci)
