"""Bias evaluations of CLIPs → one JSON per (experiment, model, evaluation).

A step, known to no study: :func:`evaluate_targets` evaluates any :class:`Target` (a model, its weights and
where its results go); :func:`evaluate_ratio` / :func:`evaluate_sweep` evaluate the CLIPs the amplification
study trained at each mixing ratio, and the benchmark study (:mod:`biaslib.studies.benchmark.leaderboard`) any
model spec.

Evaluations (``eval.evaluations``; metric definitions in ``design.md``, formats.md A6–A9, B4) are the modules of
:mod:`biaslib.evaluations`, one per evaluation, registered on import (:func:`biaslib.evaluations.list_evaluations`).

Units: R@k, accuracy and person preference are fractions in [0, 1] (the study printed R@k × 100);
self-similarity is a cosine. Group intervals come from :func:`biaslib.metrics.by_group` (Wilson for 0/1
values, a cluster bootstrap over images for COCO-bias, whose 5 captions share an image). Every
(attribute, metric) with two or more groups of at least ``eval.min_group_size`` items also gets a ``gap``
row (highest − lowest group value, the groups named in ``high``/``low``, so ``low`` of a geode gap is the
worst region) and a ``min_over_max`` row (lowest / highest); smaller groups keep their own rows but stay
out of gaps. A gap's interval holds for every pair of groups at once
(:func:`~biaslib.metrics.intervals.gap_interval` over ``n_boot`` bootstrap replicates seeded by ``eval.seed``;
``min_over_max``: ``ratio_interval``), its ``p_value`` is a permutation test of "all groups equal"
(``n_perm`` label permutations, whole images for COCO-bias) and ``null_gap`` is the mean permuted gap: the
gap a model without any group difference shows by chance with these group sizes
(:func:`biaslib.metrics.gap_test`). For self-similarity the same comes from normal draws with each group's
standard error (half its interval width / z).

Features: image and text embeddings of the checkpoint of :func:`biaslib.train.latest_checkpoint`
are stored in ``<run_dir>/features`` (:class:`biaslib.features.FeatureStore`) under the model name
``<run>_e<epoch>_<sha256 of the checkpoint, 12 hex>_<fp32|fp16|bf16>`` (:func:`feature_model`) and
reused when the stored ids equal the dataset's ids in order and the dtype is ``eval.feature_dtype``
(other weights or precision get other names; other ids are recomputed and replaced; the data files
themselves are assumed unchanged under the same ids). The CLIP is loaded only when a feature is
missing.

Results go to ``<run_dir>/results/<experiment>__<ratio>__<evaluation>.json`` (schema in
:mod:`biaslib.results`), written atomically. A rerun skips a result whose recorded settings (the
checkpoint's sha256 and epoch, model, bootstrap and evaluation settings) equal the current ones and
refuses, naming the differences, when they differ, unless ``overwrite`` (``precision`` is recorded
resolved: ``auto`` is ``fp16`` on CUDA and ``fp32`` on the CPU). Checkpoints and data are
checked before any work starts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import EvalConfig, Params
from biaslib.evaluations import COMMON_SETTINGS, get_evaluation, list_evaluations
from biaslib.evaluations.context import CheckpointInfo, EvalContext, Target
from biaslib.evaluations.datasets import dataset_root, get_dataset, load_dataset
from biaslib.features import (
    FeatureStore,
    resolve_precision,
)
from biaslib.io import check_writable, file_sha256, files_fingerprint, run_lock
from biaslib.layout import RunLayout
from biaslib.metrics.collapse import DEGENERATE_COSINE, is_degenerate, mean_pairwise_cosine
from biaslib.models import CHECKPOINT_NAME, CheckpointError, load_clip, resolve_device
from biaslib.provenance import git_state, is_current, provenance, result_record, write_result
from biaslib.ratios import model_code
from biaslib.train import latest_checkpoint, run_name, trained_models

#: How the group, gap and min_over_max rows get their intervals and tests, recorded in every result's settings. A
#: result that names other methods (or none: before 2026-12-04 both intervals took max − min and min / max of each
#: bootstrap resample, which never covered a true gap of 0; before 2026-12-06 scores were tested by a permutation,
#: clustered 0/1 means had a cluster bootstrap and gap intervals were not aligned with the test) is recomputed by
#: the next run, not kept.
INTERVAL_METHODS = {"gap": "gap_interval: simultaneous pairwise max-t bootstrap bands, holding 0 when the test "
                           "does not reject",
                    "min_over_max": "ratio_interval: simultaneous per-group max-t bootstrap bands, holding 1 when "
                                    "the test does not reject",
                    "test": "0/1 values: permutation of max − min; scores: studentised (Welch max-t) bootstrap",
                    "group": "0/1 values: Wilson (design-effect Wilson with clusters); scores: percentile bootstrap"}
log = logging.getLogger(__name__)


# ---- checkpoints, paths, inputs -----------------------------------------------------------------

def resolve_checkpoint(params: Params, ratio: float | int | str, replicate: int = 0) -> CheckpointInfo:
    """Newest ``epoch_<N>.pt`` of a ratio's run (replicate ``replicate``), its epoch and sha256; raises
    :class:`CheckpointError` naming the expected ``<run_dir>/clip/<run>/checkpoints/epoch_<N>.pt``."""
    path = latest_checkpoint(params, ratio, replicate)
    match = CHECKPOINT_NAME.fullmatch(path.name)
    if match is None:
        raise CheckpointError(f"checkpoint {path} is not named epoch_<N>.pt")
    return CheckpointInfo(path=path, epoch=int(match[1]), sha256=file_sha256(path), model=params.train.model,
                          run=run_name(params.experiment, ratio, replicate))


def feature_precision(cfg: EvalConfig) -> str:
    """The precision features are computed in (:func:`biaslib.features.resolve_precision`)."""
    return resolve_precision(cfg.precision, resolve_device(cfg.device))


def feature_model(params: Params, checkpoint: CheckpointInfo) -> str:
    """Feature-store model name ``<run>_e<epoch>_<sha256[:12]>_<precision>`` (``<run>_<sha256[:12]>_…`` without
    an epoch): other weights or another precision get other features."""
    epoch = "" if checkpoint.epoch is None else f"_e{checkpoint.epoch}"
    return f"{checkpoint.run}{epoch}_{checkpoint.sha256[:12]}_{feature_precision(params.eval)}"


def result_path(params: Params, ratio: float | int | str, evaluation: str, replicate: int = 0) -> Path:
    """``<run_dir>/results/<experiment>__<ratio code>__<evaluation>.json`` (replicate 0, the name of a
    single-replicate study) or ``<experiment>__<ratio code>_r<replicate>__<evaluation>.json``."""
    return RunLayout(params).results / f"{params.experiment}__{model_code(ratio, replicate)}__{evaluation}.json"


def feature_store(params: Params) -> FeatureStore:
    """The experiment's feature store, ``<run_dir>/features``."""
    return FeatureStore(RunLayout(params).features)


