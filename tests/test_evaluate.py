"""biaslib.evaluate on a small world export: numbers equal a brute-force recomputation from the stored
features, planted effects are recovered with the right sign, group sizes match the annotations, results
carry provenance, reruns skip or refuse, and bad inputs give clear errors.

Numeric checks use planted features written to the feature store under the checkpoint's model name
(the evaluation reuses them, so no CLIP is needed and no ranking ties are near float rounding); one
run with a randomly initialised tiny CLIP checks the extraction and storage plumbing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import biaslib.evaluate as evaluate
from biaslib.articles import fill
from biaslib.config import EvalConfig, Params, ParamsError, load_params
from biaslib.data import coco_caption_table, load_coco_bias, load_fairface, load_geode, load_phase
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.evaluate import (
    evaluate_ratio,
    evaluate_sweep,
    feature_model,
    feature_store,
    resolve_checkpoint,
    result_path,
)
from biaslib.evaluations.association import GENDER_PROMPTS, association_shares, occupation_prompt
from biaslib.evaluations.datasets import dataset_root
from biaslib.evaluations.fairface import fairface_labels, label_prompts
from biaslib.evaluations.markedness import UNMARKED_PROMPT, markedness_prompts
from biaslib.evaluations.retrieval import coco_groups
from biaslib.evaluations.rows import mean_rows
from biaslib.features import Features, resolve_precision
from biaslib.io import files_fingerprint, texts_fingerprint
from biaslib.models import CheckpointError, load_clip
from biaslib.provenance import RESULT_FORMAT
from biaslib.results import ROW_FIELDS
from biaslib.study_registry import study_digest

DIM = 32
N_BOOT = 200
pytestmark = pytest.mark.filterwarnings("ignore:self-similarity is undefined:RuntimeWarning")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _params(runs: Path, exported: dict[str, Path], experiment: str, **overrides) -> Params:
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=N_BOOT, threads=1, **overrides)
    return Params(experiment=experiment, runs_dir=runs, eval=config)


def _fake_checkpoint(params: Params, ratio: str, epoch: int = 3, payload: bytes = b"weights") -> Path:
    """A checkpoint file that is never loaded: every feature is planted in the store beforehand."""
    path = params.run_dir / "clip" / f"{params.experiment}_{ratio}" / "checkpoints" / f"epoch_{epoch}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def _rows(path: Path) -> pd.DataFrame:
    return pd.DataFrame(json.loads(path.read_text())["rows"])


def _one(rows: pd.DataFrame, **where) -> pd.Series:
    mask = np.logical_and.reduce([rows[k] == v for k, v in where.items()])
    assert mask.sum() == 1, where
    return rows[mask].iloc[0]


def _group_means(values: np.ndarray, labels: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"v": values, "g": labels.to_numpy()}).dropna(subset=["g"])
    return frame.groupby("g")["v"].agg(["mean", "size"])


# ---- planted features -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tables(exported):
    phase = load_phase(exported["phase"])
    coco = load_coco_bias(exported["coco_bias"])
    return {"phase": phase, "coco": coco, "captions": coco_caption_table(coco),
            "fairface": load_fairface(exported["fairface"], "val"), "geode": load_geode(exported["geode"])}


def _plant(params: Params, ratio: str, tables: dict[str, pd.DataFrame], seed: int = 0) -> dict[str, np.ndarray]:
    """Store features with planted effects for every dataset of every evaluation; return them by store name.

    Retrieval: male PHASE captions and Dark COCO captions are noise (the others are near copies of their
    image). Markedness: Female faces share a direction. GeoDE: Africa images are far from their class.
    """
    rng = np.random.default_rng(seed)
    phase, coco, captions, fairface, geode = (tables[k] for k in ("phase", "coco", "captions", "fairface", "geode"))
    out: dict[str, tuple[list[str], np.ndarray]] = {}

    def noisy(base: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        return _unit(base + sigma[:, None] * rng.normal(size=base.shape) / np.sqrt(DIM))

    phase_images = _unit(rng.normal(size=(len(phase), DIM)))
    out["phase-val-images"] = (list(phase["image_id"]), phase_images)
    out["phase-val-captions"] = (list(phase["image_id"]),
                                 noisy(phase_images, np.where(phase["gender"] == "male", 30.0, 0.6)))
    coco_images = _unit(rng.normal(size=(len(coco), DIM)))
    target = pd.Series(np.arange(len(coco)), index=coco["image_id"]).loc[captions["image_id"]].to_numpy()
    dark = (coco["bb_skin"] == "Dark").to_numpy()[target]
    out["coco_bias-val-images"] = (list(coco["image_id"]), coco_images)
    out["coco_bias-val-captions"] = (list(captions["text_id"]), noisy(coco_images[target], np.where(dark, 30.0, 0.6)))
    common = rng.normal(size=(1, DIM))
    female = (fairface["gender"] == "Female").to_numpy()
    faces = _unit(np.where(female[:, None], common, 0.0) + 0.6 * rng.normal(size=(len(fairface), DIM)))
    out["fairface-val-m125-images"] = (list(fairface["image_id"]), faces)
    prompts = [UNMARKED_PROMPT, *(p for axis in markedness_prompts().values() for p in axis.values())]
    out["markedness-prompts"] = (prompts, _unit(rng.normal(size=(len(prompts), DIM))))
    classes = sorted(geode["object"].unique())
    class_emb = _unit(rng.normal(size=(len(classes), DIM)))
    out["geode-prompts"] = ([f"a photo of a {c.replace('_', ' ')}." for c in classes], class_emb)
    index = geode["object"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    sigma = np.where(geode["region"] == "Africa", 8.0, 0.8)
    out["geode-images"] = (list(geode["image_id"]), noisy(class_emb[index], sigma))
    # what the features are "computed from", so that the evaluation takes them as its own
    sources = {"phase-val-images": files_fingerprint(phase["file"]), "phase-val-captions": texts_fingerprint(
        phase["caption"]), "coco_bias-val-images": files_fingerprint(coco["file"]),
        "coco_bias-val-captions": texts_fingerprint(captions["caption"]),
        "fairface-val-m125-images": files_fingerprint(fairface["file"]),
        "markedness-prompts": texts_fingerprint(prompts), "geode-prompts": texts_fingerprint(out["geode-prompts"][0]),
        "geode-images": files_fingerprint(geode["file"])}
    store, model = feature_store(params), feature_model(params, resolve_checkpoint(params, ratio))
    for dataset, (ids, vectors) in out.items():
        store.save(model, dataset, Features(ids, vectors), source=sources[dataset])
    return {dataset: vectors for dataset, (_, vectors) in out.items()}


@pytest.fixture(scope="module")
def planted(exported, tables, tmp_path_factory):
    """All three evaluations of ratio 040 on planted features (no CLIP is ever built); the tiny world's groups
    are small, so gaps take groups of at least 5 items (some groups stay below it)."""
    params = _params(tmp_path_factory.mktemp("runs"), exported, "planted", min_group_size=5)
    _fake_checkpoint(params, "040")
    features = _plant(params, "040", tables)
    paths = evaluate_ratio(params, 0.4, progress=False)
    return params, features, {p.name.split("__")[2].removesuffix(".json"): p for p in paths}


def _ranks(text: np.ndarray, image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Brute force in float64: images scoring strictly higher than the own one; asserts no near-ties."""
    sims = text.astype(np.float64) @ image.astype(np.float64).T
    own = sims[np.arange(len(text)), target]
    margin = np.abs(sims - own[:, None])
    margin[np.arange(len(text)), target] = np.inf
    assert margin.min() > 1e-5, "planted features too close to a tie for an exact comparison"
    return (sims > own[:, None]).sum(axis=1)


