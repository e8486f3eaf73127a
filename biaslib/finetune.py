"""The one text-to-image fine-tuning loop of biaslib (diffusers ``train_text_to_image`` layout).

:func:`finetune` trains any diffusers text-to-image pipeline that has ``unet``, ``text_encoder``,
``tokenizer`` and ``scheduler`` components, plus ``vae`` for latent diffusion (images are encoded to
latents × ``vae.config.scaling_factor``; without a VAE the UNet works on pixels in [-1, 1]). The same
loop trains the synthetic world's tiny pixel-space pipeline on a CPU in minutes
(:func:`biaslib.world_models.tiny_pipeline_training.train_world_pipeline`) and fine-tunes Stable Diffusion or
AltDiffusion on the multilingual study's data at paper scale.

The defaults of :class:`FinetuneConfig` are the paper settings of the multilingual study
(reference/formats.md C3): resolution 256, center crop, random flip, batch 16, gradient accumulation
2, 5 epochs, learning rate 5e-6 with a polynomial schedule and no warm-up, fp16 mixed precision, TF32
and gradient checkpointing. On a machine without CUDA, fp16 falls back (with a warning) to bf16
autocast where the CPU has native bf16, else to fp32.

Reproducibility and resumption: the data order of epoch ``e`` is a permutation seeded by
``(seed, e)``; crops and flips by ``(seed, e, index)``; noise, timesteps and caption dropout of a batch
by ``(seed, e, batch index, process index)``. Together with the model, optimizer and learning-rate
states that :meth:`accelerate.Accelerator.save_state` stores in ``checkpoint-{step}`` folders, a run
resumed with ``resume_from_checkpoint="latest"`` repeats exactly the updates an uninterrupted run
makes. A checkpoint is written under ``.tmp-checkpoint-{step}``, flushed and renamed, so a
half-written checkpoint is never picked as the latest.

Data: :func:`load_finetune_dataset` reads an HF ``imagefolder`` (``metadata.jsonl`` lines
``{"file_name": ..., "text": ...}``) or webdataset shards (``.jpg``/``.txt`` members, read by
:func:`biaslib.data.iter_cc3m`) and validates everything before any training starts.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from biaslib import hardware
from biaslib.config import FinetuneParams
from biaslib.data import iter_cc3m
from biaslib.data._common import layout_error
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.io import run_lock, write_json

log = logging.getLogger(__name__)

LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "polynomial")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
CHECKPOINT_PREFIX = "checkpoint-"
_TMP_PREFIX = ".tmp-checkpoint-"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
#: Completion marker written last into ``output_dir`` by a finished :func:`finetune` run.
FINETUNE_MARKER = "biaslib_finetune.json"

IMAGEFOLDER_LAYOUT = """
<root>/                       (or <root>/train/)
  metadata.jsonl              one JSON object per line: {"file_name": "0.jpg", "text": "a caption"}
  0.jpg, 1.jpg, ...           images, paths relative to the folder of metadata.jsonl
"""
WEBDATASET_LAYOUT = """
<root>/
  00000.tar, 00001.tar, ...   webdataset shards: <key>.jpg (or .png/.webp) + <key>.txt caption
