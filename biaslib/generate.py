"""Text-to-image generation over a caption table → webdataset shards (batched, resumable, multi-process).

One image per caption id. The seed of id ``k`` is ``id_seed(seed, k)``, a keyed hash, and every image
gets its own ``torch.Generator``: an image depends neither on its batch, nor on the order, nor on the
number of processes. Output: ``<out>/<rank:02d>-<shard:05d>.tar`` with ``<key>.<jpg|webp|png>``,
``<key>.txt`` (the prompt) and ``<key>.json`` (key, prompt, seed, model, scheduler, steps, guidance,
size, …); ``<name>_stats.json`` is written after its tar and marks the shard finished (img2dataset's
convention). Tars are written under a temporary name and renamed, so a half-written shard is never
taken for a finished one; a rerun skips finished shards and rebuilds unfinished ones.

Rank ``r`` of ``W`` processes takes rows ``i`` with ``i % W == r`` of the caption table
(``torchrun``/``accelerate launch`` set ``RANK`` and ``WORLD_SIZE``); :func:`verify` checks that the
finished shards of all ranks hold every id exactly once.

Models: the world's :class:`~biaslib.world.simulator.SimulatedGenerator` (``model: simulator``) or any
diffusers text-to-image pipeline folder (``save_pretrained`` layout): Stable Diffusion, the world's
tiny pipeline, or AltDiffusion (built from its parts, as its pipeline class does not reload as is).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from biaslib import __version__
from biaslib.config import GenerateConfig, ImageFormat, Params
from biaslib.data.cc3m import ReadStats, iter_cc3m
from biaslib.data.generated import generated_keys, load_generated_images, read_generated
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.io import TarShardWriter, file_sha256, remove_stale_temporaries, run_lock, write_json
from biaslib.layout import RunLayout

log = logging.getLogger(__name__)


def id_seed(seed: int, key: str) -> int:
    """The per-id seed: a 63-bit keyed hash of (global seed, id)."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def shard_name(rank: int, shard: int) -> str:
    """File stem of shard ``shard`` of rank ``rank``: ``RR-SSSSS``."""
    return f"{rank:02d}-{shard:05d}"


# ---- captions -------------------------------------------------------------------------------------

@dataclass
class CaptionCheck:
    """Captions after validation: the usable rows and the ids skipped for empty text."""

    table: pd.DataFrame
    skipped_empty: list[str]


def check_captions(captions: pd.DataFrame, key_column: str = "key", text_column: str = "caption") -> CaptionCheck:
    """Validate a caption table: string ids, unique (duplicates are an error), empty texts skipped.

    Returns the usable rows with columns ``key`` and ``caption`` first and any other columns kept.
    """
    missing = [c for c in (key_column, text_column) if c not in captions.columns]
    if missing:
        raise DataLayoutError(f"caption table lacks column(s) {missing}; expected columns "
                              f"'{key_column}' (unique id) and '{text_column}' (prompt); got {list(captions.columns)}")
    table = captions.rename(columns={key_column: "key", text_column: "caption"})
    table = table[["key", "caption", *[c for c in table.columns if c not in ("key", "caption")]]]
    table = table.assign(key=table["key"].astype(str))
    dup = table["key"][table["key"].duplicated()].unique()
    if len(dup):
        raise BiaslibError(f"caption table has {len(dup)} duplicate id(s), e.g. {list(dup[:5])}; ids must be unique")
    text = table["caption"].fillna("").astype(str).str.strip()
    empty = text == ""
    return CaptionCheck(table.loc[~empty].assign(caption=text[~empty]).reset_index(drop=True),
                        list(table.loc[empty, "key"]))


