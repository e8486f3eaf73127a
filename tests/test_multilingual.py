"""The multilingual study on a tiny world: prompts → per-language generation → datasets → fine-tuning
(interrupted and resumed) → generation again; bad languages and bad datasets fail before any work."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from biaslib import cli
from biaslib.config import REPO_ROOT, FinetuneParams, load_params
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.finetune import list_checkpoints
from biaslib.generate import GenerateConfig, load_pipeline, read_generated, verify
from biaslib.studies.multilingual.layout import MultilingualLayout
from biaslib.studies.multilingual.pipeline import (
    balanced_records,
    check_params,
    collect_datasets,
    dataset_dir,
    finetune_config,
    generate_languages,
    generation_captions,
    generation_dir,
    read_dataset,
    run_finetune,
)
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline, build_tiny_pipeline

SIZE = 16
#: 2 professions × 3 ages × 2 genders × 2 places = 24 prompts per language; fine-tuning: 96 pairs, batch 16,
#: 1 epoch = 6 updates.
SMALL = """
experiment: ml
runs_dir: {runs}
generate: {{batch_size: 64, shard_size: 10}}
multilingual:
  subset: {{profession: [nurse, pilot], style: 1, dressing: 1}}
  base_pipeline: {base}
  finetune: {{resolution: {size}, train_batch_size: 16, gradient_accumulation_steps: 1, num_train_epochs: 1,
             learning_rate: 0.001, mixed_precision: "no", gradient_checkpointing: false, train_text_encoder: true,
             random_flip: false, checkpointing_steps: 2, checkpoints_total_limit: 2}}
  eval_subset: {{profession: [nurse, pilot], style: 1, dressing: 1, place: 1, age: 1}}
  eval_images_per_prompt: 2
  eval_generate: {{steps: 2, guidance: 3.0, batch_size: 8}}
"""


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A params file whose prompts, dataset images and datasets are written once, through the CLI."""
    root = tmp_path_factory.mktemp("multilingual")
    build_tiny_pipeline(0, SIZE).save_pretrained(root / "base")
    path = root / "ml.yaml"
    path.write_text(SMALL.format(runs=root / "runs", base=root / "base", size=SIZE))
    steps = ["--step", "prompts", "--step", "generate", "--step", "dataset"]
    assert cli.main(["multilingual", "run", "--params", str(path), *steps]) == 0
    return path


def copy_study(study: Path, tmp_path: Path) -> Path:
    """A params file for a copy of the study's run folder (tests that change or break it)."""
    shutil.copytree(study.parent / "runs", tmp_path / "runs")
    path = tmp_path / "ml.yaml"
    path.write_text(study.read_text().replace(str(study.parent / "runs"), str(tmp_path / "runs")))
    return path


def test_every_language_captions_the_english_image_of_its_prompt_id(study: Path) -> None:
    params = load_params(study)
    full, balanced = read_dataset(params, "full"), read_dataset(params, "balanced")
    assert len(full) == 4 * 24 and sorted(full["language"].unique()) == ["de", "en", "ja", "zh"]
    line = json.loads((dataset_dir(params, "full") / "train" / "metadata.jsonl").read_text().splitlines()[0])
    assert {"file_name", "text", "language", "prompt_id", "slots"} <= set(line)
    assert set(line["slots"]) == {"style", "age", "gender", "profession", "dressing", "place"}
    train = dataset_dir(params, "full") / "train"
    for _, group in full.groupby("prompt_id"):
        assert len(group) == 4 and set(group["image_language"]) == {"en"}
        assert len({(train / name).read_bytes() for name in group["file_name"]}) == 1  # one image, four captions
    english = full[full["language"] == "en"]
    assert not english["text"].str.contains("male").any()  # neutral captions (neither male nor female)
    german = full[(full["language"] == "de") & (full["profession"] == "nurse")]["text"]
    assert german.str.contains("Krankenpfleger").all()  # the generic-masculine neutral form
    # the simulator drew exactly the gender each English gendered prompt asked for, so balanced = full here
    assert (full["gender_label"] == full["gender"].map({"male": "man", "female": "woman"})).all()
    assert set(full["label_source"]) == {"simulator"} and len(balanced) == len(full)
    records = read_generated(generation_dir(params, "data", "en"))
    assert records["prompt"].str.contains(" male | female ").all()