"""


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(FinetuneParams):
    """Settings of one fine-tuning run: the fields a params file may set (:class:`biaslib.config.FinetuneParams`,
    whose defaults are the multilingual study's paper settings, C3) and the ones only code sets.

    Steps count optimizer updates: one update consumes ``train_batch_size × gradient_accumulation_steps
    × processes`` images. ``max_train_steps`` (if set) overrides ``num_train_epochs``.
    ``checkpointing_steps``: save ``output_dir/checkpoint-{step}`` every that many updates, keeping at
    most ``checkpoints_total_limit`` (None: all). ``resume_from_checkpoint``: ``"latest"`` (the highest
    step in ``output_dir``; a fresh start if none), a checkpoint folder, or a folder name inside
    ``output_dir``. ``caption_dropout``: probability that a caption is replaced by ``""`` (trains the
    unconditional branch of classifier-free guidance). ``image_column`` / ``caption_column``: for an
    imagefolder, the caption key of ``metadata.jsonl`` and the key holding the image path (``"image"``
    means HF's ``file_name``, as the ``datasets`` library names it). ``mixed_precision``: ``auto`` is
    fp16 on CUDA, bf16 autocast on a CPU that computes bf16 natively (AVX512-BF16/AMX) and ``no`` (fp32)
    elsewhere — emulated bf16 is ≈ 12× slower than fp32 for the tiny pipeline on an AVX2-only CPU;
    ``fp16`` needs CUDA and elsewhere becomes what ``auto`` picks, with a warning. ``snr_gamma``: Min-SNR
    loss weighting (Hang et al. 2023; ``--snr_gamma`` of diffusers' training examples): each sample's MSE
    is weighted by min(SNR(t), γ) / SNR(t) for epsilon, / (SNR(t) + 1) for v and 1 for sample
    prediction, so that the low-noise steps stop dominating the gradient; ``None`` is the plain MSE.
    Keyword-only.
    """

    output_dir: str | Path
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    ema_decay: float = 0.9999
    noise_offset: float = 0.0
    snr_gamma: float | None = None
    resume_from_checkpoint: str | None = None
    image_column: str = "image"
    caption_column: str = "text"
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_dir", Path(self.output_dir))
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ValueError(f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}, got {self.lr_scheduler!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, "
                             f"got {self.mixed_precision!r}")
        for name in ("resolution", "train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
                     "checkpointing_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)!r}")
        if self.max_train_steps is not None and self.max_train_steps < 1:
            raise ValueError(f"max_train_steps must be ≥ 1 or None, got {self.max_train_steps!r}")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(f"checkpoints_total_limit must be ≥ 1 or None, got {self.checkpoints_total_limit!r}")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout must be in [0, 1], got {self.caption_dropout!r}")
        if self.learning_rate <= 0 or self.lr_warmup_steps < 0:
            raise ValueError("learning_rate must be > 0 and lr_warmup_steps ≥ 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the settings (``output_dir`` as a string)."""
        return {**asdict(self), "output_dir": str(self.output_dir)}


@dataclass
class FinetuneResult:
    """What one :func:`finetune` call did.

    ``global_step``: optimizer updates done in total (including those restored from a checkpoint);
    ``max_steps``: the step budget of the run; ``losses``: mean MSE loss of each update made in this
    call; ``learning_rates``: the learning rate each of those updates used; ``step_times``: seconds
    since the start of this call's training loop at the end of each of those updates; ``seconds``:
    wall time of the call; ``finished``: the budget was reached and the pipeline saved to
    ``output_dir`` (False after ``stop_after_steps``); ``resumed_from``: the checkpoint restored, if
    any; ``images_per_update``: images consumed by one update (all processes); ``train_seconds``:
    training-loop seconds of the whole run up to ``global_step``, summed over resumed calls (the
    work lost after the restored checkpoint is not counted).
    """

    global_step: int
    max_steps: int
    losses: list[float]
    seconds: float
    output_dir: Path
    finished: bool
    resumed_from: Path | None = None
    step_times: list[float] = field(default_factory=list)
    images_per_update: int = 0
    learning_rates: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    def images_per_second(self, skip: int = 2) -> float:
        """Training throughput of this call, images/s, leaving out the first ``skip`` (warm-up) updates."""
        times = self.step_times
        if len(times) <= skip + 1:
            return len(times) * self.images_per_update / times[-1] if times else 0.0
        return (len(times) - 1 - skip) * self.images_per_update / (times[-1] - times[skip])


# ---- data -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Record:
    """One training pair: the image (file path or encoded bytes) and its caption."""

    image: Path | bytes
    caption: str
    key: str


def _derive_seed(*keys: int) -> int:
    """A 63-bit seed that is a pure function of the integer ``keys``."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0] >> 1)


class FinetuneDataset(Dataset):
    """Validated image–caption pairs with the training transforms.

    Item ``dataset[i]`` or ``dataset[(i, sample_seed)]`` → ``{"pixel_values": float32 tensor (3, R, R)
    in [-1, 1], "caption": str}`` with R = ``resolution``: the image is resized (bilinear) so its short
    side is R, cropped to R×R (center, or random from ``sample_seed``) and, with ``random_flip``,
    mirrored with probability ½ (from ``sample_seed``). The training sampler passes a seed per (epoch,
    index), so transforms are reproducible; a plain int index uses the index as seed.
    """

    def __init__(self, records: Sequence[_Record], source: str, resolution: int = 256, center_crop: bool = True,
                 random_flip: bool = True):
        self.records = list(records)
        self.source = source
        self.resolution = int(resolution)
        self.center_crop = bool(center_crop)
        self.random_flip = bool(random_flip)

    def with_transforms(self, resolution: int, center_crop: bool, random_flip: bool) -> FinetuneDataset:
        """The same records with other transform settings."""
        return FinetuneDataset(self.records, self.source, resolution, center_crop, random_flip)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, sample_seed = key if isinstance(key, tuple) else (int(key), int(key))
        record = self.records[index]
        image = Image.open(io.BytesIO(record.image) if isinstance(record.image, bytes) else record.image)
        with image:
            pixels = self.transform(image, np.random.default_rng(sample_seed))
        return {"pixel_values": pixels, "caption": record.caption}

    def transform(self, image: Image.Image, rng: np.random.Generator) -> torch.Tensor:
        """PIL image → float32 tensor (3, R, R) in [-1, 1] (resize, crop, optional flip)."""
        image = image.convert("RGB")
        r = self.resolution
        w, h = image.size
        if min(w, h) != r:
            scale = r / min(w, h)
            image = image.resize((max(r, round(w * scale)), max(r, round(h * scale))), Image.Resampling.BILINEAR)
            w, h = image.size
        if self.center_crop:
            left, top = int(round((w - r) / 2.0)), int(round((h - r) / 2.0))
        else:
            left, top = int(rng.integers(0, w - r + 1)), int(rng.integers(0, h - r + 1))
        if (w, h) != (r, r):
            image = image.crop((left, top, left + r, top + r))
        if self.random_flip and rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
        return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_finetune_dataset(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    resolution: int = 256,
    center_crop: bool = True,
    random_flip: bool = True,
    image_column: str = "image",
    caption_column: str = "text",
) -> FinetuneDataset:
    """Read and validate a fine-tuning dataset; nothing is trained on a dataset that fails here.

    ``path``: an imagefolder root holding ``metadata.jsonl`` (or ``train/metadata.jsonl``), the
    ``metadata.jsonl`` file itself, or webdataset shards (a folder of ``.tar`` files, one ``.tar``, a
    brace pattern or a list of those). Imagefolder checks: every line is a JSON object with the image
    key (``file_name``, see :class:`FinetuneConfig` for ``image_column``) and a non-empty caption, and
    every image exists and opens. Problems raise :class:`DataLayoutError` naming the metadata file,
    the line number and the image. Webdataset captions must be non-empty; shard samples are kept as
    encoded bytes in memory (about the size of the shards).
    """
    kwargs = {"resolution": resolution, "center_crop": center_crop, "random_flip": random_flip}
    if isinstance(path, (str, os.PathLike)):
        p = Path(path).expanduser()
        if p.is_file() and p.suffix == ".jsonl":
            return _load_imagefolder(p, image_column, caption_column, **kwargs)
        if p.is_dir():
            for candidate in (p / "metadata.jsonl", p / "train" / "metadata.jsonl"):
                if candidate.is_file():
                    return _load_imagefolder(candidate, image_column, caption_column, **kwargs)
            if not any(p.glob("*.tar")):
                raise layout_error(f"no metadata.jsonl (imagefolder) and no .tar shards (webdataset) in {p}",
                                   IMAGEFOLDER_LAYOUT + "or" + WEBDATASET_LAYOUT)
    return _load_webdataset(path, **kwargs)


def _load_imagefolder(metadata: Path, image_column: str, caption_column: str, **kwargs: Any) -> FinetuneDataset:
    """Records of an HF imagefolder, every line and image checked; raise on the first problems."""
    metadata = metadata.resolve()
    folder = metadata.parent
    image_key = "file_name" if image_column == "image" else image_column
    records: list[_Record] = []
    problems: list[str] = []
    with metadata.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            problem, record = _check_line(line, line_no, folder, image_key, caption_column)
            if problem:
                problems.append(f"{metadata} line {line_no}: {problem}")
            else:
                records.append(record)
    if problems:
        more = f"\n  ... and {len(problems) - 5} more problem(s)" if len(problems) > 5 else ""
        raise layout_error(f"{len(problems)} bad line(s) in {metadata}:\n  " + "\n  ".join(problems[:5]) + more,
                           IMAGEFOLDER_LAYOUT)
    if not records:
        raise layout_error(f"{metadata} lists no images", IMAGEFOLDER_LAYOUT)
    return FinetuneDataset(records, str(metadata), **kwargs)


def _check_line(line: str, line_no: int, folder: Path, image_key: str,
                caption_column: str) -> tuple[str | None, _Record | None]:
    """(problem, None) or (None, record) for one ``metadata.jsonl`` line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})", None
    if not isinstance(row, dict):
        return "not a JSON object", None
    name, caption = row.get(image_key), row.get(caption_column)
    if not isinstance(name, str) or not name:
        return f"no {image_key!r} (image path)", None
    if not isinstance(caption, str) or not caption.strip():
        return f"empty or missing caption {caption_column!r} for image {name!r}", None
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        return f"image path {name!r} must be relative to {folder} and stay inside it", None
    image_path = folder / rel
    if not image_path.is_file():
        return f"missing image {name!r} (looked for {image_path})", None
    try:
        with Image.open(image_path) as im:
            im.size  # noqa: B018 - reads the header only
    except (OSError, Image.DecompressionBombError) as exc:
        return f"image {name!r} cannot be read ({exc})", None
    return None, _Record(image_path, caption, key=name)


def _load_webdataset(shards: str | os.PathLike | Sequence[str | os.PathLike], **kwargs: Any) -> FinetuneDataset:
    """Records of webdataset shards (encoded image bytes + caption)."""
    records = []
    for sample in iter_cc3m(shards, decode=False):
        if not sample.caption.strip():
            raise layout_error(f"sample {sample.key!r} of {shards} has an empty caption (.txt)", WEBDATASET_LAYOUT)
        records.append(_Record(sample.image, sample.caption, key=sample.key))
    if not records:
        raise layout_error(f"no readable samples in {shards}", WEBDATASET_LAYOUT)
    return FinetuneDataset(records, str(shards), **kwargs)


class _EpochSampler(Sampler):
    """Yields ``(index, sample_seed)`` in a permutation seeded by ``(seed, epoch)``; call :meth:`set_epoch`."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(_derive_seed(self.seed, 1, self.epoch)))
        for i in order.tolist():
            yield i, _derive_seed(self.seed, 2, self.epoch, i)

    def __len__(self) -> int:
        return self.n


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"pixel_values": torch.stack([it["pixel_values"] for it in items]),
            "captions": [it["caption"] for it in items]}


# ---- checkpoints ------------------------------------------------------------------------------------

def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Finished ``checkpoint-{step}`` folders of ``output_dir``, by increasing step."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def _checkpoint_info(path: Path) -> dict[str, Any]:
    """The ``biaslib_checkpoint.json`` of a checkpoint folder ({} for checkpoints written by other tools)."""
    marker = path / "biaslib_checkpoint.json"
    return json.loads(marker.read_text()) if marker.is_file() else {}


def _checkpoint_step(path: Path) -> int:
    match = _CHECKPOINT_RE.match(path.name)
    if match:
        return int(match.group(1))
    if "global_step" in (info := _checkpoint_info(path)):
        return int(info["global_step"])
    raise BiaslibError(f"cannot tell the step of checkpoint {path}: name it checkpoint-<step>")


def _resolve_resume(output_dir: Path, value: str | None) -> Path | None:
    """The checkpoint folder to restore, or None for a fresh start."""
    if value is None:
        return None
    if value == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            log.info("no checkpoint in %s; starting a new run", output_dir)
        return found[-1] if found else None
    for candidate in (Path(value), output_dir / value):
        if candidate.is_dir():
            return candidate
    raise DataLayoutError(f"resume_from_checkpoint {value!r} is neither 'latest' nor a checkpoint folder "
                          f"(looked in {output_dir})")


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root`` and the folder entries to disk."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_checkpoint(accelerator: Any, output_dir: Path, step: int, limit: int | None, ema: Any,
                     info: dict[str, Any]) -> Path:
    """Prune to ``limit - 1`` old checkpoints, then write ``checkpoint-{step}`` via a temporary folder."""
    existing = list_checkpoints(output_dir)
    if limit is not None and len(existing) >= limit:
        for old in existing[: len(existing) - limit + 1]:
            shutil.rmtree(old)
    tmp = output_dir / f"{_TMP_PREFIX}{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    accelerator.save_state(str(tmp))
    if ema is not None:
        ema.save_pretrained(str(tmp / "unet_ema"))
    write_json(tmp / "biaslib_checkpoint.json", {"global_step": step, **info})
    _fsync_tree(tmp)
    final = output_dir / f"{CHECKPOINT_PREFIX}{step}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def _load_ema_state(path: Path, model_class: Any) -> dict[str, Any]:
    """``EMAModel.state_dict()`` from the folder ``EMAModel.save_pretrained`` wrote (weights = shadow params)."""
    raw = model_class.load_config(str(path))
    keys = ("decay", "min_decay", "optimization_step", "update_after_step", "use_ema_warmup", "inv_gamma", "power")
    saved = model_class.from_pretrained(str(path))
    return {**{k: raw[k] for k in keys}, "shadow_params": [p.detach() for p in saved.parameters()]}


# ---- training ---------------------------------------------------------------------------------------

def resolve_mixed_precision(requested: str) -> str:
    """accelerate's ``mixed_precision`` for a configured one (see :class:`FinetuneConfig`)."""
    if torch.cuda.is_available():
        return "fp16" if requested == "auto" else requested
    cpu = "bf16" if hardware.native_bf16() else "no"
    if requested == "fp16":
        warnings.warn(f"mixed_precision='fp16' needs a CUDA device; using {cpu!r} on this machine", stacklevel=3)
        return cpu
    return cpu if requested == "auto" else requested


def _check_pipeline(pipeline: Any) -> None:
    missing = [name for name in ("unet", "text_encoder", "tokenizer", "scheduler")
               if getattr(pipeline, name, None) is None]
    if missing:
        raise ValueError(f"finetune needs a text-to-image pipeline with unet, text_encoder, tokenizer and "
                         f"scheduler; {type(pipeline).__name__} lacks {', '.join(missing)}")


def _as_dataset(dataset: FinetuneDataset | str | os.PathLike | Sequence, config: FinetuneConfig) -> FinetuneDataset:
    """The dataset with the config's transforms (loading and validating a path first)."""
    if not isinstance(dataset, FinetuneDataset):
        dataset = load_finetune_dataset(dataset, image_column=config.image_column,
                                        caption_column=config.caption_column)
    return dataset.with_transforms(config.resolution, config.center_crop, config.random_flip)


def finetune(
    pipeline: Any,
    dataset: FinetuneDataset | str | os.PathLike | Sequence[str | os.PathLike],
    config: FinetuneConfig,
    *,
    max_steps_override: int | None = None,
    stop_after_steps: int | None = None,
) -> FinetuneResult:
    """Fine-tune ``pipeline`` in place on ``dataset`` and save it to ``config.output_dir``.

    Trains the UNet (and the text encoder with ``train_text_encoder``) with the MSE between the
    UNet's output and the noise (``epsilon``), the velocity (``v_prediction``) or the clean input
    (``sample``), as the pipeline scheduler's ``prediction_type`` says; the noise schedule is a
    :class:`~diffusers.DDPMScheduler` built from the pipeline scheduler's config. Frozen modules stay in
    their dtype and run under the accelerator's autocast, so no weight is ever rounded.
    ``max_steps_override`` replaces the step budget of ``config``; ``stop_after_steps`` ends the loop
    after that many updates without saving the pipeline (a simulated interruption, for tests). At the
    end the trained pipeline (with EMA weights copied in when ``use_ema``) is written with
    ``save_pretrained(output_dir)``, then ``biaslib_finetune.json`` (config, steps, seconds) is
    written last as the completion marker.
    """
    start = time.perf_counter()
    _check_pipeline(pipeline)
    data = _as_dataset(dataset, config)
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out, f"finetune-rank{os.environ.get('RANK', '0')}"):  # one writer per output (per process rank)
        return _finetune_locked(pipeline, data, config, out, start, max_steps_override, stop_after_steps)


