"""Tests of biaslib.metrics against brute-force references, Monte Carlo and planted effects."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from biaslib.metrics import (
    bias_amplification,
    by_group,
    clip_score,
    directional_amplification_table,
    directional_bias_amplification,
    group_accuracy,
    group_gap,
    magbig_fairness,
    magbig_fairness_mc,
    paired_cosine,
    person_preference,
    retrieval_hits,
    self_similarity,
    self_similarity_mc,
)


def clustered(rng: np.random.Generator, sizes: dict[str, int], spread: dict[str, float], d: int = 16):
    """Embeddings around one random centre per group; a smaller spread gives a tighter group."""
    rows, labels = [], []
    for name, n in sizes.items():
        centre = rng.standard_normal(d)
        rows.append(centre + spread[name] * rng.standard_normal((n, d)))
        labels += [name] * n
    scale = rng.uniform(0.5, 3.0, size=(sum(sizes.values()), 1))  # norms must not matter
    return np.vstack(rows) * scale, np.array(labels)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# import cost


def test_import_does_not_load_torch():
    code = "import sys, biaslib.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# by_group / group_gap


def test_by_group_matches_groupby_and_drops_missing():
    rng = np.random.default_rng(1)
    values = rng.random(300)
    labels = rng.choice(["a", "b", "c"], size=300).astype(object)
    labels[[3, 17, 40]] = None
    labels[[5]] = np.nan
    frame = by_group(values, labels, n_boot=0)
    ref = pd.Series(values).groupby(pd.Series(labels)).agg(["size", "mean"])
    assert list(frame.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(frame["n"], ref["size"])
    np.testing.assert_allclose(frame["value"], ref["mean"], rtol=0, atol=1e-12)
    assert frame.attrs["dropped"] == 4
    assert frame[["ci_low", "ci_high"]].isna().all().all()


def test_by_group_intersections_multiindex():
    rng = np.random.default_rng(2)
    groups = pd.DataFrame({"gender": rng.choice(["F", "M"], 200), "age": rng.choice(["0-2", "3-9", "20-29"], 200)})
    groups.loc[7, "age"] = None
    values = rng.random(200)
    frame = by_group(values, groups, n_boot=0)
    assert isinstance(frame.index, pd.MultiIndex)
    assert list(frame.index.names) == ["gender", "age"]
    ref = pd.Series(values).groupby([groups["gender"], groups["age"]]).mean()
    np.testing.assert_allclose(frame["value"], ref.loc[frame.index], atol=1e-12)
    assert frame["n"].sum() == 199 and frame.attrs["dropped"] == 1


def test_by_group_bootstrap_seeded_and_both_paths_agree():
    rng = np.random.default_rng(3)
    binary = (rng.random(4000) < 0.3).astype(float)
    continuous = rng.normal(size=4000)
    groups = np.zeros(4000, dtype=int)
    first = by_group(binary, groups, n_boot=500, seed=7)
    pd.testing.assert_frame_equal(first, by_group(binary, groups, n_boot=500, seed=7))
    # multinomial path (few distinct values) and index-resampling path vs the normal interval
    for values in (binary, continuous):
        frame = by_group(values, groups, n_boot=2000, seed=0)
        half = 1.959964 * values.std(ddof=1) / math.sqrt(len(values))
        width = frame["ci_high"].iloc[0] - frame["ci_low"].iloc[0]
        assert width == pytest.approx(2 * half, rel=0.1)


def test_by_group_bootstrap_coverage():
    # 300 independent samples of 40 Bernoulli(0.3) items: ~95% of the intervals cover 0.3
    rng = np.random.default_rng(4)
    values = (rng.random(300 * 40) < 0.3).astype(float)
    groups = np.repeat(np.arange(300), 40)
    frame = by_group(values, groups, n_boot=1000, seed=0)
    covered = ((frame["ci_low"] <= 0.3) & (0.3 <= frame["ci_high"])).mean()
    assert 0.88 <= covered <= 0.995


def test_group_gap():
    frame = pd.DataFrame({"value": [0.5, 0.8, 0.4, np.nan]}, index=["a", "b", "c", "d"])
    gap = group_gap(frame)
    assert gap["difference"] == pytest.approx(0.4)
    assert gap["ratio"] == pytest.approx(0.5)
    assert gap["worst"] == "c"
    assert group_gap(frame, higher_is_better=False)["worst"] == "b"


def test_by_group_bad_inputs():
    with pytest.raises(ValueError, match="3 rows.*2"):
        by_group([1.0, 2.0, 3.0], ["a", "b"])
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        by_group([1.0, np.nan, 3.0], ["a", "b", "b"])


# --------------------------------------------------------------------------------------------
# self-similarity


def brute_self_similarity(emb: np.ndarray, labels: np.ndarray) -> dict:
    u = unit(emb)
    out = {}
    for g in np.unique(labels):
        members = u[labels == g]
        pairs = [members[i] @ members[j] for i in range(len(members)) for j in range(len(members)) if i != j]
        everything = [members[i] @ members[j] for i in range(len(members)) for j in range(len(members))]
        out[g] = (np.mean(pairs), np.mean(everything))
    return out


def test_self_similarity_matches_double_loop():
    rng = np.random.default_rng(5)
    emb, labels = clustered(rng, {"a": 23, "b": 9, "c": 40}, {"a": 0.5, "b": 1.0, "c": 2.0})
    ref = brute_self_similarity(emb, labels)
    exact = self_similarity(emb, labels)
    with_repl = self_similarity(emb, labels, with_replacement=True)
    for g, (distinct, all_pairs) in ref.items():
        assert exact.loc[g, "value"] == pytest.approx(distinct, abs=1e-6)
        assert with_repl.loc[g, "value"] == pytest.approx(all_pairs, abs=1e-6)
    # float32 input: same values to float32 accuracy
    exact32 = self_similarity(emb.astype(np.float32), labels)
    np.testing.assert_allclose(exact32["value"], exact["value"], atol=1e-5)


def test_self_similarity_intersections_match_loop():
    rng = np.random.default_rng(6)
    emb = rng.standard_normal((120, 6)) + 1.0
    groups = pd.DataFrame({"race": rng.choice(["x", "y"], 120), "age": rng.choice(["1", "2", "3"], 120)})
    groups.loc[[0, 5], "age"] = None  # unknown labels drop the row
    frame = self_similarity(emb, groups)
    assert frame.attrs["dropped"] == 2 and frame["n"].sum() == 118
    known = groups["age"].notna().to_numpy()
    joined = (groups["race"] + "|" + groups["age"])[known].to_numpy()
    ref = brute_self_similarity(emb[known], joined)
    for (race, age), row in frame.iterrows():
        assert row["value"] == pytest.approx(ref[f"{race}|{age}"][0], abs=1e-6)


def test_self_similarity_singleton_group_warns():
    rng = np.random.default_rng(7)
    emb = rng.standard_normal((10, 4))
    labels = ["big"] * 9 + ["lonely"]
    with pytest.warns(RuntimeWarning, match="lonely"):
        frame = self_similarity(emb, labels)
    assert np.isnan(frame.loc["lonely", "value"])
    assert np.isfinite(frame.loc["big", "value"])


def test_self_similarity_bad_inputs():
    emb = np.ones((5, 3))
    emb[2, 1] = np.nan
    emb[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"rows \[2, 4\]"):
        self_similarity(emb, ["a"] * 5)
    with pytest.raises(ValueError, match="5 rows.*4"):
        self_similarity(np.ones((5, 3)), ["a"] * 4)


def test_u_statistic_interval_agrees_with_bootstrap():
    rng = np.random.default_rng(8)
    emb, labels = clustered(rng, {"a": 400, "b": 250}, {"a": 1.0, "b": 1.5}, d=12)
    analytic = self_similarity(emb, labels)
    boot = self_similarity(emb, labels, ci_method="bootstrap", n_boot=2000, seed=1)
    pd.testing.assert_series_equal(analytic["value"], boot["value"])
    width_a = analytic["ci_high"] - analytic["ci_low"]
    width_b = boot["ci_high"] - boot["ci_low"]
    np.testing.assert_allclose(width_a, width_b, rtol=0.15)
    np.testing.assert_allclose(analytic["ci_low"], boot["ci_low"], atol=0.15 * width_a.max())
    # with_replacement maps value and interval by ((n-1)x + 1)/n
    repl = self_similarity(emb, labels, with_replacement=True)
    n = analytic["n"]
    np.testing.assert_allclose(repl["ci_low"], ((n - 1) * analytic["ci_low"] + 1) / n, atol=1e-12)


def test_self_similarity_interval_coverage():
    # 300 groups of 50 drawn from one distribution; the grand mean of S_g stands in for the truth.
    rng = np.random.default_rng(9)
    centre = rng.standard_normal(8)
    emb = centre + 1.2 * rng.standard_normal((300 * 50, 8))
    labels = np.repeat(np.arange(300), 50)
    analytic = self_similarity(emb, labels)
    truth = analytic["value"].mean()
    boot = self_similarity(emb, labels, ci_method="bootstrap", n_boot=400)
    for frame in (analytic, boot):
        covered = ((frame["ci_low"] <= truth) & (truth <= frame["ci_high"])).mean()
        assert 0.88 <= covered <= 0.995


def test_planted_tighter_group_is_more_self_similar():
    rng = np.random.default_rng(10)
    emb, labels = clustered(rng, {"tight": 300, "loose": 300}, {"tight": 0.8, "loose": 1.2}, d=32)
    frame = self_similarity(emb, labels)
    assert frame.loc["tight", "value"] > frame.loc["loose", "value"]
    se = (frame["ci_high"] - frame["ci_low"]) / (2 * 1.959964)
    diff = frame.loc["tight", "value"] - frame.loc["loose", "value"]
    assert diff - 1.959964 * math.sqrt((se**2).sum()) > 0


def test_self_similarity_mc_agrees_with_exact():
    rng = np.random.default_rng(11)
    emb, labels = clustered(rng, {"a": 30, "b": 200}, {"a": 1.0, "b": 2.0})
    exact = self_similarity(emb, labels, with_replacement=True)
    mc = self_similarity_mc(emb, labels, iterations=4000, sample_size=22, seed=3)
    se = (mc["ci_high"] - mc["ci_low"]) / (2 * 1.959964)
    assert ((mc["value"] - exact["value"]).abs() < 4 * se).all()
    # the MC estimator itself is the mean over the 231 pairwise cosines of a 22-draw sample
    one = self_similarity_mc(emb[:30], labels[:30], iterations=1, sample_size=22, seed=0)
    picks = np.random.default_rng(0).integers(0, 30, size=(1, 22))[0]
    u = unit(emb[:30])[picks]
    pairs = [u[i] @ u[j] for i, j in itertools.combinations(range(22), 2)]
    assert one["value"].iloc[0] == pytest.approx(np.mean(pairs), abs=1e-9)


# --------------------------------------------------------------------------------------------
# person preference


def test_person_preference_matches_loop():
    rng = np.random.default_rng(12)
    images = rng.standard_normal((500, 8)) * rng.uniform(0.2, 5, size=(500, 1))
    labels = ["female", "person", "male"]
    label_emb = rng.standard_normal((3, 8)) * np.array([[1.0], [3.0], [0.3]])
    groups = rng.choice(["F", "M"], 500)
    frame = person_preference(images, label_emb, labels, groups, n_boot=200)
    cos = unit(images) @ unit(label_emb).T
    winner = np.array([labels[int(np.argmax(row))] for row in cos])
    for g in ("F", "M"):
        assert frame.loc[g, "value"] == pytest.approx(np.mean(winner[groups == g] == "person"), abs=1e-12)
        assert frame.loc[g, "ci_low"] <= frame.loc[g, "value"] <= frame.loc[g, "ci_high"]


def test_person_preference_ties_favour_unmarked_and_bad_labels():
    images = np.array([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    label_emb = np.array([[1.0, 0.0], [0.0, 1.0]])
    frame = person_preference(images, label_emb, ["person", "woman"], ["g", "g", "g"])
    assert frame.loc["g", "value"] == pytest.approx(2 / 3)  # the tie (row 0) and row 1
    with pytest.raises(ValueError, match=r"\['man', 'woman'\]"):
        person_preference(images, label_emb, ["man", "woman"], ["g"] * 3)
    with pytest.raises(ValueError, match="3 rows.*2"):
        person_preference(images, label_emb, ["person", "woman"], ["g"] * 2)


# --------------------------------------------------------------------------------------------
# retrieval


def brute_ranks(text: np.ndarray, image: np.ndarray, target: np.ndarray) -> np.ndarray:
    sims = unit(text) @ unit(image).T
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.array([int(np.flatnonzero(order[i] == target[i])[0]) for i in range(len(text))])


def test_retrieval_matches_argsort_for_all_chunk_sizes_and_backends():
    rng = np.random.default_rng(13)
    image = rng.standard_normal((60, 5)) * rng.uniform(0.1, 10, size=(60, 1))
    target = rng.integers(0, 60, size=45)
    text = image[target] / np.linalg.norm(image[target], axis=1, keepdims=True) + 0.8 * rng.standard_normal((45, 5))
    ranks = brute_ranks(text, image, target)
    expected = pd.DataFrame({f"R@{k}": (ranks < k).astype(np.int64) for k in (1, 5, 10)})
    assert 0 < expected["R@1"].sum() < 45 and expected["R@10"].sum() < 45
    for backend in ("torch", "numpy"):
        for chunk in (1, 7, 45):
            got = retrieval_hits(text, image, target, chunk_size=chunk, backend=backend, return_rank=True)
            np.testing.assert_array_equal(got["rank"], ranks)
            pd.testing.assert_frame_equal(got.drop(columns="rank"), expected)
    # per-row normalisation: rescaling image rows changes nothing (the original's bug would)
    rescaled = retrieval_hits(text, image * rng.uniform(0.01, 100, size=(60, 1)), target)
    pd.testing.assert_frame_equal(rescaled, expected)
    hits32 = retrieval_hits(text.astype(np.float32), image.astype(np.float32), target)
    assert (hits32 == expected).mean().mean() > 0.99


def test_retrieval_ties_favour_target_and_series_index():
    # exact small-integer embeddings: images 0 and 1 identical, image 2 scores higher for text 0
    image = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    text = np.array([[2.0, 1.0], [2.0, 1.0]])
    target = pd.Series([1, 0], index=["cap-a", "cap-b"])
    got = retrieval_hits(text, image, target, ks=(1, 2), return_rank=True, backend="torch")
    # cos with image 2 = 3/sqrt(10) > 2/sqrt(5) = cos with images 0 and 1 (tied)
    assert got["rank"].tolist() == [1, 1]
    assert got["R@1"].tolist() == [0, 0] and got["R@2"].tolist() == [1, 1]
    assert list(got.index) == ["cap-a", "cap-b"]
    pd.testing.assert_frame_equal(retrieval_hits(text, image, target, ks=(1, 2), backend="numpy"), got[["R@1", "R@2"]])


def test_retrieval_exact_duplicates_of_the_own_image_never_outrank_it():
    # a 7-image float32 gallery holding copies of images 0-2 (rows 4-6): torch's product puts the copies in
    # another kernel path, and their cosines differ from the originals' in the last bit for most captions
    # (measured: 55 of 64); a copy of the own image must count as a tie on both backends
    rng = np.random.default_rng(14)
    distinct = rng.standard_normal((4, 512)).astype(np.float32)
    base = np.array([0, 1, 2, 3, 0, 1, 2])
    image = distinct[base]
    target = rng.integers(0, 7, size=64)
    text = (distinct[base[target]] + 0.8 * rng.standard_normal((64, 512))).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    sims = unit(text.astype(np.float64)) @ unit(distinct.astype(np.float64)).T
    own = sims[np.arange(64), base[target]]
    other = base[None, :] != base[target][:, None]
    expected = (other & (sims[:, base] > own[:, None] + 1e-6)).sum(axis=1)
    for backend in ("torch", "numpy"):
        for chunk in (1, 64):
            ranks = retrieval_hits(text, image, target, backend=backend, chunk_size=chunk, return_rank=True)["rank"]
            np.testing.assert_array_equal(ranks, expected)


def test_retrieval_duplicates_at_realistic_cosines_agree_on_both_backends():
    """Own cosines near 0 (real CLIPs: 0.1–0.35, untrained ones ≈ 0): a window of 4 ulps of the own score let an
    exact copy of the own image outrank it (here, one caption at a time: 55 of 2,000 captions with torch, 99 with
    numpy on 8727d1b, nearly all with |cos| < 0.05), so the backends disagreed. Ranks must equal float64 brute
    force, copies of the own image tying with it, on both backends (issue 27, item 8)."""
    rng = np.random.default_rng(14)
    distinct = rng.standard_normal((4, 512)).astype(np.float32)
    base = np.array([0, 1, 2, 3, 0, 1, 2])  # rows 4-6 copy rows 0-2
    image = distinct[base]
    target = rng.integers(0, 7, size=2000)
    text = (distinct[base[target]] * rng.uniform(0, 0.1, size=(2000, 1))
            + rng.standard_normal((2000, 512))).astype(np.float32)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    sims = unit(text.astype(np.float64)) @ unit(distinct.astype(np.float64)).T
    own = sims[np.arange(2000), base[target]]
    assert (np.abs(own) < 0.05).mean() > 0.4
    other = base[None, :] != base[target][:, None]
    expected = (other & (sims[:, base] > own[:, None])).sum(axis=1)
    for backend in ("torch", "numpy"):
        for chunk in (1, 64, 2000):
            ranks = retrieval_hits(text, image, target, backend=backend, chunk_size=chunk, return_rank=True)["rank"]
            np.testing.assert_array_equal(ranks, expected, err_msg=f"{backend}, chunk {chunk}")


def test_retrieval_bad_inputs():
    image = np.eye(4)
    text = np.eye(4)[:3]
    with pytest.raises(ValueError, match="3 rows.*2"):
        retrieval_hits(text, image, [0, 1])
    with pytest.raises(ValueError, match=r"positions \[1\]"):
        retrieval_hits(text, image, [0, 9, 2])
    bad = text.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        retrieval_hits(bad, image, [0, 1, 2])


# --------------------------------------------------------------------------------------------
# MAGBIG


def brute_expected_max(p: np.ndarray, k: int, n: int) -> tuple[float, float]:
    mean = square = 0.0
    subsets = list(itertools.combinations(range(len(p)), k))
    for subset in subsets:
        for xs in itertools.product(range(n + 1), repeat=k):
            prob = math.prod(math.comb(n, x) * p[o] ** x * (1 - p[o]) ** (n - x) for o, x in zip(subset, xs))
            worst = max(abs(2 * x / n - 1) for x in xs)
            mean += prob * worst
            square += prob * worst * worst
    return mean / len(subsets), square / len(subsets)


def counts_frame(man, woman) -> pd.DataFrame:
    return pd.DataFrame({"occupation": [f"occ{i}" for i in range(len(man))], "man": man, "woman": woman})


@pytest.mark.parametrize("k, n", [(2, 3), (4, 5)])
def test_expected_max_matches_enumeration_random_shares(k, n):
    rng = np.random.default_rng(k * 10 + n)
    man = rng.integers(0, 20, 5)
    woman = rng.integers(1, 20, 5)
    result = magbig_fairness(counts_frame(man, woman), occupations=k, images=n)
    mean, square = brute_expected_max(man / (man + woman), k, n)
    assert result["exp_max_l1"] == pytest.approx(mean, abs=1e-12)
    assert result["exp_std_l1"] == pytest.approx(math.sqrt(square - mean**2), abs=1e-12)


def test_magbig_expected_max_matches_enumeration():
    counts = counts_frame([3, 10, 0, 7, 5, 12, 0], [9, 0, 4, 7, 1, 3, 0])
    result = magbig_fairness(counts, occupations=3, images=4)
    assert result["excluded"] == ["occ6"] and result["n_occupations"] == 6
    p = np.array([3 / 12, 1.0, 0.0, 0.5, 5 / 6, 12 / 15])
    mean, square = brute_expected_max(p, 3, 4)
    assert result["exp_max_l1"] == pytest.approx(mean, abs=1e-12)
    assert result["exp_std_l1"] == pytest.approx(math.sqrt(square - mean**2), abs=1e-12)
    assert result["exp_max_l2"] == pytest.approx(mean / math.sqrt(2), abs=1e-12)
    l1 = 2 * np.abs(p - 0.5)
    assert result["mean_l1"] == pytest.approx(l1.mean(), abs=1e-12)
    assert result["std_l1"] == pytest.approx(l1.std(), abs=1e-12)
    assert result["mean_l2"] == pytest.approx(l1.mean() / math.sqrt(2), abs=1e-12)
    assert result["std_l2"] == pytest.approx(l1.std() / math.sqrt(2), abs=1e-12)


def test_magbig_mc_agrees_with_exact_and_is_fresh():
    rng = np.random.default_rng(14)
    man = rng.integers(0, 40, 150)
    counts = counts_frame(man, 40 - man)
    exact = magbig_fairness(counts)
    mc = magbig_fairness_mc(counts, draws=20000, seed=5)
    for key in ("l1", "l2"):
        se = exact[f"exp_std_{key}"] / math.sqrt(20000)
        assert abs(mc[f"exp_max_{key}"] - exact[f"exp_max_{key}"]) < 4 * se
        assert mc[f"exp_std_{key}"] == pytest.approx(exact[f"exp_std_{key}"], rel=0.05)
    assert magbig_fairness_mc(counts, draws=50, seed=5) == magbig_fairness_mc(counts, draws=50, seed=5)


def test_magbig_bad_inputs():
    with pytest.raises(ValueError, match="at least occupations=10.*got 3"):
        magbig_fairness(counts_frame([1, 2, 3, 0], [1, 0, 2, 0]))
    with pytest.raises(ValueError, match="lacks columns"):
        magbig_fairness(pd.DataFrame({"occupation": ["a"], "man": [1]}))


# --------------------------------------------------------------------------------------------
# CLIP score, GeoDE accuracy


def test_clip_score_and_cosine():
    images = np.array([[1.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
    texts = np.array([[2.0, 0.0], [4.0, 3.0], [-1.0, 1.0]])
    np.testing.assert_allclose(paired_cosine(images, texts), [1.0, 24 / 25, -1 / math.sqrt(2)], atol=1e-12)
    np.testing.assert_allclose(clip_score(images, texts), [100.0, 96.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        clip_score(images, texts[:2])


def test_group_accuracy():
    frame = group_accuracy([1, 2, 3, 4, 5], [1, 2, 0, 4, 0], ["EU", "EU", "Africa", "Africa", "Africa"], n_boot=100)
    assert frame.loc["EU", "value"] == 1.0 and frame.loc["Africa", "value"] == pytest.approx(1 / 3)
    assert group_gap(frame)["worst"] == "Africa"
    with pytest.raises(ValueError, match="3 rows.*2"):
        group_accuracy([1, 2, 3], [1, 2], ["a"] * 3)


# --------------------------------------------------------------------------------------------
# amplification


def test_bias_amplification_hand_computed():
    train = pd.DataFrame({"man": [8, 3, 5], "woman": [2, 7, 5]}, index=["cook", "nurse", "clerk"])
    pred = pd.DataFrame({"woman": [1, 8, 2], "man": [9, 2, 8]}, index=["cook", "nurse", "clerk"])
    # cook: man 0.8 -> 0.9 (+0.1); nurse: woman 0.7 -> 0.8 (+0.1); clerk: 50/50, nothing selected
    assert bias_amplification(train, pred) == pytest.approx(0.2 / 3, abs=1e-12)
    with pytest.raises(ValueError, match="only in pred"):
        bias_amplification(train, pred.rename(index={"clerk": "pilot"}))
    with pytest.raises(ValueError, match="no counts"):
        bias_amplification(train, pred.assign(man=[9, 2, 0], woman=[1, 8, 0]))


def wang_reference(a_train, t_train, a_pred, t_pred, direction):
    """Cell-by-cell loop after Wang & Russakovsky's released code (y as a sign)."""
    n_a, n_t = a_train.shape[1], t_train.shape[1]
    values = np.zeros((n_a, n_t))
    for a in range(n_a):
        for t in range(n_t):
            p_at = np.mean((a_train[:, a] == 1) & (t_train[:, t] == 1))
            sign = np.sign(p_at - a_train[:, a].mean() * t_train[:, t].mean())
            if direction == "A->T":
                delta = t_pred[a_pred[:, a] == 1, t].mean() - t_train[a_train[:, a] == 1, t].mean()
            else:
                delta = a_pred[t_pred[:, t] == 1, a].mean() - a_train[t_train[:, t] == 1, a].mean()
            values[a, t] = sign * delta
    return values.mean()


