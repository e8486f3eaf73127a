"""CLIP training per mixing ratio with open_clip's own trainer (``open_clip_train.main``).

One run per ratio, named ``<experiment>_<code>`` (``world_default_020``), trained from scratch on the
mix ``<run_dir>/mixes/<generated>/mix_<code>/`` (formats.md A4: the study's RN50, 50 epochs, batch
360 on 4 GPUs, amp). Outputs are open_clip's own::

    <run_dir>/clip/<experiment>_<code>/
      out.log, params.txt             open_clip's log and arguments
      checkpoints/epoch_<N>.pt        {"epoch", "name", "state_dict", "optimizer"} after epoch N
      biaslib_run.json                the settings a resumed run must share (written before training), with the
                                      fingerprint of its data (``data``: :attr:`TrainingData.fingerprint`)

* ``gpus`` ≤ 1: ``open_clip_train.main.main(argv)`` runs in this process, after biaslib's model
  configs (``biaslib/model_configs/*.json``: ``biaslib-tiny-rn``, ``biaslib-tiny-vit``) are
  registered with ``open_clip.add_model_config``.
* ``gpus`` > 1: ``torchrun --nproc_per_node <gpus> -m biaslib.train <argv>``. Registration does not
  survive into torchrun's fresh worker interpreters, so the workers run this module's :func:`main`,
  which registers the configs and then calls ``open_clip_train.main.main`` with the same argv.
* Resume: every run passes ``--resume latest``; open_clip restarts after the newest
  ``epoch_<N>.pt`` (or starts fresh when there is none). A run whose final ``epoch_<epochs>.pt``
  exists is skipped. Changing the model, data, batch, lr, … of a started or finished run is refused unless
  ``overwrite`` (which deletes the run); ``epochs``, ``workers`` and ``save_frequency`` may change. The data
  is compared by content (a mix's shard hashes), so a mix rebuilt from other generated images (another
  ``generate.amplification``, another ``mix.generated``) is never answered with the old checkpoint.
* On the CPU torch gets the cores the DataLoader workers leave (:func:`cpu_threads`) and ``precision:
  auto`` picks bf16 autocast where the CPU has native bf16 (:func:`resolve_precision`).
* DataLoader workers are clamped to ``shards // processes``: webdataset hands shards to nodes, then
  to workers (``split_by_node``, ``split_by_worker``), so a worker without a shard yields nothing and
  the epoch never fills its batch count (a hang with older open_clip, an assertion in 3.x).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params, TrainConfig
from biaslib.data._common import PathLike, layout_error, require_dir
from biaslib.data.cc3m import iter_cc3m, list_shards
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.hardware import cpu_threads
from biaslib.io import file_sha256, run_lock, write_json
from biaslib.layout import RunLayout
from biaslib.models import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_model,
    read_checkpoint,
    register_model_configs,
)
from biaslib.progress import progress
from biaslib.ratios import model_code, ratio_code

RUN_RECORD = "biaslib_run.json"
#: Settings a resumed run must share with the run it continues.
RESUME_KEYS = ("model", "batch_size", "lr", "wd", "warmup", "precision", "seed", "gpus", "shards",
               "train_num_samples", "extra_args", "init", "data")
TRAIN_LAYOUT = """
<data_dir>/
  00000.tar, 00001.tar, ...     webdataset shards: <key>.jpg|.png|.webp, <key>.txt, <key>.json
  manifest.json                 optional (biaslib.mix): "n" samples and "shards" [{"name", "samples"}]
  00000_stats.json, ...         optional (img2dataset): "successes" per shard, used without a manifest