def _finetune_locked(pipeline: Any, data: FinetuneDataset, config: FinetuneConfig, out: Path, start: float,
                     max_steps_override: int | None, stop_after_steps: int | None) -> FinetuneResult:
    """:func:`finetune`'s work once it holds the output folder's lock."""
    resume_path = _resolve_resume(out, config.resume_from_checkpoint)
    accelerator = _new_accelerator(config, out)

    unet, text_encoder, vae = pipeline.unet, pipeline.text_encoder, getattr(pipeline, "vae", None)
    noise_scheduler = _noise_scheduler(pipeline)
    prediction_type = noise_scheduler.config.prediction_type
    params, ema = _set_trainable(unet, text_encoder, vae, config)

    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                                  weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    loader = DataLoader(data, batch_size=config.train_batch_size, sampler=_EpochSampler(len(data), config.seed),
                        collate_fn=_collate, num_workers=config.dataloader_num_workers)
    updates_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
    max_steps = max_steps_override or config.max_train_steps or config.num_train_epochs * updates_per_epoch
    lr_scheduler = make_lr_scheduler(optimizer, config, max_steps, accelerator.num_processes)
    unet, text_encoder, optimizer, loader, lr_scheduler = _prepare(accelerator, config, unet, text_encoder,
                                                                   optimizer, loader, lr_scheduler, vae, ema)
    run = _Run(accelerator=accelerator, config=config, out=out, max_steps=max_steps,
               updates_per_epoch=updates_per_epoch, optimizer=optimizer, loader=loader, lr_scheduler=lr_scheduler,
               params=params, ema=ema, info={"max_steps": max_steps, "config": config.to_dict()},
               step_kwargs={"tokenizer": pipeline.tokenizer, "text_encoder": text_encoder, "vae": vae, "unet": unet,
                            "noise_scheduler": noise_scheduler, "prediction_type": prediction_type})
    if resume_path is not None:
        run.restore(resume_path, type(pipeline.unet))
    run.train(stop_after_steps)

    finished = run.global_step >= max_steps
    accelerator.wait_for_everyone()
    pipeline.unet, pipeline.text_encoder = _unwrap_trained(accelerator, unet, text_encoder, config,
                                                           ema if finished else None)
    result = FinetuneResult(
        global_step=run.global_step, max_steps=max_steps, losses=run.losses, seconds=time.perf_counter() - start,
        output_dir=out, finished=finished, resumed_from=resume_path, step_times=run.step_times,
        images_per_update=config.train_batch_size * config.gradient_accumulation_steps * accelerator.num_processes,
        learning_rates=run.learning_rates, train_seconds=run.train_seconds(),
    )
    if finished and accelerator.is_main_process:
        pipeline.save_pretrained(out)
        write_json(out / FINETUNE_MARKER, {
            **run.info, "global_step": run.global_step, "seconds_this_call": result.seconds,
            "train_seconds": result.train_seconds,
            "resumed_from": str(resume_path) if resume_path else None, "dataset": data.source,
            "n_images": len(data), "images_per_s": result.images_per_second(),
        })
    accelerator.end_training()
    return result


