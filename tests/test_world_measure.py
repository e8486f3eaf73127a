"""Attributes of generated images: simulator records, the cached classifier, and share tables."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from biaslib.config import GenerateConfig
from biaslib.generate import generate
from biaslib.world import World
from biaslib.world_models.classifier import classify_images, degrade, world_classifier
from biaslib.world_models.measure import generated_attributes, share_table


def test_generated_attributes_of_the_simulator_are_its_records(tmp_path):
    world = World(seed=0)
    captions = pd.DataFrame({"key": ["a", "b", "c"], "caption": ["a nurse", "a male nurse", "a photo of a pilot"]})
    generate(captions, tmp_path / "g", GenerateConfig(shard_size=2, batch_size=2), world=world, progress=False)
    attrs = generated_attributes(tmp_path / "g", world, tmp_path / "cache").set_index("key")
    assert (attrs["labels"] == "simulator").all()
    assert attrs.loc["b", "gender"] == "man" and attrs.loc["b", "occupation"] == "nurse"
    assert attrs.loc["c", "occupation"] == "pilot"


def test_world_classifier_is_cached_and_labels_images(tmp_path):
    world = World(seed=0)
    model, record = world_classifier(world, tmp_path, n_train=256, n_val=64, max_epochs=1)
    assert set(record["accuracy"]) == {"gender", "age_level", "skin_tone", "occupation"}
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert files == [".json", ".safetensors"]
    again, record2 = world_classifier(world, tmp_path, n_train=256, n_val=64, max_epochs=1)
    assert record2 == record
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    people = world.people(5, stream="measure")
    labels = classify_images(again, world.render_many(people.to_dict("records")))
    assert list(labels.columns) == ["gender", "gender_p", "age_level", "age_level_p", "skin_tone", "skin_tone_p",
                                    "occupation", "occupation_p"]
    assert labels["gender_p"].between(0.5, 1.0).all()


def test_degrade_keeps_shape_and_range():
    x = torch.rand(2, 3, 64, 64)
    y = degrade(x, 32)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    flat = torch.full((1, 3, 64, 64), 0.25)
    assert torch.allclose(degrade(flat, 16), flat)


def test_share_table_counts():
    real = pd.DataFrame({"occupation": ["nurse"] * 4 + ["pilot"] * 2, "gender": ["woman"] * 3 + ["man"] * 3})
    gen = pd.DataFrame({"occupation": ["nurse", "pilot"], "gender": ["woman", "woman"]})
    table = share_table({"real": real, "gen": gen}).set_index(["source", "occupation"])
    assert table.loc[("real", "nurse"), "share"] == 0.75 and table.loc[("real", "pilot"), "share"] == 0.0
    assert table.loc[("gen", "pilot"), "share"] == 1.0 and table.loc[("real", "nurse"), "n"] == 4


def test_skew_by_ratio_recovers_a_planted_skew():
    from biaslib.world_models.measure import skew_by_ratio

    occupations = ["nurse"] * 400 + ["pilot"] * 400
    balanced = pd.DataFrame({"occupation": occupations, "gender": ["woman", "man"] * 400, "source": "real"})
    skewed = balanced.assign(gender=["woman"] * 360 + ["man"] * 40 + ["man"] * 360 + ["woman"] * 40,
                             source=["generated"] * 800)
    table = skew_by_ratio({"000": balanced, "100": skewed}).set_index("ratio")
    # 90% women among nurses, 10% among pilots: L1 = |0.9 − 0.1| = 0.8 in both
    assert table.loc[0.0, "skew"] == 0.0 and table.loc[1.0, "skew"] == pytest.approx(0.8)
    assert table.loc[1.0, "ci_low"] > table.loc[0.0, "ci_high"]
    assert table.loc[1.0, "ci_low"] < 0.8 < table.loc[1.0, "ci_high"]
    assert table.loc[1.0, "generated_share"] == 1.0 and table.loc[0.0, "generated_share"] == 0.0


def test_skew_change_tests_the_planted_change_and_stays_quiet_on_an_a_a_pair():
    """Notebook 02's change test (issue 28): a planted 0 → 0.8 change is beyond chance with the plug-in difference
    inside its interval; two mixes drawn alike from a 50/50 world are not; the count table is the brute-force one."""
    import numpy as np

    from biaslib.world_models.measure import gender_count_table, skew_change

    occupations = ["nurse"] * 400 + ["pilot"] * 400
    balanced = pd.DataFrame({"occupation": occupations, "gender": ["woman", "man"] * 400})
    skewed = balanced.assign(gender=["woman"] * 360 + ["man"] * 40 + ["man"] * 360 + ["woman"] * 40)
    counts = gender_count_table(pd.concat([skewed, pd.DataFrame({"occupation": ["none"], "gender": ["woman"]})]))
    assert counts.to_dict("list") == {"occupation": ["nurse", "pilot"], "man": [40, 360], "woman": [360, 40]}
    planted = skew_change({"000": balanced, "100": skewed}, "000", "100")
    assert planted.plug_in == pytest.approx(0.8) and planted.p_value < 0.001
    assert planted.ci_low > 0 and planted.ci_low < planted.value < planted.ci_high
    rng = np.random.default_rng(0)
    quiet = 0
    for _ in range(40):  # A/A: both mixes 50/50 in truth, 400 samples per occupation each
        a, b = (balanced.assign(gender=rng.choice(["woman", "man"], len(balanced))) for _ in range(2))
        quiet += skew_change({"000": a, "100": b}, "000", "100").p_value >= 0.05
    assert quiet >= 36  # ≤ 10% false calls over 40 pairs (5% nominal)