"""
#: open_clip logs a training line every this many steps (and at each epoch's last step); ``extra_args``
#: may override it. Its default, 100, leaves one or two points per epoch of a world run.
LOG_EVERY_N_STEPS = 10
#: open_clip_train's progress line (open_clip_train/train.py, ``train_one_epoch``).
_LOG_LINE = re.compile(
    r"Train Epoch: (?P<epoch>\d+) \[\s*(?P<samples>\d+)/(?P<epoch_samples>\d+) \((?P<percent>[\d.]+)%\)\] "
    r"Data \(t\): (?P<data_time>[\d.]+) Batch \(t\): (?P<batch_time>[\d.]+), (?P<samples_per_s>[\d.eE+-]+)/s.*?"
    r"LR: (?P<lr>[\d.eE+-]+) Logit Scale: (?P<logit_scale>[\d.]+) (?P<losses>.*)$")
_LOSS = re.compile(r"(?P<name>\w+): (?P<value>[\d.eE+-]+) \((?P<average>[\d.eE+-]+)\)")
_NUMBERED = re.compile(r"(\d+)\.tar")

log = logging.getLogger(__name__)


# ---- training data ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingData:
    """The shards of one training set, its sample count (open_clip's ``--train-num-samples``) and its
    ``fingerprint``: sha256 of a mix's shard names and sha256s (its manifest's, which pin the generation run and
    the real shards), or of a plain folder's shard names, sizes and index counts."""

    root: Path
    shards: tuple[Path, ...]
    num_samples: int
    fingerprint: str

    @property
    def urls(self) -> str:
        """open_clip's ``--train-data``: ``<root>/{00000..00009}.tar`` for numbered shards, else ``a::b``."""
        names = [p.name for p in self.shards]
        numbers = [_NUMBERED.fullmatch(n) for n in names]
        if len(names) > 1 and all(numbers) and len({len(m[1]) for m in numbers}) == 1:
            values = [int(m[1]) for m in numbers]
            if values == list(range(values[0], values[0] + len(values))):
                return f"{self.root}/{{{numbers[0][1]}..{numbers[-1][1]}}}.tar"
        return "::".join(str(p) for p in self.shards)


def training_data(data_dir: PathLike) -> TrainingData:
    """Describe the training shards in ``data_dir`` (a mix folder or a plain webdataset export).

    With ``manifest.json`` (biaslib.mix) its shard list and ``n`` are used and every listed shard must
    exist; otherwise the folder's ``*.tar`` files are used and samples are counted from
    ``<shard>_stats.json`` (img2dataset's ``successes``) or, without it, by reading the shard. Raises
    :class:`DataLayoutError` for a missing folder, no shards, or a listed shard that is missing.
    """
    root = require_dir(data_dir, "training shard folder", TRAIN_LAYOUT)
    manifest = root / "manifest.json"
    if manifest.is_file():
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
            shards, n = tuple(root / s["name"] for s in record["shards"]), int(record["n"])
        except (ValueError, KeyError, TypeError) as exc:
            raise layout_error(f"{manifest} is not a mix manifest ({exc!r})", TRAIN_LAYOUT) from exc
        missing = [p.name for p in shards if not p.is_file()]
        if missing:
            raise layout_error(f"{root}: {len(missing)} shard(s) listed in manifest.json are missing: "
                               f"{', '.join(missing[:10])}", TRAIN_LAYOUT)
        if not shards:
            raise layout_error(f"{manifest} lists no shards", TRAIN_LAYOUT)
        return TrainingData(root, shards, n, _fingerprint([[s["name"], s.get("sha256")] for s in record["shards"]]))
    shards = tuple(list_shards(root))
    counts = [_count_samples(p) for p in shards]
    return TrainingData(root, shards, sum(counts), _fingerprint(
        [[p.name, p.stat().st_size, count] for p, count in zip(shards, counts, strict=True)]))


def _fingerprint(items: list[list[Any]]) -> str:
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def _count_samples(shard: Path) -> int:
    """Samples of one shard: img2dataset's ``successes`` from ``<shard>_stats.json``, else counted."""
    stats = shard.with_name(f"{shard.stem}_stats.json")
    record = json.loads(stats.read_text(encoding="utf-8")) if stats.is_file() else {}
    if isinstance(record, dict) and isinstance(record.get("successes"), int):
        return record["successes"]
    return sum(1 for _ in iter_cc3m(shard, decode=False))


