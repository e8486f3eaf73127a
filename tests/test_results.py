"""biaslib.results: collect() turns every result JSON into one sorted tidy frame, gaps() summarises it,
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
from biaslib.results import COLUMNS, KEY_COLUMNS, ResultsError, collect, gaps, per_group, result_files

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
    for dataset, ids in (("phase-val-images", phase["image_id"]), ("phase-val-captions", phase["image_id"]),
                         ("coco_bias-val-images", coco["image_id"]), ("coco_bias-val-captions", captions["text_id"])):
        vectors = rng.normal(size=(len(ids), 16)).astype(np.float32)
        store.save(model, dataset, Features(list(ids), vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))


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
    frame = collect(root)
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
        assert (part["experiment"] == record["experiment"]).all() and (part["ratio"] == record["ratio"]).all()


def test_collect_accepts_params_experiment_and_results_folders(runs):
    root, experiments, _ = runs
    params = experiments["a_exp"]
    from_params = collect(params)
    assert set(from_params["experiment"]) == {"a_exp"}
    for where in (params.run_dir, params.run_dir / "results"):
        pd.testing.assert_frame_equal(collect(where), from_params)
    everything = collect(root)
    pd.testing.assert_frame_equal(everything[everything["experiment"] == "a_exp"].reset_index(drop=True), from_params)


def test_gaps_are_max_minus_min_of_the_groups(runs):
    frame = collect(runs[0])
    table = gaps(frame)
    groups = per_group(frame)
    assert (groups["kind"] == "group").all()
    expected = groups.groupby(KEY_COLUMNS)["value"].agg(["min", "max", "count"])
    assert len(table) == len(expected)
    merged = table.merge(expected.reset_index(), on=KEY_COLUMNS, suffixes=("", "_x"))
    np.testing.assert_allclose(merged["gap"], merged["max_x"] - merged["min_x"])
    assert (merged["n_groups"] == merged["count"]).all()
    json_gaps = frame[frame["kind"] == "gap"].merge(table, on=KEY_COLUMNS, suffixes=("_json", ""))
    assert len(json_gaps) == len(table[table["n_groups"] >= 2])
    np.testing.assert_allclose(json_gaps["value"], json_gaps["gap"])
    value_of = groups.set_index([*KEY_COLUMNS, "group"])["value"]
    for _, row in json_gaps.iterrows():
        key = tuple(row[KEY_COLUMNS])
        assert value_of[(*key, row["low_json"])] == row["min"] and value_of[(*key, row["high_json"])] == row["max"]
    row = table[(table["experiment"] == "a_exp") & (table["ratio"] == "000") & (table["dataset"] == "phase")
                & (table["attribute"] == "gender") & (table["metric"] == "R@10")].iloc[0]
    values = groups[(groups["experiment"] == "a_exp") & (groups["ratio"] == "000") & (groups["dataset"] == "phase")
                  & (groups["attribute"] == "gender") & (groups["metric"] == "R@10")].set_index("group")["value"]
    assert row["gap"] == pytest.approx(abs(values["male"] - values["female"]))
    assert {row["low"], row["high"]} == {"male", "female"}


def test_malformed_result_is_named_or_skipped_with_a_warning(runs, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(runs[0] / "a_exp" / "results", root)
    good = collect(root)
    (root / "a_exp__040__retrieval.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"a_exp__040__retrieval\.json: not a readable JSON file"):
        collect(root)
    with pytest.warns(RuntimeWarning, match=r"skipped 1 malformed result file\(s\): .*a_exp__040__retrieval\.json"):
        pd.testing.assert_frame_equal(collect(root, skip_bad=True), good)
    record = json.loads((root / "a_exp__000__retrieval.json").read_text())
    del record["rows"][3]["n"]
    (root / "a_exp__040__retrieval.json").write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ResultsError, match=r"a_exp__040__retrieval\.json: row 3 lacks field\(s\) n"):
        collect(root)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ResultsError, match="results folder not found: .*nowhere"):
        collect(tmp_path / "nowhere")
    empty = collect(tmp_path)
    assert empty.empty and list(empty.columns) == COLUMNS
    assert result_files(Params(runs_dir=tmp_path)) == []
