"""biaslib.finetune and the world's tiny diffusers pipeline: resume, per-sample noise, data checks, lr schedule."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.finetune import (
    FinetuneConfig,
    finetune,
    list_checkpoints,
    load_finetune_dataset,
    make_lr_scheduler,
)
from biaslib.world import World
from biaslib.world.export import export_cc3m
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline, build_tiny_pipeline, write_world_imagefolder
from biaslib.world_models.tiny_pipeline_training import train_world_pipeline

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 world people at 16×16 as an HF imagefolder (``train/`` + ``metadata.jsonl``)."""
    return write_world_imagefolder(World(seed=0), tmp_path_factory.mktemp("data"), 48, sample_size=SIZE)


def micro_config(output_dir: Path, **overrides) -> FinetuneConfig:
    """48 images, batch 8 × accumulation 2 → 3 updates per epoch; 7 updates cross two epoch boundaries."""
    settings = dict(
        output_dir=output_dir, resolution=SIZE, train_batch_size=8, gradient_accumulation_steps=2,
        max_train_steps=7, learning_rate=1e-3, lr_scheduler="polynomial", lr_power=2.0, lr_warmup_steps=2,
        mixed_precision="auto", gradient_checkpointing=False, train_text_encoder=True, caption_dropout=0.1,
        random_flip=True, center_crop=False, checkpointing_steps=2, checkpoints_total_limit=2, progress=False,
    )
    return FinetuneConfig(**{**settings, **overrides})


def polynomial(step: int, lr: float, total: int, warmup: int, power: float, lr_end: float = 1e-7) -> float:
    """Closed form of the polynomial-decay schedule with linear warm-up."""
    if step < warmup:
        return lr * step / warmup
    return (lr - lr_end) * (1 - (step - warmup) / (total - warmup)) ** power + lr_end


def trainable_state(pipe: WorldDiffusionPipeline) -> dict[str, torch.Tensor]:
    return {**{f"unet.{k}": v for k, v in pipe.unet.state_dict().items()},
            **{f"text.{k}": v for k, v in pipe.text_encoder.state_dict().items()}}


def test_interrupted_and_resumed_run_equals_uninterrupted_run(image_folder: Path, tmp_path: Path) -> None:
    straight = finetune(build_tiny_pipeline(0, SIZE), image_folder, micro_config(tmp_path / "straight"))
    assert straight.finished and straight.global_step == 7 and len(straight.losses) == 7

    resumed_dir = tmp_path / "resumed"
    first = build_tiny_pipeline(0, SIZE)
    cut = finetune(first, image_folder, micro_config(resumed_dir), stop_after_steps=5)
    assert (cut.global_step, cut.finished) == (5, False)
    assert not (resumed_dir / "model_index.json").exists()
    assert [p.name for p in list_checkpoints(resumed_dir)] == ["checkpoint-2", "checkpoint-4"]

    second = build_tiny_pipeline(0, SIZE)  # a fresh process would start from fresh weights too
    rest = finetune(second, image_folder, micro_config(resumed_dir, resume_from_checkpoint="latest"))
    assert rest.resumed_from is not None and rest.resumed_from.name == "checkpoint-4"
    assert rest.finished and rest.global_step == straight.global_step == 7
    # the limit of 2 is kept: checkpoint-2 was pruned before checkpoint-6 was written
    assert [p.name for p in list_checkpoints(resumed_dir)] == ["checkpoint-4", "checkpoint-6"]
    assert not list(resumed_dir.glob(".tmp-checkpoint-*"))
    # updates 5..7 repeat the uninterrupted run's updates exactly (same data order, noise, lr, states)
    np.testing.assert_array_equal(rest.losses, straight.losses[4:])
    a, b = trainable_state(second), trainable_state(build_tiny_pipeline(0, SIZE))
    changed = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert changed > 1e-4, "training changed nothing"
    reference = WorldDiffusionPipeline.from_pretrained(tmp_path / "straight")
    for key, value in trainable_state(reference).items():
        assert torch.equal(value, a[key]), key
    # lr of each update follows the polynomial closed form (warm-up 2, power 2, 7 updates)
    expected = [polynomial(s, 1e-3, 7, 2, 2.0) for s in range(7)]
    np.testing.assert_allclose(straight.learning_rates, expected, rtol=1e-9)
    np.testing.assert_allclose(rest.learning_rates, expected[4:], rtol=1e-9)

    reloaded = WorldDiffusionPipeline.from_pretrained(resumed_dir)
    reloaded.set_progress_bar_config(disable=True)
    images = reloaded(["a photo of a nurse", "a photo of a man"], num_inference_steps=4,
                      generator=[torch.Generator().manual_seed(s) for s in (1, 2)]).images
    assert [im.size for im in images] == [(SIZE, SIZE)] * 2
    marker = json.loads((resumed_dir / "biaslib_finetune.json").read_text())
    assert marker["global_step"] == 7 and marker["max_steps"] == 7