def clamp_workers(workers: int, shards: int, processes: int = 1) -> int:
    """DataLoader workers per process such that every worker of every process reads ≥ 1 shard.

    Returns ``min(workers, shards // processes)`` and warns when it clamps; raises
    :class:`DataLayoutError` when there are fewer shards than processes (a rank would get no data).
    """
    if shards < processes:
        raise DataLayoutError(f"{shards} shard(s) cannot feed {processes} training processes: each needs at "
                              "least one shard (write the data with a smaller shard size)")
    limit = shards // processes
    if workers > limit:
        warnings.warn(f"workers={workers} but only {shards} shard(s) for {processes} process(es): using "
                      f"{limit} DataLoader worker(s), since webdataset gives each worker whole shards and a "
                      "worker without one stalls the epoch", stacklevel=2)
        return limit
    return workers


# ---- command construction -----------------------------------------------------------------------

def open_clip_argv(*, data: TrainingData, config: TrainConfig, name: str, logs: PathLike, workers: int,
                   init: PathLike | None = None) -> list[str]:
    """open_clip_train arguments for one run; ``workers`` per process, already clamped (:func:`clamp_workers`);
    ``init``: a checkpoint the run starts from (``--pretrained``) instead of random weights."""
    return [
        "--train-data", data.urls, "--dataset-type", "webdataset",
        "--train-num-samples", str(config.train_num_samples or data.num_samples),
        "--batch-size", str(config.batch_size), "--epochs", str(config.epochs),
        "--lr", repr(config.lr), "--wd", repr(config.wd), "--warmup", str(config.warmup),
        "--precision", resolve_precision(config.precision, config.gpus),
        "--workers", str(workers),
        "--model", config.model, "--name", name, "--logs", str(logs),
        "--save-frequency", str(config.save_frequency), "--seed", str(config.seed),
        "--device", "cuda" if config.gpus > 0 else "cpu", "--report-to", "none", "--resume", "latest",
        "--log-every-n-steps", str(LOG_EVERY_N_STEPS),
        *(["--pretrained", str(init)] if init is not None else []),
        *config.extra_args,
    ]


def resolve_precision(precision: str, gpus: int) -> str:
    """open_clip ``--precision`` for a configured precision; ``auto`` means ``amp`` on GPUs and, on the
    CPU, ``amp_bf16`` where the CPU computes bf16 natively (AVX512-BF16/AMX: a tiny-CLIP step 1.3×
    faster than fp32 here), else ``fp32`` (emulated bf16 is slower). Other values pass unchanged."""
    if precision != "auto":
        return precision
    if gpus > 0:
        return "amp"
    from biaslib import hardware

    return "amp_bf16" if hardware.native_bf16() else "fp32"


def command(argv: Sequence[str], gpus: int) -> list[str]:
    """The process command for ``argv``: ``torchrun`` for ``gpus`` > 1, else ``python -m biaslib.train``."""
    if gpus > 1:
        local = Path(sys.executable).with_name("torchrun")
        # "--" ends torchrun's own options: argparse would otherwise take open_clip's --logs for an
        # ambiguous abbreviation of torchrun's --logs-specs and refuse the command.
        return [str(local) if local.is_file() else "torchrun", "--standalone", "--nproc_per_node", str(gpus),
                "-m", "biaslib.train", "--", *argv]
    return [sys.executable, "-m", "biaslib.train", *argv]


# ---- one run ------------------------------------------------------------------------------------

