"""The ``ranking_ndkl`` evaluation (issue 28's peer measure): NDKL over each concept query's whole ranking of the
FairFace faces, as Geyik et al. 2019 define it, checked against a closed form and a brute force of their
definition on the features the evaluation stored."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from biaslib.config import EvalConfig, Params
from biaslib.data import load_fairface
from biaslib.evaluate import evaluate_targets, feature_store
from biaslib.metrics.skew import ndkl
from biaslib.models import model_spec
from biaslib.studies.benchmark.leaderboard import model_target, resolve_models


def geyik_ndkl(scores: np.ndarray, labels: list[str], desired: str) -> float:
    """NDKL of one query by Geyik et al.'s definition, one prefix at a time: Σ_i KL(top-i shares ‖ D) / log2(i + 1)
    over the whole ranking (highest score first, ties in image order), divided by Σ_i 1 / log2(i + 1)."""
    order = sorted(range(len(labels)), key=lambda j: (-float(scores[j]), j))
    values = sorted(set(labels))
    whole = Counter(labels)
    target = {a: 1 / len(values) if desired == "uniform" else whole[a] / len(labels) for a in values}
    seen: Counter = Counter()
    total = norm = 0.0
    for i, j in enumerate(order, start=1):
        seen[labels[j]] += 1
        kl = sum(seen[a] / i * math.log(seen[a] / i / target[a]) for a in values if seen[a])
        total += kl / math.log2(i + 1)
        norm += 1 / math.log2(i + 1)
    return total / norm


def test_whole_ranking_ndkl_matches_the_closed_form():
    """Four faces a, a, b, b ranked in that order, uniform D: the prefixes' KLs are ln 2, ln 2, ⅔ ln ⁴⁄₃ + ⅓ ln ⅔
    and 0."""
    kls = [math.log(2), math.log(2), 2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3), 0.0]
    weights = [1 / math.log2(i + 1) for i in range(1, 5)]
    expected = sum(k * w for k, w in zip(kls, weights)) / sum(weights)
    scores = np.array([[4.0, 3.0, 2.0, 1.0]])
    assert ndkl(scores, np.array(["a", "a", "b", "b"]), 4)[0] == pytest.approx(expected, rel=1e-12)
    assert geyik_ndkl(scores[0], ["a", "a", "b", "b"], "uniform") == pytest.approx(expected, rel=1e-12)


def test_the_evaluation_reports_geyik_ndkl_over_every_face(exported, tmp_path, one_thread):
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=50, n_perm=50, threads=1)
    params = Params(experiment="ndkl", runs_dir=tmp_path, eval=config)
    target = model_target(params, resolve_models([model_spec("vit", {"arch": "biaslib-tiny-vit",
                                                                      "pretrained": "none"})])[0])
    (path,) = evaluate_targets(params, [target], ["ranking_ndkl"], progress=False)
    rows = json.loads(path.read_text())["rows"]
    faces = load_fairface(exported["fairface"], config.fairface_split, config.fairface_margin)
    store = feature_store(params)
    entries = store.entries()
    image = store.load(entries.loc[entries["dataset"].str.startswith("fairface"), "model"].iloc[0],
                       entries.loc[entries["dataset"].str.startswith("fairface"), "dataset"].iloc[0])
    text = store.load(entries["model"].iloc[0], "concept-prompts")
    assert image.ids == [str(i) for i in faces["image_id"]] and len(text.ids) == len(config.concepts)
    scores = text.vectors.astype(np.float32) @ image.vectors.astype(np.float32).T
    checked = 0
    for row in rows:
        if row["kind"] != "group":
            continue
        query = list(config.concepts).index(row["group"])
        desired = row["metric"].removeprefix("ndkl_full_")
        labels = [str(v) for v in faces[row["attribute"]]]
        assert row["n"] == len(faces)
        assert row["value"] == pytest.approx(geyik_ndkl(scores[query], labels, desired), rel=1e-9, abs=1e-12)
        checked += 1
    assert checked == len(config.concepts) * 3 * 2  # every concept × race, gender, age × uniform, dataset
    overall = [r for r in rows if r["kind"] == "overall"]
    assert {r["metric"] for r in overall} == {"ndkl_full_uniform", "ndkl_full_dataset"} and len(overall) == 6
    for row in overall:
        values = [r["value"] for r in rows if r["kind"] == "group" and r["metric"] == row["metric"]
                  and r["attribute"] == row["attribute"]]
        assert row["value"] == pytest.approx(np.mean(values)) and row["ci_low"] <= row["value"] <= row["ci_high"]