def test_image_does_not_depend_on_its_batch() -> None:
    pipe = build_tiny_pipeline(seed=3)  # 32×32, random weights: the arithmetic is what is tested
    prompts = ["a photo of a nurse", "a photo of a welder", "a photo of a man", "a photo of a pilot"]
    seeds = [11, 12, 13, 14]
    batch = pipe(prompts, generator=[torch.Generator().manual_seed(s) for s in seeds], output_type="np").images
    alone = pipe(prompts[2], generator=torch.Generator().manual_seed(seeds[2]), output_type="np").images
    assert batch.shape == (4, 32, 32, 3) and alone.shape == (1, 32, 32, 3)
    levels = np.abs(batch[2] - alone[0]).max() * 255
    assert levels <= 3.0, f"batch of 1 vs 4 differ by {levels:.2f} pixel levels"
    assert np.abs(batch[1] - batch[2]).max() * 255 > 20  # other seeds give other images
    with pytest.raises(ValueError, match="generator.*3 generators.*prompt asks for 4 images"):
        pipe(prompts, generator=[torch.Generator().manual_seed(s) for s in seeds[:3]])


def _write_metadata(folder: Path, lines: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_bad_metadata_fails_before_training(image_folder: Path, tmp_path: Path) -> None:
    good = [json.loads(line) for line in (image_folder / "metadata.jsonl").read_text().splitlines()[:3]]
    escape = _write_metadata(tmp_path / "escape", [{"file_name": "../x.png", "text": "a photo"}])
    with pytest.raises(DataLayoutError, match="must be relative"):
        load_finetune_dataset(escape)

    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    for row in good:
        (folder / row["file_name"]).write_bytes((image_folder / row["file_name"]).read_bytes())
    _write_metadata(folder, [good[0], {"file_name": "gone.png", "text": "a photo of a nurse"}, good[1]])
    stub = SimpleNamespace(unet=object(), text_encoder=object(), tokenizer=object(), scheduler=object())
    out = tmp_path / "out"
    with pytest.raises(DataLayoutError, match=r"metadata\.jsonl line 2: missing image 'gone\.png'") as err:
        finetune(stub, tmp_path / "data", micro_config(out))  # the stub proves no model work started
    assert str(folder / "metadata.jsonl") in str(err.value)
    assert not out.exists()

    _write_metadata(folder, [good[0], {"file_name": good[1]["file_name"], "text": "  "}])
    with pytest.raises(DataLayoutError, match="line 2: empty or missing caption 'text'"):
        load_finetune_dataset(folder / "metadata.jsonl")

    _write_metadata(folder, good)
    dataset = load_finetune_dataset(tmp_path / "data", resolution=8)
    assert len(dataset) == 3 and dataset[0]["pixel_values"].shape == (3, 8, 8)
    assert -1.0 <= float(dataset[0]["pixel_values"].min()) and float(dataset[0]["pixel_values"].max()) <= 1.0


def test_webdataset_shards_load(tmp_path: Path) -> None:
    world = World(seed=0)
    export_cc3m(world, tmp_path / "cc3m", 12, shard_size=5)
    dataset = load_finetune_dataset(tmp_path / "cc3m", resolution=32, center_crop=False)
    assert len(dataset) == 12
    a, b = dataset[(0, 1)], dataset[(0, 1)]
    assert a["pixel_values"].shape == (3, 32, 32) and torch.equal(a["pixel_values"], b["pixel_values"])
    assert a["caption"]


def test_polynomial_lr_closed_form(tmp_path: Path) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=5e-4)
    config = micro_config(tmp_path, learning_rate=5e-4, lr_power=3.0, lr_warmup_steps=4)
    scheduler = make_lr_scheduler(optimizer, config, max_steps=40)
    for step in range(45):
        expected = polynomial(step, 5e-4, 40, 4, 3.0) if step <= 40 else 1e-7
        assert scheduler.get_last_lr()[0] == pytest.approx(expected, rel=1e-9, abs=1e-15), step
        optimizer.step()
        scheduler.step()
    assert polynomial(22, 5e-4, 40, 4, 3.0) == pytest.approx((5e-4 - 1e-7) * 0.5**3 + 1e-7)