def epoch_checkpoints(run_dir: PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of ``<run_dir>/checkpoints/epoch_<N>.pt``, by epoch."""
    folder = Path(run_dir) / "checkpoints"
    found = [(int(m[1]), p) for p in folder.glob("epoch_*.pt") if (m := CHECKPOINT_NAME.fullmatch(p.name))]
    return sorted(found)


def train(*, data_dir: PathLike, name: str, logs: PathLike, config: TrainConfig,
          overwrite: bool = False, init: PathLike | None = None, allow_skipped_real: int | None = None) -> Path:
    """Train one CLIP with open_clip_train on the shards in ``data_dir``; return its final checkpoint.

    The run lives in ``<logs>/<name>/``. Skipped when ``epoch_<epochs>.pt`` exists; resumed from the
    newest ``epoch_<N>.pt`` otherwise. ``overwrite`` deletes the run folder first. ``init``: a checkpoint to
    start from (fine-tuning; its sha256 is part of the run's settings, so a run started from other weights is
    refused, never resumed). Before anything trains, a mix that fails :func:`biaslib.mix.verify` (a corrupt shard,
    more lost samples than ``allow_skipped_real``; None: the allowance its manifest records) is refused; a finished
    run is not verified again. Raises
    :class:`~biaslib.models.UnknownModelError`, :class:`DataLayoutError` (missing shards, fewer shards than GPUs),
    :class:`CheckpointError` (unreadable newest checkpoint) or :class:`BiaslibError` (settings differ
    from the started run, no CUDA for ``gpus`` ≥ 1, trainer failure).
    """
    check_model(config.model)
    data = training_data(data_dir)
    run = Path(logs).expanduser().resolve() / name
    if overwrite or not (run / "checkpoints" / f"epoch_{config.epochs}.pt").is_file():  # it will train
        _require_verified_mix(data.root, allow_skipped_real)
    with run_lock(run.parent, f"train-{name}"):  # one writer per run: a second `train run` of it is refused
        return _train_locked(run, data, name, config, overwrite, init)


def _train_locked(run: Path, data: TrainingData, name: str, config: TrainConfig, overwrite: bool,
                  init: PathLike | None) -> Path:
    """:func:`train`'s work once it holds the run's lock."""
    if overwrite and run.exists():
        shutil.rmtree(run)
    final = run / "checkpoints" / f"epoch_{config.epochs}.pt"
    settings = _run_settings(config, data, init)
    if final.is_file():
        _check_record(run, settings,
                      ignore=("precision",) if config.precision == "auto" else ())  # what "auto" resolved to then
        log.info("%s: %s exists with the same settings, skipping", name, final)
        return final
    _require_device(config.gpus)
    workers = clamp_workers(config.workers, len(data.shards), max(config.gpus, 1))
    argv = open_clip_argv(data=data, config=config, name=name, logs=run.parent, workers=workers, init=init)
    _check_record(run, settings)
    write_json(run / RUN_RECORD, settings)
    if previous := epoch_checkpoints(run):
        read_checkpoint(previous[-1][1], mmap=True)
        log.info("%s: resuming after epoch %d", name, previous[-1][0])
    if config.gpus > 1:
        _run_torchrun(argv, config.gpus, run)
    else:
        run_open_clip(argv, threads=cpu_threads(workers) if config.gpus == 0 else None)
    if not final.is_file():
        raise BiaslibError(f"open_clip_train finished without writing {final}; see {run / 'out.log'}")
    return final


def run_open_clip(argv: Sequence[str], threads: int | None = None) -> None:
    """Call ``open_clip_train.main.main(argv)`` in this process with biaslib's configs registered.

    ``threads`` sets torch's intra-op threads for the run (``None``: unchanged). The root logger's
    handlers and the loggers' levels, which open_clip's ``setup_logging`` changes, are restored
    afterwards. Raises :class:`BiaslibError` if the trainer returns an error code.
    """
    import torch

    register_model_configs()
    import open_clip_train.main as open_clip_train_main

    from biaslib.seeded_loader import seeded_webdataset

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        with _scoped_logging(), _quiet_console(open_clip_train_main, int(_argv_value(argv, "--epochs", "32")),
                                                     _argv_value(argv, "--name", "train")), seeded_webdataset():
            code = open_clip_train_main.main(list(argv))
    finally:
        torch.set_num_threads(before)
    gc.collect()  # shut down the persistent DataLoader workers of the finished run
    if code not in (None, 0):
        raise BiaslibError(f"open_clip_train.main returned {code} for {' '.join(argv)}")


def _argv_value(argv: Sequence[str], flag: str, default: str) -> str:
    """The value after ``flag`` in an open_clip_train argv, ``default`` without one."""
    args = list(argv)
    return args[args.index(flag) + 1] if flag in args[:-1] else default


def _require_device(gpus: int) -> None:
    import torch

    if gpus > 0 and torch.cuda.device_count() < gpus:
        raise BiaslibError(f"train.gpus={gpus} but {torch.cuda.device_count()} CUDA device(s) are visible; "
                           "set train.gpus: 0 to train on the CPU")


def _run_settings(config: TrainConfig, data: TrainingData, init: PathLike | None = None) -> dict[str, Any]:
    """What a run's weights depend on (:data:`RESUME_KEYS`; shards by name, so a moved folder still resumes; the
    starting checkpoint by its sha256, None for random weights)."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k in RESUME_KEYS}
    settings["precision"] = resolve_precision(config.precision, config.gpus)
    settings.update(shards=[p.name for p in data.shards], extra_args=list(config.extra_args),
                    train_num_samples=config.train_num_samples or data.num_samples,
                    init=None if init is None else file_sha256(init), data=data.fingerprint)
    return settings


