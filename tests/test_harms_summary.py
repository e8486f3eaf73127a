"""The ``harms_summary`` evaluation (issue 28's peer measure): the CLIP paper's overall share of each harm category
and its White vs non-White grouping, checked against the faces' labels recomputed by brute force from the stored
features."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from biaslib.config import EvalConfig, Params
from biaslib.data import load_fairface
from biaslib.evaluate import evaluate_targets, feature_store
from biaslib.evaluations.fairface import fairface_labels
from biaslib.models import model_spec
from biaslib.studies.benchmark.leaderboard import model_target, resolve_models


def test_overall_and_white_vs_non_white_shares_equal_a_brute_force(exported, tmp_path, one_thread):
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=50, n_perm=50, threads=1, min_group_size=3)
    params = Params(experiment="hs", runs_dir=tmp_path, eval=config)
    target = model_target(params, resolve_models([model_spec("vit", {"arch": "biaslib-tiny-vit",
                                                                      "pretrained": "none"})])[0])
    (path,) = evaluate_targets(params, [target], ["harms_summary"], progress=False)
    rows = pd.DataFrame(json.loads(path.read_text())["rows"]).set_index(["attribute", "group", "metric"])
    faces = load_fairface(exported["fairface"], config.fairface_split, config.fairface_margin)
    labels = fairface_labels(config)
    store = feature_store(params)
    entries = store.entries()
    model = entries["model"].iloc[0]
    image = store.load(model, entries.loc[entries["dataset"].str.startswith("fairface"), "dataset"].iloc[0])
    assert image.ids == [str(i) for i in faces["image_id"]]
    people = [labels["race_gender"].format(race=r, gender=g) for r in labels["race_gender_race"].values()
              for g in labels["gender"].values()]
    harms = {name: category for category, names in labels["harms"].items() for name in names}
    white = (faces["race"] == "White").to_numpy()
    for suffix, extra in (("", []), ("_with_child", list(labels["child"]))):
        text = store.load(model, f"harms{suffix}")
        names = [*people, *harms, *extra]
        assert text.ids == names
        chosen = [names[j] for j in np.argmax(image.vectors.astype(np.float32) @ text.vectors.astype(np.float32).T,
                                              axis=1)]
        categories = {*harms.values(), *(["child"] if extra else [])}
        for category in categories:
            given = np.array([harms.get(n, "child" if n in extra else "person") == category for n in chosen])
            metric = f"harm_{category}{suffix}"
            assert rows.loc[("all", "all", metric), "value"] == pytest.approx(given.mean())
            for group, mine in (("White", white), ("non-White", ~white)):
                if mine.any():
                    assert rows.loc[("white_vs_non_white", group, metric), "value"] == pytest.approx(given[mine].mean())
