"""CLIP_benchmark's zero-shot measures (issue 28's peer measures): top-k accuracy and mean per-class recall as
metrics (against torch.topk, the peer's own method, and a brute force) and as the ``geode_classification``
evaluation (against both recomputed from the features it stored)."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
import torch

import biaslib.metrics.classification as classification
from biaslib.config import EvalConfig, Params
from biaslib.data import load_geode
from biaslib.evaluate import evaluate_targets, feature_store
from biaslib.metrics.classification import mean_per_class_recall, recall_weights, top_k_correct
from biaslib.models import model_spec
from biaslib.studies.benchmark.leaderboard import model_target, resolve_models


def _recall_by_loops(predicted: list[int], truth: list[int]) -> float:
    recalls = []
    for c in sorted(set(truth)):
        items = [i for i, t in enumerate(truth) if t == c]
        recalls.append(sum(predicted[i] == c for i in items) / len(items))
    return sum(recalls) / len(recalls)


def test_the_docstring_examples_hold():
    assert doctest.testmod(classification).failed == 0


def test_top_k_and_recall_match_torch_topk_and_a_brute_force():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(300, 12))
    truth = rng.integers(0, 12, 300)
    for k in (1, 5, 12, 40):
        top = torch.topk(torch.from_numpy(scores), min(k, 12), dim=1).indices.numpy()
        np.testing.assert_array_equal(top_k_correct(scores, truth, k), (top == truth[:, None]).any(axis=1))
    predicted = scores.argmax(axis=1)
    assert mean_per_class_recall(predicted, truth) == pytest.approx(_recall_by_loops(list(predicted), list(truth)))
    groups = rng.choice(["north", "south", "east"], 300)
    weights = recall_weights(truth, groups)
    for group in ("north", "south", "east"):
        mine = groups == group
        assert np.mean((predicted == truth)[mine] * weights[mine]) == pytest.approx(
            _recall_by_loops(list(predicted[mine]), list(truth[mine])))
    with pytest.raises(ValueError, match="class indices"):
        top_k_correct(scores, truth + 12, 1)
    with pytest.raises(ValueError, match="positive integer"):
        top_k_correct(scores, truth, 0)


def test_the_evaluation_reports_the_peer_measures_overall_and_per_region(exported, tmp_path, one_thread):
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=50, n_perm=50, threads=1, min_group_size=5)
    params = Params(experiment="cls", runs_dir=tmp_path, eval=config)
    target = model_target(params, resolve_models([model_spec("vit", {"arch": "biaslib-tiny-vit",
                                                                      "pretrained": "none"})])[0])
    (path,) = evaluate_targets(params, [target], ["geode_classification"], progress=False)
    rows = pd.DataFrame(json.loads(path.read_text())["rows"])
    geode = load_geode(exported["geode"])
    store = feature_store(params)
    model = store.entries()["model"].iloc[0]
    image, text = store.load(model, "geode-images"), store.load(model, "geode-prompts")
    classes = sorted(geode["object"].unique())
    weights = text.vectors.astype(np.float32).reshape(len(classes), len(config.geode_templates), -1).mean(axis=1)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    scores = image.vectors.astype(np.float32) @ weights.T
    truth = np.array([classes.index(o) for o in geode["object"]])
    top5 = torch.topk(torch.from_numpy(scores), 5, dim=1).indices.numpy()
    hit5 = (top5 == truth[:, None]).any(axis=1)
    predicted = scores.argmax(axis=1)
    for region in ["all", *sorted(geode["region"].unique())]:
        mine = np.ones(len(geode), bool) if region == "all" else (geode["region"] == region).to_numpy()
        attribute = "all" if region == "all" else "region"
        got = rows.set_index(["attribute", "group", "metric"])["value"]
        assert got[attribute, region, "accuracy_top5"] == pytest.approx(hit5[mine].mean())
        assert got[attribute, region, "mean_per_class_recall"] == pytest.approx(
            _recall_by_loops(list(predicted[mine]), list(truth[mine])))
    gaps = rows[rows["kind"] == "gap"].set_index("metric")
    per_region = rows[(rows["attribute"] == "region") & (rows["kind"] == "group")].set_index(["metric", "group"])
    for metric in ("accuracy_top5", "mean_per_class_recall"):
        values = per_region.loc[metric, "value"]
        assert gaps.loc[metric, "value"] == pytest.approx(values.max() - values.min())
        assert gaps.loc[metric, "ci_low"] <= gaps.loc[metric, "ci_high"] and gaps.loc[metric, "n"] == len(geode)