def _check_record(run: Path, settings: dict[str, Any], ignore: Sequence[str] = ()) -> None:
    """Refuse when the run's record names other settings (keys in ``ignore`` not compared) or, without a
    record, when the run holds checkpoints (not started by biaslib)."""
    record = run / RUN_RECORD
    if record.is_file():
        old = json.loads(record.read_text(encoding="utf-8"))
        if "data" not in old:  # recorded before data fingerprints: its data cannot be checked, now it is pinned
            log.warning("%s: recorded before data fingerprints; the current data's is added to %s", run, RUN_RECORD)
            write_json(record, {**old, "data": settings["data"]})
            old["data"] = settings["data"]
        changed = [k for k in RESUME_KEYS if k not in ignore and old.get(k) != settings[k]]
        if changed:
            detail = "; ".join(f"{k}: {old.get(k)!r} -> {settings[k]!r}" for k in changed)
            raise BiaslibError(f"{run} was trained with other settings ({detail}); pass --overwrite "
                               "(overwrite=True in Python) to delete it and train again")
    elif (run / "checkpoints").is_dir() and epoch_checkpoints(run):
        raise BiaslibError(f"{run} holds checkpoints but no {RUN_RECORD}; it was not started by biaslib. "
                           "Pass --overwrite (overwrite=True in Python) to delete it")


def _run_torchrun(argv: Sequence[str], gpus: int, run: Path) -> None:
    cmd = command(argv, gpus)
    log.info("running %s", subprocess.list2cmdline(cmd))
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise BiaslibError(f"torchrun exited with status {result.returncode}; see {run / 'out.log'}")


def _console_worthy(record: logging.LogRecord) -> bool:
    """True for warnings and errors worth a console line: not open_clip_train's start-up dump (``Model:``, the
    model's multi-line repr, ``Params:`` and its ``  name: value`` lines) nor the notice that a model trained
    from scratch starts from random weights."""
    message = record.getMessage()
    return (record.levelno >= logging.WARNING and message not in ("Model:", "Params:") and "\n" not in message
            and not message.startswith(("  ", "No pretrained weights loaded")))


