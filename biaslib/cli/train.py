"""``biaslib train …``: one CLIP per ratio with open_clip_train."""

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


def cmd_train_run(args: argparse.Namespace) -> int:
    """Train (resume, or skip when finished) one CLIP per mixing ratio with open_clip_train."""
    from biaslib.train import train_ratio

    params = load_params(args.params, parse_overrides(args.set))
    for replicate in range(params.train.replicates):
        for ratio in args.ratio or params.mix.ratios:
            start = time.perf_counter()
            final = train_ratio(params, ratio, overwrite=args.overwrite, replicate=replicate)
            seconds = round(time.perf_counter() - start, 1)
            print(json.dumps({"ratio": str(ratio), "replicate": replicate, "checkpoint": str(final),
                              "seconds": seconds}))
    return 0


def cmd_train_command(args: argparse.Namespace) -> int:
    """Print the command that trains each ratio (``torchrun …`` when ``train.gpus`` > 1), for job scripts."""
    import shlex

    from biaslib.train import train_command

    params = load_params(args.params, parse_overrides(args.set))
    for replicate in range(params.train.replicates):
        for ratio in args.ratio or params.mix.ratios:
            print(shlex.join(train_command(params, ratio, replicate)))
    return 0


def cmd_train_list(args: argparse.Namespace) -> int:
    """Print the registry of an experiment's checkpoints (ratio, replicate, run name, epoch, path, final)."""
    from biaslib.train import checkpoints

    table = checkpoints(load_params(args.params, parse_overrides(args.set)))
    print(table.to_string(index=False) if len(table) else "no checkpoints")
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib train …``: train one CLIP per mixing ratio with open_clip_train."""
    trainp = steps.add_parser("train", help="train one CLIP per mixing ratio with open_clip_train")
    train_actions = trainp.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_train_run, "train (resumes from the last epoch; skips finished runs)"),
                               ("command", cmd_train_command, "print the training command per ratio (torchrun)"),
                               ("list", cmd_train_list, "list the experiment's checkpoints")):
        sub = train_actions.add_parser(action, help=text)
        add_params(sub)
        if action != "list":
            add_ratios(sub)
        if action == "run":
            sub.add_argument("--overwrite", action="store_true",
                             help="delete and retrain a run started with other settings")
        sub.set_defaults(func=func)