def load_inputs(params: Params, datasets: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Load (and so validate) the annotation tables of ``datasets`` with their registered loaders
    (:mod:`biaslib.evaluations.datasets`).

    Raises :class:`DataLayoutError` naming the path and the expected layout when a folder or file is
    missing or malformed, or when a dataset has no rows.
    """
    return {dataset: load_dataset(params, dataset) for dataset in datasets}


def _evaluation_names(params: Params, evaluations: Sequence[str] | None) -> list[str]:
    """Requested evaluations (default ``eval.evaluations``), deduplicated; unknown names raise, naming the
    registered ones (:func:`biaslib.evaluations.list_evaluations`)."""
    names = list(dict.fromkeys(evaluations if evaluations is not None else params.eval.evaluations))
    known = list_evaluations()
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"unknown evaluation(s) {unknown or names}; choose from {', '.join(known)}")
    return names


def _check_config(cfg: EvalConfig, names: Sequence[str]) -> None:
    """Raise ValueError naming the ``eval`` key when a setting cannot work: the bootstrap's, then each evaluation's
    own check and its ``eval.options`` keys."""
    if cfg.n_boot < 0 or not 0 < cfg.ci < 1:
        raise ValueError(f"eval: need n_boot >= 0 and 0 < ci < 1; got n_boot={cfg.n_boot}, ci={cfg.ci}")
    unknown_options = sorted(set(cfg.options) - set(list_evaluations()))
    if unknown_options:
        raise ValueError(f"eval.options: no evaluation named {', '.join(unknown_options)}")
    for name in names:
        evaluation = get_evaluation(name)
        stray = sorted(set(cfg.options.get(name, {})) - set(evaluation.options))
        if stray:
            raise ValueError(f"eval.options.{name}: unknown key(s) {', '.join(stray)} (it has "
                             f"{', '.join(evaluation.options) or 'none'})")
        if evaluation.check is not None:
            evaluation.check(cfg)


# ---- provenance and resume ----------------------------------------------------------------------

def data_fingerprint(table: pd.DataFrame) -> str:
    """sha256 of a loaded dataset: its annotation table's content and its image files' paths, sizes and
    modification times (:func:`biaslib.io.files_fingerprint`); another root, split or edited file changes it."""
    content = pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes()
    files = files_fingerprint(table["file"]) if "file" in table.columns else ""
    return hashlib.sha256(content + files.encode()).hexdigest()


def result_settings(cfg: EvalConfig, checkpoint: CheckpointInfo, evaluation: str,
                    data: dict[str, str]) -> dict[str, Any]:
    """What a result's numbers depend on (compared on a rerun): checkpoint, model, the evaluation's ``eval`` keys
    (:data:`~biaslib.evaluations.COMMON_SETTINGS` and its own; a file named by one of its ``file_settings`` by its
    path and sha256), its ``eval.options`` with their defaults and the :func:`data_fingerprint` of each dataset it
    reads (``data``: dataset → fingerprint)."""
    spec = get_evaluation(evaluation)
    settings = {"checkpoint_sha256": checkpoint.sha256, "checkpoint_epoch": checkpoint.epoch,
                "model": checkpoint.model, "data": {d: data[d] for d in spec.datasets}} | {
        k: getattr(cfg, k) for k in COMMON_SETTINGS + spec.settings}
    settings["precision"] = feature_precision(cfg)
    settings["intervals"] = INTERVAL_METHODS
    if spec.rows_note is not None:
        settings["rows"] = spec.rows_note
    if spec.options:
        settings["options"] = spec.options_for(cfg)
    for key in spec.file_settings:  # a file: its content, not only its path
        if settings.get(key) is not None:
            settings[key] = {"path": str(settings[key]), "sha256": file_sha256(settings[key])}
    return json.loads(json.dumps(settings))


def _made_by_earlier_code(path: Path) -> bool:
    """True for a result written before results carried their data's fingerprint (it cannot be checked against
    the data), with other :data:`INTERVAL_METHODS` (its intervals are not what this code computes), without rows
    its evaluation has gained since (its ``rows_note``) or without the embedding diagnostics
    (:func:`embedding_diagnostics`, 2026-12-06): it is recomputed (never trusted, never an error)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        settings, evaluation = record["provenance"]["settings"], record.get("evaluation")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(settings, dict) and ("data" not in settings or settings.get("intervals") != INTERVAL_METHODS
                                           or settings.get("rows") != _rows_note(evaluation)
                                           or "embeddings" not in record["provenance"])


