"""biaslib.results: collect() turns every result JSON into one sorted tidy frame with tested gap rows,
and malformed files are named (or skipped with a warning when asked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biaslib.config import EvalConfig, Params
from biaslib.data import coco_caption_table, load_coco_bias, load_phase
from biaslib.evaluate import evaluate_sweep, feature_model, feature_store, resolve_checkpoint
from biaslib.features import Features
from biaslib.io import files_fingerprint, texts_fingerprint
from biaslib.results import ResultsError, collect, per_group, result_files
from biaslib.studies.amplification.declaration import COLUMNS, KEY_COLUMNS

RATIOS = ("000", "100")


def _plant_retrieval(params: Params, ratio: str, exported: dict[str, Path], seed: int) -> None:
    """A fake checkpoint and random retrieval features in the store (no CLIP is built)."""
    path = params.run_dir / "clip" / f"{params.experiment}_{ratio}" / "checkpoints" / "epoch_1.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(f"weights {ratio}".encode())
    rng = np.random.default_rng(seed)
    phase = load_phase(exported["phase"])
    coco = load_coco_bias(exported["coco_bias"])
    captions = coco_caption_table(coco)
    store, model = feature_store(params), feature_model(params, resolve_checkpoint(params, ratio))
    # each with the fingerprint of what it is "computed from", so that the evaluation takes it as its own
    for dataset, ids, source in (
            ("phase-val-images", phase["image_id"], files_fingerprint(phase["file"])),
            ("phase-val-captions", phase["image_id"], texts_fingerprint(phase["caption"])),
            ("coco_bias-val-images", coco["image_id"], files_fingerprint(coco["file"])),
            ("coco_bias-val-captions", captions["text_id"], texts_fingerprint(captions["caption"]))):
        vectors = rng.normal(size=(len(ids), 16)).astype(np.float32)
        store.save(model, dataset, Features(list(ids), vectors / np.linalg.norm(vectors, axis=1, keepdims=True)),
                   source=source)


@pytest.fixture(scope="module")
def runs(exported, tmp_path_factory) -> tuple[Path, dict[str, Params], list[Path]]:
    """Two experiments × two ratios of retrieval results under one runs folder."""
    root = tmp_path_factory.mktemp("runs")
    config = EvalConfig(data_root=exported["phase"].parent, evaluations=("retrieval",), n_boot=100)
    experiments = {name: Params(experiment=name, runs_dir=root, eval=config) for name in ("b_exp", "a_exp")}
    paths = []
    for seed, params in enumerate(experiments.values()):
        for ratio in RATIOS:
            _plant_retrieval(params, ratio, exported, seed=10 * seed + int(ratio))
        paths += evaluate_sweep(params, ratios=RATIOS, progress=False)
    return root, experiments, paths


def test_collect_holds_every_json_row_sorted(runs):
    root, experiments, paths = runs
    frame = collect(root, study="amplification")
    assert list(frame.columns) == COLUMNS
    records = [json.loads(p.read_text()) for p in paths]
    assert len(frame) == sum(len(r["rows"]) for r in records)
    assert set(frame["experiment"]) == {"a_exp", "b_exp"} and set(frame["ratio"]) == set(RATIOS)
    assert frame["ratio"].map(type).eq(str).all() and set(frame["ratio_fraction"]) == {0.0, 1.0}
    assert frame["n"].dtype == np.int64 and frame["value"].dtype == np.float64
    assert (frame["checkpoint_epoch"] == 1).all() and (frame["evaluation"] == "retrieval").all()
    order = frame.assign(k=frame["kind"].map({"overall": 0, "group": 1, "gap": 2, "min_over_max": 3}))
    assert order.sort_values([*KEY_COLUMNS, "k", "group"], kind="mergesort").index.tolist() == list(range(len(frame)))
    for path, record in zip(paths, records):
        part = frame[frame["file"] == str(path)]
        expected = pd.DataFrame(record["rows"]).astype({"value": float, "ci_low": float, "ci_high": float})
        merged = part.merge(expected, on=["dataset", "attribute", "group", "kind", "metric"], suffixes=("", "_json"))
        assert len(merged) == len(expected) == len(part)
        for column in ("value", "ci_low", "ci_high", "n"):
            np.testing.assert_array_equal(merged[column].to_numpy(), merged[f"{column}_json"].to_numpy())
        assert (part["experiment"] == record["experiment"]).all()
        assert (part["ratio"] == record["subject"]["ratio"]).all() and record["study"] == "amplification"


def test_collect_accepts_params_experiment_and_results_folders(runs):
    root, experiments, _ = runs
    params = experiments["a_exp"]
    from_params = collect(params, study="amplification")
    assert set(from_params["experiment"]) == {"a_exp"}
    for where in (params.run_dir, params.run_dir / "results"):
        pd.testing.assert_frame_equal(collect(where, study="amplification"), from_params)
    everything = collect(root, study="amplification")
    pd.testing.assert_frame_equal(everything[everything["experiment"] == "a_exp"].reset_index(drop=True), from_params)


def test_gap_rows_test_the_large_groups(runs):
    frame = collect(runs[0], study="amplification")
    groups = per_group(frame)
    min_size = EvalConfig().min_group_size
    json_gaps = frame[frame["kind"] == "gap"]
    assert len(json_gaps) > 0
    for _, row in json_gaps.iterrows():
        key = tuple(row[KEY_COLUMNS])
        mine = groups.set_index(KEY_COLUMNS).loc[[key]]
        large = mine[(mine["n"] >= min_size) & mine["value"].notna()].set_index("group")["value"]
        assert row["value"] == pytest.approx(large.max() - large.min())
        assert large[row["low"]] == large.min() and large[row["high"]] == large.max()
        assert row["n"] == mine[mine["group"].isin(large.index)]["n"].sum()
        assert 0 < row["p_value"] <= 1 and row["null_gap"] >= 0 and row["ci_low"] <= row["ci_high"]
    ratios = frame[frame["kind"] == "min_over_max"]
    assert ratios["p_value"].notna().all() and ratios["null_gap"].isna().all()
    assert frame[frame["kind"].isin(["group", "overall"])][["p_value", "null_gap"]].isna().all().all()


def test_format_one_results_without_gap_tests_are_still_read(runs, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(runs[0] / "a_exp" / "results", root)
    for path in root.glob("*.json"):
        record = json.loads(path.read_text())
        record["format"] = "biaslib-result/1"  # the subject's ratio at the top level, no replicate, no study
        record["ratio"] = record.pop("subject")["ratio"]
        del record["study"]
        for row in record["rows"]:
            del row["p_value"], row["null_gap"]
        path.write_text(json.dumps(record))
    old = collect(root, study="amplification")
    assert old["p_value"].isna().all() and old["null_gap"].isna().all()
    new = collect(runs[0] / "a_exp" / "results", study="amplification")
    pd.testing.assert_series_equal(old["value"], new["value"])


def test_malformed_result_is_named_or_skipped_with_a_warning(runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(runs[0] / "a_exp" / "results", root)
    good = collect(root, study="amplification")
    (root / "a_exp__040__retrieval.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"a_exp__040__retrieval\.json: not a readable JSON file"):
        collect(root, study="amplification")
    with pytest.warns(RuntimeWarning, match=r"skipped 1 malformed result file\(s\): .*a_exp__040__retrieval\.json"):
        pd.testing.assert_frame_equal(collect(root, skip_bad=True, study="amplification"), good)
    record = json.loads((root / "a_exp__000__retrieval.json").read_text())
    del record["rows"][3]["n"]
    (root / "a_exp__040__retrieval.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"a_exp__040__retrieval\.json: row 3 lacks field\(s\) n"):
        collect(root, study="amplification")


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ResultsError, match="results folder not found: .*nowhere"):
        collect(tmp_path / "nowhere", study="amplification")
    empty = collect(tmp_path, study="amplification")
    assert empty.empty and list(empty.columns) == COLUMNS
    assert result_files(Params(runs_dir=tmp_path)) == []


def test_replicates_get_their_own_result_files_and_collect_reads_the_replicate(tmp_path):
    from biaslib.config import TrainConfig
    from biaslib.evaluate import _models, result_path

    params = Params(experiment="e", runs_dir=tmp_path, train=TrainConfig(replicates=2))
    assert result_path(params, 0.2, "retrieval").name == "e__020__retrieval.json"  # replicate 0: the old name
    assert result_path(params, 0.2, "retrieval", 1).name == "e__020_r1__retrieval.json"
    assert _models(params, [0.2, "000", 20]) == [("020", 0), ("020", 1), ("000", 0), ("000", 1)]
    row = {"dataset": "phase", "attribute": "gender", "group": "all", "kind": "overall", "metric": "R@1",
           "value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 10, "low": None, "high": None, "p_value": None,
           "null_gap": None}
    for replicate, value in ((None, 0.5), (1, 0.7)):  # a file written before replicates has no "replicate"
        record = {"format": "biaslib-result/2", "experiment": "e", "ratio": "020", "evaluation": "retrieval",
                  "rows": [{**row, "value": value}], "provenance": {}}
        if replicate is not None:
            record["replicate"] = replicate
        path = result_path(params, "020", "retrieval", replicate or 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    frame = collect(params, study="amplification").set_index("replicate")
    assert frame.loc[0, "value"] == 0.5 and frame.loc[1, "value"] == 0.7


def _multilingual_record(fmt: str, generation: str, language: str, value: float) -> dict:
    """A multilingual result in the format it had before the one schema (``fmt`` /1: gender only, no attribute)."""
    row = {"section": "fairness", "generation": generation, "language": language, "correction": "raw",
           "metric": "mean_l1", "value": value}
    if fmt.endswith("/2"):
        row["attribute"] = "gender"
    return {"format": fmt, "experiment": "e", "generation": generation, "language": language, "rows": [row],
            "provenance": {"created_utc": "2026-01-01T00:00:00+00:00", "settings": {}}}


def test_one_schema_for_both_studies_and_old_multilingual_files_are_read(runs, tmp_path):
    """Issue 16: both studies write through provenance.write_result in one schema that results.collect reads;
    results of the multilingual study's earlier formats (its own collect() before) read the same."""
    from biaslib.results import read_result
    from biaslib.studies.multilingual.evaluation import write_results

    params = Params(experiment="e", runs_dir=tmp_path / "runs")
    shutil.copytree(runs[0] / "a_exp" / "results", params.run_dir / "results")
    amplification = collect(params, study="amplification")
    table = pd.DataFrame([{"generation": "base", "language": code, "correction": "raw", "metric": "mean_l1",
                           "value": 0.3, "attribute": "gender"} for code in ("en", "de")])
    paths = write_results(params, {"fairness": table})
    for path in paths:
        record = read_result(path)
        assert record["format"] == "biaslib-result/3" and record["study"] == "multilingual"
        assert record["subject"]["generation"] == "base" and record["evaluation"] == "multilingual"
    # the amplification table ignores them
    pd.testing.assert_frame_equal(collect(params, study="amplification"), amplification)
    mine = collect(params, study="multilingual")
    assert sorted(mine["language"]) == ["de", "en"] and (mine["section"] == "fairness").all()
    # earlier multilingual formats: same rows, gender filled in for format 1
    folder = params.run_dir / "results" / "multilingual"
    for path in folder.glob("*.json"):
        path.unlink()
    (folder / "e__base__en.json").write_text(json.dumps(_multilingual_record("biaslib-multilingual-result/1",
                                                                             "base", "en", 0.3)))
    (folder / "e__base__de.json").write_text(json.dumps(_multilingual_record("biaslib-multilingual-result/2",
                                                                             "base", "de", 0.3)))
    old = collect(params, study="multilingual").sort_values("language").reset_index(drop=True)
    new = mine.sort_values("language").reset_index(drop=True)
    for column in ("section", "generation", "language", "attribute", "metric", "value", "experiment"):
        assert old[column].tolist() == new[column].tolist(), column
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        collect(params, study="nope")


