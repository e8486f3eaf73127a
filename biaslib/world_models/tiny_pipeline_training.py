"""Training the world's tiny diffusion pipeline (:class:`~biaslib.world.tiny_pipeline.WorldDiffusionPipeline`).

:func:`train_world_pipeline` renders world people with their CC3M-like captions
(:func:`~biaslib.world.tiny_pipeline.write_world_imagefolder`) and trains the pipeline with
:func:`biaslib.finetune.finetune` (the loop that also fine-tunes Stable Diffusion) for a fixed number of updates
or under a step budget derived from a wall-clock budget; the result is cached by a digest of everything it
depends on and resumes from its checkpoints.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from biaslib.errors import BiaslibError
from biaslib.io import file_sha256, write_json
from biaslib.world.tiny_pipeline import (
    SCHEDULE,
    WorldDiffusionPipeline,
    build_tiny_pipeline,
    write_world_imagefolder,
)

#: The design's training recipe for the tiny pipeline (bf16 autocast on CPUs with native bf16, else fp32; text
#: encoder trained too).
#: Min-SNR-5 weighting and EMA weights (diffusers' warm-up: decay (1 + s) / (10 + s) at update s) are the
#: standard levers for sample quality early in training.
RECIPE: dict[str, Any] = {
    "train_batch_size": 32, "learning_rate": 1e-3, "lr_scheduler": "cosine", "lr_warmup_steps": 50,
    "caption_dropout": 0.1, "mixed_precision": "auto", "train_text_encoder": True, "random_flip": False,
    "gradient_accumulation_steps": 1, "gradient_checkpointing": False, "checkpointing_steps": 200,
    "checkpoints_total_limit": 2, "snr_gamma": 5.0, "use_ema": True,
}
#: The recipe with a frozen pretrained text encoder (:func:`biaslib.text_encoder.open_clip_text_encoder` of a
#: CLIP trained on the world, as Stable Diffusion keeps OpenAI's CLIP frozen): only the UNet learns, and the
#: loss is the plain v-MSE. Min-SNR-γ is off because with v-prediction it weights a sample by
#: min(SNR, γ)/(SNR + 1) ≈ SNR at high noise, i.e. it removes the timesteps where the image's layout (and so
#: the prompted outfit) is decided; the unweighted v-MSE keeps them.
FROZEN_TEXT_RECIPE: dict[str, Any] = {**RECIPE, "train_text_encoder": False, "snr_gamma": None}
TRAIN_MARKER = "biaslib_train.json"
_PLAN = "biaslib_plan.json"
_DATA = "_data"


def _train_params(world: Any, minutes: float, n_images: int, seed: int, sample_size: int,
                  max_steps: int | None, text_encoder: dict[str, str] | None) -> dict[str, Any]:
    """Everything the trained pipeline depends on (hashed into the cache digest)."""
    params = {"world_config": asdict(world.config), "world_seed": world.seed, "minutes": float(minutes),
              "n_images": int(n_images), "seed": int(seed), "sample_size": int(sample_size),
              "recipe": RECIPE if text_encoder is None else FROZEN_TEXT_RECIPE, "schedule": SCHEDULE,
              "max_steps": max_steps, "format": 2}
    return params if text_encoder is None else {**params, "text_encoder": text_encoder}


def resolve_text_encoder_checkpoint(path: str | Path) -> Path:
    """An open_clip checkpoint file, or the newest ``checkpoints/epoch_N.pt`` of an open_clip run folder
    (``<logs>/<name>``, as :func:`biaslib.train.train` writes it); :class:`BiaslibError` naming the path
    when there is none."""
    from biaslib.train import epoch_checkpoints

    path = Path(path).expanduser()
    if path.is_file():
        return path
    found = epoch_checkpoints(path) if path.is_dir() else []
    if not found:
        raise BiaslibError(f"no open_clip checkpoint at {path}: expected a checkpoint file or a run folder with "
                           "checkpoints/epoch_<N>.pt (train one with `biaslib train run`)")
    return found[-1][1]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _encoder_source(text_encoder: str | Path | None, model: str) -> dict[str, str] | None:
    """The frozen text encoder's checkpoint, model name and sha256; None for the pipeline's own encoder."""
    if text_encoder is None:
        return None
    checkpoint = resolve_text_encoder_checkpoint(text_encoder)
    return {"checkpoint": str(checkpoint), "model": model, "sha256": file_sha256(checkpoint)}


def _fresh_pipeline(seed: int, sample_size: int, encoder_source: dict[str, str] | None) -> WorldDiffusionPipeline:
    """A newly initialised tiny pipeline, with the open_clip text tower of ``encoder_source`` when given."""
    if encoder_source is None:
        return build_tiny_pipeline(seed, sample_size)
    from biaslib.text_encoder import load_open_clip_text_encoder

    encoder = load_open_clip_text_encoder(encoder_source["checkpoint"], encoder_source["model"])
    return build_tiny_pipeline(seed, sample_size, text_encoder=encoder)


def train_world_pipeline(
    world: Any,
    out_dir: str | Path,
    minutes: float = 12.0,
    n_images: int = 24000,
    seed: int = 0,
    resume: bool = True,
    *,
    sample_size: int = 32,
    calibration_steps: int = 12,
    max_steps: int | None = None,
    text_encoder: str | Path | None = None,
    text_encoder_model: str = "biaslib-tiny-rn",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train the world's tiny pipeline for about ``minutes`` (wall clock, at the speed measured when it
    starts) and save it to ``out_dir``; returns ``out_dir``.

    Steps: render ``n_images`` people (stream ``tiny_pipeline/train``) into ``out_dir/_data`` as an
    imagefolder; measure the training speed over ``calibration_steps`` updates of a throwaway copy;
    fix ``max_steps = speed × minutes`` and record it in ``out_dir/biaslib_plan.json`` (a resumed run
    reuses it, so the result does not depend on when it was interrupted); train with
    :func:`biaslib.finetune.finetune` and :data:`RECIPE` (DDPM cosine schedule, AdamW 1e-3 with cosine
    decay, batch 32, 10% caption dropout, bf16 autocast where native); save with ``save_pretrained(out_dir)`` and
    write ``out_dir/biaslib_train.json`` (params, digest, max_steps, steps, seconds, images/s) last.
    ``train_seconds`` there sums the training loops of all calls (resumed runs included);
    ``images_per_s`` divides the images by it, ``images_per_s_median_step`` uses the median update
    time of the last call, which other jobs on a shared CPU barely move.

    ``max_steps`` fixes the step budget instead of measuring it (``minutes`` is then only recorded):
    the result no longer depends on how busy the machine was during the calibration.

    ``text_encoder``: an open_clip checkpoint (file or run folder, see
    :func:`resolve_text_encoder_checkpoint`) of model ``text_encoder_model``, e.g. the world's CLIP trained
    on real data; its text tower becomes the pipeline's frozen text encoder
    (:func:`biaslib.text_encoder.open_clip_text_encoder`) and :data:`FROZEN_TEXT_RECIPE` trains the UNet
    alone. The checkpoint's sha256 is part of the cache digest.

    Cache: if ``out_dir`` holds a finished pipeline with the same params digest it is returned
    untouched. A finished pipeline with other params raises :class:`BiaslibError` unless
    ``overwrite``. ``resume=False`` discards checkpoints and plan of an unfinished run.
    """
    from biaslib.finetune import FinetuneConfig, finetune

    out = Path(out_dir)
    encoder_source = _encoder_source(text_encoder, text_encoder_model)
    params = _train_params(world, minutes, n_images, seed, sample_size, max_steps,
                           None if encoder_source is None else {k: encoder_source[k] for k in ("model", "sha256")})
    digest = _digest(params)
    if _finished(out, digest, overwrite):
        return out
    plan = _claim(out, digest, resume)

    started = time.perf_counter()
    dataset = _world_dataset(world, out, params)
    render_seconds = time.perf_counter() - started
    config = FinetuneConfig(output_dir=out, resolution=sample_size, center_crop=True, seed=seed,
                            resume_from_checkpoint="latest", progress=progress, **params["recipe"])
    fresh_pipeline = functools.partial(_fresh_pipeline, seed, sample_size, encoder_source)
    if plan is None:
        plan = _plan_steps(fresh_pipeline, dataset, config, digest, max_steps, minutes, calibration_steps)
        write_json(out / _PLAN, plan)
    pipe = fresh_pipeline()
    result = finetune(pipe, dataset, config, max_steps_override=plan["max_steps"])
    write_json(out / TRAIN_MARKER, {
        "params": params, "digest": digest, **_training_record(result, plan, params["recipe"]["train_batch_size"]),
        "setup_seconds": render_seconds, "text_encoder_source": encoder_source, "n_params": {
            "unet": sum(p.numel() for p in pipe.unet.parameters()),
            "text_encoder": sum(p.numel() for p in pipe.text_encoder.parameters())},
    })
    _clear_work(out)
    return out


