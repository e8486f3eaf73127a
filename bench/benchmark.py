"""Benchmark: what `biaslib benchmark run` costs per model × evaluation on this machine, and what the feature cache
saves on a rerun (issue 18).

Each (model, evaluation) is run alone and timed three times:

* ``first``: nothing cached — the model is loaded and every image and text it needs is embedded;
* ``cached``: its result files deleted but the features kept — the evaluation recomputes its metrics from the
  stored features and loads no model (what a changed bootstrap setting or a new evaluation costs);
* ``rerun``: results kept — `bench run` finds them current and does nothing.

The headline ``speedup`` is the total ``first`` time over the total ``cached`` time.

``--quick`` (≤ 60 s): a small world export (60 PHASE, 50 COCO-bias, 30 FairFace validation faces, GeoDE 2 per
object × region) and two random tiny CLIPs (``biaslib-tiny-rn``, ``biaslib-tiny-vit``). Without it: the params
file's evaluation data (default ``params/default.yaml``, the demo's world export; run ``make demo`` first) and
the models file (default ``params/models.yaml``: three demo CLIPs and a random RN50).

Usage: ``python bench/benchmark.py [--quick] [--params FILE] [--models FILE]``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from _common import machine, print_result

from biaslib.config import EvalConfig, Params, load_params
from biaslib.layout import RunLayout
from biaslib.models import read_models_file
from biaslib.studies.benchmark.leaderboard import resolve_models, run_benchmark

QUICK_EVALUATIONS = ("retrieval", "markedness", "geode")


def quick_setup(root: Path) -> tuple[Params, Path]:
    """A small world export and a models file of two random tiny CLIPs under ``root``."""
    from biaslib.config import ExportConfig
    from biaslib.world import World
    from biaslib.world.export import export_all

    export = ExportConfig(cc3m_samples=100, cc3m_shard_size=100, phase_val=60, coco_images=50,
                          coco_captions_per_image=5, fairface_train=30, fairface_val=30, geode_per_object_region=2,
                          workers=1)
    exported = export_all(World(), root / "data", export)
    params = Params(experiment="bench_benchmark", runs_dir=root / "runs",
                    eval=EvalConfig(data_root=exported["phase"].parent, evaluations=QUICK_EVALUATIONS, n_boot=200,
                                    n_perm=200))
    models = root / "models.yaml"
    models.write_text("models:\n  tiny_rn: {arch: biaslib-tiny-rn, pretrained: none}\n"
                      "  tiny_vit: {arch: biaslib-tiny-vit, pretrained: none}\n")
    return params, models


def timed(params: Params, models: Path, name: str, evaluation: str) -> float:
    """Seconds of one `bench run` of one model and one evaluation."""
    start = time.perf_counter()
    run_benchmark(params, models, [evaluation], names=[name], progress=False)
    return time.perf_counter() - start


def measure(params: Params, models: Path) -> dict[str, dict[str, float]]:
    """``first``, ``cached`` and ``rerun`` seconds per ``<model>/<evaluation>``."""
    names = [m.name for m in resolve_models(read_models_file(models))]
    folder = RunLayout(params).study_results("benchmark")
    seconds: dict[str, dict[str, float]] = {}
    for name in names:
        for evaluation in params.eval.evaluations:
            first = timed(params, models, name, evaluation)
            rerun = timed(params, models, name, evaluation)
            (folder / f"{params.experiment}__{name}__{evaluation}.json").unlink()
            cached = timed(params, models, name, evaluation)
            seconds[f"{name}/{evaluation}"] = {"first": round(first, 2), "cached": round(cached, 2),
                                               "rerun": round(rerun, 3)}
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small world export and two random tiny CLIPs")
    parser.add_argument("--params", type=Path, default=None, help="params file (default params/default.yaml)")
    parser.add_argument("--models", type=Path, default=Path("params/models.yaml"), help="models file")
    args = parser.parse_args()
    logging.getLogger("biaslib").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            params, models = quick_setup(Path(tmp))
        else:
            base = load_params(args.params)  # its data, a results folder of its own (deleted at the end)
            params = load_params(args.params, {"experiment": "bench_benchmark", "runs_dir": str(Path(tmp) / "runs"),
                                               "eval.data_root": str(base.eval.data_root or RunLayout(base).data)})
            models = args.models
        start = time.perf_counter()
        seconds = measure(params, models)
        total = {kind: round(sum(s[kind] for s in seconds.values()), 2) for kind in ("first", "cached", "rerun")}
        print_result({"benchmark": "bench_run", "quick": args.quick, "models": str(models),
                      "evaluations": list(params.eval.evaluations), "seconds": seconds, "total": total,
                      "speedup": round(total["first"] / max(total["cached"], 1e-9), 2),
                      "wall_s": round(time.perf_counter() - start, 1), **machine()}, hide=("seconds",))


if __name__ == "__main__":
    main()