class _TrainingProgress(logging.Handler):
    """The console's view of one open_clip_train run: a progress bar over its samples (epochs × samples per
    epoch) with the running loss, fed by open_clip's ``Train Epoch`` log lines (which ``out.log`` keeps)."""

    def __init__(self, epochs: int, name: str) -> None:
        super().__init__(logging.INFO)
        self.epochs, self.name, self.bar = epochs, name, None

    def emit(self, record: logging.LogRecord) -> None:
        match = _LOG_LINE.search(record.getMessage())
        if match is None:
            return
        per_epoch = int(match["epoch_samples"])
        if self.bar is None:
            self.bar = progress(total=self.epochs * per_epoch, desc=f"train {self.name}", unit="img",
                                unit_scale=True, transient=True)
        self.bar.n = min(self.bar.total, int(match["epoch"]) * per_epoch + int(match["samples"]))
        losses = {m["name"]: float(m["average"]) for m in _LOSS.finditer(match["losses"])}
        self.bar.set_postfix(epoch=int(match["epoch"]) + 1, loss=losses.get("Loss", float("nan")), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        super().close()


@contextlib.contextmanager
def _quiet_console(trainer_main: Any, epochs: int = 1, name: str = "train") -> Iterator[None]:
    """While open_clip_train runs, the console shows a progress bar (:class:`_TrainingProgress`) and the warnings
    worth a line (:func:`_console_worthy`), not its ≈ 16 INFO lines per run nor the ≈ 230-line model and
    settings dump; the run's ``out.log`` (and ``params.txt``) keep all of it."""
    original = trainer_main.setup_logging

    def setup_logging(*args: Any, **kwargs: Any) -> None:
        before = set(logging.root.handlers)
        original(*args, **kwargs)
        for handler in logging.root.handlers:
            if handler not in before and type(handler) is logging.StreamHandler:
                handler.addFilter(_console_worthy)
        logging.root.addHandler(_TrainingProgress(epochs, name))

    trainer_main.setup_logging = setup_logging
    try:
        yield
    finally:
        trainer_main.setup_logging = original


@contextlib.contextmanager
def _scoped_logging() -> Iterator[None]:
    """Contain open_clip's ``setup_logging``, which lowers every logger to INFO and adds root handlers.

    The caller's root handlers keep showing only what they showed before (no duplicated INFO lines);
    afterwards open_clip's handlers are removed and closed and all levels restored.
    """
    root = logging.getLogger()
    handlers, level = {h: h.level for h in root.handlers}, root.level
    levels = {n: lg.level for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    for handler, handler_level in handlers.items():
        handler.setLevel(max(handler_level, level))
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        for handler, handler_level in handlers.items():
            handler.setLevel(handler_level)
        root.setLevel(level)
        for n, lg in list(logging.root.manager.loggerDict.items()):
            if isinstance(lg, logging.Logger):
                lg.setLevel(levels.get(n, logging.NOTSET))


# ---- experiments: one run per ratio -------------------------------------------------------------

def run_name(experiment: str, ratio: float | int | str, replicate: int = 0) -> str:
    """Run name of a ratio's replicate: ``<experiment>_<code>`` for replicate 0 (``world_default_020``, the name
    of a single-replicate study, so its runs stay valid), ``<experiment>_<code>_r<replicate>`` for the others."""
    return f"{experiment}_{model_code(ratio, replicate)}"


def replicate_config(config: TrainConfig, replicate: int) -> TrainConfig:
    """The training settings of replicate ``replicate``: seed ``seed + replicate``, all else equal (the probe
    replicate of ``probe_ratios`` is replicate ``replicates``)."""
    probe = 1 if config.probe_ratios else 0
    if not 0 <= replicate < config.replicates + probe:
        raise ValueError(f"replicate {replicate} is outside 0 … {config.replicates + probe - 1} (train.replicates"
                         f"{', plus the probe of train.probe_ratios' if probe else ''})")
    return dataclasses.replace(config, seed=config.seed + replicate)


def trained_models(params: Params, ratios: Sequence[float | int | str] | None = None) -> list[tuple[str, int]]:
    """Every (ratio code, replicate) the study trains among ``ratios`` (default ``mix.ratios``): each ratio ×
    ``train.replicates``, by replicate then ratio, then the probe replicate at each of ``train.probe_ratios``."""
    codes = list(dict.fromkeys(ratio_code(r) for r in (ratios if ratios is not None else params.mix.ratios)))
    probes = {ratio_code(r) for r in params.train.probe_ratios}
    return ([(code, replicate) for replicate in range(params.train.replicates) for code in codes]
            + [(code, params.train.replicates) for code in codes if code in probes])


def warm_start(params: Params) -> Path | None:
    """The checkpoint every run of ``params`` starts from: None without ``train.warm_start_epochs``; else one CLIP
    trained for that many epochs on the real web data (``RunLayout.captions``, the ratio-0 data) with the training
    settings of replicate 0, trained on first use into ``<runs_dir>/cache/warm_start/warm_start_<digest>``. The
    digest covers the data (the world export's digest, or the shards' names and sizes) and the settings, so the
    experiments of a paired design, which share both, share one warm start, and any change trains a new one."""
    if not params.train.warm_start_epochs:
        return None
    layout = RunLayout(params)
    config = dataclasses.replace(params.train, epochs=params.train.warm_start_epochs, warm_start_epochs=0,
                                 replicates=1)
    data = training_data(layout.captions)
    settings = {k: v for k, v in _run_settings(config, data).items() if k != "data"}  # the data: its identity
    key = json.dumps({"data": _data_identity(layout.data, data), "settings": settings}, sort_keys=True)
    name = "warm_start_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    log.info("%s: warm start %s (%d epochs on %s)", params.experiment, name, config.epochs, layout.captions)
    return train(data_dir=layout.captions, name=name, logs=layout.warm_starts, config=config)


def _data_identity(data_root: Path, data: TrainingData) -> str | list[list[Any]]:
    """What identifies the real web data: the world export's digest (``export_manifest.json``), else each shard's
    name and size."""
    manifest = data_root / "export_manifest.json"
    if manifest.is_file():
        return str(json.loads(manifest.read_text(encoding="utf-8")).get("digest"))
    return [[p.name, p.stat().st_size] for p in data.shards]


def train_ratio(params: Params, ratio: float | int | str, overwrite: bool = False, replicate: int = 0) -> Path:
    """Train (or resume, or skip) the CLIP of one ratio's replicate on its data (:meth:`Params.for_replicate`),
    from the warm start when there is one (:func:`warm_start`); return its final checkpoint. A mix that fails
    :func:`biaslib.mix.verify` against ``mix.allow_skipped_real`` is refused before anything trains."""
    layout = RunLayout(params)
    config = replicate_config(params.train, replicate)
    return train(data_dir=RunLayout(params.for_replicate(replicate)).mix(ratio),
                 name=run_name(params.experiment, ratio, replicate), logs=layout.clip, config=config,
                 overwrite=overwrite, init=warm_start(params), allow_skipped_real=params.mix.allow_skipped_real)


def _require_verified_mix(data_dir: Path, allow_skipped_real: int | None) -> None:
    """Refuse a mix folder (one whose ``manifest.json`` biaslib.mix wrote) that :func:`biaslib.mix.verify` fails,
    listing its problems; other folders are :func:`training_data`'s to judge."""
    from biaslib.mix import verify
    from biaslib.mix.mixing import MANIFEST_FORMAT, load_json

    if load_json(data_dir / "manifest.json").get("format") != MANIFEST_FORMAT:
        return
    report = verify(data_dir, allow_skipped_real)
    if not report.ok:
        shown = "\n  - ".join(report.problems[:10])
        raise BiaslibError(f"{data_dir} fails verification, so nothing is trained on it:\n  - {shown}\n"
                           "Run `biaslib mix run` again (it rebuilds corrupt shards) or repair the inputs it names")


def train_sweep(params: Params, ratios: Sequence[float | int | str] | None = None,
                overwrite: bool = False) -> pd.DataFrame:
    """Train every model of :func:`trained_models` (each ratio, default ``params.mix.ratios``, × replicate, then the
    probes) in turn; return :func:`checkpoints`."""
    for ratio, replicate in trained_models(params, ratios):
        train_ratio(params, ratio, overwrite=overwrite, replicate=replicate)
    return checkpoints(params)


def train_command(params: Params, ratio: float | int | str, replicate: int = 0) -> list[str]:
    """The command that trains one ratio's replicate (``torchrun …`` for ``train.gpus`` > 1), e.g. for a job
    script."""
    data = training_data(RunLayout(params.for_replicate(replicate)).mix(ratio))
    config = replicate_config(params.train, replicate)
    workers = clamp_workers(config.workers, len(data.shards), max(config.gpus, 1))
    argv = open_clip_argv(data=data, config=config, name=run_name(params.experiment, ratio, replicate),
                          logs=RunLayout(params).clip.resolve(), workers=workers, init=warm_start(params))
    return command(argv, config.gpus)


def checkpoints(params: Params) -> pd.DataFrame:
    """Registry of an experiment's checkpoints: columns ``ratio`` (code), ``replicate``, ``name``, ``epoch``,
    ``path``, ``final`` (epoch == ``train.epochs``), sorted by ratio, replicate and epoch."""
    pattern = re.compile(rf"{re.escape(params.experiment)}_(\d{{3}})(?:_r(\d+))?")
    rows = []
    folder = RunLayout(params).clip
    for run in sorted(folder.iterdir()) if folder.is_dir() else []:
        if match := pattern.fullmatch(run.name):
            rows += [{"ratio": match[1], "replicate": int(match[2] or 0), "name": run.name, "epoch": epoch,
                      "path": path, "final": epoch == params.train.epochs} for epoch, path in epoch_checkpoints(run)]
    frame = pd.DataFrame(rows, columns=["ratio", "replicate", "name", "epoch", "path", "final"])
    return frame.sort_values(["ratio", "replicate", "epoch"], ignore_index=True)


def read_training_log(run: PathLike) -> pd.DataFrame:
    """Training curve of one run from open_clip's ``<run>/out.log``.

    One row per logged step: ``epoch`` (0-based, as logged), ``samples`` seen in that epoch,
    ``progress`` (fractional epochs completed), ``batch_time`` (s per step, running mean),
    ``samples_per_s``, ``lr``, ``logit_scale`` and, per loss term as open_clip names it (lower case,
    e.g. ``contrastive_loss``), the logged step's value and ``<term>_avg`` (running mean over the
    epoch). A resumed run appends to the same log; a step logged twice keeps its last line. Raises
    :class:`DataLayoutError` without ``out.log``.
    """
    path = Path(run) / "out.log"
    if not path.is_file():
        raise layout_error(f"no training log {path}", "<logs>/<name>/out.log  (written by open_clip_train)")
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        match = _LOG_LINE.search(line)
        if not match:
            continue
        row: dict[str, Any] = {k: float(match[k]) for k in ("data_time", "batch_time", "samples_per_s", "lr",
                                                             "logit_scale")}
        row |= {"epoch": int(match["epoch"]), "samples": int(match["samples"]),
                "progress": int(match["epoch"]) + int(match["samples"]) / int(match["epoch_samples"])}
        for loss in _LOSS.finditer(match["losses"]):
            row[loss["name"].lower()] = float(loss["value"])
            row[f"{loss['name'].lower()}_avg"] = float(loss["average"])
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.drop_duplicates(["epoch", "samples"], keep="last").sort_values("progress").reset_index(drop=True)


def training_curves(params: Params, ratios: Sequence[float | int | str] | None = None) -> pd.DataFrame:
    """:func:`read_training_log` of every ratio's run (default ``params.mix.ratios``) that has a log,
    with a ``ratio`` code column in front."""
    frames = []
    for ratio in ratios if ratios is not None else params.mix.ratios:
        run = RunLayout(params).clip / run_name(params.experiment, ratio)
        if (run / "out.log").is_file():
            frames.append(read_training_log(run).assign(ratio=ratio_code(ratio)))
    if not frames:
        return pd.DataFrame(columns=["ratio", "epoch", "samples", "progress"])
    frame = pd.concat(frames, ignore_index=True)
    return frame[["ratio", *[c for c in frame.columns if c != "ratio"]]]


def latest_checkpoint(params: Params, ratio: float | int | str, replicate: int = 0) -> Path:
    """Newest checkpoint of a ratio's replicate; raises :class:`CheckpointError` when the run has none."""
    run = RunLayout(params).clip / run_name(params.experiment, ratio, replicate)
    found = epoch_checkpoints(run)
    if not found:
        which = f"ratio {ratio_code(ratio)}" + (f" replicate {replicate}" if replicate else "")
        raise CheckpointError(f"no checkpoint for {which} of {params.experiment}: "
                              f"{run / 'checkpoints'} holds no epoch_<N>.pt (train it with `biaslib train run`)")
    return found[-1][1]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m biaslib.train <open_clip_train args>``: the torchrun worker entry point.

    Registers biaslib's model configs, then runs ``open_clip_train.main.main(argv)`` with its sample shuffle
    seeded (:func:`biaslib.seeded_loader.seeded_webdataset`).
    """
    register_model_configs()
    from open_clip_train.main import main as open_clip_main

    from biaslib.seeded_loader import seeded_webdataset

    with seeded_webdataset():
        code = open_clip_main(list(sys.argv[1:] if argv is None else argv))
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
