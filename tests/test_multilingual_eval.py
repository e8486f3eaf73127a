"""Evaluation of multilingual generations: a planted language gap is recovered, classifier error is corrected,
empty occupations are reported, generator amplification has the planted sign, magbig on corrected counts
matches a brute-force computation."""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biaslib.amplification import amplification_table
from biaslib.config import load_params
from biaslib.faces.correction import Confusion
from biaslib.metrics import magbig_fairness
from biaslib.multilingual import generate_languages, write_prompts
from biaslib.multilingual_eval import (
    clip_scores,
    collect,
    counts_of,
    fairness_contrasts,
    fairness_table,
    gender_counts,
    image_labels,
    share_table,
    write_results,
)
from biaslib.world import World
from biaslib.world.simulator import SimulatedGenerator

#: Images of the neutral prompts in each prompt's own language, German drawn with +3 log-odds(man).
PLANTED = """
experiment: ml_eval
runs_dir: {runs}
generate: {{batch_size: 64, shard_size: 100, language_shift: {{de: 3.0}}}}
multilingual:
  languages: [en, de]
  subset: {{profession: [receptionist, nurse, librarian, teacher], style: 1, dressing: 1}}
  image_prompt: neutral
  image_language: same
"""


def _one(frame: pd.DataFrame, **match: str) -> pd.Series:
    """The single row of ``frame`` whose columns equal ``match``."""
    rows = frame
    for column, value in match.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (match, rows)
    return rows.iloc[0]