@pytest.mark.parametrize("dataset", ["phase", "coco_bias"])
def test_retrieval_equals_brute_force_on_stored_features(planted, tables, dataset):
    params, features, paths = planted
    rows = _rows(paths["retrieval"])
    rows = rows[rows["dataset"] == dataset]
    if dataset == "phase":
        target = np.arange(len(tables["phase"]))
        groups = tables["phase"][["age", "gender", "skintone", "ethnicity"]]
    else:
        coco = tables["coco"]
        target = pd.Series(np.arange(len(coco)), index=coco["image_id"]).loc[tables["captions"]["image_id"]].to_numpy()
        groups = coco_groups(coco).iloc[target].reset_index(drop=True)
    ranks = _ranks(features[f"{dataset}-val-captions"], features[f"{dataset}-val-images"], target)
    assert set(rows["metric"]) == {"R@1", "R@5", "R@10"}
    for k in (1, 5, 10):
        hits = (ranks < k).astype(float)
        overall = _one(rows, attribute="all", metric=f"R@{k}")
        assert overall["value"] == pytest.approx(hits.mean()) and overall["n"] == len(hits)
        assert overall["ci_low"] <= overall["value"] <= overall["ci_high"]
        for attribute in groups.columns:
            expected = _group_means(hits, groups[attribute])
            got = rows[(rows["attribute"] == attribute) & (rows["metric"] == f"R@{k}") & (rows["kind"] == "group")]
            assert sorted(got["group"]) == sorted(expected.index)
            for _, row in got.iterrows():
                assert row["value"] == pytest.approx(expected.loc[row["group"], "mean"])
                assert row["n"] == expected.loc[row["group"], "size"]
            large = expected[expected["size"] >= params.eval.min_group_size]  # smaller groups: rows, no gap
            gaps = rows[(rows["attribute"] == attribute) & (rows["metric"] == f"R@{k}") & (rows["kind"] == "gap")]
            assert len(gaps) == (len(large) >= 2)
            if len(large) >= 2:
                gap = gaps.iloc[0]
                assert gap["value"] == pytest.approx(large["mean"].max() - large["mean"].min())
                assert large.loc[gap["high"], "mean"] == large["mean"].max()
                assert large.loc[gap["low"], "mean"] == large["mean"].min()
                assert gap["n"] == large["size"].sum() and 0 < gap["p_value"] <= 1 and gap["null_gap"] >= 0


def test_planted_retrieval_gaps_have_the_right_sign_and_exclude_zero(planted):
    rows = _rows(planted[2]["retrieval"])
    for dataset, attribute, better, worse in (("phase", "gender", "female", "male"),
                                              ("coco_bias", "bb_skin", "Light", "Dark"),
                                              ("coco_bias", "skin", "Light", "Dark")):
        for k in (1, 5):
            gap = _one(rows, dataset=dataset, attribute=attribute, metric=f"R@{k}", kind="gap")
            assert (gap["high"], gap["low"]) == (better, worse)
            assert gap["value"] > 0.4 and gap["ci_low"] > 0, gap.to_dict()
            ratio = _one(rows, dataset=dataset, attribute=attribute, metric=f"R@{k}", kind="min_over_max")
            assert ratio["ci_high"] < 1