def _noise_scheduler(pipeline: Any) -> Any:
    """The training noise schedule: a ``DDPMScheduler`` from the pipeline scheduler's config, whose
    ``prediction_type`` must be ``epsilon``, ``v_prediction`` or ``sample``."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
    if scheduler.config.prediction_type not in ("epsilon", "v_prediction", "sample"):
        raise ValueError(f"unknown prediction_type {scheduler.config.prediction_type!r} in the pipeline's "
                         "scheduler config")
    return scheduler


def _prepare(accelerator: Any, config: FinetuneConfig, unet: Any, text_encoder: Any, optimizer: Any, loader: Any,
             lr_scheduler: Any, vae: Any, ema: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(unet, text_encoder, optimizer, loader, lr_scheduler) wrapped by ``accelerator`` (the text encoder only
    when trained); the frozen text encoder, the VAE and the EMA copy moved to its device."""
    if config.train_text_encoder:
        unet, text_encoder, optimizer, loader, lr_scheduler = accelerator.prepare(
            unet, text_encoder, optimizer, loader, lr_scheduler)
    else:
        unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)
        text_encoder.to(accelerator.device)
    for module in (vae, ema):
        if module is not None:
            module.to(accelerator.device)
    return unet, text_encoder, optimizer, loader, lr_scheduler


