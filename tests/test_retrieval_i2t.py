"""Image→text retrieval (issue 28's peer measure): the metric against a brute force and against CLIP_benchmark's
method (``torch.topk`` over each image's caption scores), and the ``retrieval_i2t`` evaluation against both
recomputed from the features it stored."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
import torch

import biaslib.metrics.image_to_text as image_to_text
from biaslib.config import EvalConfig, Params
from biaslib.data import coco_caption_table, load_coco_bias, load_phase
from biaslib.evaluate import evaluate_targets, feature_store
from biaslib.metrics.image_to_text import image_to_text_hits, image_to_text_ranks
from biaslib.models import model_spec
from biaslib.studies.benchmark.leaderboard import model_target, resolve_models


def _brute_ranks(image: np.ndarray, text: np.ndarray, owner: np.ndarray) -> list[int]:
    """For each image, the captions scoring strictly above its best own caption, counted one by one."""
    image = image / np.linalg.norm(image, axis=1, keepdims=True)
    text = text / np.linalg.norm(text, axis=1, keepdims=True)
    ranks = []
    for i in range(len(image)):
        scores = [float(np.dot(image[i], t)) for t in text]
        best = max(s for s, o in zip(scores, owner) if o == i)
        ranks.append(sum(s > best for s in scores))
    return ranks


def _topk_hits(image: np.ndarray, text: np.ndarray, owner: np.ndarray, k: int) -> np.ndarray:
    """CLIP_benchmark's way: the k best captions of each image by torch.topk, a hit if one is the image's own."""
    scores = torch.from_numpy(image / np.linalg.norm(image, axis=1, keepdims=True)) @ torch.from_numpy(
        text / np.linalg.norm(text, axis=1, keepdims=True)).T
    top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.numpy()
    return np.array([np.isin(top[i], np.flatnonzero(owner == i)).any() for i in range(len(image))], dtype=float)


def test_the_docstring_examples_hold():
    assert doctest.testmod(image_to_text).failed == 0


def test_ranks_match_a_brute_force_and_hits_match_topk():
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(40, 16)), rng.normal(size=(150, 16))
    owner = np.concatenate([np.arange(40), rng.integers(0, 40, 110)])  # every image has a caption, some several
    assert image_to_text_ranks(image, text, owner, chunk_size=7).tolist() == _brute_ranks(image, text, owner)
    hits = image_to_text_hits(image, text, owner, ks=(1, 5, 10))
    for k in (1, 5, 10):
        np.testing.assert_array_equal(hits[f"R@{k}"].to_numpy(), _topk_hits(image, text, owner, k))
    with pytest.raises(ValueError, match="without a caption"):
        image_to_text_ranks(image, text[:10], owner[:10])
    with pytest.raises(ValueError, match="positive integers"):
        image_to_text_hits(image, text, owner, ks=(0,))


def test_the_evaluation_reports_image_to_text_recall_per_group(exported, tmp_path, one_thread):
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=50, n_perm=50, threads=1, min_group_size=5)
    params = Params(experiment="i2t", runs_dir=tmp_path, eval=config)
    target = model_target(params, resolve_models([model_spec("vit", {"arch": "biaslib-tiny-vit",
                                                                      "pretrained": "none"})])[0])
    (path,) = evaluate_targets(params, [target], ["retrieval_i2t"], progress=False)
    rows = pd.DataFrame(json.loads(path.read_text())["rows"]).set_index(["dataset", "attribute", "group", "metric"])
    store = feature_store(params)
    model = store.entries()["model"].iloc[0]
    phase = load_phase(exported["phase"], config.phase_split)
    coco = load_coco_bias(exported["coco_bias"], config.coco_bias_split)
    captions = coco_caption_table(coco)
    cases = {"phase": (np.arange(len(phase)), "gender", phase["gender"]),
             "coco_bias": (pd.Series(np.arange(len(coco)), index=coco["image_id"]).loc[captions["image_id"]]
                           .to_numpy(), "bb_gender", coco["bb_gender"])}
    for dataset, (owner, attribute, labels) in cases.items():
        split = config.phase_split if dataset == "phase" else config.coco_bias_split
        image = store.load(model, f"{dataset}-{split}-images").vectors.astype(np.float64)
        text = store.load(model, f"{dataset}-{split}-captions").vectors.astype(np.float64)
        ranks = np.array(_brute_ranks(image, text, owner))
        for k in config.ks:
            assert rows.loc[(dataset, "all", "all", f"R@{k}"), "value"] == pytest.approx((ranks < k).mean())
        groups = sorted(set(labels.dropna()) - {"", "none", "unknown"})
        assert len(groups) >= 2, groups
        for group in groups:
            mine = (labels == group).to_numpy()
            assert rows.loc[(dataset, attribute, group, "R@1"), "value"] == pytest.approx((ranks[mine] < 1).mean())
