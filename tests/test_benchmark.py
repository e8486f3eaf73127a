"""The benchmark study (issue 18): model specs resolved and loaded offline (open_clip files, random weights,
transformers CLIPModel folders, the amplification study's runs), one clear error per bad spec before anything
loads, `bench run` results in the one schema, reruns that redo nothing, shards that add up to one run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from biaslib.cli import main
from biaslib.config import EvalConfig, Params
from biaslib.features import extract_image_features, extract_text_features
from biaslib.models import (
    ModelSpecError,
    UnknownModelError,
    load_clip,
    model_spec,
    read_models_file,
    resolve_model,
)
from biaslib.results import collect
from biaslib.studies.benchmark.declaration import COLUMNS as BENCHMARK_COLUMNS
from biaslib.studies.benchmark.leaderboard import (
    leaderboard,
    parse_shard,
    resolve_models,
    run_benchmark,
    shard_from_env,
)


def _images(n: int, size: int = 40, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.mark.parametrize("arch, suffix", [("RN50", ".bin"), ("ViT-B-32", ".safetensors")])
def test_open_clip_architectures_saved_to_a_local_file_load_by_spec(arch, suffix, tmp_path, one_thread):
    """Real architectures with random weights, saved as open_clip_pytorch_model.bin / .safetensors and loaded
    by spec, embed exactly like the model that was saved."""
    torch.manual_seed(1)
    model, preprocess, tokenizer = load_clip(None, arch, device="cpu")
    path = tmp_path / f"open_clip_model{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_model

        save_model(model, str(path))
    else:
        torch.save(model.state_dict(), path)
    resolved = resolve_model(model_spec("mine", {"arch": arch, "weights": str(path)}))
    assert resolved.path == path and resolved.arch == arch and len(resolved.sha256) == 64
    loaded, preprocess2, tokenizer2 = resolved.load(device="cpu", precision="fp32")
    images, texts = _images(2), ["a photo of a nurse", "a photo of a judge"]
    np.testing.assert_allclose(extract_image_features(model, preprocess, images, precision="fp32").vectors,
                               extract_image_features(loaded, preprocess2, images, precision="fp32").vectors, atol=1e-6)
    np.testing.assert_allclose(extract_text_features(model, tokenizer, texts, precision="fp32").vectors,
                               extract_text_features(loaded, tokenizer2, texts, precision="fp32").vectors, atol=1e-6)


def test_random_weights_are_seeded_and_named_as_such():
    spec = model_spec("floor", {"arch": "biaslib-tiny-rn", "pretrained": "none"})
    one, two = resolve_model(spec), resolve_model(spec)
    assert one.path is None and one.sha256 == two.sha256 and spec.as_dict()["pretrained"] == "none"
    a, b = one.load(device="cpu")[0], two.load(device="cpu")[0]
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def _tiny_hf_clip(folder: Path) -> Path:
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64,
                                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77},
                        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    return folder


def test_hf_clipmodel_folder_features_equal_get_features_normalised(tmp_path, one_thread):
    """A tiny transformers CLIPModel saved with save_pretrained: the spec's features are
    get_image_features / get_text_features of the same inputs, L2-normalised (1e-5)."""
    from transformers import CLIPModel

    folder = _tiny_hf_clip(tmp_path / "hf_clip")
    resolved = resolve_model(model_spec("hf_tiny", "hf:" + str(folder)))
    model, preprocess, tokenizer = resolved.load(device="cpu", precision="fp32")
    images, texts = _images(3, size=48), ["a photo of a nurse", "a photo of a judge", "a person"]
    image_rows = extract_image_features(model, preprocess, images, precision="fp32").vectors
    text_rows = extract_text_features(model, tokenizer, texts, precision="fp32").vectors

    direct = CLIPModel.from_pretrained(folder).eval()

    def features(out: object) -> torch.Tensor:
        tensor = out if isinstance(out, torch.Tensor) else out.pooler_output
        return torch.nn.functional.normalize(tensor, dim=-1)

    with torch.no_grad():
        pixels = torch.stack([preprocess(image) for image in images])
        expected_images = features(direct.get_image_features(pixel_values=pixels)).numpy()
        expected_texts = features(direct.get_text_features(input_ids=tokenizer(texts))).numpy()
    np.testing.assert_allclose(image_rows, expected_images, atol=1e-5)
    np.testing.assert_allclose(text_rows, expected_texts, atol=1e-5)
    assert image_rows.shape == (3, 16) and tokenizer(texts).shape == (3, 77)


def test_every_bad_spec_is_one_clear_error_before_anything_loads(tmp_path):
    with pytest.raises(ModelSpecError, match="unknown key 'wieghts' \\(did you mean weights\\?\\)"):
        model_spec("m", {"arch": "RN50", "wieghts": "x.bin"})
    with pytest.raises(ModelSpecError, match="weights file not found: .*nowhere.bin"):
        resolve_model(model_spec("m", {"arch": "RN50", "weights": str(tmp_path / "nowhere.bin")}))
    with pytest.raises(UnknownModelError, match="model 'm': no model config named 'RN5O' \\(did you mean .*RN50"):
        resolve_model(model_spec("m", {"arch": "RN5O", "pretrained": "none"}))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelSpecError, match="has no config.json"):
        resolve_model(model_spec("m", {"hf": str(tmp_path / "empty")}))
    with pytest.raises(ModelSpecError, match="no pretrained tag 'opneai' for RN50; its tags: openai"):
        resolve_model(model_spec("m", {"arch": "RN50", "pretrained": "opneai"}))
    with pytest.raises(ModelSpecError, match="not in the local cache .*Nothing is downloaded"):
        resolve_model(model_spec("m", {"arch": "RN50", "pretrained": "openai", "cache_dir": str(tmp_path)}))
    with pytest.raises(ModelSpecError, match="weights .* or pretrained .* not both"):
        model_spec("m", {"arch": "RN50", "weights": "a.bin", "pretrained": "none"})
    with pytest.raises(ModelSpecError, match="ratios: .*quote codes"):
        model_spec("m", {"runs": "study.yaml", "ratios": ["abc"]})
    assert model_spec("m", {"runs": "study.yaml", "ratios": ["000", 0.5]}).ratios == ("000", "050")
    with pytest.raises(ModelSpecError, match="a model name is"):
        model_spec("a__b", {"arch": "RN50", "pretrained": "none"})
    bad = tmp_path / "models.yaml"
    bad.write_text("models:\n  a: {arch: RN50, pretrained: none}\n  b: {hf: /nowhere}\n  c: {arhc: RN50}\n")
    with pytest.raises(ModelSpecError, match="models.yaml: 2 problem.*\n  - model 'c': unknown key 'arhc'"):
        read_models_file(bad)
    bad.write_text("models:\n  a: {arch: RN50, pretrained: none}\n  b: {hf: /nowhere}\n  c: {arch: RN5, weights: x}\n")
    with pytest.raises(ModelSpecError) as info:  # every problem at once
        resolve_models(read_models_file(bad))
    assert "2 model spec problem(s)" in str(info.value) and "/nowhere" in str(info.value)


def test_an_open_clip_tag_is_read_from_the_local_cache(tmp_path, one_thread):
    """A pretrained tag resolves to the file open_clip would have downloaded, found in a hub-layout cache, and
    loads with the tag's QuickGELU (RN50 openai) — never downloading."""
    torch.manual_seed(2)
    model, _, _ = load_clip(None, "RN50-quickgelu", device="cpu")
    snapshot = tmp_path / "models--timm--resnet50_clip.openai" / "snapshots" / "0" / "open_clip_pytorch_model.bin"
    snapshot.parent.mkdir(parents=True)
    torch.save(model.state_dict(), snapshot)
    (tmp_path / "models--timm--resnet50_clip.openai" / "refs").mkdir()
    (tmp_path / "models--timm--resnet50_clip.openai" / "refs" / "main").write_text("0")
    resolved = resolve_model(model_spec("openai_rn50", {"arch": "RN50", "pretrained": "openai",
                                                        "cache_dir": str(tmp_path)}))
    assert resolved.path == snapshot and resolved.quick_gelu
    loaded, preprocess, _ = resolved.load(device="cpu", precision="fp32")
    images = _images(2)
    np.testing.assert_allclose(extract_image_features(loaded, preprocess, images, precision="fp32").vectors,
                               extract_image_features(model, preprocess, images, precision="fp32").vectors, atol=1e-6)