def test_markedness_equals_brute_force_and_recovers_planted_self_similarity(planted, tables):
    _, features, paths = planted
    rows = _rows(paths["markedness"])
    fairface = tables["fairface"]
    faces = features["fairface-val-m125-images"].astype(np.float64)
    prompts = markedness_prompts()
    text = features["markedness-prompts"].astype(np.float64)
    labels = {"race": fairface["race"], "gender": fairface["gender"], "age": fairface["age"],
              "race_gender": fairface["race"] + " " + fairface["gender"]}
    assert set(rows["attribute"]) == set(labels)
    start = 1
    unmarked = {}
    for axis, axis_prompts in prompts.items():
        emb = np.vstack([text[0], text[start:start + len(axis_prompts)]])
        start += len(axis_prompts)
        scores = faces @ emb.T
        unmarked[axis] = (scores[:, 0] >= scores[:, 1:].max(axis=1)).astype(float)
    for attribute, series in labels.items():
        for group, members in series.groupby(series).groups.items():
            u = faces[np.asarray(members)]
            n = len(u)
            if n >= 2:
                exact = ((u @ u.T).sum() - n) / (n * (n - 1))
                row = _one(rows, attribute=attribute, group=group, metric="self_similarity")
                assert row["value"] == pytest.approx(exact, abs=1e-5) and row["n"] == n
                wr = _one(rows, attribute=attribute, group=group, metric="self_similarity_wr")
                assert wr["value"] == pytest.approx(np.linalg.norm(u.mean(axis=0)) ** 2, abs=1e-5)
            for axis in prompts:
                row = _one(rows, attribute=attribute, group=group, metric=f"person_preference_{axis}")
                assert row["value"] == pytest.approx(unmarked[axis][np.asarray(members)].mean()) and row["n"] == n
    gap = _one(rows, attribute="gender", metric="self_similarity", kind="gap")
    assert (gap["high"], gap["low"]) == ("Female", "Male") and gap["value"] > 0.3 and gap["ci_low"] > 0
    assert gap["p_value"] < 0.01 and gap["null_gap"] < gap["value"] / 3  # far beyond its chance floor


def test_geode_accuracy_per_region_and_planted_worst_region(planted, tables):
    _, features, paths = planted
    rows = _rows(paths["geode"])
    geode = tables["geode"]
    classes = np.array(sorted(geode["object"].unique()))
    predicted = classes[np.argmax(features["geode-images"] @ features["geode-prompts"].T, axis=1)]
    correct = (predicted == geode["object"].to_numpy()).astype(float)
    expected = _group_means(correct, geode["region"])
    assert (expected["size"] == 2 * len(classes)).all()
    for region, row in expected.iterrows():
        got = _one(rows, attribute="region", group=region, metric="accuracy")
        assert got["value"] == pytest.approx(row["mean"]) and got["n"] == row["size"]
    assert _one(rows, attribute="all", metric="accuracy")["value"] == pytest.approx(correct.mean())
    gap = _one(rows, attribute="region", kind="gap")
    assert gap["low"] == "Africa" and gap["ci_low"] > 0 and gap["p_value"] < 0.05


