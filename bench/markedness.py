"""Benchmark: exact markedness metrics vs the original Monte Carlo procedures (formats.md A8, A9).

Synthetic FairFace-like data: 86,744 unit embeddings of dimension 1024 (float32) with race (7),
gender (2) and age (9) labels drawn with FairFace-train-like sizes (smallest age bin 842), and 19
label embeddings (the unmarked "a photo of a person" + 7 race + 2 gender + 9 age prompts).

Timed (target ≤ 5 s): biaslib's self-similarity (U-statistic 95% CI) and person preference
(bootstrap 95% CI, n_boot=1000) for the three attributes. Then a faithful re-implementation of the
original loops (22 draws with replacement per iteration from a pandas DataFrame of vectors;
balanced down-sampling with pandas ``.sample`` per category, the age loop balancing twice) runs a
few iterations, is extrapolated to 10,000 iterations, and is compared with the exact estimands.

Usage: ``python bench/markedness.py [--quick]``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from operator import itemgetter

import numpy as np
import pandas as pd
from _common import print_result
from scipy.spatial.distance import pdist

from biaslib.metrics import person_preference, self_similarity

ORIGINAL_ITERATIONS = 10_000
SAMPLE = 22
# Approximate FairFace train sizes (the total, 86,744, is itself unverified in formats.md B3).
SIZES = {
    "race": {
        "White": 16527, "Latino_Hispanic": 13367, "Indian": 12319, "East Asian": 12287,
        "Black": 12233, "Southeast Asian": 10795, "Middle Eastern": 9216,
    },
    "gender": {"Male": 45986, "Female": 40758},
    "age": {
        "0-2": 1792, "3-9": 10408, "10-19": 9103, "20-29": 25598, "30-39": 19250,
        "40-49": 10744, "50-59": 6228, "60-69": 2779, "more than 70": 842,
    },
}
DEFAULT = {"race": "White", "gender": "Male", "age": "20-29"}  # planted "unmarked" defaults


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, pd.DataFrame, dict[str, tuple[list[str], np.ndarray]]]:
    """Unit image embeddings, FairFace-style label table and per-axis (labels, label embeddings)."""
    rng = np.random.default_rng(seed)
    population = {}
    for attr, sizes in SIZES.items():
        total = sum(sizes.values())
        counts = np.floor(np.array(list(sizes.values())) * n / total).astype(int)
        counts[np.argmax(counts)] += n - counts.sum()
        population[attr] = rng.permutation(np.repeat(list(sizes), counts))
    labels = pd.DataFrame(population, index=[f"train/{i + 1}.jpg" for i in range(n)])
    base = rng.standard_normal(d).astype(np.float32)
    base /= np.linalg.norm(base)
    emb = rng.standard_normal((n, d), dtype=np.float32)
    # per-race noise level, so that some groups are planted tighter (more self-similar) than others
    race_codes = pd.Categorical(labels["race"], categories=list(SIZES["race"])).codes
    noise = np.linspace(0.8, 1.2, len(SIZES["race"]), dtype=np.float32) / np.float32(np.sqrt(d))
    emb *= noise[race_codes, None]
    emb += base
    directions = {}
    for attr, scale in (("race", 0.5), ("gender", 0.4), ("age", 0.45)):
        values = list(SIZES[attr])
        dirs = rng.standard_normal((len(values), d)).astype(np.float32)
        dirs *= np.float32(scale) / np.linalg.norm(dirs, axis=1, keepdims=True)
        directions[attr] = dict(zip(values, dirs))
        codes = pd.Categorical(labels[attr], categories=values).codes
        emb += dirs[codes]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    # text side: the unmarked prompt sits nearer the planted defaults, marked prompts near their group
    person = base + 0.6 * sum(directions[a][DEFAULT[a]] for a in DEFAULT)
    axes = {}
    for attr, dirs in directions.items():
        names = ["person"] + list(dirs)
        vectors = [person] + [base + 1.6 * v for v in dirs.values()]
        noisy = np.array(vectors) + 0.25 * rng.standard_normal((len(names), d)) / np.sqrt(d)
        axes[attr] = (names, noisy.astype(np.float32))
    return emb, labels, axes


def exact_metrics(emb: np.ndarray, labels: pd.DataFrame, axes: dict) -> dict[str, pd.DataFrame]:
    """The timed biaslib path: self-similarity and person preference, three attributes, 95% CIs."""
    out = {}
    for attr, (names, label_emb) in axes.items():
        out[f"self_similarity/{attr}"] = self_similarity(emb, labels[attr].to_numpy(), n_boot=1000)
        out[f"person_preference/{attr}"] = person_preference(
            emb, label_emb, names, labels[attr].to_numpy(), n_boot=1000, seed=0
        )
    return out


def original_self_similarity(
    population_df: pd.DataFrame, image_df: pd.DataFrame, iterations: int
) -> tuple[dict, float]:
    """A8 as coded: per group, pandas row selection, then draws of 22 with replacement + pdist.

    Returns the per-group means after ``iterations`` and the run time extrapolated to 10,000.
    """
    means, extrapolated = {}, 0.0
    for attr in SIZES:
        for value in SIZES[attr]:
            start = time.perf_counter()
            sub_df = population_df[population_df[attr].isin([value])]
            sub_image = image_df.loc[sub_df.index.str.split("/").str[1].str.split(".").str[0]]
            img_arr = sub_image.to_numpy()
            setup = time.perf_counter() - start
            start = time.perf_counter()
            sims = []
            for _ in range(iterations):
                sub_arr = img_arr[np.random.randint(img_arr.shape[0], size=SAMPLE), :]
                sims.append(np.mean(1 - pdist(sub_arr, metric="cosine")))
            loop = time.perf_counter() - start
            means[(attr, value)] = float(np.mean(sims))
            extrapolated += setup + loop * ORIGINAL_ITERATIONS / iterations
    return means, extrapolated


def balance_on_characteristic(population_df: pd.DataFrame, image_df: pd.DataFrame, characteristic: str):
    """A9's balancing: drop random rows of every category down to the smallest category's size."""
    sub_counts = Counter(population_df[characteristic].tolist())
    min_characteristic, min_count = min(sub_counts.items(), key=itemgetter(1))
    for category in sub_counts:
        if category == min_characteristic:
            continue
        population_df = population_df.drop(
            population_df.query(f"{characteristic} == '{category}'").sample(sub_counts[category] - min_count).index
        )
    image_df = image_df.loc[population_df.index.str.split("/").str[1].str.split(".").str[0]]
    return population_df, image_df


def original_person_preference(
    population_df: pd.DataFrame, emb: np.ndarray, axes: dict, iterations: int
) -> tuple[dict, float]:
    """A9 as coded: idxmax preferences per axis, then balanced down-sampling every iteration."""
    start = time.perf_counter()
    image_list = population_df.index.str.split("/").str[1].str.split(".").str[0]
    columns = {"race": "Race", "gender": "Gender", "age": "Age"}
    frames = []
    for attr, (names, label_emb) in axes.items():
        text = label_emb / np.linalg.norm(label_emb, axis=1, keepdims=True)
        sims = pd.DataFrame(emb @ text.T, index=image_list, columns=["Person"] + names[1:])
        preferences = sims[sims.columns].idxmax(axis=1).tolist()
        binary = [1 if p == "Person" else 0 for p in preferences]
        frames.append(pd.DataFrame(binary, index=image_list, columns=[columns[attr]]))
    joint_df = pd.concat(frames, axis=1)
    extrapolated = time.perf_counter() - start
    means = {}
    for attr in SIZES:
        start = time.perf_counter()
        shares = {value: [] for value in SIZES[attr]}
        for _ in range(iterations):
            for value in SIZES[attr]:
                for _ in range(2 if attr == "age" else 1):  # the age loop balances twice
                    balanced_df, balanced_prefs = balance_on_characteristic(population_df, joint_df, attr)
                idx = balanced_df[balanced_df[attr].isin([value])]
                prefs = balanced_prefs.loc[idx.index.str.split("/").str[1].str.split(".").str[0]]
                pref_list = prefs[columns[attr]].tolist()
                shares[value].append(sum(pref_list) / len(pref_list))
        extrapolated += (time.perf_counter() - start) * ORIGINAL_ITERATIONS / iterations
        means.update({(attr, value): float(np.mean(v)) for value, v in shares.items()})
    return means, extrapolated


def max_abs_diff(mc: dict, frames: dict[str, pd.DataFrame], kind: str) -> float:
    return max(abs(v - frames[f"{kind}/{attr}"].loc[value, "value"]) for (attr, value), v in mc.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows and fewer Monte Carlo iterations")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--ss-iterations", type=int, default=None, help="measured self-similarity iterations")
    parser.add_argument("--pp-iterations", type=int, default=None, help="measured person-preference iterations")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of the exact path (best reported)")
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 86_744)
    ss_iterations = args.ss_iterations or (5 if args.quick else 20)
    pp_iterations = args.pp_iterations or (1 if args.quick else 2)

    emb, labels, axes = make_data(rows, args.dim, seed=0)
    print(f"data: {rows} x {args.dim} float32; smallest groups: "
          + ", ".join(f"{a}={labels[a].value_counts().min()}" for a in SIZES))

    load = os.getloadavg()[0]
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        frames = exact_metrics(emb, labels, axes)
        timings.append(time.perf_counter() - start)
    exact_seconds = min(timings)
    print(f"exact self-similarity + person preference, 3 attributes, 95% CIs: "
          f"{', '.join(f'{t:.2f}' for t in timings)} s (1-min load average before: {load:.2f}; "
          f"other processes on the 2 cores slow the BLAS calls several-fold)")
    for name, frame in frames.items():
        print(f"\n{name}\n{frame.round(4).to_string()}")

    start = time.perf_counter()
    boot = {attr: self_similarity(emb, labels[attr].to_numpy(), ci_method="bootstrap", n_boot=1000) for attr in SIZES}
    bootstrap_seconds = time.perf_counter() - start
    width_ratio = max(
        float(((b["ci_high"] - b["ci_low"]) / (f["ci_high"] - f["ci_low"]) - 1).abs().max())
        for b, f in ((boot[a], frames[f"self_similarity/{a}"]) for a in SIZES)
    )
    print(f"\nself-similarity with multinomial-bootstrap CIs (n_boot=1000), 3 attributes: {bootstrap_seconds:.2f} s; "
          f"largest relative CI-width difference vs U-statistic: {width_ratio:.3f}")

    with_replacement = {
        f"self_similarity/{attr}": self_similarity(emb, labels[attr].to_numpy(), with_replacement=True)
        for attr in SIZES
    }
    np.random.seed(0)
    image_df = pd.DataFrame(emb, index=labels.index.str.split("/").str[1].str.split(".").str[0])
    ss_mc, ss_seconds = original_self_similarity(labels, image_df, ss_iterations)
    pp_mc, pp_seconds = original_person_preference(labels, emb, axes, pp_iterations)
    original_seconds = ss_seconds + pp_seconds
    ss_diff = max_abs_diff(ss_mc, with_replacement, "self_similarity")
    pp_diff = max_abs_diff(pp_mc, frames, "person_preference")
    speedup = original_seconds / exact_seconds
    print(f"\noriginal Monte Carlo extrapolated to {ORIGINAL_ITERATIONS} iterations: self-similarity "
          f"{ss_seconds:.0f} s (from {ss_iterations} iterations), person preference {pp_seconds:.0f} s "
          f"(from {pp_iterations}); total {original_seconds:.0f} s = {original_seconds / 3600:.1f} h")
    print(f"speed-up {speedup:,.0f}x; max |MC - exact|: self-similarity (with replacement) {ss_diff:.4f}, "
          f"person preference {pp_diff:.4f}")
    result = {
        "bench": "markedness",
        "quick": args.quick,
        "rows": rows,
        "dim": args.dim,
        "exact_seconds": round(exact_seconds, 3),
        "exact_seconds_median": round(float(np.median(timings)), 3),
        "load_average_before": round(load, 2),
        "exact_target_seconds": 5.0,
        "bootstrap_ci_seconds": round(bootstrap_seconds, 3),
        "bootstrap_vs_ustat_width_rel_diff": round(width_ratio, 4),
        "original_extrapolated_seconds": round(original_seconds, 1),
        "original_self_similarity_seconds": round(ss_seconds, 1),
        "original_person_preference_seconds": round(pp_seconds, 1),
        "mc_iterations_measured": {"self_similarity": ss_iterations, "person_preference": pp_iterations},
        "speedup": round(speedup, 1),
        "max_abs_diff_self_similarity": round(ss_diff, 5),
        "max_abs_diff_person_preference": round(pp_diff, 5),
    }
    print_result(result)


if __name__ == "__main__":
    main()