def test_translated_prompts_reach_the_simulator_through_their_english_slots(study: Path, tmp_path: Path) -> None:
    """Images in each prompt's own language, from neutral prompts, with German drawn far more often male:
    the shards keep the German text, the simulator reads the slots, and the balanced variant evens out."""
    path = copy_study(study, tmp_path)
    params = load_params(path, {"multilingual.image_language": "same", "multilingual.image_prompt": "neutral",
                                "generate.language_shift": {"de": 8.0}})
    with pytest.raises(BiaslibError, match="holds images of other prompts"):
        generate_languages(params, "data", ["en"], progress=False)  # English images of the gendered prompts
    generate_languages(params, "data", ["en", "de", "zh", "ja"], overwrite=True, progress=False)
    german = read_generated(generation_dir(params, "data", "de"))
    assert german["prompt"].str.contains("Nahaufnahme").all()
    captions = generation_captions(params, "data", "de").set_index("key")
    assert (german["sim_occupation"] == captions.loc[german["key"], "english"].str.split().str[5].to_numpy()).all()
    assert (german["sim_gender"] == "man").mean() > 0.9
    english = read_generated(generation_dir(params, "data", "en"))
    assert 0 < (english["sim_gender"] == "man").mean() < 0.9
    with pytest.raises(BiaslibError, match="other prompts, images or settings"):
        collect_datasets(params)  # the datasets on disk were made from the English gendered images
    collect_datasets(params, overwrite=True)
    full, balanced = read_dataset(params, "full"), read_dataset(params, "balanced")
    counts = balanced.groupby(["language", "profession", "gender_label"]).size().unstack()
    assert (counts["man"] == counts["woman"]).all() and len(balanced) < len(full)
    assert len(balanced[balanced["language"] == "de"]) < len(balanced[balanced["language"] == "en"])


def test_balanced_records_even_out_each_profession_and_language() -> None:
    def record(i: int, profession: str, language: str, label: str) -> dict:
        return {"prompt_id": f"p{i}", "language": language, "slots": {"profession": profession}, "gender_label": label}

    records = [record(0, "nurse", "en", "woman"), record(1, "nurse", "en", "woman"), record(2, "nurse", "en", "man"),
               record(3, "nurse", "de", "woman"), record(4, "pilot", "en", "man"), record(5, "pilot", "en", "other"),
               record(6, "pilot", "en", "woman"), record(7, "nurse", "en", "woman")]
    kept = balanced_records(records, seed=0)
    assert [r["gender_label"] for r in kept].count("man") == [r["gender_label"] for r in kept].count("woman") == 2
    assert {r["prompt_id"] for r in kept} >= {"p2", "p4", "p6"} and "p3" not in {r["prompt_id"] for r in kept}
    assert [r["prompt_id"] for r in kept] == sorted(r["prompt_id"] for r in kept)  # original order
    assert kept == balanced_records(records[::-1], seed=0)[::-1]  # the choice does not depend on the order