def _finished(out: Path, digest: str, overwrite: bool) -> bool:
    """True if ``out`` holds a finished pipeline of ``digest``; raises if it holds one of other params and
    ``overwrite`` is off."""
    marker = _read_json(out / TRAIN_MARKER)
    if marker is None or not (out / "model_index.json").is_file():
        return False
    if marker.get("digest") == digest:
        return True
    if not overwrite:
        raise BiaslibError(f"{out} holds a tiny pipeline trained with other params (digest "
                           f"{marker.get('digest')} ≠ {digest}); pass --overwrite (overwrite=True in Python) "
                           "or use another folder")
    return False


def _claim(out: Path, digest: str, resume: bool) -> dict[str, Any] | None:
    """Prepare ``out`` for training ``digest``: keep an unfinished run's plan and checkpoints when resuming it,
    else clear the outputs. Returns the kept step plan, or None when one must be made."""
    plan = _read_json(out / _PLAN)
    if _read_json(out / TRAIN_MARKER) is not None or not resume or (plan is not None and plan.get("digest") != digest):
        _clear_outputs(out)
        plan = None
    out.mkdir(parents=True, exist_ok=True)
    return plan


def _world_dataset(world: Any, out: Path, params: dict[str, Any]) -> Any:
    """The training imagefolder ``out/_data`` of the world's people (re-rendered when its world, seed, size or
    count changed), loaded for :func:`biaslib.finetune.finetune`."""
    from biaslib.finetune import load_finetune_dataset

    data_dir = out / _DATA
    data_params = {k: params[k] for k in ("world_config", "world_seed", "n_images", "sample_size")}
    stamp = data_dir / "biaslib_data.json"
    fresh = _read_json(stamp) == json.loads(json.dumps(data_params, default=str))
    if not fresh or not (data_dir / "train" / "metadata.jsonl").is_file():
        shutil.rmtree(data_dir, ignore_errors=True)
        write_world_imagefolder(world, data_dir, params["n_images"], params["sample_size"])
        write_json(stamp, data_params)
    return load_finetune_dataset(data_dir)