def _new_accelerator(config: FinetuneConfig, out: Path) -> Any:
    """An ``accelerate.Accelerator`` for one run into ``out`` (the precision and accumulation of an earlier
    run in this process forgotten, the process group of a distributed launch kept); TF32 on a GPU when
    allowed; stale temporary checkpoint folders of an interrupted save removed."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import ProjectConfiguration

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        project_config=ProjectConfiguration(project_dir=str(out), automatic_checkpoint_naming=False),
    )
    if config.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if accelerator.is_main_process:
        for stale in out.glob(f"{_TMP_PREFIX}*"):
            shutil.rmtree(stale)
    return accelerator


def _set_trainable(unet: Any, text_encoder: Any, vae: Any, config: FinetuneConfig) -> tuple[list, Any]:
    """Switch the trained modules (the UNet, the text encoder with ``train_text_encoder``) to training and the
    rest to frozen evaluation; returns the trained parameters and the UNet's EMA (None without ``use_ema``)."""
    unet.requires_grad_(True).train()
    text_encoder.requires_grad_(config.train_text_encoder).train(config.train_text_encoder)
    if vae is not None:
        vae.requires_grad_(False).eval()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        if config.train_text_encoder:
            text_encoder.gradient_checkpointing_enable()
    params = list(unet.parameters()) + (list(text_encoder.parameters()) if config.train_text_encoder else [])
    if not config.use_ema:
        return params, None
    from diffusers.training_utils import EMAModel

    return params, EMAModel(unet.parameters(), decay=config.ema_decay, model_cls=type(unet), model_config=unet.config)