def _rows_note(evaluation: str | None) -> str | None:
    """The registered evaluation's ``rows_note`` (None for a name no longer registered)."""
    return get_evaluation(evaluation).rows_note if evaluation in list_evaluations() else None


def _record(ctx: EvalContext, evaluation: str, rows: list[dict], tables: dict[str, pd.DataFrame],
            settings: dict[str, Any], git: tuple[str | None, bool | None]) -> dict[str, Any]:
    """The JSON object of one result (schema in :mod:`biaslib.results`)."""
    checkpoint = ctx.checkpoint
    data = {d: {"root": str(dataset_root(ctx.params, d)), "split": get_dataset(d).split(ctx.cfg),
                "n": len(tables[d])} for d in get_evaluation(evaluation).datasets}
    return result_record(ctx.target.study, ctx.params.experiment, evaluation, ctx.target.subject, rows, provenance(
        ctx.params, settings, study=ctx.target.study, git=git,
        checkpoint={"path": None if checkpoint.path is None else str(checkpoint.path), "epoch": checkpoint.epoch,
                    "sha256": checkpoint.sha256, "model": checkpoint.model, "run": checkpoint.run},
        data=data, features=dict(ctx.used), embeddings=embedding_diagnostics(ctx.images), **ctx.target.extra))


def embedding_diagnostics(images: dict[str, np.ndarray]) -> dict[str, Any]:
    """What a result records of the image embeddings it used (``provenance.embeddings``): per dataset their mean
    pairwise cosine and count, and ``degenerate`` (:func:`biaslib.metrics.collapse.is_degenerate` for any of
    them; None when the evaluation used no images): a collapsed model's gaps are near 0 for want of any
    discrimination, not for want of bias."""
    cosines = {dataset: mean_pairwise_cosine(matrix) for dataset, matrix in images.items() if len(matrix) >= 2}
    return {"image_mean_cosine": {d: round(c, 6) for d, c in cosines.items()},
            "n": {d: len(images[d]) for d in cosines}, "threshold": DEGENERATE_COSINE,
            "degenerate": any(map(is_degenerate, cosines.values())) if cosines else None}