def read_captions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a caption table: ``.parquet``/``.csv``/``.tsv`` with ``key`` and ``caption`` columns, or a
    CC3M shard folder (its ``captions.parquet``), or the original study's ``<id>#<caption>`` text file."""
    path = Path(path)
    if path.is_dir():
        path = path / "captions.parquet"
    if not path.is_file():
        raise DataLayoutError(f"caption table not found: {path} (expected a .parquet/.csv/.tsv with columns key, "
                              "caption, a CC3M export folder holding captions.parquet, or an <id>#<caption> .txt)")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    rows = [line.split("#", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [i + 1 for i, r in enumerate(rows) if len(r) != 2]
    if bad:
        raise DataLayoutError(f"{path}: lines {bad[:5]} are not '<id>#<caption>'")
    return pd.DataFrame(rows, columns=["key", "caption"])


# ---- pipelines ------------------------------------------------------------------------------------

def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.float16 if device.startswith("cuda") else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]


def load_pipeline(config: GenerateConfig, world=None):
    """Build the generator named by ``config.model`` (see module docstring).

    A folder must hold a diffusers ``model_index.json``; anything else is one clear error.
    """
    if config.model == "simulator":
        from biaslib.world import World
        from biaslib.world.simulator import SimulatedGenerator

        return SimulatedGenerator(world or World(), config.amplification, config.language_shift, config.output_size,
                                  amplified=config.amplified)
    path = Path(config.model)
    index = path / "model_index.json"
    if not index.is_file():
        raise DataLayoutError(f"no diffusers pipeline at {path}: expected a folder with model_index.json "
                              "(as written by save_pretrained: model_index.json, unet/, text_encoder/, tokenizer/, "
                              "scheduler/[, vae/]) or model: simulator")
    import torch

    device = resolve_device(config.device)
    dtype = _torch_dtype(config.dtype, device)
    load_dtype = torch.float32 if dtype == torch.bfloat16 and device == "cpu" else dtype
    class_name = json.loads(index.read_text())["_class_name"]
    if class_name == "WorldDiffusionPipeline":
        from biaslib.world.tiny_pipeline import WorldDiffusionPipeline

        pipe = WorldDiffusionPipeline.from_pretrained(path, torch_dtype=load_dtype)
    elif class_name == "AltDiffusionPipeline":
        pipe = _alt_diffusion_from_parts(path, load_dtype)
    else:
        from diffusers import DiffusionPipeline

        extra = {} if config.safety_checker else {"safety_checker": None, "requires_safety_checker": False}
        has_checker = "safety_checker" in json.loads(index.read_text())
        pipe = DiffusionPipeline.from_pretrained(path, torch_dtype=load_dtype, **(extra if has_checker else {}))
    if config.scheduler:
        import diffusers

        cls = getattr(diffusers, config.scheduler, None)
        if cls is None:
            raise BiaslibError(f"unknown scheduler {config.scheduler!r}; use a diffusers scheduler class name "
                               "such as DPMSolverMultistepScheduler, PNDMScheduler, DDIMScheduler")
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe = pipe.to(device)
    # NHWC convolutions (oneDNN on CPUs, cuDNN on GPUs): ≈ 15% faster per image for the tiny pipeline on CPU
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.set_progress_bar_config(disable=True)
    if device.startswith("cuda") and config.compile:
        pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead", fullgraph=True)
    return pipe


def _alt_diffusion_from_parts(path: Path, dtype):
    """AltDiffusion (XLM-R text encoder) assembled from its saved components."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.pipelines.deprecated.alt_diffusion import AltDiffusionPipeline
    from diffusers.pipelines.deprecated.alt_diffusion.modeling_roberta_series import (
        RobertaSeriesModelWithTransformation,
    )
    from diffusers.schedulers import DPMSolverMultistepScheduler
    from transformers import XLMRobertaTokenizer

    return AltDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(path / "vae", torch_dtype=dtype),
        text_encoder=RobertaSeriesModelWithTransformation.from_pretrained(path / "text_encoder", torch_dtype=dtype),
        tokenizer=XLMRobertaTokenizer.from_pretrained(path / "tokenizer"),
        unet=UNet2DConditionModel.from_pretrained(path / "unet", torch_dtype=dtype),
        scheduler=DPMSolverMultistepScheduler.from_pretrained(path / "scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _model_info(pipe, config: GenerateConfig) -> dict[str, Any]:
    """Per-sample provenance of the generator."""
    if config.model == "simulator":
        return {"model": config.model, **{f"simulator_{k}": v for k, v in pipe.config.items()}}
    return {"model": str(config.model), "model_class": type(pipe).__name__,
            "scheduler": type(pipe.scheduler).__name__}


def _call(pipe, config: GenerateConfig, prompts: list[str], seeds: list[int], languages: list[str] | None):
    """One batch → (images, per-image extra metadata)."""
    import torch

    if config.model == "simulator":
        out = pipe(prompts, seeds=seeds, language=languages or "english")
        extras = out.attributes.drop(columns=["prompt", "seed"]).to_dict("records")
        return out.images, [{"simulated": {k: _plain(v) for k, v in e.items()}} for e in extras]
    device = pipe.device
    gens = [torch.Generator(device="cpu" if device.type == "mps" else device).manual_seed(s) for s in seeds]
    kwargs: dict[str, Any] = {"num_inference_steps": config.steps, "guidance_scale": config.guidance}
    if config.resolution:
        kwargs.update(height=config.resolution, width=config.resolution)
    if config.negative_prompt:
        kwargs["negative_prompt"] = [config.negative_prompt] * len(prompts)
    autocast = config.dtype == "bf16" and device.type == "cpu"
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        images = pipe(prompt=prompts, generator=gens, output_type="pil", **kwargs).images
    return images, [{} for _ in images]


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def encode_image(image: Image.Image, image_format: ImageFormat, quality: int, size: int | None = None) -> bytes:
    """Encode a PIL image (optionally resized to ``size``×``size``, bicubic) as jpg/webp/png bytes."""
    if size and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if image_format == "jpg":
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
    elif image_format == "webp":
        image.save(buf, format="WEBP", quality=quality, method=4)
    elif image_format == "png":
        image.save(buf, format="PNG")
    else:
        raise ValueError(f"image_format must be jpg, webp or png, got {image_format!r}")
    return buf.getvalue()


# ---- the job --------------------------------------------------------------------------------------

@dataclass
class GenerateReport:
    """What one :func:`generate` call did: ``images`` generated, of which ``discarded`` belonged to the
    unfinished shard that ``max_items`` cut (rebuilt by the next call); ``kept`` = images − discarded."""

    out_dir: Path
    rank: int
    world_size: int
    shards_done: list[str] = field(default_factory=list)
    shards_skipped: list[str] = field(default_factory=list)
    images: int = 0
    discarded: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    skipped_empty: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return self.images - self.discarded

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0


def rank_from_env() -> tuple[int, int]:
    """(rank, world size) from ``RANK``/``WORLD_SIZE`` (torchrun, accelerate launch); (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _check_run_folder(out_dir: Path, config: GenerateConfig, overwrite: bool) -> None:
    """Refuse a folder whose record names other settings, unless ``overwrite`` (every rank checks)."""
    record = out_dir / "generate_config.json"
    if record.is_file() and not overwrite:
        previous = json.loads(record.read_text())
        if previous.get("digest") != config.digest():
            raise BiaslibError(f"{out_dir} holds images generated with other settings (digest {previous.get('digest')},"
                               f" now {config.digest()}); use another folder or pass --overwrite "
                               "(overwrite=True in Python)")


def _write_record(out_dir: Path, config: GenerateConfig) -> None:
    """The folder's settings record, written by rank 0 once its generator has loaded (a run that fails to
    start leaves no claim behind)."""
    record = out_dir / "generate_config.json"
    if record.is_file() and json.loads(record.read_text()).get("digest") == config.digest():
        return
    write_json(record, {"digest": config.digest(), "config": dataclasses.asdict(config),
                        "biaslib_version": __version__})


def _finished(out_dir: Path, name: str, config: GenerateConfig, overwrite: bool) -> bool:
    """True when shard ``name`` is finished with these settings and intact (its tar has the size and sha256 its
    stats recorded; stats written before sha256s were recorded: a complete tar with the recorded count). Stats of
    other settings are an error unless ``overwrite``; a missing or damaged tar is rebuilt (with a warning): every
    image is seeded by its id, so the rebuilt shard is byte-identical to the intact one."""
    stats_path = out_dir / f"{name}_stats.json"
    if not stats_path.is_file():
        return False
    stats = json.loads(stats_path.read_text())
    if stats.get("config_digest") != config.digest():
        if not overwrite:
            raise BiaslibError(f"{stats_path} was generated with other settings (digest {stats.get('config_digest')},"
                               f" now {config.digest()}); use another folder or pass --overwrite "
                               "(overwrite=True in Python)")
        return False
    tar = out_dir / f"{name}.tar"
    size = tar.stat().st_size if tar.is_file() else None
    problem = "missing" if size is None else _damage(tar, size, stats)
    if problem:
        log.warning("%s: %s, rebuilding the shard", tar, problem)
        stats_path.unlink()
        return False
    return True


def _damage(tar: Path, size: int, stats: dict[str, Any]) -> str | None:
    """What is wrong with a finished shard's tar against its stats, or None when it is intact."""
    if size != stats.get("bytes", size):
        return f"{size} bytes where its stats recorded {stats.get('bytes')}"
    if "sha256" in stats:
        return None if file_sha256(tar) == stats["sha256"] else "its sha256 differs from the one its stats recorded"
    read = ReadStats()
    samples = sum(1 for _ in iter_cc3m(tar, read, decode=False))
    if read.bad_shards or read.skipped or samples != stats.get("count", samples):
        return f"truncated or corrupt ({samples} readable samples, stats recorded {stats.get('count')})"
    return None


def _clear_rank(out_dir: Path, rank: int, expected: set[str], config: GenerateConfig) -> None:
    """With ``overwrite``: delete this rank's shards made with other settings, not part of this run, or
    unfinished (never another rank's files)."""
    for tar in out_dir.glob(f"{rank:02d}-*.tar"):
        stats = out_dir / f"{tar.stem}_stats.json"
        keep = tar.stem in expected and stats.is_file() and (
            json.loads(stats.read_text()).get("config_digest") == config.digest())
        if not keep:
            tar.unlink()
            stats.unlink(missing_ok=True)


def generate(
    captions: pd.DataFrame,
    out_dir: str | os.PathLike,
    config: GenerateConfig,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    pipeline=None,
    world=None,
    max_items: int | None = None,
    languages: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> GenerateReport:
    """Generate one image per caption into webdataset shards; resumable; one rank of a multi-process run.

    Parameters
    ----------
    captions : table with ``key`` (unique id) and ``caption`` columns.
    out_dir : shard folder; ``generate_config.json`` there records the settings (written once the generator
        has loaded), and a folder or shard made with other settings is refused unless ``overwrite``.
    config : :class:`GenerateConfig`.
    rank, world_size : this process's share; default from the environment (:func:`rank_from_env`). Each rank
        works only on its own shards (``RR-SSSSS``) under its own lock (:func:`biaslib.io.run_lock`): a
        second process of the same rank on the same folder is refused, and ranks never delete each other's
        files, so no barrier is needed.
    pipeline : an already loaded generator (else :func:`load_pipeline`).
    world : the world for ``model: simulator``.
    max_items : stop after this many images in this call (the unfinished shard is discarded and
        rebuilt by the next call), to split long runs or to test resuming.
    languages : per-caption language names (simulator's ``language_shift``), aligned with ``captions``;
        a ``language`` column of ``captions`` does the same.
    on_batch : called with the number of images after each batch (tests use it to interrupt).

    A finished shard is skipped when its stats match the settings and its tar has the recorded size; a
    missing or truncated one is rebuilt. Temporary files of killed runs of this rank are removed.
    """
    env_rank, env_size = rank_from_env()
    rank = env_rank if rank is None else rank
    world_size = env_size if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} not in [0, {world_size})")
    if languages is not None:
        captions = captions.assign(language=list(languages))
    checked = check_captions(captions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(out_dir, f"generate-rank{rank:02d}"):
        _check_run_folder(out_dir, config, overwrite)
        remove_stale_temporaries(out_dir, f"{rank:02d}-*")
        report = GenerateReport(out_dir, rank, world_size, skipped_empty=checked.skipped_empty)
        todo = _pending_shards(out_dir, checked.table.iloc[rank::world_size].reset_index(drop=True), config,
                               overwrite, report)
        if not todo:
            if rank == 0:
                _write_record(out_dir, config)
            return report
        pipe = pipeline if pipeline is not None else load_pipeline(config, world)
        if rank == 0:
            _write_record(out_dir, config)
        info = _model_info(pipe, config)
        total = sum(len(rows) for _, rows in todo)
        bar = tqdm(total=total, unit="img", desc=f"generate rank {rank}", disable=not progress)
        start_time = time.perf_counter()
        try:
            for name, rows in todo:
                if not _generate_shard(pipe, config, info, out_dir, name, rows, report, bar, max_items, on_batch):
                    report.stopped_early = True
                    break
        finally:
            bar.close()
            report.seconds = time.perf_counter() - start_time
        return report


def _pending_shards(out_dir: Path, mine: pd.DataFrame, config: GenerateConfig, overwrite: bool,
                    report: GenerateReport) -> list[tuple[str, pd.DataFrame]]:
    """This rank's shards still to write, as (name, captions); finished ones go to ``report.shards_skipped``.
    With ``overwrite`` the rank's shards are cleared first."""
    rank = report.rank
    if overwrite:
        _clear_rank(out_dir, rank, {shard_name(rank, i) for i in range(-(-len(mine) // config.shard_size))}, config)
    todo = []
    for shard, start in enumerate(range(0, len(mine), config.shard_size)):
        name = shard_name(rank, shard)
        if _finished(out_dir, name, config, overwrite):
            report.shards_skipped.append(name)
        else:
            todo.append((name, mine.iloc[start:start + config.shard_size]))
    return todo


class _StopShard(Exception):
    """Raised inside a shard writer to discard an unfinished shard."""


def _generate_shard(pipe, config, info, out_dir, name, rows, report, bar, max_items, on_batch) -> bool:
    """Write one shard; returns False when ``max_items`` stopped the run (shard discarded)."""
    shard_start = time.perf_counter()
    images_before = report.images
    keys, prompts = list(rows["key"]), list(rows["caption"])
    langs = list(rows["language"]) if "language" in rows.columns else None
    try:
        with TarShardWriter(out_dir / f"{name}.tar") as tar:
            for lo in range(0, len(keys), config.batch_size):
                if max_items is not None and report.images >= max_items:
                    raise _StopShard
                hi = min(len(keys), lo + config.batch_size)
                if max_items is not None:  # never more than max_items images in this call
                    hi = min(hi, lo + max_items - report.images)
                seeds = [id_seed(config.seed, k) for k in keys[lo:hi]]
                images, extras = _call(pipe, config, prompts[lo:hi], seeds, langs[lo:hi] if langs else None)
                for key, prompt, seed, image, extra in zip(keys[lo:hi], prompts[lo:hi], seeds, images, extras):
                    data = encode_image(image, config.image_format, config.quality, config.output_size)
                    record = {"key": key, "prompt": prompt, "seed": seed, **info, "steps": config.steps,
                              "guidance": config.guidance, "resolution": config.resolution,
                              "negative_prompt": config.negative_prompt, "width": image.width, "height": image.height,
                              "format": config.image_format, "biaslib_version": __version__, **extra}
                    tar.add_sample(key, {config.image_format: data, "txt": prompt.encode("utf-8"),
                                         "json": json.dumps(record, sort_keys=True).encode("utf-8")})
                report.images += hi - lo
                bar.update(hi - lo)
                if on_batch is not None:
                    on_batch(report.images)
    except _StopShard:
        report.discarded += report.images - images_before
        return False
    seconds = time.perf_counter() - shard_start
    write_json(out_dir / f"{name}_stats.json", {
        "count": len(keys), "successes": len(keys), "seconds": round(seconds, 3),
        "images_per_s": round(len(keys) / seconds, 3) if seconds else None, "batch_size": config.batch_size,
        "config_digest": config.digest(), "bytes": (out_dir / f"{name}.tar").stat().st_size,
        "sha256": file_sha256(out_dir / f"{name}.tar"),
    })
    report.shards_done.append(name)
    return True


# ---- verification ---------------------------------------------------------------------------------

@dataclass
class GenerationCheck:
    """Outcome of :func:`verify`: ``ok`` iff every expected id appears exactly once in finished shards."""

    ok: bool
    found: int
    missing: list[str]
    duplicates: list[str]
    unexpected: list[str]
    unfinished_shards: list[str]
    corrupt_shards: list[str]

    def summary(self) -> str:
        status = "OK" if self.ok else "FAILED"
        return (f"{status}: {self.found} images; missing {len(self.missing)}, duplicated {len(self.duplicates)}, "
                f"unexpected {len(self.unexpected)}, unfinished shards {self.unfinished_shards}, "
                f"corrupt shards {self.corrupt_shards}")


def verify(out_dir: str | os.PathLike, captions: pd.DataFrame | None = None) -> GenerationCheck:
    """Check that finished shards hold every id of ``captions`` exactly once (no caption table:
    check only for duplicates, unfinished and corrupt shards)."""
    per_shard, unfinished, corrupt = generated_keys(out_dir)
    counts: dict[str, int] = {}
    for keys in per_shard.values():
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
    duplicates = sorted(k for k, c in counts.items() if c > 1)
    missing: list[str] = []
    unexpected: list[str] = []
    if captions is not None:
        expected = set(check_captions(captions).table["key"])
        missing = sorted(expected - set(counts))
        unexpected = sorted(set(counts) - expected)
    ok = not (missing or duplicates or unexpected or unfinished or corrupt)
    return GenerationCheck(ok, sum(counts.values()), missing, duplicates, unexpected, unfinished, corrupt)


def run_paths(params: Params, name: str | None = None, captions: str | os.PathLike | None = None,
              out: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(captions, shard folder) of an experiment's generation run: ``RunLayout(params).captions`` and
    ``RunLayout(params).generated(name)`` unless given (``name`` defaults to ``mix.generated``, the run mixing
    reads)."""
    layout = RunLayout(params)
    return Path(captions or layout.captions), Path(out or layout.generated(name))


def generate_run(params: Params, name: str | None = None, *, captions: str | os.PathLike | None = None,
                 out: str | os.PathLike | None = None, **options: Any) -> GenerateReport:
    """Step ``generate`` of an experiment, as the CLI, the study runner and notebook 01 run it: the captions of
    ``RunLayout(params).captions`` (or ``captions``) into ``RunLayout(params).generated(name)`` (or ``out``;
    ``name`` defaults to ``mix.generated``, the run mixing reads) with ``params.generate``, the world of the
    params as the simulator. ``options`` go to :func:`generate` (``max_items``, ``overwrite``, ``rank``,
    ``world_size``, ``progress``)."""
    from biaslib.world import World

    captions_path, out_dir = run_paths(params, name, captions, out)
    return generate(read_captions(captions_path), out_dir, params.generate, world=World(params.world, params.seed),
                    **options)


__all__ = [  # the shard readers live in biaslib.data.generated and are re-exported here
    "CaptionCheck", "GenerateReport", "GenerationCheck", "check_captions", "encode_image", "generate", "generate_run",
    "generated_keys", "id_seed", "load_generated_images", "load_pipeline", "rank_from_env", "read_captions",
    "read_generated", "resolve_device", "run_paths", "shard_name", "verify",
]