def _unwrap_trained(accelerator: Any, unet: Any, text_encoder: Any, config: FinetuneConfig,
                    ema: Any) -> tuple[Any, Any]:
    """The trained (UNet, text encoder) unwrapped from the accelerator, gradient checkpointing off, the EMA
    weights copied in when ``ema`` is given, both in evaluation mode."""
    unet = accelerator.unwrap_model(unet, keep_fp32_wrapper=False)
    if config.gradient_checkpointing:
        unet.disable_gradient_checkpointing()
    if config.train_text_encoder:
        text_encoder = accelerator.unwrap_model(text_encoder, keep_fp32_wrapper=False)
        if config.gradient_checkpointing:
            text_encoder.gradient_checkpointing_disable()
    if ema is not None:
        ema.copy_to(unet.parameters())
    return unet.eval(), text_encoder.eval()


@dataclass
class _Run:
    """The training loop of one :func:`finetune` call and what it records (updates, losses, times)."""

    accelerator: Any
    config: FinetuneConfig
    out: Path
    max_steps: int
    updates_per_epoch: int
    optimizer: Any
    loader: Any
    lr_scheduler: Any
    params: list
    ema: Any
    info: dict[str, Any]
    step_kwargs: dict[str, Any]
    global_step: int = 0
    prior_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)

    def restore(self, checkpoint: Path, unet_class: type) -> None:
        """Continue from ``checkpoint``: accelerator state, update count, training seconds so far, EMA."""
        self.accelerator.print(f"resuming from {checkpoint}")
        self.accelerator.load_state(str(checkpoint))
        self.global_step = _checkpoint_step(checkpoint)
        self.prior_seconds = float(_checkpoint_info(checkpoint).get("train_seconds", 0.0))
        if self.ema is not None:
            self.ema.load_state_dict(_load_ema_state(checkpoint / "unet_ema", unet_class))
            self.ema.to(self.accelerator.device)

    def train_seconds(self) -> float:
        """Training-loop seconds of the whole run up to ``global_step`` (resumed calls included)."""
        return self.prior_seconds + (self.step_times[-1] if self.step_times else 0.0)

    def train(self, stop_after_steps: int | None) -> None:
        """Update until ``max_steps`` (or ``stop_after_steps``), resuming mid-epoch after a restore (the batches
        already used are skipped), checkpointing every ``checkpointing_steps``."""
        from tqdm.auto import tqdm

        acc, config = self.accelerator, self.config
        first_epoch = self.global_step // self.updates_per_epoch
        skip_batches = (self.global_step % self.updates_per_epoch) * config.gradient_accumulation_steps
        progress = tqdm(total=self.max_steps, initial=self.global_step, desc="finetune",
                        disable=not (config.progress and acc.is_local_main_process))
        loop_start = time.perf_counter()
        done = self.global_step >= self.max_steps
        for epoch in range(first_epoch, math.ceil(self.max_steps / self.updates_per_epoch)):
            if done:
                break
            self.loader.set_epoch(epoch)
            active, skip = self.loader, skip_batches if epoch == first_epoch else 0
            if skip:
                active = acc.skip_first_batches(self.loader, skip)
                active.set_epoch(epoch)
            accumulated = 0.0
            for batch_index, batch in enumerate(active, start=skip):
                lr_now = self.lr_scheduler.get_last_lr()[0]
                accumulated += self._accumulate(batch, _derive_seed(config.seed, 3, epoch, batch_index,
                                                                    acc.process_index))
                if not acc.sync_gradients:
                    continue
                self._record_update(accumulated, lr_now, time.perf_counter() - loop_start, progress)
                accumulated = 0.0
                if self.global_step >= self.max_steps or (stop_after_steps is not None
                                                          and self.global_step >= stop_after_steps):
                    done = True
                    break
        progress.close()

    def _accumulate(self, batch: dict[str, Any], seed: int) -> float:
        """Forward, backward and (at an accumulation boundary) one optimizer update on ``batch``; returns the
        batch's loss (mean over processes) divided by the accumulation steps."""
        acc, config = self.accelerator, self.config
        trained = (self.step_kwargs["unet"], self.step_kwargs["text_encoder"]) if config.train_text_encoder else (
            self.step_kwargs["unet"],)
        with acc.accumulate(*trained):
            loss = _training_loss(batch, torch.Generator().manual_seed(seed), acc, config, **self.step_kwargs)
            value = acc.gather(loss.detach().reshape(1)).mean().item() / config.gradient_accumulation_steps
            acc.backward(loss)
            if acc.sync_gradients and config.max_grad_norm:
                acc.clip_grad_norm_(self.params, config.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return value

    def _record_update(self, loss: float, lr: float, elapsed: float, progress: Any) -> None:
        """Count one finished update: EMA step, records, progress bar, a checkpoint when one is due."""
        if self.ema is not None:
            self.ema.step(self.step_kwargs["unet"].parameters())
        self.global_step += 1
        self.losses.append(loss)
        self.learning_rates.append(lr)
        self.step_times.append(elapsed)
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", steps_per_s=f"{len(self.step_times) / elapsed:.2f}")
        if self.global_step % self.config.checkpointing_steps == 0 and self.accelerator.is_main_process:
            self.info["train_seconds"] = self.train_seconds()
            _save_checkpoint(self.accelerator, self.out, self.global_step, self.config.checkpoints_total_limit,
                             self.ema, self.info)


def make_lr_scheduler(optimizer: torch.optim.Optimizer, config: FinetuneConfig, max_steps: int,
                      num_processes: int = 1) -> torch.optim.lr_scheduler.LRScheduler:
    """diffusers' ``get_scheduler`` for ``config`` over ``max_steps`` updates.

    Warm-up and total steps are multiplied by ``num_processes`` because accelerate steps a prepared
    scheduler once per process at every update (diffusers' training scripts do the same). The
    ``polynomial`` schedule decays from ``learning_rate`` to 1e-7 as ``(1 - progress) ** lr_power``.
    """
    from diffusers.optimization import get_scheduler

    return get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps * num_processes,
                         num_training_steps=max_steps * num_processes, power=config.lr_power)


