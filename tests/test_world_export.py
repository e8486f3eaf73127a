"""Exporters → real-format loaders round-trip to the world's ground truth, byte-identically."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL_EXPORT
from PIL import Image

from biaslib.data import (
    iter_cc3m,
    load_coco_bias,
    load_fairface,
    load_geode,
    load_magbig_prompts,
    load_phase,
)
from biaslib.world import World
from biaslib.world.attributes import (
    binary_skin,
    coco_gender,
    coco_skin,
    fairface_gender,
    occupations,
    phase_age,
    phase_ethnicity,
    phase_gender,
)
from biaslib.world.export import ADJECTIVES, export_all


def _truth(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False).set_index("image_id")


def test_cc3m_round_trip(exported):
    truth = _truth(exported["cc3m"] / "world_truth.csv")
    samples = list(iter_cc3m(exported["cc3m"]))
    assert [s.key for s in samples] == list(truth.index)
    captions = pd.read_parquet(exported["cc3m"] / "captions.parquet").set_index("key")["caption"]
    for s in samples:
        row = truth.loc[s.key]
        assert s.caption == captions[s.key] == s.metadata["caption"]
        assert s.image.size == (64, 64)
        assert s.metadata["world"]["kind"] == row["kind"]
        if row["kind"] == "person":
            for col in ("occupation", "gender", "age", "race"):
                assert s.metadata["world"][col] == row[col]
            assert s.metadata["world"]["skin_tone"] == int(row["skin_tone"])
        else:
            assert s.metadata["world"]["object"] == row["object"]
    assert {"person", "object"} == set(truth["kind"])
    stats_files = sorted(p.name for p in exported["cc3m"].glob("*_stats.json"))
    assert stats_files == ["00000_stats.json", "00001_stats.json", "00002_stats.json"]


def test_phase_round_trip(exported):
    truth = _truth(exported["phase"] / "world_truth_val.csv")
    frame = load_phase(exported["phase"], split="val").set_index("image_id")
    assert sorted(frame.index) == sorted(truth.index)
    for key, row in truth.iterrows():
        got = frame.loc[key]
        assert got["gender"] == phase_gender(row["gender"])
        assert got["age"] == phase_age(row["age"])
        assert got["skintone"] == binary_skin(int(row["skin_tone"]))
        assert got["ethnicity"] == phase_ethnicity(row["race"])
        assert got["caption"] == row["caption"]
        assert Image.open(got["file"]).size == (64, 64)


def test_coco_bias_round_trip(exported):
    truth = _truth(exported["coco_bias"] / "world_truth.csv")
    for split in ("val", "train"):
        frame = load_coco_bias(exported["coco_bias"], split=split).set_index("image_id")
        expected = truth[truth["split"] == split]
        assert sorted(frame.index) == sorted(expected.index)
        for key, row in expected.iterrows():
            got = frame.loc[key]
            assert got["bb_gender"] == coco_gender(row["gender"])
            assert got["bb_skin"] == coco_skin(int(row["skin_tone"]))
            assert list(got["skin"]) == [coco_skin(int(row["skin_tone"]))]
            assert len(got["captions"]) == SMALL_EXPORT.coco_captions_per_image
            assert Path(got["file"]).is_file()


@pytest.mark.parametrize("split", ["train", "val"])
@pytest.mark.parametrize("margin", ["125", "025"])
def test_fairface_round_trip(exported, split, margin):
    truth = _truth(exported["fairface"] / f"world_truth_{split}.csv")
    frame = load_fairface(exported["fairface"], split=split, margin=margin).set_index("image_id")
    assert list(frame.index) == list(truth.index)
    assert (frame["age"] == truth["age"]).all()
    assert (frame["race"] == truth["race"]).all()
    assert (frame["gender"] == truth["gender"].map(fairface_gender)).all()
    assert all(Image.open(f).size == (64, 64) for f in frame["file"])


def test_geode_round_trip(exported):
    truth = _truth(exported["geode"] / "world_truth.csv")
    frame = load_geode(exported["geode"]).set_index("image_id")
    assert sorted(frame.index) == sorted(truth.index)
    assert (frame.loc[truth.index, "region"] == truth["region"]).all()
    assert (frame.loc[truth.index, "object"] == truth["object"].str.replace(" ", "_")).all()
    counts = frame.groupby(["object", "region"]).size()
    assert counts.nunique() == 1 and counts.iloc[0] == SMALL_EXPORT.geode_per_object_region


def test_magbig_round_trip(exported):
    direct = load_magbig_prompts(exported["magbig"], "english")
    neutral = load_magbig_prompts(exported["magbig"], "english", kind="gender_neutral")
    adjectives = load_magbig_prompts(exported["magbig"], "english", kind="adjectives")
    assert list(direct["name"]) == occupations() == list(neutral["name"])
    assert direct.set_index("name").loc["engineer", "prompt"] == "A photo of the face of an engineer."
    assert direct.set_index("name").loc["nurse", "prompt"] == "A photo of the face of a nurse."
    assert all(p.startswith("A photo of the face of a person who ") for p in neutral["prompt"])
    assert list(adjectives["name"]) == list(ADJECTIVES)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_is_byte_identical(exported, tmp_path):
    """The same params give byte-identical files, in one process or several."""
    parallel = SMALL_EXPORT.__class__(**{**SMALL_EXPORT.__dict__, "workers": 2, "cc3m_samples": 300})
    first = _digests(export_all(World(seed=0), tmp_path / "a", parallel)["cc3m"].parent)
    serial = SMALL_EXPORT.__class__(**{**parallel.__dict__, "workers": 1})
    second = _digests(export_all(World(seed=0), tmp_path / "b", serial)["cc3m"].parent)
    assert first == second and len(first) > 100
    other_seed = _digests(export_all(World(seed=1), tmp_path / "c", serial)["cc3m"].parent)
    assert other_seed["cc3m/00000.tar"] != first["cc3m/00000.tar"]


def test_rerun_is_skipped_and_other_params_are_refused(tmp_path):
    from dataclasses import replace

    from biaslib.errors import BiaslibError

    small = replace(SMALL_EXPORT, cc3m_samples=20, cc3m_shard_size=10, phase_val=3, coco_images=3,
                    fairface_train=3, fairface_val=3, geode_per_object_region=1)
    roots = export_all(World(seed=0), tmp_path, small)
    stamp = (roots["cc3m"] / "00000.tar").stat().st_mtime_ns
    export_all(World(seed=0), tmp_path, small)  # same params: nothing rewritten
    assert (roots["cc3m"] / "00000.tar").stat().st_mtime_ns == stamp
    with pytest.raises(BiaslibError, match="other parameters"):
        export_all(World(seed=1), tmp_path, small)
    export_all(World(seed=1), tmp_path, small, overwrite=True)
    assert (roots["cc3m"] / "00000.tar").stat().st_mtime_ns != stamp
    (tmp_path / "export_manifest.json").unlink()  # an interrupted export: files but no manifest
    with pytest.raises(BiaslibError, match="no finished export"):
        export_all(World(seed=0), tmp_path, small)


def test_fairface_without_occupation_cues_keeps_the_labels_and_loses_the_outfits(exported, tmp_path):
    from biaslib.world.export import export_fairface

    truth = export_fairface(World(seed=0), tmp_path, 0, SMALL_EXPORT.fairface_val, margins=("125",),
                            occupations=False)["val"]
    with_cues = _truth(exported["fairface"] / "world_truth_val.csv")
    assert (truth["occupation"] == "none").all() and (truth["dressing"] == "casual clothes").all()
    for column in ("gender", "age", "race", "skin_tone"):  # the same people, only their occupation cues go
        assert truth[column].tolist() == with_cues[column].tolist(), column
    clean = load_fairface(tmp_path, split="val", margin="125")
    cued = load_fairface(exported["fairface"], split="val", margin="125")
    working = with_cues["occupation"].to_numpy() != "none"
    differs = [Image.open(a).tobytes() != Image.open(b).tobytes() for a, b in zip(clean["file"], cued["file"])]
    assert all(d for d, w in zip(differs, working) if w)  # every working person's crop changed