def test_unknown_language_is_one_clear_error(study: Path, capsys: pytest.CaptureFixture) -> None:
    supported = "supported: en (english), de (german), zh (chinese), ja (japanese)"
    with pytest.raises(ValueError, match=r"unknown prompt language 'fr'; " + supported.replace("(", r"\(")
                       .replace(")", r"\)")):
        check_params(load_params(study, {"multilingual.languages": ["en", "fr"]}))
    with pytest.raises(ValueError, match="unknown prompt language 'klingon'"):
        generate_languages(load_params(study), "data", ["klingon"])
    assert cli.main(["multilingual", "generate", "--params", str(study), "--language", "klingon"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown prompt language 'klingon'" in err[0] and supported in err[0]


def test_metadata_naming_a_missing_image_fails_before_training(study: Path, tmp_path: Path) -> None:
    params = load_params(copy_study(study, tmp_path))
    train = dataset_dir(params, "balanced") / "train"
    first = json.loads((train / "metadata.jsonl").read_text().splitlines()[0])["file_name"]
    (train / first).unlink()
    with pytest.raises(DataLayoutError, match=rf"metadata\.jsonl line 1: missing image '{first}'"):
        run_finetune(params, progress=False)
    assert not MultilingualLayout(params).finetuned.exists()  # nothing was trained or written


def test_interrupted_finetune_resumes_to_the_same_steps_and_the_pipeline_generates(study: Path,
                                                                                  tmp_path: Path) -> None:
    straight = load_params(copy_study(study, tmp_path / "a"))
    full_run = run_finetune(straight, progress=False)
    assert full_run.finished and full_run.global_step == 6

    params = load_params(copy_study(study, tmp_path / "b"))
    cut = run_finetune(params, stop_after_steps=3, progress=False)
    assert (cut.global_step, cut.finished) == (3, False)
    assert [p.name for p in list_checkpoints(MultilingualLayout(params).finetuned)] == ["checkpoint-2"]
    rest = run_finetune(params, progress=False)
    assert rest.resumed_from.name == "checkpoint-2" and rest.global_step == full_run.global_step
    assert run_finetune(params, progress=False) is None  # finished: nothing is redone
    a = WorldDiffusionPipeline.from_pretrained(MultilingualLayout(straight).finetuned).unet.state_dict()
    b = WorldDiffusionPipeline.from_pretrained(MultilingualLayout(params).finetuned).unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    pipe = load_pipeline(GenerateConfig(model=str(MultilingualLayout(params).finetuned), dtype="fp32", device="cpu"))
    assert isinstance(pipe, WorldDiffusionPipeline)
    generate_languages(params, "finetuned", ["de"], progress=False)
    out = generation_dir(params, "finetuned", "de")
    assert verify(out, generation_captions(params, "finetuned", "de")).ok
    records = read_generated(out)
    assert len(records) == 2 * 2 and records["prompt"].str.contains("Nahaufnahme").all()
    changed = load_params(tmp_path / "b" / "ml.yaml", {"multilingual.finetune.learning_rate": 0.01})
    with pytest.raises(BiaslibError, match="another base pipeline, dataset or settings"):
        run_finetune(changed, progress=False)


def test_params_files_and_finetune_params_reach_finetune_config() -> None:
    # FinetuneConfig extends FinetuneParams: a params file's settings arrive unchanged, the rest keep their defaults
    params = load_params(REPO_ROOT / "params" / "multilingual.yaml", {"multilingual.finetune.learning_rate": 0.5})
    config = finetune_config(params, progress=False)
    assert isinstance(config, FinetuneParams)
    assert {f.name: getattr(config, f.name) for f in dataclasses.fields(FinetuneParams)} == dataclasses.asdict(
        params.multilingual.finetune)
    assert config.learning_rate == 0.5 and config.output_dir == MultilingualLayout(params).finetuned
    world = load_params(REPO_ROOT / "params" / "multilingual.yaml")
    paper = load_params(REPO_ROOT / "params" / "multilingual_paper.yaml")
    for params in (world, paper):
        check_params(params)
    assert paper.multilingual.finetune == FinetuneParams(checkpoints_total_limit=3, dataloader_num_workers=4)
    assert paper.generate.model.endswith("AltDiffusion-m9") and str(paper.multilingual.base_pipeline).endswith(
        "AltDiffusion-m9")
    assert world.generate.model == "simulator" and world.multilingual.finetune_dataset == "balanced"


def tiny_alt_diffusion(folder: Path, texts: list[str]) -> Path:
    """A randomly initialised AltDiffusion (XLM-R-style text encoder with projection, latent UNet, VAE) in
    ``save_pretrained`` layout, its Unigram vocabulary the words and characters of ``texts``."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from diffusers.pipelines.deprecated.alt_diffusion import AltDiffusionPipeline
    from diffusers.pipelines.deprecated.alt_diffusion.modeling_roberta_series import (
        RobertaSeriesConfig,
        RobertaSeriesModelWithTransformation,
    )
    from transformers import XLMRobertaTokenizer

    pieces = sorted({"▁" + w for t in texts for w in t.split()} | {c for t in texts for c in t if not c.isspace()})
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *[(p, -1.0 / len(p)) for p in pieces],
             ("<mask>", 0.0)]
    tokenizer = XLMRobertaTokenizer(vocab=vocab, model_max_length=24)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        text_encoder = RobertaSeriesModelWithTransformation(RobertaSeriesConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=37, project_dim=32, max_position_embeddings=40, pad_token_id=1))
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
            norm_num_groups=8, cross_attention_dim=32, attention_head_dim=4,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
        vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8)
    AltDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                         scheduler=DPMSolverMultistepScheduler(), safety_checker=None, feature_extractor=None,
                         requires_safety_checker=False).save_pretrained(folder)
    return folder


def test_altdiffusion_from_its_parts_is_finetuned_reloaded_and_generates(study: Path, tmp_path: Path) -> None:
    """The paper-scale path with a micro AltDiffusion: fine-tuned (UNet, gradient checkpointing) on the
    multilingual dataset, saved, reassembled from its parts and sampled with Chinese prompts."""
    path = copy_study(study, tmp_path)
    prompts = load_params(path)
    texts = list(generation_captions(prompts, "data", "en")["caption"]) + [
        t for code in ("de", "zh", "ja") for t in generation_captions(prompts, "base", code)["caption"]]
    texts += list(read_dataset(prompts, "balanced")["text"])
    base = tiny_alt_diffusion(tmp_path / "alt", texts)
    params = load_params(path, {"multilingual.base_pipeline": str(base), "multilingual.finetune.max_train_steps": 2,
                                "multilingual.finetune.gradient_checkpointing": True,
                                "multilingual.finetune.train_text_encoder": False,
                                "multilingual.eval_generate": {"steps": 2, "resolution": 16, "batch_size": 4}})
    result = run_finetune(params, progress=False)
    assert result.finished and result.global_step == 2
    index = json.loads((MultilingualLayout(params).finetuned / "model_index.json").read_text())
    assert index["_class_name"] == "AltDiffusionPipeline"
    generate_languages(params, "finetuned", ["zh"], progress=False)
    records = read_generated(generation_dir(params, "finetuned", "zh"))
    assert len(records) == 4 and set(records["model_class"]) == {"AltDiffusionPipeline"}
    assert set(zip(records["width"], records["height"])) == {(16, 16)}
