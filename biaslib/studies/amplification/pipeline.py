"""The amplification study end to end for one experiment: export → generate → mix → train → eval.

Each step calls the same library function as its notebook and CLI command and skips work already
done (finished shards, mixes, checkpoints and results are reused), so :func:`run_experiment` is safe
to rerun after an interruption. :func:`run_study` runs every variant of a params file
(``variants:``, see :func:`biaslib.config.variant_params`) in turn; figures are drawn afterwards from
the results alone (``notebooks/05_figures.ipynb``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from biaslib.config import Params, load_params, variant_params
from biaslib.errors import BiaslibError
from biaslib.layout import RunLayout

STEPS = ("export", "generate", "mix", "train", "eval")

log = logging.getLogger(__name__)


def _export(params: Params) -> None:
    from biaslib.world import World
    from biaslib.world.export import export_all

    export_all(World(params.world, params.seed), RunLayout(params).data, params.export)


def _generate(params: Params) -> None:
    from biaslib.generate import generate_run

    model = params.generate.model
    if model != "simulator" and not Path(model).is_dir():
        raise BiaslibError(f"generate.model {model} is not a folder; for the world's tiny diffusion pipeline run "
                           f"`biaslib world train-pipeline --out {model}` first (`make study` shows the options)")
    for replicate in params.data_replicates():
        generate_run(params.for_replicate(replicate))


def _mix(params: Params) -> None:
    from biaslib.mix import mix_run

    for replicate in params.data_replicates():
        mix_run(params.for_replicate(replicate))


def _train(params: Params) -> None:
    from biaslib.train import train_sweep

    train_sweep(params)


def _eval(params: Params) -> None:
    from biaslib.evaluate import evaluate_sweep

    evaluate_sweep(params)


_RUNNERS: dict[str, Callable[[Params], None]] = {"export": _export, "generate": _generate, "mix": _mix,
                                                 "train": _train, "eval": _eval}


def run_experiment(params: Params, steps: Sequence[str] = STEPS) -> dict[str, float]:
    """Run ``steps`` (in pipeline order) for one experiment; returns wall seconds per step."""
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown study step(s) {unknown}; steps: {', '.join(STEPS)}")
    seconds = {}
    for step in (s for s in STEPS if s in steps):
        start = time.perf_counter()
        log.info("%s: %s", params.experiment, step)
        _RUNNERS[step](params)
        seconds[step] = round(time.perf_counter() - start, 1)
    return seconds


def run_study(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
              steps: Sequence[str] = STEPS, variants: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """:func:`run_experiment` for every variant of the params file (or only ``variants``); returns
    ``{experiment: {step: seconds}}``. A params file with a ``control`` section first has its design checked and
    its test declared (:func:`.control.declare`), before anything is trained."""
    if load_params(path, overrides).control.pairs:
        from biaslib.studies.amplification.control import declare

        declare(path, overrides)
    if variants is None:
        chosen = variant_params(path, overrides)
    else:
        chosen = [load_params(path, overrides, variant=name) for name in variants]
    return {params.experiment: run_experiment(params, steps) for params in chosen}