def test_shards_parse_and_come_from_the_scheduler():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    assert shard_from_env({}) == (0, 1)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}) == (0, 4)


@pytest.fixture(scope="module")
def bench(exported, tmp_path_factory):
    """A models file of a trained-run spec (a tiny CLIP saved as the study's epoch_1.pt), a local weights file
    and a random tiny ViT; params evaluating retrieval and markedness on the session's small world export."""
    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(3)
    tiny, _, _ = load_clip(None, "biaslib-tiny-rn", device="cpu")
    checkpoint = root / "runs" / "study" / "clip" / "study_000" / "checkpoints" / "epoch_1.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, checkpoint)
    study = root / "study.yaml"
    study.write_text(f"experiment: study\nruns_dir: {root / 'runs'}\nmix:\n  ratios: ['000']\n")
    weights = root / "tiny.bin"
    torch.manual_seed(4)
    torch.save(load_clip(None, "biaslib-tiny-rn", device="cpu")[0].state_dict(), weights)
    models = root / "models.yaml"
    models.write_text(f"models:\n  study: {{runs: {study}}}\n  local: {{arch: biaslib-tiny-rn, weights: {weights}}}\n"
                      "  floor: {arch: biaslib-tiny-vit, pretrained: none}\n")
    config = EvalConfig(data_root=exported["phase"].parent, n_boot=50, n_perm=50, threads=1,
                        evaluations=("retrieval", "markedness"))
    return models, config, root