def test_planted_language_gap_is_recovered_with_a_ci(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ml.yaml"
    path.write_text(PLANTED.format(runs=tmp_path / "runs"))
    params = load_params(path)
    write_prompts(params)
    generate_languages(params, "data", progress=False)
    counts = gender_counts(params, "data")
    assert set(counts["labels"]) == {"simulator"} and (counts[["no_face", "multiple_faces"]] == 0).all().all()
    assert counts.groupby("language")["images"].sum().to_dict() == {"de": 48, "en": 48}
    gaps = fairness_contrasts(counts, by="language", reference="en", n_boot=400)
    gap = _one(gaps, language="de", correction="raw", metric="share_woman")
    truth_en = counts[counts["language"] == "en"].set_index("occupation")["share_woman"]
    truth_de = counts[counts["language"] == "de"].set_index("occupation")["share_woman"]
    assert gap["value"] == pytest.approx((truth_de - truth_en).mean())
    assert gap["value"] < -0.2 and gap["ci_high"] < 0  # German shifted toward men: fewer women, CI excludes 0
    # exact labels: the corrected scores are the raw ones
    corrected = _one(gaps, language="de", correction="corrected", metric="share_woman")
    assert corrected["value"] == pytest.approx(gap["value"])

    labels = image_labels(params, "data", "de")
    with caplog.at_level(logging.WARNING):
        clip = clip_scores(labels, params, None, "biaslib-tiny-rn")
    assert clip["value"].isna().all() and "no CLIP checkpoint" in caplog.text
    fairness = fairness_table(counts, n_boot=50)
    paths = write_results(params, {"fairness": fairness, "clip": clip})
    assert sorted(p.name for p in paths) == ["ml_eval__data__de.json", "ml_eval__data__en.json"]
    back = collect(params)
    assert len(back) == len(fairness) + len(clip)
    keys = ["language", "correction", "metric"]
    kept = back[back["section"] == "fairness"].sort_values(keys)
    assert np.allclose(kept["value"].astype(float), fairness.sort_values(keys)["value"].astype(float))


def _flipped_counts(truth: np.ndarray, n: int, rates: np.ndarray) -> pd.DataFrame:
    """Expected classified counts of occupations with true p(woman) ``truth`` through confusion ``rates``."""
    woman = np.rint(n * (truth * rates[1, 1] + (1 - truth) * rates[0, 1])).astype(np.int64)
    return pd.DataFrame({"generation": "base", "language": "en", "occupation": [f"o{i}" for i in range(len(truth))],
                         "man": n - woman, "woman": woman, "labels": "classifier"})


def test_planted_confusion_is_corrected_and_raw_is_not() -> None:
    truth = np.array([0.05, 0.15, 0.3, 0.5, 0.75, 0.95])
    rates = np.array([[0.85, 0.15], [0.25, 0.75]])  # P(predicted | true), rows man, woman
    counts = _flipped_counts(truth, 3000, rates)
    confusion = Confusion(("man", "woman"), np.rint(rates * 3000).astype(np.int64))
    table = fairness_table(counts, confusion, n_boot=400, occupations=6, images=10)
    exact = magbig_fairness(pd.DataFrame({"occupation": counts["occupation"], "man": 1 - truth, "woman": truth}),
                            occupations=6, images=10)
    for metric in ("mean_l1", "exp_max_l1"):
        corrected = _one(table, correction="corrected", metric=metric)
        raw = _one(table, correction="raw", metric=metric)
        assert corrected["ci_low"] <= exact[metric] <= corrected["ci_high"], (metric, corrected, exact[metric])
        assert corrected["value"] == pytest.approx(exact[metric], abs=0.01)
        assert raw["ci_high"] < exact[metric]  # misread labels pull every share toward the middle
    shares = share_table(counts, confusion, n_boot=200)
    assert np.allclose(shares["share_corrected"], truth, atol=0.01)
    assert (shares["share_corrected_low"] <= truth).all() and (truth <= shares["share_corrected_high"]).all()


def test_occupation_without_a_classified_face_is_reported_not_divided() -> None:
    outcomes = {"nurse": ["woman"] * 6 + ["man"] * 2 + ["no_face"], "pilot": ["man"] * 7 + ["woman", "multiple_faces"],
                "ceo": ["no_face", "no_face", "multiple_faces"]}
    labels = pd.DataFrame([{"generation": "base", "language": "en", "occupation": o, "outcome": v, "labels": "faces"}
                           for o, values in outcomes.items() for v in values])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = counts_of(labels)
        table = fairness_table(counts, n_boot=100, occupations=10)
        shares = share_table(counts, n_boot=50)
    ceo = _one(counts, occupation="ceo")
    assert (ceo["images"], ceo["no_face"], ceo["multiple_faces"], ceo["classified"]) == (3, 2, 1, 0)
    assert math.isnan(ceo["share_woman"])
    assert _one(shares, occupation="ceo")["status"] == "no_classified_face"
    row = _one(table, correction="raw", metric="mean_l1")
    assert (row["n_occupations"], row["n_excluded"], row["excluded"]) == (2, 1, "ceo")
    assert row["value"] == pytest.approx((abs(2 * 6 / 8 - 1) + abs(2 * 1 / 8 - 1)) / 2)
    assert np.isfinite(table[["value", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()


def test_generator_amplification_has_the_planted_sign() -> None:
    world = World()
    occupations = ["receptionist", "nurse", "librarian", "teacher", "doctor", "lawyer", "pilot", "mechanic"]
    train = world.people(8000, stream="amp/train", occupations=occupations)
    prompted = world.people(3000, stream="amp/prompts", occupations=occupations)["occupation"]
    prompts = [f"a photo of a {o}" for o in prompted]
    tables = {}
    for gamma in (1.0, 2.0):
        generated = SimulatedGenerator(world, gamma).sample_attributes(prompts, list(range(len(prompts))))
        tables[gamma] = amplification_table(train, generated, n_boot=150).set_index("metric")
    for metric in ("bias_amplification", "directional_T->A"):
        faithful, amplified = tables[1.0].loc[metric], tables[2.0].loc[metric]
        assert faithful["ci_low"] < 0 < faithful["ci_high"] and abs(faithful["value"]) < 0.03, (metric, faithful)
        assert amplified["ci_low"] > 0.03, (metric, amplified)


def _brute_expected_max(man_share: np.ndarray, k: int, n: int) -> float:
    """E[max over a uniform k-subset of |2X/n − 1|], X ~ Binomial(n, p_o), by enumerating everything."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(man_share)), k))
    for subset in subsets:
        for xs in itertools.product(range(n + 1), repeat=k):
            prob = math.prod(math.comb(n, x) * man_share[o] ** x * (1 - man_share[o]) ** (n - x)
                             for o, x in zip(subset, xs))
            total += prob * max(abs(2 * x / n - 1) for x in xs)
    return total / len(subsets)


def test_magbig_on_corrected_counts_equals_a_brute_force_computation() -> None:
    counts = pd.DataFrame({"generation": "finetuned", "language": "de", "occupation": ["a", "b", "c"],
                           "man": [30, 10, 22], "woman": [10, 30, 18]})
    confusion = Confusion(("man", "woman"), np.array([[90, 10], [20, 80]]))
    table = fairness_table(counts, confusion, n_boot=20, occupations=2, images=3)
    sens, spec = 0.8, 0.9
    q = counts["woman"].to_numpy() / 40
    woman = np.clip((q + spec - 1) / (sens + spec - 1), 0, 1)
    for correction, share in (("raw", q), ("corrected", woman)):
        mean_l1 = np.mean(np.abs(2 * share - 1))
        assert _one(table, correction=correction, metric="mean_l1")["value"] == pytest.approx(mean_l1)
        assert _one(table, correction=correction, metric="mean_l2")["value"] == pytest.approx(mean_l1 / math.sqrt(2))
        assert _one(table, correction=correction, metric="share_woman")["value"] == pytest.approx(share.mean())
        brute = _brute_expected_max(1 - share, 2, 3)
        assert _one(table, correction=correction, metric="exp_max_l1")["value"] == pytest.approx(brute)