# ---- entry points -------------------------------------------------------------------------------

Model = tuple[str, int]  # (ratio code, replicate): one trained CLIP


def _models(params: Params, ratios: Sequence[float | int | str]) -> list[Model]:
    """Every trained model (:func:`biaslib.train.trained_models`) of ``ratios``, by ratio (in the given order) then
    replicate."""
    models = trained_models(params, ratios)
    return [model for code in dict.fromkeys(code for code, _ in models) for model in models if model[0] == code]


def _checkpoints(params: Params, models: Sequence[Model]) -> dict[Model, CheckpointInfo]:
    """Every model's checkpoint; one :class:`CheckpointError` listing all missing ones."""
    found, missing = {}, []
    for model in models:
        try:
            found[model] = resolve_checkpoint(params, *model)
        except CheckpointError as exc:
            missing.append(f"  {exc}")
    if missing:
        raise CheckpointError(f"{len(missing)} model(s) of {params.experiment} cannot be evaluated:\n"
                              + "\n".join(missing) + f"\nExpected layout: {RunLayout(params).clip}/"
                              f"{params.experiment}_<ratio>/checkpoints/epoch_<N>.pt (`biaslib train run`)")
    return found


def ratio_targets(params: Params, models: Sequence[Model]) -> list[Target]:
    """The :class:`Target` of each trained CLIP (ratio code, replicate) of the amplification study: subject
    ``{"ratio", "replicate"}``, results ``<run_dir>/results/<experiment>__<ratio>[_r<r>]__<evaluation>.json``;
    one :class:`CheckpointError` listing every missing checkpoint."""
    checkpoints = _checkpoints(params, models)
    return [Target("amplification", {"ratio": code, "replicate": replicate}, checkpoints[code, replicate],
                   functools.partial(_load_checkpoint, checkpoints[code, replicate]), RunLayout(params).results,
                   model_code(code, replicate)) for code, replicate in models]


def _load_checkpoint(checkpoint: CheckpointInfo, **kwargs: Any) -> tuple[Any, Any, Any]:
    """:func:`biaslib.models.load_clip` of an open_clip checkpoint."""
    return load_clip(checkpoint.path, checkpoint.model, **kwargs)