def _training_loss(batch: dict[str, Any], generator: torch.Generator, accelerator: Any, config: FinetuneConfig, *,
                   tokenizer: Any, text_encoder: Any, vae: Any, unet: Any, noise_scheduler: Any,
                   prediction_type: str) -> torch.Tensor:
    """Diffusion MSE loss of one micro-batch; all randomness is drawn from ``generator`` in a fixed order."""
    device = accelerator.device
    pixels = batch["pixel_values"].to(device)
    captions = list(batch["captions"])
    b = pixels.shape[0]
    with torch.no_grad():
        if vae is not None:
            with accelerator.autocast():
                latents = vae.encode(pixels.to(vae.dtype)).latent_dist.sample(generator=generator)
            latents = latents.float() * vae.config.scaling_factor
        else:
            latents = pixels
    noise = torch.randn(latents.shape, generator=generator)
    if config.noise_offset:
        noise = noise + config.noise_offset * torch.randn((b, latents.shape[1], 1, 1), generator=generator)
    noise = noise.to(device, latents.dtype)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (b,), generator=generator).to(device)
    if config.caption_dropout:
        drop = (torch.rand(b, generator=generator) < config.caption_dropout).tolist()
        captions = ["" if d else c for c, d in zip(captions, drop)]
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)

    tokens = tokenizer(captions, max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                       return_tensors="pt")
    # no return_dict=False: AltDiffusion's RobertaSeriesModelWithTransformation then breaks on its own tuple;
    # element 0 of the output is the last hidden state (CLIP) or the projection state (AltDiffusion)
    text_kwargs = {}
    if getattr(text_encoder.config, "use_attention_mask", False):
        text_kwargs["attention_mask"] = tokens.attention_mask.to(device)
    if config.train_text_encoder:
        hidden = text_encoder(tokens.input_ids.to(device), **text_kwargs)[0]
    else:
        with torch.no_grad(), accelerator.autocast():
            hidden = text_encoder(tokens.input_ids.to(device), **text_kwargs)[0]

    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = latents
    prediction = unet(noisy, timesteps, hidden, return_dict=False)[0]
    if config.snr_gamma is None:
        return F.mse_loss(prediction.float(), target.float(), reduction="mean")
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").flatten(1).mean(1)
    return (per_sample * min_snr_weights(noise_scheduler, timesteps, config.snr_gamma, prediction_type)).mean()


def min_snr_weights(noise_scheduler: Any, timesteps: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Min-SNR-γ loss weights ``(B,)`` for ``timesteps`` ``(B,)``: min(SNR, γ) / SNR (epsilon), / (SNR + 1)
    (v_prediction) or min(SNR, γ) (sample), with SNR(t) = ᾱ_t / (1 − ᾱ_t) of the noise schedule."""
    alpha_bar = noise_scheduler.alphas_cumprod.to(timesteps.device, torch.float64)[timesteps]
    snr = alpha_bar / (1.0 - alpha_bar)
    clipped = snr.clamp(max=gamma)
    denominator = {"epsilon": snr, "v_prediction": snr + 1.0, "sample": torch.ones_like(snr)}[prediction_type]
    return (clipped / denominator).float()


__all__ = [
    "FINETUNE_MARKER",
    "LR_SCHEDULERS",
    "MIXED_PRECISION",
    "FinetuneConfig",
    "FinetuneDataset",
    "FinetuneResult",
    "finetune",
    "list_checkpoints",
    "load_finetune_dataset",
    "make_lr_scheduler",
]