def test_ema_weights_survive_resume(image_folder: Path, tmp_path: Path) -> None:
    config = dict(max_train_steps=4, use_ema=True, ema_decay=0.9, train_text_encoder=False, checkpointing_steps=2)
    straight = build_tiny_pipeline(0, SIZE)
    finetune(straight, image_folder, micro_config(tmp_path / "a", **config))
    cut = tmp_path / "b"
    if not torch.cuda.is_available():  # the paper's fp16 becomes the CPU's precision, with a warning
        with pytest.warns(UserWarning, match="fp16.*needs a CUDA device"):
            finetune(build_tiny_pipeline(0, SIZE), image_folder, micro_config(cut, **config, mixed_precision="fp16"),
                     stop_after_steps=3)
    else:
        finetune(build_tiny_pipeline(0, SIZE), image_folder, micro_config(cut, **config), stop_after_steps=3)
    assert (cut / "checkpoint-2" / "unet_ema").is_dir()
    resumed = build_tiny_pipeline(0, SIZE)
    finetune(resumed, image_folder, micro_config(cut, **config, resume_from_checkpoint="latest"))
    for (name, x), y in zip(straight.unet.state_dict().items(), resumed.unet.state_dict().values()):
        assert torch.equal(x, y), name  # the saved weights are the EMA weights of identical runs
    fresh = build_tiny_pipeline(0, SIZE).text_encoder.state_dict()
    assert all(torch.equal(v, fresh[k]) for k, v in resumed.text_encoder.state_dict().items())  # frozen


def test_train_world_pipeline_caches_by_params(tmp_path: Path) -> None:
    world = World(seed=0)
    kwargs = dict(n_images=64, sample_size=SIZE, max_steps=3, progress=False)
    out = train_world_pipeline(world, tmp_path / "tiny", **kwargs)
    info = json.loads((out / "biaslib_train.json").read_text())
    assert info["global_step"] == info["max_steps"] == 3 and info["calibration"] is None
    assert not (out / "_data").exists() and not list_checkpoints(out)  # work files are cleaned up
    stamp = (out / "model_index.json").stat().st_mtime_ns
    assert train_world_pipeline(world, out, **kwargs) == out  # cached: nothing retrained
    assert (out / "model_index.json").stat().st_mtime_ns == stamp
    with pytest.raises(BiaslibError, match="other params"):
        train_world_pipeline(world, out, **{**kwargs, "n_images": 65})
    assert WorldDiffusionPipeline.from_pretrained(out).unet.config.sample_size == SIZE


def test_mixed_precision_auto_follows_the_hardware(monkeypatch) -> None:
    """``auto``: fp16 on CUDA; bf16 on a CPU with native bf16, else fp32 (``no``); fp16 on a CPU warns."""
    from biaslib.finetune import resolve_mixed_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, cpu in ((True, "bf16"), (False, "no")):
        monkeypatch.setattr("biaslib.hardware.native_bf16", lambda native=native: native)
        assert resolve_mixed_precision("auto") == cpu
        assert resolve_mixed_precision("no") == "no" and resolve_mixed_precision("bf16") == "bf16"
        with pytest.warns(UserWarning, match="fp16"):
            assert resolve_mixed_precision("fp16") == cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_mixed_precision("auto") == "fp16" and resolve_mixed_precision("bf16") == "bf16"



def test_min_snr_weights_closed_form() -> None:
    """Min-SNR-γ weights against SNR computed by hand from the betas of a cosine schedule."""
    from diffusers import DDPMScheduler

    from biaslib.finetune import min_snr_weights

    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    t = torch.tensor([0, 10, 250, 500, 999])
    alpha_bar = np.cumprod(1.0 - scheduler.betas.double().numpy())[t.numpy()]
    snr = alpha_bar / (1.0 - alpha_bar)
    clipped = np.minimum(snr, 5.0)
    for kind, expected in (("epsilon", clipped / snr), ("v_prediction", clipped / (snr + 1)), ("sample", clipped)):
        got = min_snr_weights(scheduler, t, 5.0, kind).numpy()
        np.testing.assert_allclose(got, expected, rtol=2e-3)  # the scheduler accumulates ᾱ in float32
    assert min_snr_weights(scheduler, t, 5.0, "epsilon")[-1] == pytest.approx(1.0)  # high noise: SNR < γ, weight 1


def test_train_world_pipeline_plans_its_steps_from_the_measured_speed(tmp_path: Path) -> None:
    """``minutes`` without ``max_steps``: the step budget is the calibration's speed × the minutes, whatever
    that speed is on this machine (the relation is checked, never the speed)."""
    minutes = 0.01
    out = train_world_pipeline(World(seed=0), tmp_path / "tiny", minutes=minutes, n_images=32, sample_size=SIZE,
                               calibration_steps=2, progress=False)
    info = json.loads((out / "biaslib_train.json").read_text())
    calibration = info["calibration"]
    assert calibration["steps"] == 2 and calibration["steps_per_s"] > 0
    assert info["max_steps"] == max(1, round(calibration["steps_per_s"] * minutes * 60)) == info["global_step"]