def test_directional_bias_amplification_matches_loop():
    rng = np.random.default_rng(15)
    eye_a, eye_t = np.eye(2), np.eye(4)
    a_train = eye_a[rng.integers(0, 2, 997)]
    t_train = eye_t[(rng.integers(0, 4, 997) + a_train[:, 0].astype(int)) % 4]
    a_pred = eye_a[rng.integers(0, 2, 613)]
    t_pred = eye_t[(rng.integers(0, 4, 613) + 2 * a_pred[:, 0].astype(int)) % 4]
    for direction in ("A->T", "T->A"):
        got = directional_bias_amplification(a_train, t_train, a_pred, t_pred, direction=direction)
        assert got == pytest.approx(wang_reference(a_train, t_train, a_pred, t_pred, direction), abs=1e-12)
        table = directional_amplification_table(a_train, t_train, a_pred, t_pred, direction=direction)
        assert len(table) == 8 and table["contribution"].mean() == pytest.approx(got, abs=1e-15)
    named = directional_amplification_table(pd.DataFrame(a_train, columns=["woman", "man"]), t_train, a_pred, t_pred)
    assert named["attribute"].tolist()[:4] == ["woman"] * 4
    no_change = directional_bias_amplification(a_train, t_train, a_train, t_train)
    assert no_change == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="997 rows.*613"):
        directional_bias_amplification(a_train, t_pred, a_pred, t_pred)


def test_mean_pairwise_cosine_equals_brute_force_and_flags_collapse():
    from biaslib.metrics.collapse import DEGENERATE_COSINE, is_degenerate, mean_pairwise_cosine

    rng = np.random.default_rng(5)
    spread = rng.standard_normal((40, 16)) * rng.uniform(0.5, 2, size=(40, 1))
    unit = spread / np.linalg.norm(spread, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert mean_pairwise_cosine(spread) == pytest.approx(cos[~np.eye(40, dtype=bool)].mean(), abs=1e-12)
    collapsed = np.ones((40, 16)) + 1e-3 * rng.standard_normal((40, 16))
    assert is_degenerate(mean_pairwise_cosine(collapsed)) and not is_degenerate(mean_pairwise_cosine(spread))
    assert DEGENERATE_COSINE < mean_pairwise_cosine(collapsed) <= 1
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_cosine(spread[:1])