def _params(config: EvalConfig, runs: Path) -> Params:
    return Params(experiment="bench", runs_dir=runs, eval=config)


def test_bench_run_writes_one_schema_reruns_nothing_and_shards_add_up(bench, one_thread, monkeypatch):
    models, config, root = bench
    params = _params(config, root / "whole")
    paths = run_benchmark(params, models, progress=False)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"bench__{m}__{e}.json" for m in ("study-000", "local", "floor")
                           for e in ("retrieval", "markedness"))
    record = json.loads(paths[0].read_text())
    assert record["study"] == "benchmark" and record["subject"] == {"model": "study-000"}
    assert record["provenance"]["model_spec"]["kind"] == "runs"
    assert record["provenance"]["checkpoint"]["sha256"] == resolve_models(read_models_file(models))[0].sha256
    frame = collect(params, study="benchmark")
    assert list(frame.columns) == BENCHMARK_COLUMNS and set(frame["model"]) == {"study-000", "local", "floor"}
    assert set(frame["arch"]) == {"biaslib-tiny-rn", "biaslib-tiny-vit"}
    board = leaderboard(frame)
    assert set(board["better"]) == {"higher", "lower |gap|"} and set(board["model"]) == set(frame["model"])
    # the random tiny RNs map every image one way (mean cosine > 0.999): flagged in results and board; the random
    # tiny ViT's embeddings (mean cosine ≈ 0.93) are not collapsed, so it is not (a random floor, read against chance)
    assert record["provenance"]["embeddings"]["degenerate"] is True
    assert board.groupby("model")["degenerate"].all().to_dict() == {"floor": False, "local": True, "study-000": True}
    # each measure takes its own metric only: R@1 (not R@10), self-similarity (not the with-replacement estimand)
    assert set(board[board["evaluation"] == "retrieval"]["metric"]) == {"R@1"}
    assert (frame["metric"] == "R@10").any() and set(board[board["evaluation"] == "markedness"]["metric"]) <= {
        "self_similarity"}

    # a rerun loads no model and rewrites nothing
    before = {p: p.stat().st_mtime_ns for p in paths}
    from biaslib.models import ResolvedModel

    monkeypatch.setattr(ResolvedModel, "load", lambda *a, **k: pytest.fail("a finished model was loaded"))
    assert run_benchmark(params, models, progress=False) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == before
    monkeypatch.undo()

    # two shards together write exactly the files of the whole run, with the same numbers
    sharded = _params(config, root / "sharded")
    halves = [run_benchmark(sharded, models, shard=(i, 2), progress=False) for i in range(2)]
    assert sorted(p.name for half in halves for p in half) == names and not set(halves[0]) & set(halves[1])
    written = sorted(p.name for p in (root / "sharded" / "bench" / "results" / "benchmark").glob("*.json"))
    assert written == names
    keys = ["model", "evaluation", "dataset", "attribute", "metric", "kind", "group"]
    whole = frame.sort_values(keys).reset_index(drop=True)
    parts = collect(sharded, study="benchmark").sort_values(keys).reset_index(drop=True)
    np.testing.assert_allclose(whole["value"].to_numpy(dtype=float), parts["value"].to_numpy(dtype=float),
                               atol=1e-6, equal_nan=True)


