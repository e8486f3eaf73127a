"""``biaslib eval …``: the bias evaluations of each ratio's CLIP."""

from __future__ import annotations

import argparse
import json
import time

from biaslib.cli.arguments import (
    add_params,
    add_ratios,
    parse_overrides,
)
from biaslib.config import load_params
from biaslib.evaluations import list_evaluations


def cmd_eval_run(args: argparse.Namespace) -> int:
    """Evaluate each ratio's CLIP: one result JSON per (experiment, ratio, evaluation)."""
    from biaslib.evaluate import evaluate_sweep

    params = load_params(args.params, parse_overrides(args.set))
    start = time.perf_counter()
    paths = evaluate_sweep(params, args.ratio, args.evaluation, overwrite=args.overwrite)
    print(json.dumps({"results": [str(p) for p in paths], "seconds": round(time.perf_counter() - start, 1)}))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib eval …``: evaluate each ratio's CLIP (the registered evaluations,
    :func:`biaslib.evaluations.list_evaluations`)."""
    evalp = steps.add_parser("eval", help=f"evaluate each ratio's CLIP ({', '.join(list_evaluations())})")
    eval_actions = evalp.add_subparsers(dest="action", required=True)
    eval_run = eval_actions.add_parser("run", help="write runs/<exp>/results/<exp>__<ratio>__<evaluation>.json")
    add_params(eval_run)
    add_ratios(eval_run)
    eval_run.add_argument("--evaluation", action="append", default=None, choices=list_evaluations(),
                          metavar="NAME", help=f"{' | '.join(list_evaluations())} (repeatable; default: "
                                               "eval.evaluations)")
    eval_run.add_argument("--overwrite", action="store_true", help="recompute results made with other settings")
    eval_run.set_defaults(func=cmd_eval_run)
