"""The benchmark study: any CLIP × the bias evaluations, one result per (model, evaluation), and a leaderboard.

A models file (``params/models.yaml``; :func:`biaslib.models.read_models_file`) names the models: open_clip
architectures with local weights or cached pretrained tags, transformers ``CLIPModel`` folders, random weights
(tests), and ``runs:`` specs, which expand to every ratio × replicate CLIP a params file's amplification study
trained (:func:`resolve_models`). :func:`run_benchmark` evaluates them on the params file's evaluation data
with :func:`biaslib.evaluate.evaluate_targets` (every evaluation of ``eval.evaluations``, features cached per
weights sha256 and precision) and writes ``<run_dir>/results/benchmark/<experiment>__<model>__<evaluation>.json``
(study ``benchmark``, subject ``{"model": name}``; the provenance holds the spec and the weights' sha256). A
rerun keeps every result whose settings match; ``shard=(i, n)`` evaluates every n-th model from the i-th, so
n processes (or scheduler array tasks: :func:`shard_from_env`) together write exactly the files of one run.

:func:`leaderboard` reads the results (:func:`biaslib.results.collect` ``study="benchmark"``) into one row per
(model, measure) with its interval and the direction of "better".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params, variant_params
from biaslib.errors import BiaslibError
from biaslib.evaluate import CheckpointInfo, Target, evaluate_targets, ratio_targets
from biaslib.evaluations import leaderboard_measures
from biaslib.layout import RunLayout
from biaslib.models import ModelSpec, ModelSpecError, ResolvedModel, read_models_file, resolve_model

#: Environment variables that give (index, count) of this process among a sweep's processes, first match wins:
#: torchrun / accelerate, then scheduler arrays (SLURM, SGE-style PBS).
SHARD_VARIABLES: tuple[tuple[str, str], ...] = (("RANK", "WORLD_SIZE"),
                                                ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"))


def expand_runs(spec: ModelSpec) -> list[ResolvedModel]:
    """Every trained CLIP (the spec's ``ratios``, default ``mix.ratios``, × ``train.replicates``, of every
    variant) of the params file of a ``runs`` spec, named ``<spec name>-<ratio code>[_r<replicate>]``
    (``<spec name>-<experiment>-<ratio code>…`` when the file has variants); one error listing every missing
    checkpoint."""
    variants = variant_params(spec.params)
    models = []
    for params in variants:
        prefix = spec.name if len(variants) == 1 else f"{spec.name}-{params.experiment}"
        codes = list(dict.fromkeys(spec.ratios or params.mix.ratios))
        targets = ratio_targets(params, [(code, r) for code in codes for r in range(params.train.replicates)])
        models += [ResolvedModel(f"{prefix}-{t.stem}", t.checkpoint.model, t.checkpoint.path, t.checkpoint.sha256,
                                 {**spec.as_dict(), "experiment": params.experiment, "ratio": t.subject["ratio"],
                                  "replicate": str(t.subject["replicate"])}, epoch=t.checkpoint.epoch)
                   for t in targets]
    return models


def resolve_models(specs: Sequence[ModelSpec]) -> list[ResolvedModel]:
    """Every model of ``specs`` with its files found and hashed, ``runs`` specs expanded, in file order. Every
    problem of every spec is collected into one :class:`~biaslib.models.ModelSpecError` before anything
    loads; two models of one name are an error."""
    found, problems = [], []
    for spec in specs:
        try:
            found += expand_runs(spec) if spec.kind == "runs" else [resolve_model(spec)]
        except BiaslibError as exc:
            problems.append(f"  {exc}")
    names = [model.name for model in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"  model name(s) used twice: {', '.join(twice)}")
    if problems:
        raise ModelSpecError(f"{len(problems)} model spec problem(s):\n" + "\n".join(problems))
    return found


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` → (i, n) with 0 ≤ i < n; :class:`ValueError` otherwise."""
    index, _, count = text.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"--shard {text!r}: need 0 <= i < n")
    return shard


def shard_from_env(environ: dict[str, str] | None = None) -> tuple[int, int]:
    """(index, count) of this process from :data:`SHARD_VARIABLES` (SLURM array ids may start at 1: the index
    is taken modulo the count); (0, 1) when none is set."""
    environ = dict(os.environ if environ is None else environ)
    for index, count in SHARD_VARIABLES:
        if index in environ and count in environ:
            n = int(environ[count])
            return int(environ[index]) % n, n
    return 0, 1


def model_target(params: Params, model: ResolvedModel) -> Target:
    """The :class:`~biaslib.evaluate.Target` of a benchmarked model (study ``benchmark``, subject ``model``)."""
    checkpoint = CheckpointInfo(path=model.path, epoch=model.epoch, sha256=model.sha256, model=model.arch,
                                run=model.name)
    return Target("benchmark", {"model": model.name}, checkpoint, model.load,
                  RunLayout(params).study_results("benchmark"), model.name, extra={"model_spec": model.spec})