def test_write_result_keeps_identical_refuses_changed_and_checks_the_subject(tmp_path):
    from biaslib.errors import BiaslibError
    from biaslib.provenance import provenance, result_record, write_result

    params = Params(experiment="e", runs_dir=tmp_path)
    path = tmp_path / "e__base__en.json"
    record = result_record("multilingual", "e", "multilingual", {"generation": "base", "language": "en"},
                           [{"section": "x", "value": 1.0}], provenance(params, {"n_boot": 10}, study="multilingual"))
    assert write_result(path, record) and json.loads(path.read_text()) == record
    again = {**record, "rows": [{"section": "x", "value": 2.0}]}
    assert not write_result(path, again) and json.loads(path.read_text()) == record  # same settings: kept
    changed = {**again, "provenance": {**record["provenance"], "settings": {"n_boot": 20}}}
    with pytest.raises(BiaslibError, match="n_boot: 10 -> 20"):
        write_result(path, changed)
    assert write_result(path, changed, overwrite=True) and json.loads(path.read_text())["rows"][0]["value"] == 2.0
    with pytest.raises(ValueError, match="subject has fields generation, language; got ratio"):
        result_record("multilingual", "e", "multilingual", {"ratio": "020"}, [], {})
    with pytest.raises(ValueError, match="unknown study"):
        result_record("amplify", "e", "x", {}, [], {})
