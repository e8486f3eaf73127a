"""``biaslib benchmark …`` (``bench`` before): any CLIP of a models file × the evaluations, and the leaderboard."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
)
from biaslib.config import load_params
from biaslib.errors import BiaslibError
from biaslib.evaluations import list_evaluations
from biaslib.layout import RunLayout


def cmd_bench_run(args: argparse.Namespace) -> int:
    """Evaluate this shard's models of a models file: one result JSON per (model, evaluation)."""
    from biaslib.studies.benchmark.leaderboard import parse_shard, run_benchmark, shard_from_env

    params = load_params(args.params, parse_overrides(args.set))
    shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
    start = time.perf_counter()
    paths = run_benchmark(params, args.models, args.evaluation, shard=shard, overwrite=args.overwrite)
    print(json.dumps({"shard": f"{shard[0]}/{shard[1]}", "results": [str(p) for p in paths],
                      "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def cmd_bench_leaderboard(args: argparse.Namespace) -> int:
    """The benchmark's leaderboard (CSV) and its figure from the written results."""
    from biaslib.figures import save_figure
    from biaslib.io import write_csv
    from biaslib.results import collect
    from biaslib.studies.benchmark.leaderboard import leaderboard, leaderboard_figure

    params = load_params(args.params, parse_overrides(args.set))
    board = leaderboard(collect(params, study="benchmark"))
    if board.empty:
        folder = RunLayout(params).study_results("benchmark")
        raise BiaslibError(f"no benchmark results under {folder}; run `biaslib benchmark run --models …` first")
    if args.out is not None:
        write_csv(args.out, board)
    if args.figures_dir is not None:
        save_figure(leaderboard_figure(board), args.figures_dir / f"{params.experiment}_benchmark_leaderboard")
    print(board[["evaluation", "dataset", "attribute", "metric", "kind", "model", "value", "ci_low", "ci_high"]]
          .to_string(index=False))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib benchmark …``: any CLIP × the bias evaluations (the benchmark study, notebook 06)."""
    benchp = steps.add_parser("benchmark", aliases=["bench"],
                              help="benchmark any CLIP for social bias (models file × evaluations)")
    bench_actions = benchp.add_subparsers(dest="action", required=True)
    run = bench_actions.add_parser("run", help="write runs/<exp>/results/benchmark/<exp>__<model>__<evaluation>.json")
    add_params(run)
    run.add_argument("--models", type=Path, required=True, help="models file (e.g. params/models.yaml)")
    run.add_argument("--evaluation", action="append", default=None, choices=list_evaluations(), metavar="NAME",
                     help=f"{' | '.join(list_evaluations())} (repeatable; default: eval.evaluations)")
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="evaluate every N-th model from the I-th (default: RANK/WORLD_SIZE or the SLURM array "
                          "task, else 0/1)")
    run.add_argument("--overwrite", action="store_true", help="recompute results made with other settings")
    run.set_defaults(func=cmd_bench_run)
    board = bench_actions.add_parser("leaderboard", help="one row per model and measure, with intervals; figure")
    add_params(board)
    board.add_argument("--out", type=Path, default=None, help="write the table (.csv)")
    board.add_argument("--figures-dir", type=Path, default=None,
                       help="draw <experiment>_benchmark_leaderboard.png/.pdf there")
    board.set_defaults(func=cmd_bench_leaderboard)