def run_benchmark(params: Params, models_file: str | Path, evaluations: Sequence[str] | None = None, *,
                  shard: tuple[int, int] = (0, 1), names: Sequence[str] | None = None, overwrite: bool = False,
                  progress: bool = True) -> list[Path]:
    """Evaluate this shard's models of ``models_file`` (every ``shard[1]``-th from ``shard[0]``, in file order;
    only ``names`` when given) on ``params``' evaluation data; returns their result paths (existing results with
    the same settings are kept). Every spec is resolved first: one error lists every problem before any model
    loads; a name in ``names`` that the file does not have is an error listing those it has."""
    models = resolve_models(read_models_file(models_file))
    if names is not None:
        unknown = sorted(set(names) - {m.name for m in models})
        if unknown:
            raise ModelSpecError(f"{models_file} has no model {', '.join(unknown)}; it has "
                                 f"{', '.join(m.name for m in models)}")
        models = [m for m in models if m.name in set(names)]
    mine = models[shard[0]::shard[1]]
    return evaluate_targets(params, [model_target(params, m) for m in mine], evaluations, overwrite, progress)


LEADERBOARD_COLUMNS = ["evaluation", "dataset", "attribute", "metric", "kind", "better", "model", "value", "ci_low",
                       "ci_high", "n", "p_value", "arch", "degenerate"]


def leaderboard(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (measure, model) of a benchmark :func:`~biaslib.results.collect` frame for the registered
    evaluations' measures (:func:`biaslib.evaluations.leaderboard_measures`): value, interval, n, the gap test's p
    where there is one, ``better`` (the direction) and ``degenerate`` (any of the model's results found its image
    embeddings collapsed, :mod:`biaslib.metrics.collapse`); sorted by measure, then from best to worst with degenerate
    models last: their small gaps come from seeing no difference at all, so they are shown but never ranked as fair."""
    parts = [measure.rows(frame).assign(better=measure.better) for measure in leaderboard_measures()]
    if not any(len(p) for p in parts):
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    flagged = set(frame.loc[frame["degenerate"].eq(True), "model"]) if "degenerate" in frame.columns else set()
    board = pd.concat(parts, ignore_index=True).assign(degenerate=lambda b: b["model"].isin(flagged))
    board = board[LEADERBOARD_COLUMNS]
    score = board["value"].abs().where(board["better"] != "higher", -board["value"])
    return (board.assign(_score=score).sort_values(["evaluation", "dataset", "attribute", "metric", "kind",
                                                    "degenerate", "_score"], kind="mergesort")
            .drop(columns="_score").reset_index(drop=True))


def leaderboard_figure(board: pd.DataFrame, title: str | None = None) -> Any:
    """One panel per leaderboard measure (:func:`biaslib.evaluations.leaderboard_measures`): each model's value with
    its interval. Where a measure has several rows per model (datasets, attributes, k), the panel shows each
    model's worst row (largest |value| where lower is better, smallest value where higher is better) — the same rule
    for every model, so the panels compare models, not rows; the CSV holds every row. A degenerate model's label
    says so."""
    import matplotlib.pyplot as plt

    from biaslib.figures import set_style

    set_style()
    panels = []
    for measure in leaderboard_measures():
        rows = measure.rows(board).dropna(subset=["value"])
        if len(rows):
            worst = rows["value"] if measure.better == "higher" else -rows["value"].abs()
            panels.append((measure, rows.loc[worst.groupby(rows["model"]).idxmin()]))
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(6.5, 0.45 + 0.32 * len(board["model"].unique())
                                                         * max(len(panels), 1)), squeeze=False)
    for ax, (measure, rows) in zip(axes[:, 0], panels):
        rows = rows.sort_values("model")
        y = range(len(rows))
        ax.errorbar(rows["value"], y, xerr=[(rows["value"] - rows["ci_low"]).clip(lower=0),
                                            (rows["ci_high"] - rows["value"]).clip(lower=0)], fmt="o", capsize=2)
        ax.set_yticks(list(y), [f"{m} (degenerate)" if d else m for m, d in zip(rows["model"], rows["degenerate"],
                                                                                 strict=True)])
        ax.set_title(f"{measure.evaluation} · {measure.kind} · {measure.label} ({measure.better})", fontsize=9,
                     loc="left")
        if measure.kind == "gap":
            ax.axvline(0, color="0.6", lw=0.8)
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["LEADERBOARD_COLUMNS", "SHARD_VARIABLES", "expand_runs", "leaderboard",
           "leaderboard_figure", "model_target", "parse_shard", "resolve_models", "run_benchmark", "shard_from_env"]