def _plan_steps(fresh_pipeline: Any, dataset: Any, config: Any, digest: str, max_steps: int | None,
                minutes: float, calibration_steps: int) -> dict[str, Any]:
    """The step budget: ``max_steps`` when given, else the speed of ``calibration_steps`` updates of a throwaway
    pipeline × ``minutes``."""
    from biaslib.finetune import FinetuneConfig, finetune

    if max_steps is not None:
        return {"digest": digest, "max_steps": int(max_steps), "calibration": None}
    with tempfile.TemporaryDirectory(dir=config.output_dir) as scratch:
        probe = finetune(fresh_pipeline(), dataset,
                         FinetuneConfig(**{**config.to_dict(), "output_dir": scratch, "progress": False,
                                           "resume_from_checkpoint": None}),
                         max_steps_override=10**6, stop_after_steps=calibration_steps)
    steps_per_s = probe.images_per_second() / probe.images_per_update
    return {"digest": digest, "max_steps": max(1, int(round(steps_per_s * minutes * 60))),
            "calibration": {"steps": calibration_steps, "steps_per_s": steps_per_s,
                            "images_per_s": probe.images_per_second()}}


def _training_record(result: Any, plan: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """Steps, seconds, speeds and final loss of a finished :func:`biaslib.finetune.finetune` run."""
    tail = result.losses[-50:]
    # the median update time is robust to other jobs on a shared CPU (the mean is not)
    median_step = float(np.median(np.diff(result.step_times))) if len(result.step_times) > 2 else None
    return {
        "max_steps": plan["max_steps"], "global_step": result.global_step,
        "calibration": plan["calibration"], "train_seconds": result.train_seconds,
        "train_seconds_last_call": result.seconds, "images_per_s_last_call": result.images_per_second(),
        "resumed_from": str(result.resumed_from) if result.resumed_from else None,
        "images_per_s": plan["max_steps"] * batch_size / max(result.train_seconds, 1e-9),
        "median_step_seconds": median_step,
        "images_per_s_median_step": batch_size / median_step if median_step else None,
        "final_loss": float(np.mean(tail)) if tail else None,
    }


def _clear_work(out: Path) -> None:
    """Remove the training data and checkpoints of a finished run (the pipeline stays)."""
    from biaslib.finetune import list_checkpoints

    for path in [out / _DATA, *list_checkpoints(out)]:
        shutil.rmtree(path, ignore_errors=True)


def _clear_outputs(out: Path) -> None:
    """Remove everything :func:`train_world_pipeline` writes into ``out`` (nothing else)."""
    from biaslib.finetune import FINETUNE_MARKER

    _clear_work(out)
    for name in ("model_index.json", TRAIN_MARKER, _PLAN, FINETUNE_MARKER):
        (out / name).unlink(missing_ok=True)
    for name in ("unet", "text_encoder", "tokenizer", "scheduler"):
        shutil.rmtree(out / name, ignore_errors=True)


__all__ = ["FROZEN_TEXT_RECIPE", "RECIPE", "TRAIN_MARKER", "resolve_text_encoder_checkpoint", "train_world_pipeline"]