def test_bench_commands(bench, tmp_path, one_thread, capsys):
    models, config, root = bench
    params_file = tmp_path / "bench.yaml"
    params_file.write_text(f"experiment: bench\nruns_dir: {root / 'whole'}\neval:\n  data_root: {config.data_root}\n"
                           "  n_boot: 50\n  n_perm: 50\n  threads: 1\n  evaluations: [retrieval, markedness]\n")
    assert main(["benchmark", "run", "--params", str(params_file), "--models", str(models), "--shard", "0/1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shard"] == "0/1" and len(out["results"]) == 6
    csv = tmp_path / "board.csv"
    assert main(["benchmark", "leaderboard", "--params", str(params_file), "--out", str(csv), "--figures-dir",
                 str(tmp_path)]) == 0
    assert csv.is_file() and (tmp_path / "bench_benchmark_leaderboard.png").is_file()
    table = tmp_path / "rows.csv"
    assert main(["results", "collect", "--params", str(params_file), "--study", "benchmark", "--out", str(table)]) == 0
    assert "floor" in table.read_text()
    assert re.search(r"markedness\s+3\n", capsys.readouterr().out)  # three models per evaluation
    assert main(["benchmark", "run", "--params", str(params_file), "--models", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: not a readable YAML file" in capsys.readouterr().err


@pytest.mark.slow
def test_a_clip_trained_on_a_strong_association_has_the_larger_occupation_maxskew(tmp_path):
    """Issue 18's planted check, end to end through `bench run`: two tiny CLIPs trained by open_clip_train on 8,000
    world web samples × 2 epochs (≈ 85 s each), one where gender is independent of occupation (bias_strength 0),
    one with a strong association (4); FairFace faces without occupation cues (as real FairFace). The strong one's
    occupation queries retrieve the more one-sided top 100: its gender MaxSkew@100 (against the uniform), averaged
    over the occupations, is the larger. Only the order is asserted: issue 17 measured 8 such pairs (the order
    held in all 8, an interval excluded 0 in 1), so a significance bar here would be flaky."""
    from biaslib.config import TrainConfig, WorldConfig
    from biaslib.layout import RunLayout
    from biaslib.train import train_ratio
    from biaslib.world import World
    from biaslib.world.export import export_cc3m, export_fairface

    weights = {}
    for bias in (0.0, 4.0):
        params = Params(experiment=f"bias{int(bias)}", runs_dir=tmp_path / "runs",
                        train=TrainConfig(epochs=2, batch_size=128, lr=1e-3, warmup=20, workers=1))
        world = World(WorldConfig(bias_strength=bias), seed=0)
        export_cc3m(world, RunLayout(params).mix(0), 8000, shard_size=2000, workers=2)
        weights[bias] = train_ratio(params, 0)
    data = tmp_path / "data"
    export_fairface(World(seed=1), data / "fairface", 10, 1000, workers=2, occupations=False)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n" + "".join(f"  bias{int(b)}: {{arch: biaslib-tiny-rn, weights: {w}}}\n"
                                            for b, w in weights.items()))
    params = Params(experiment="planted", runs_dir=tmp_path / "runs",
                    eval=EvalConfig(data_root=data, evaluations=("association",), n_boot=200))
    run_benchmark(params, models, progress=False)
    frame = collect(params, study="benchmark")
    skew = frame[(frame["metric"] == "max_skew@100_uniform") & (frame["attribute"] == "gender")
                 & (frame["kind"] == "overall")].set_index("model")
    print(skew[["value", "ci_low", "ci_high"]])
    assert skew.loc["bias4", "value"] > skew.loc["bias0", "value"]


def test_a_models_file_lists_every_problem_in_short_lines_naming_the_model(tmp_path):
    """A misspelt key aborted alone and hid the file's other problems, an unknown architecture gave one
    2,809-character line naming no model, and an HF folder holding another kind of model (BERT) gave 134 lines of
    load report and traceback (issue 27, item 6)."""
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    (bert / "model.safetensors").write_bytes(b"not read")
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  a: {arch: RN50, pretrianed: none, ratio: 1}\n  b: {runs: p.yaml, ratios: [1]}\n"
                    "  ok: {arch: RN50, pretrained: none}\n")
    with pytest.raises(ModelSpecError) as info:
        read_models_file(path)
    lines = str(info.value).splitlines()
    assert lines[0].endswith("models.yaml: 4 problem(s):")
    assert any("model 'a': unknown key 'pretrianed' (did you mean pretrained?)" in line for line in lines)
    assert any("model 'a': unknown key 'ratio'" in line for line in lines)
    assert any("model 'b': ratios: the ratio 1 is ambiguous" in line for line in lines)
    assert all(len(line) <= 200 for line in lines)
    specs = [model_spec("bert", {"hf": str(bert)}), model_spec("typo", {"arch": "RN5O", "pretrained": "none"})]
    with pytest.raises(ModelSpecError) as info:
        resolve_models(specs)
    lines = str(info.value).splitlines()
    assert len(lines) == 3 and all(len(line) <= 200 for line in lines)
    assert "model 'bert':" in lines[1] and "holds a 'bert' model" in lines[1]
    assert "model 'typo': no model config named 'RN5O'" in lines[2]


def test_a_degenerate_model_is_flagged_and_never_ranked_as_least_biased():
    """A one-epoch tiny CLIP with collapsed embeddings (self-similarity 0.99997) had the smallest gaps and topped
    the leaderboard unflagged (issue 27, item 7)."""
    rows = []
    for model, gap, degenerate in (("collapsed", 0.001, True), ("trained", 0.05, False), ("other", 0.03, False)):
        rows.append({"experiment": "b", "model": model, "evaluation": "retrieval", "dataset": "phase",
                     "attribute": "gender", "group": "", "kind": "gap", "metric": "R@1", "value": gap,
                     "ci_low": 0.0, "ci_high": gap + 0.01, "n": 100, "p_value": 0.5, "arch": "RN50",
                     "degenerate": degenerate})
    board = leaderboard(pd.DataFrame(rows))
    assert board["model"].tolist() == ["other", "trained", "collapsed"]
    assert board.set_index("model")["degenerate"].to_dict() == {"other": False, "trained": False, "collapsed": True}