def evaluate_targets(params: Params, targets: Sequence[Target], evaluations: Sequence[str] | None = None,
                     overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Evaluate ``targets`` × ``evaluations`` (default ``eval.evaluations``) after checking the settings and the
    data up front; a result whose settings match is kept (not recomputed), one with other settings is an
    error unless ``overwrite``. Models are evaluated one after the other (one CLIP in memory), each loaded only
    when a feature is missing. Returns every result path, by target then evaluation."""
    names = _evaluation_names(params, evaluations)
    _check_config(params.eval, names)
    tables = load_inputs(params, list(dict.fromkeys(d for n in names for d in get_evaluation(n).datasets)))
    data = {dataset: data_fingerprint(table) for dataset, table in tables.items()}
    experiment = params.experiment
    todo = [(target, name) for target in targets for name in names
            if overwrite or _made_by_earlier_code(target.result_path(experiment, name))
            or not is_current(target.result_path(experiment, name),
                              result_settings(params.eval, target.checkpoint, name, data))]
    for folder in dict.fromkeys(target.folder for target, _ in todo):  # prove the output writable now
        check_writable(folder)
    with contextlib.ExitStack() as held:  # one writer per result: a second run on any of them is refused now
        for target, name in todo:
            held.enter_context(run_lock(target.folder, f"eval-{target.result_path(experiment, name).stem}"))
        _evaluate_todo(params, todo, tables, data, progress)
    return [target.result_path(experiment, name) for target in targets for name in names]


def _evaluate_todo(params: Params, todo: list[tuple[Target, str]], tables: dict[str, pd.DataFrame],
                   data: dict[str, str], progress: bool) -> None:
    """Compute and write the results of ``todo`` (target, evaluation) pairs, one CLIP in memory at a time."""
    experiment = params.experiment
    git = git_state() if todo else (None, None)
    ctx: EvalContext | None = None
    for target, name in todo:
        if ctx is None or ctx.target is not target:  # ordered by target: one CLIP in memory
            ctx = EvalContext(params, target, progress, feature_store(params),
                              feature_model(params, target.checkpoint))
        ctx.used, ctx.images, ctx.evaluation = {}, {}, name
        log.info("evaluating %s %s: %s", experiment, target.stem, name)
        rows = get_evaluation(name).run(ctx, tables)
        path = target.result_path(experiment, name)
        write_result(path, _record(ctx, name, rows, tables,
                                   result_settings(params.eval, ctx.checkpoint, name, data), git), overwrite=True)
        log.info("wrote %s (%d rows)", path, len(rows))


def evaluate_ratio(params: Params, ratio: float | int | str, evaluations: Sequence[str] | None = None,
                   overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Run ``evaluations`` (default ``eval.evaluations``) on the newest checkpoint of each replicate of
    ``ratio`` (``train.replicates``, and the probe where ``train.probe_ratios`` names the ratio).

    Returns the result paths, one per replicate and evaluation, whether computed now or found up to date. Raises
    :class:`CheckpointError` (no checkpoint; names the expected path), :class:`DataLayoutError` (missing
    or malformed data; names the path and layout), ``ValueError`` (unknown evaluation, bad ``eval``
    setting) or :class:`BiaslibError` (an existing result has other settings and ``overwrite`` is
    False) before any work starts. ``progress`` shows feature-extraction progress bars.
    """
    return evaluate_targets(params, ratio_targets(params, _models(params, [ratio])), evaluations, overwrite,
                            progress)


def evaluate_sweep(params: Params, ratios: Sequence[float | int | str] | None = None,
                   evaluations: Sequence[str] | None = None, overwrite: bool = False,
                   progress: bool = True) -> list[Path]:
    """:func:`evaluate_ratio` for every ratio (default ``mix.ratios``); every checkpoint and dataset is
    checked before the first evaluation. Returns the result paths by ratio, then evaluation."""
    models = _models(params, ratios if ratios is not None else params.mix.ratios)
    return evaluate_targets(params, ratio_targets(params, models), evaluations, overwrite, progress)