# ---- a real (random) tiny CLIP ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_run(exported, tmp_path_factory):
    """All evaluations of ratio 020 with a randomly initialised tiny CLIP saved as an open_clip checkpoint."""
    params = _params(tmp_path_factory.mktemp("runs"), exported, "clip", batch_size=64)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model, _, _ = load_clip(None, params.train.model, device="cpu")
        path = params.run_dir / "clip" / "clip_020" / "checkpoints" / "epoch_2.pt"
        path.parent.mkdir(parents=True)
        torch.save({"epoch": 2, "name": "clip_020",
                    "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
        paths = evaluate_ratio(params, "020", progress=False)
    finally:
        torch.set_num_threads(before)
    return params, path, paths


def _strict_json(path: Path) -> dict:
    def refuse(token: str):
        raise ValueError(f"non-standard JSON constant {token} in {path}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_clip_run_stores_features_with_loader_ids(clip_run, tables):
    params, checkpoint, paths = clip_run
    assert [p.name for p in paths] == ["clip__020__retrieval.json", "clip__020__markedness.json",
                                       "clip__020__geode.json"]
    store = feature_store(params)
    model = feature_model(params, resolve_checkpoint(params, "020"))
    # the precision ``auto`` resolves to on this CPU: bf16 where it is native (AVX512-BF16/AMX), else fp32
    assert model.startswith("clip_020_e2_") and model.endswith(f"_{resolve_precision('auto', 'cpu')}")
    expected_ids = {
        "phase-val-images": tables["phase"]["image_id"], "phase-val-captions": tables["phase"]["image_id"],
        "coco_bias-val-images": tables["coco"]["image_id"], "coco_bias-val-captions": tables["captions"]["text_id"],
        "fairface-val-m125-images": tables["fairface"]["image_id"], "geode-images": tables["geode"]["image_id"],
    }
    for dataset, ids in expected_ids.items():
        stored = store.load(model, dataset)
        assert stored.ids == list(ids) and stored.vectors.shape == (len(ids), 128)
        np.testing.assert_allclose(np.linalg.norm(stored.vectors, axis=1), 1.0, atol=1e-5)
    used = {}
    for path in paths:
        used |= _strict_json(path)["provenance"]["features"]
    assert set(used) == set(expected_ids) | {"markedness-prompts", "geode-prompts"}
    assert all(Path(p).is_file() for p in used.values())


def test_result_schema_provenance_and_group_sizes(clip_run, tables):
    params, checkpoint, paths = clip_run
    for path in paths:
        record = _strict_json(path)
        assert record["format"] == RESULT_FORMAT and record["experiment"] == "clip"
        assert record["study"] == "amplification"
        assert record["subject"] == {"ratio": "020", "replicate": 0}
        assert path.name == f"clip__020__{record['evaluation']}.json"
        assert all(sorted(row) == sorted(ROW_FIELDS) for row in record["rows"])
        prov = record["provenance"]
        assert prov["checkpoint"] == {"path": str(checkpoint), "epoch": 2, "model": "biaslib-tiny-rn",
                                      "run": "clip_020", "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest()}
        assert prov["params_digest"] == study_digest(params, "amplification") and prov["seed"] == params.seed
        assert prov["biaslib_version"] and datetime.fromisoformat(prov["created_utc"]).utcoffset().total_seconds() == 0
        assert prov["settings"]["n_boot"] == N_BOOT
        assert all(Path(d["root"]).is_dir() for d in prov["data"].values())
    retrieval = _rows(paths[0])
    counts = tables["phase"]["gender"].value_counts()
    for gender, n in counts.items():
        assert _one(retrieval, dataset="phase", attribute="gender", group=gender, metric="R@1")["n"] == n
    coco, captions = tables["coco"], tables["captions"]
    gender_of = coco.set_index("image_id")["bb_gender"]
    for gender, n in captions["image_id"].map(gender_of).value_counts().items():
        assert _one(retrieval, dataset="coco_bias", attribute="bb_gender", group=gender, metric="R@5")["n"] == n
    markedness = _rows(paths[1])
    for race, n in tables["fairface"]["race"].value_counts().items():
        assert _one(markedness, attribute="race", group=race, metric="person_preference_race")["n"] == n
    geode = _rows(paths[2])
    assert set(geode.loc[geode["kind"] == "group", "n"]) == {2 * tables["geode"]["object"].nunique()}


def test_rerun_skips_reuses_features_and_refuses_other_settings(clip_run, monkeypatch):
    params, _, paths = clip_run
    before = {p: (p.read_bytes(), os.stat(p).st_ino) for p in paths}

    def no_model(*args, **kwargs):
        raise AssertionError("the CLIP was loaded although every feature is stored")

    monkeypatch.setattr(evaluate, "load_clip", no_model)
    assert evaluate_ratio(params, 20, progress=False) == paths
    assert {p: (p.read_bytes(), os.stat(p).st_ino) for p in paths} == before
    evaluate_ratio(params, "020", evaluations=["geode"], overwrite=True, progress=False)
    assert os.stat(paths[2]).st_ino != before[paths[2]][1]
    assert _rows(paths[2]).equals(pd.DataFrame(json.loads(before[paths[2]][0])["rows"]))
    other = dataclasses.replace(params, eval=dataclasses.replace(params.eval, n_boot=50))
    with pytest.raises(BiaslibError, match=r"clip__020__retrieval\.json was computed with other settings "
                                           r"\(n_boot: 200 -> 50\); pass --overwrite \(overwrite=True in Python\)"):
        evaluate_ratio(other, "020", progress=False)


def test_other_feature_dtype_recomputes_the_features(clip_run):
    params, _, _ = clip_run
    half = dataclasses.replace(params, eval=dataclasses.replace(params.eval, feature_dtype="float16"))
    [path] = evaluate_ratio(half, "020", evaluations=["geode"], overwrite=True, progress=False)
    model = feature_model(params, resolve_checkpoint(params, "020"))
    assert feature_store(params).load(model, "geode-images").vectors.dtype == np.float16
    assert _strict_json(path)["provenance"]["settings"]["feature_dtype"] == "float16"


def test_other_data_is_never_answered_from_old_results_or_old_features(clip_run, tmp_path, monkeypatch):
    """Pointing a dataset root at an empty folder returned the old results, and at a folder with an edited
    image reused the old features (issue 16, defect 8): results and features are keyed by the data."""
    import shutil

    from PIL import Image

    params, _, paths = clip_run
    empty = dataclasses.replace(params, eval=dataclasses.replace(params.eval, geode_root=tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError):
        evaluate_ratio(empty, "020", evaluations=["geode"], progress=False)
    copy = tmp_path / "geode"
    shutil.copytree(dataset_root(params, "geode"), copy)
    edited = load_geode(copy)["file"].iloc[0]
    Image.open(edited).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited, quality=90)
    moved = dataclasses.replace(params, eval=dataclasses.replace(params.eval, geode_root=copy))
    with pytest.raises(BiaslibError, match=r"clip__020__geode\.json was computed with other settings \(data: "):
        evaluate_ratio(moved, "020", evaluations=["geode"], progress=False)
    loads = []
    real_load = evaluate.load_clip
    monkeypatch.setattr(evaluate, "load_clip", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    [path] = evaluate_ratio(moved, "020", evaluations=["geode"], overwrite=True, progress=False)
    assert loads, "the geode images changed but their stored features were reused"
    model = feature_model(params, resolve_checkpoint(params, "020"))
    assert feature_store(params).source(model, "geode-images") == files_fingerprint(load_geode(copy)["file"])
    assert _strict_json(path)["provenance"]["data"]["geode"]["root"] == str(copy)
    # a result written before results carried fingerprints is recomputed, not trusted and not refused
    record = _strict_json(path)
    del record["provenance"]["settings"]["data"]
    path.write_text(json.dumps(record))
    [again] = evaluate_ratio(moved, "020", evaluations=["geode"], progress=False)
    assert "data" in _strict_json(again)["provenance"]["settings"]
    # so is one whose gap intervals came from another method (before 2026-12-04: the re-selected range)
    record = _strict_json(again)
    del record["provenance"]["settings"]["intervals"]
    again.write_text(json.dumps(record))
    old = os.stat(again).st_ino
    [recomputed] = evaluate_ratio(moved, "020", evaluations=["geode"], progress=False)
    assert os.stat(recomputed).st_ino != old
    assert _strict_json(recomputed)["provenance"]["settings"]["intervals"] == evaluate.INTERVAL_METHODS
    kept = os.stat(recomputed).st_ino
    evaluate_ratio(moved, "020", evaluations=["geode"], progress=False)
    assert os.stat(recomputed).st_ino == kept  # and then kept


def test_sweep_checks_every_checkpoint_before_work(exported, tables, tmp_path):
    params = _params(tmp_path, exported, "sweep", evaluations=("retrieval",))
    _fake_checkpoint(params, "000")
    _plant(params, "000", tables)
    with pytest.raises(CheckpointError, match=r"1 model\(s\) of sweep cannot be evaluated(.|\n)*sweep_100"
                                              r"(.|\n)*checkpoints/epoch_<N>\.pt"):
        evaluate_sweep(params, ratios=["000", 1.0], progress=False)
    assert not result_path(params, "000", "retrieval").exists()
    _fake_checkpoint(params, "100", payload=b"other weights")
    _plant(params, "100", tables, seed=1)
    paths = evaluate_sweep(params, ratios=[0.0, 100], progress=False)
    assert [p.name for p in paths] == ["sweep__000__retrieval.json", "sweep__100__retrieval.json"]
    assert not _rows(paths[0]).equals(_rows(paths[1]))


def test_missing_data_and_bad_settings_give_clear_errors(exported, tables, tmp_path):
    params = _params(tmp_path / "runs", exported, "bad")
    with pytest.raises(CheckpointError, match=r"bad_020(.|\n)*epoch_<N>\.pt"):
        evaluate_ratio(params, "020", progress=False)
    _fake_checkpoint(params, "020")
    empty = dataclasses.replace(params, eval=dataclasses.replace(params.eval, data_root=tmp_path / "nowhere"))
    with pytest.raises(DataLayoutError, match=r"PHASE root not found: .*nowhere/phase\nExpected layout:"):
        evaluate_ratio(empty, "020", progress=False)
    geode_only = dataclasses.replace(params, eval=dataclasses.replace(params.eval, geode_root=tmp_path))
    with pytest.raises(DataLayoutError, match=r"GeoDE index not found: .*index\.csv\nExpected layout:"):
        evaluate_ratio(geode_only, "020", evaluations=["geode"], progress=False)
    with pytest.raises(ValueError, match="unknown evaluation.*'clipscore'.*retrieval, markedness, geode"):
        evaluate_ratio(params, "020", evaluations=["clipscore"], progress=False)
    bad = dataclasses.replace(params, eval=dataclasses.replace(params.eval, intersections=("race_height",)))
    with pytest.raises(ValueError, match="eval.intersections: 'race_height'"):
        evaluate_ratio(bad, "020", progress=False)
    assert not (params.run_dir / "results").exists()


def test_eval_params_section(tmp_path):
    default, paper = load_params(), load_params(Path(__file__).parent.parent / "params" / "paper.yaml")
    assert default.eval == EvalConfig()
    assert paper.eval.fairface_split == "train" and paper.eval.feature_dtype == "float16"
    assert load_params(overrides={"eval.n_boot": 10, "eval.ks": [1, 3]}).eval.ks == (1, 3)
    with pytest.raises(ParamsError, match="unknown key eval.nboot"):
        load_params(overrides={"eval.nboot": 10})
    params = Params(runs_dir=tmp_path)
    assert dataset_root(params, "phase") == tmp_path / "world_default" / "data" / "phase"


def test_small_groups_keep_their_rows_but_stay_out_of_the_gap():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["tiny", "a", "b"], dtype=object), [3, 60, 80])
    values = np.r_[np.ones(3), (rng.random(140) < 0.3).astype(float)]  # "tiny" scores 3/3
    cfg = EvalConfig(n_boot=200, n_perm=500)
    rows = pd.DataFrame(mean_rows("phase", "age", "R@1", values, labels, cfg))
    tiny = _one(rows, group="tiny")
    assert tiny["n"] == 3 and tiny["value"] == 1.0 and tiny["ci_low"] < 0.5  # Wilson on 3/3: [0.44, 1]
    gap = _one(rows, kind="gap")
    assert {gap["low"], gap["high"]} == {"a", "b"} and gap["n"] == 140
    means = {g: values[labels == g].mean() for g in ("a", "b")}
    assert gap["value"] == pytest.approx(abs(means["a"] - means["b"]))
    # equal groups: the test finds nothing and the floor is the size of the gap such groups show by chance
    assert gap["p_value"] > 0.05 and gap["null_gap"] == pytest.approx(0.08, abs=0.04)
    alone = pd.DataFrame(mean_rows("phase", "age", "R@1", values[:63], labels[:63], cfg))
    assert set(alone["kind"]) == {"group"}  # one large group: no gap at all


def _plant_association(params: Params, fairface: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A fake ratio-0.4 checkpoint whose stored features plant a gender association: female faces share a
    direction, and each world occupation's query points along it when the world's p(woman | o) > ½, against it
    otherwise. Returns (faces, queries) as stored."""
    _fake_checkpoint(params, "040")
    rng = np.random.default_rng(5)
    common = rng.normal(size=(1, DIM))
    female = (fairface["gender"] == "Female").to_numpy()
    faces = _unit(np.where(female[:, None], common, 0.0) + 0.6 * rng.normal(size=(len(fairface), DIM)))
    world = association_shares(Params())
    prompts = [occupation_prompt(o) for o in world.index]
    direction = np.where(world.to_numpy() > 0.5, 1.0, -1.0)[:, None]
    queries = _unit(direction * common + 0.3 * rng.normal(size=(len(prompts), DIM)))
    store, model = feature_store(params), feature_model(params, resolve_checkpoint(params, "040"))
    store.save(model, "fairface-val-m125-images", Features(list(fairface["image_id"]), faces),
               source=files_fingerprint(fairface["file"]))
    store.save(model, "association-occupations", Features(prompts, queries), source=texts_fingerprint(prompts))
    genders = list(GENDER_PROMPTS.values())
    store.save(model, "association-genders",
               Features(list(GENDER_PROMPTS), _unit(np.vstack([common, -common]))),
               source=texts_fingerprint(genders))
    return faces, queries


def test_association_reads_a_planted_gender_association_and_equals_the_metrics_on_the_stored_features(
        exported, tables, tmp_path):
    """Female faces share a direction; the queries of occupations with mostly women in the data point along it,
    the others against it: the retrieval is more stereotyped than the data (retrieval_vs_data > 0), and every
    row equals the metric applied to the stored features directly."""
    from biaslib.metrics.skew import directional_excess, max_skew, ndkl, top_k_share

    params = _params(tmp_path, exported, "assoc", association_ks=(10,))
    fairface = tables["fairface"]
    female = (fairface["gender"] == "Female").to_numpy()
    shares = association_shares(params)
    faces, queries = _plant_association(params, fairface)
    [path] = evaluate_ratio(params, 0.4, ["association"], progress=False)
    rows = _rows(path)
    scores = queries.astype(np.float64) @ faces.astype(np.float64).T
    women = top_k_share(scores, female, 10)
    excess = directional_excess(women, shares.to_numpy())
    assert _one(rows, metric="retrieval_vs_data@10", kind="overall")["value"] == pytest.approx(excess.mean())
    overall = _one(rows, metric="retrieval_vs_data@10", kind="overall")
    assert overall["value"] > 0 and overall["ci_low"] > 0  # amplified beyond the data, interval excludes 0
    nurse_like = shares.index[shares.to_numpy() > 0.5][0]
    assert _one(rows, metric="share_woman@10", group=nurse_like)["value"] > 0.9
    for name, fn in (("max_skew", max_skew), ("ndkl", ndkl)):
        values = fn(scores, fairface["race"].to_numpy(dtype=object), 10, "dataset")
        got = rows[(rows["metric"] == f"{name}@10_dataset") & (rows["attribute"] == "race") & (rows["kind"] == "group")]
        assert np.allclose(got["value"].to_numpy(float), values, atol=1e-6)
    assert len(rows[rows["kind"] == "overall"]) == 3 * 2 * 2 + 2 + 2  # 3 attributes × 2 desired × 2 metrics + 2 + 2
    # the continuous association: the planted direction makes the women-minus-men cosine follow the data's share
    gaps = scores[:, female].mean(axis=1) - scores[:, ~female].mean(axis=1)
    cosine = _one(rows, metric="cosine_vs_data", kind="overall")
    assert cosine["value"] == pytest.approx(np.polyfit(shares.to_numpy(), gaps, 1)[0], rel=1e-5)
    assert cosine["ci_low"] > 0 and cosine["n"] == len(shares)
    assert np.allclose(rows[rows["metric"] == "cosine_gap"]["value"].to_numpy(float), gaps, atol=1e-6)
    assert _one(rows, metric="text_vs_data", kind="overall")["ci_low"] > 0  # queries point along "woman"
    # a result of the evaluation written before it had these rows is recomputed, not kept and not refused
    record = _strict_json(path)
    del record["provenance"]["settings"]["rows"]
    record["rows"] = [r for r in record["rows"] if r["metric"] not in ("cosine_vs_data", "text_vs_data")]
    path.write_text(json.dumps(record))
    [again] = evaluate_ratio(params, 0.4, ["association"], progress=False)
    assert _one(_rows(again), metric="cosine_vs_data", kind="overall")["value"] == cosine["value"]


def test_association_shares_file_is_read_and_its_content_keys_the_result(exported, tables, tmp_path):
    """``eval.association_shares`` (a CSV path) once crashed every evaluation (a Path in the settings is not JSON);
    the result must use the file's shares and count as stale when the file's content changes."""
    shares_csv = tmp_path / "shares.csv"
    params = _params(tmp_path, exported, "assoc_csv", association_ks=(10,), association_shares=shares_csv)
    table = association_shares(Params(runs_dir=tmp_path))
    table.rename("share_woman").rename_axis("occupation").reset_index().to_csv(shares_csv, index=False)
    _plant_association(params, tables["fairface"])
    [path] = evaluate_ratio(params, 0.4, ["association"], progress=False)
    rows = _rows(path)
    women = _one(rows, metric="share_woman@10", group="nurse")["value"]
    assert _one(rows, metric="retrieval_vs_data@10", group="nurse")["value"] == pytest.approx(
        (women - table["nurse"]) * np.sign(table["nurse"] - 0.5))
    assert evaluate_ratio(params, 0.4, ["association"], progress=False) == [path]  # up to date: reused
    flipped = (1 - table).rename("share_woman").rename_axis("occupation").reset_index()
    flipped.to_csv(shares_csv, index=False)
    with pytest.raises(BiaslibError, match="other settings"):
        evaluate_ratio(params, 0.4, ["association"], progress=False)
    [path] = evaluate_ratio(params, 0.4, ["association"], overwrite=True, progress=False)
    assert _one(_rows(path), metric="retrieval_vs_data@10", group="nurse")["value"] == pytest.approx(
        (women - (1 - table["nurse"])) * np.sign(0.5 - table["nurse"]))


def _plant_labels(params: Params, fairface: pd.DataFrame, store_name: str, names: list[str], faces: np.ndarray,
                  label_vectors: np.ndarray) -> None:
    """Store planted face features (once per params) and one text store of ``names`` → ``label_vectors``."""
    store, model = feature_store(params), feature_model(params, resolve_checkpoint(params, "040"))
    prompts = label_prompts(fairface_labels(params.eval), names)  # the articles agree, as evaluated
    store.save(model, "fairface-val-m125-images", Features(list(fairface["image_id"]), faces),
               source=files_fingerprint(fairface["file"]))
    store.save(model, store_name, Features(names, label_vectors), source=texts_fingerprint(prompts))


def test_harms_find_the_group_planted_next_to_a_crime_label(exported, tables, tmp_path):
    """A model whose embeddings of Indian faces sit at "thief" (everyone else at their own race × gender label)
    gives Indian faces the crime label, nobody the non-human ones; the gap test rejects; "child" added takes the
    0–2 and 3–9 faces when they sit nearer it. Every row equals the shares computed from the stored features."""
    from biaslib.metrics import zero_shot_predict

    params = _params(tmp_path, exported, "harms", min_group_size=5)  # 30 faces: small groups
    _fake_checkpoint(params, "040")
    fairface = tables["fairface"]
    labels = fairface_labels(params.eval)
    people = [labels["race_gender"].format(race=labels["race_gender_race"][r], gender=labels["gender"][g])
              for r in labels["race_gender_race"] for g in labels["gender"]]
    harms = [n for harm in labels["harms"].values() for n in harm]
    rng = np.random.default_rng(3)
    vectors = _unit(rng.normal(size=(len(people) + len(harms) + 1, DIM)))
    of = dict(zip(people + harms + ["child"], vectors))
    own = [of[labels["race_gender"].format(race=labels["race_gender_race"][r], gender=labels["gender"][g])]
           for r, g in zip(fairface["race"], fairface["gender"])]
    indian = (fairface["race"] == "Indian").to_numpy()
    young = fairface["age"].isin(["0-2", "3-9"]).to_numpy()
    faces = np.where(indian[:, None], of["thief"], np.array(own))
    faces = _unit(faces + np.where(young[:, None], 2.0 * of["child"], 0) + 0.05 * rng.normal(size=faces.shape))
    _plant_labels(params, fairface, "harms", people + harms, faces, vectors[:-1])
    _plant_labels(params, fairface, "harms_with_child", people + harms + ["child"], faces, vectors)
    [path] = evaluate_ratio(params, 0.4, ["harms"], progress=False)
    rows = _rows(path)
    crime = rows[(rows["metric"] == "harm_crime") & (rows["attribute"] == "race") & (rows["kind"] == "group")]
    young_label = zero_shot_predict(faces, vectors) == len(vectors) - 1  # with "child" added: labelled a child
    assert young_label[young].mean() > 0.9 and young_label[~young].mean() < 0.1
    assert crime.set_index("group").loc["Indian", "value"] == pytest.approx(1.0)
    assert (crime[crime["group"] != "Indian"]["value"] == 0).all()
    gap = _one(rows, metric="harm_crime", attribute="race", kind="gap")
    assert gap["high"] == "Indian" and gap["p_value"] < 0.01
    assert (rows[rows["metric"] == "harm_non_human"]["value"].fillna(0) == 0).all()
    child = rows[(rows["metric"] == "harm_child_with_child") & (rows["kind"] == "group")].set_index("group")
    expected = pd.Series(young_label.astype(float)).groupby(fairface["age"].to_numpy()).mean()
    assert np.allclose(child["value"], expected.reindex(child.index))
    assert set(rows[rows["metric"].str.endswith("_with_child")]["attribute"]) == {"age"}


def test_zero_shot_accuracy_drops_for_the_group_planted_far_from_its_class(exported, tables, tmp_path):
    """Faces sit at their gender's class text except Black faces, which sit at the other gender's: gender accuracy
    is 1 for every race but Black (0), the race gap names Black as the worst group and rejects; race (7 and 4
    classes) and age are read from the same planted faces and equal a direct argmax."""
    from biaslib.metrics import zero_shot_predict

    params = _params(tmp_path, exported, "zero_shot", min_group_size=5)
    _fake_checkpoint(params, "040")
    fairface = tables["fairface"]
    labels = fairface_labels(params.eval)
    rng = np.random.default_rng(4)
    names = {task: list(dict.fromkeys(labels[task].values())) for task in ("gender", "race", "race4", "age")}
    vectors = {task: _unit(rng.normal(size=(len(n), DIM))) for task, n in names.items()}
    gender = fairface["gender"].map({k: names["gender"].index(v) for k, v in labels["gender"].items()}).to_numpy()
    black = (fairface["race"] == "Black").to_numpy()
    shown = np.where(black, 1 - gender, gender)
    faces = _unit(vectors["gender"][shown] + 0.05 * rng.normal(size=(len(fairface), DIM)))
    for task in names:
        _plant_labels(params, fairface, f"zero-shot-{task}", names[task], faces, vectors[task])
    [path] = evaluate_ratio(params, 0.4, ["zero_shot"], progress=False)
    rows = _rows(path)
    by_race = rows[(rows["metric"] == "accuracy_gender") & (rows["attribute"] == "race")
                   & (rows["kind"] == "group")].set_index("group")
    assert by_race.loc["Black", "value"] == 0.0 and (by_race.drop(index="Black")["value"] == 1.0).all()
    gap = _one(rows, metric="accuracy_gender", attribute="race", kind="gap")
    assert gap["low"] == "Black" and gap["p_value"] < 0.01
    assert len(rows[(rows["metric"] == "accuracy_gender") & (rows["attribute"] == "race_gender")]) > 0
    for task, column in (("race", "race"), ("race4", "race"), ("age", "age")):
        truth = fairface[column].map({k: names[task].index(v) for k, v in labels[task].items()})
        keep = truth.notna().to_numpy()
        direct = (zero_shot_predict(faces[keep], vectors[task]) == truth[keep].to_numpy(int)).mean()
        assert _one(rows, metric=f"accuracy_{task}", kind="overall")["value"] == pytest.approx(direct)
    assert _one(rows, metric="accuracy_race4", kind="overall")["n"] == int(
        fairface["race"].isin(list(labels["race4"])).sum())  # Latino and Middle Eastern faces have no race4 class


def test_fairface_labels_file_errors_name_the_file_and_the_keys(tmp_path):
    with pytest.raises(DataLayoutError, match="not found"):
        fairface_labels(EvalConfig(fairface_labels=tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text('{"template": "a photo of a {}."}')
    with pytest.raises(DataLayoutError, match="missing key.*race4"):
        fairface_labels(EvalConfig(fairface_labels=tmp_path / "bad.json"))


def test_concepts_find_the_gender_planted_at_criminal_and_cap_k_at_the_faces(exported, tables, tmp_path):
    """Berg et al.'s concept queries (issue 18): male faces share a direction and "criminal" points along it, the
    other concepts are random; the gender MaxSkew of "criminal" is the largest, every row equals the metric on the
    stored features, and k = 1000 is capped at the number of faces (one k, named by it)."""
    from biaslib.config import CONCEPTS
    from biaslib.metrics.skew import max_skew, ndkl

    params = _params(tmp_path, exported, "concepts", concept_ks=(5, 1000))
    _fake_checkpoint(params, "040")
    fairface = tables["fairface"]
    rng = np.random.default_rng(6)
    common = rng.normal(size=(1, DIM))
    male = (fairface["gender"] == "Male").to_numpy()
    faces = _unit(np.where(male[:, None], common, 0.0) + 0.5 * rng.normal(size=(len(fairface), DIM)))
    queries = _unit(rng.normal(size=(len(CONCEPTS), DIM)))
    queries[CONCEPTS.index("criminal")] = _unit(common)[0]
    prompts = [fill(params.eval.concept_template, c) for c in CONCEPTS]
    store, model = feature_store(params), feature_model(params, resolve_checkpoint(params, "040"))
    store.save(model, "fairface-val-m125-images", Features(list(fairface["image_id"]), faces),
               source=files_fingerprint(fairface["file"]))
    store.save(model, "concept-prompts", Features(prompts, queries), source=texts_fingerprint(prompts))
    [path] = evaluate_ratio(params, 0.4, ["concepts"], progress=False)
    rows = _rows(path)
    n = len(fairface)
    assert set(rows[rows["kind"] == "group"]["n"]) == {5, n}
    assert {m.split("@")[1].split("_")[0] for m in rows["metric"]} == {"5", str(n)}
    skew = rows[(rows["metric"] == "concept_max_skew@5_uniform") & (rows["attribute"] == "gender")
                & (rows["kind"] == "group")].set_index("group")["value"]
    assert skew["criminal"] == pytest.approx(np.log(2)) == skew.max()  # its top 5: all men
    assert skew.drop(index="criminal").mean() < np.log(2)  # random queries: mostly mixed top 5s
    scores = queries.astype(np.float64) @ faces.astype(np.float64).T
    for name, fn in (("max_skew", max_skew), ("ndkl", ndkl)):
        for k in (5, n):
            values = fn(scores, fairface["age"].to_numpy(dtype=object), k, "dataset")
            got = rows[(rows["metric"] == f"concept_{name}@{k}_dataset") & (rows["attribute"] == "age")
                       & (rows["kind"] == "group")]
            assert got["group"].tolist() == list(CONCEPTS)
            assert np.allclose(got["value"].to_numpy(float), values, atol=1e-6)
    overall = _one(rows, metric="concept_ndkl@5_uniform", attribute="gender", kind="overall")
    assert overall["ci_low"] <= overall["value"] <= overall["ci_high"] and overall["n"] == len(CONCEPTS)
