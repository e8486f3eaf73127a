"""MaxSkew@k and NDKL against a brute force written from the definitions (Geyik et al. 2019): every small
ranking, both desired distributions, ties, labels absent from the top k."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from biaslib.metrics import max_skew, ndkl
from biaslib.metrics.skew import skew_at_k


def _brute(scores: list[float], groups: list[str], k: int, desired: str) -> tuple[float, float]:
    """(MaxSkew@k, NDKL@k) of one query, straight from the definitions with plain Python."""
    ranked = [groups[i] for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i))]
    labels = sorted(set(groups))
    want = {a: (1 / len(labels) if desired == "uniform" else groups.count(a) / len(groups)) for a in labels}
    k = min(k, len(groups))
    top = ranked[:k]
    skews = [math.log(top.count(a) / k / want[a]) for a in labels if a in top]
    total, z = 0.0, 0.0
    for i in range(1, k + 1):
        prefix = ranked[:i]
        kl = sum(prefix.count(a) / i * math.log(prefix.count(a) / i / want[a]) for a in labels if a in prefix)
        total += kl / math.log2(i + 1)
        z += 1 / math.log2(i + 1)
    return max(skews), total / z


@pytest.mark.parametrize("desired", ["uniform", "dataset"])
def test_every_ranking_of_five_images_matches_the_brute_force(desired):
    rng = np.random.default_rng(0)
    cases = 0
    for labels in itertools.product("abc", repeat=5):
        if len(set(labels)) < 2:
            continue
        # scores with ties: values from a small set, so equal scores are common
        scores = rng.integers(0, 3, size=(4, 5)).astype(float)
        for k in (1, 2, 3, 5, 9):
            got_skew, got_ndkl = max_skew(scores, list(labels), k, desired), ndkl(scores, list(labels), k, desired)
            for q in range(len(scores)):
                want_skew, want_ndkl = _brute(list(scores[q]), list(labels), k, desired)
                assert got_skew[q] == pytest.approx(want_skew, abs=1e-12)
                assert got_ndkl[q] == pytest.approx(want_ndkl, abs=1e-12)
                cases += 1
    assert cases > 4000


def test_ties_keep_image_order_and_absent_labels_are_not_the_maximum():
    groups = ["man", "man", "woman", "woman"]
    flat = np.zeros((1, 4))  # every score tied: the ranking is the image order, both men first
    assert max_skew(flat, groups, 2)[0] == pytest.approx(math.log(2))  # ln(1 / ½), the man's skew
    per_label = skew_at_k(flat, groups, 2)[0]
    assert per_label[0] == pytest.approx(math.log(2)) and per_label[1] == -np.inf  # woman absent from the top 2
    # a perfectly alternating ranking has no skew at k = 2 or 4 and a positive NDKL (its first prefix is all-man)
    alternating = np.array([[4.0, 2.0, 3.0, 1.0]])  # man, woman, man, woman
    assert max_skew(alternating, groups, 2)[0] == pytest.approx(0.0)
    assert max_skew(alternating, groups, 4)[0] == pytest.approx(0.0)
    assert ndkl(alternating, groups, 4)[0] > 0


def test_uniform_and_dataset_desired_differ_where_the_data_is_unbalanced():
    groups = ["a"] * 9 + ["b"]
    scores = np.arange(10, 0, -1, dtype=float)[None, :]  # the ranking is the image order: nine a, then b
    assert max_skew(scores, groups, 10, "dataset")[0] == pytest.approx(0.0)  # the whole pool: no skew by design
    assert ndkl(scores, groups, 10, "dataset")[0] > 0  # but its prefixes are all-a
    assert max_skew(scores, groups, 10, "uniform")[0] == pytest.approx(math.log(0.9 / 0.5))
    assert max_skew(scores, groups, 3, "dataset")[0] == pytest.approx(math.log(1 / 0.9))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        max_skew(np.array([[np.nan, 1.0]]), ["a", "b"], 1)
    with pytest.raises(ValueError, match="positive integer"):
        ndkl(np.ones((1, 2)), ["a", "b"], 0)
    with pytest.raises(ValueError, match="queries, images"):
        ndkl(np.ones((1, 3)), ["a", "b"], 1)
    with pytest.raises(ValueError, match="desired"):
        max_skew(np.ones((1, 2)), ["a", "b"], 1, desired="parity")


def test_top_k_share_and_directional_excess_by_hand():
    from biaslib.metrics.skew import directional_excess, top_k_share

    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0]])
    woman = np.array([True, True, False, False])
    assert top_k_share(scores, woman, 2).tolist() == [1.0, 0.0, 1.0]  # ties: image order
    assert top_k_share(scores, np.ones(4, bool), 3).tolist() == [1.0, 1.0, 1.0]
    # a women-leaning occupation (data 0.8) retrieving 0.9 women is amplified (+0.1); a men-leaning one (0.2)
    # retrieving 0.3 women is less stereotyped than the data (−0.1); at 0.5 there is no direction
    assert directional_excess(np.array([0.9, 0.3, 0.7]), np.array([0.8, 0.2, 0.5])) == pytest.approx([0.1, -0.1, 0.0])
