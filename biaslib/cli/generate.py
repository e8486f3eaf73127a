"""``biaslib generate …``: one image per caption, resumable, and its verification."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
    positive_number,
)
from biaslib.config import load_params


def cmd_generate_run(args: argparse.Namespace) -> int:
    """Generate one image per caption into webdataset shards (this process's rank share)."""
    from biaslib.generate import generate_run

    params = load_params(args.params, parse_overrides(args.set))
    report = generate_run(params, args.name, captions=args.captions, out=args.out, max_items=args.max_items,
                          overwrite=args.overwrite, rank=args.rank, world_size=args.world_size)
    print(json.dumps({"out": str(report.out_dir), "rank": report.rank, "world_size": report.world_size,
                      "images": report.images, "kept": report.kept, "discarded_unfinished": report.discarded,
                      "images_per_s": round(report.images_per_s, 2),
                      "shards_done": len(report.shards_done), "shards_skipped": len(report.shards_skipped),
                      "stopped_early": report.stopped_early, "skipped_empty_captions": len(report.skipped_empty)}))
    return 0


def cmd_generate_verify(args: argparse.Namespace) -> int:
    """Check that every caption id was generated exactly once."""
    from biaslib.generate import read_captions, run_paths, verify

    params = load_params(args.params, parse_overrides(args.set))
    captions_path, out = run_paths(params, args.name, args.captions, args.out)
    check = verify(out, read_captions(captions_path))
    print(check.summary())
    return 0 if check.ok else 1


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib generate …``: text-to-image generation into webdataset shards."""
    gen = steps.add_parser("generate", help="text-to-image generation into webdataset shards")
    gen_actions = gen.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_generate_run, "generate (resumes finished shards)"),
                               ("verify", cmd_generate_verify, "check every id appears exactly once")):
        sub = gen_actions.add_parser(action, help=text)
        add_params(sub)
        sub.add_argument("--captions", type=Path, default=None,
                         help="caption table or CC3M export folder (default: <runs>/<experiment>/data/cc3m)")
        sub.add_argument("--name", default=None,
                         help="generation run name (default: the params' mix.generated, the run mixing reads)")
        sub.add_argument("--out", type=Path, default=None,
                         help="shard folder (default: <runs>/<experiment>/generated/<name>)")
        sub.set_defaults(func=func)
        if action == "run":
            sub.add_argument("--max-items", type=positive_number(int), default=None,
                             help="stop after this many images (resumable)")
            sub.add_argument("--overwrite", action="store_true", help="replace images made with other settings")
            sub.add_argument("--rank", type=int, default=None, help="this process's rank (default: $RANK or 0)")
            sub.add_argument("--world-size", type=int, default=None,
                             help="number of processes (default: $WORLD_SIZE or 1)")
