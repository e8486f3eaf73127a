"""``biaslib world …``: export the synthetic world in every dataset's format, its tables, and its tiny pipeline."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
    positive_number,
)
from biaslib.config import load_params
from biaslib.layout import RunLayout


def cmd_world_export(args: argparse.Namespace) -> int:
    """Write the synthetic world in every real dataset format."""
    from biaslib.world import World
    from biaslib.world.export import export_all

    params = load_params(args.params, parse_overrides(args.set))
    out = args.out or RunLayout(params).data
    start = time.perf_counter()
    roots = export_all(World(params.world, params.seed), out, params.export, overwrite=args.overwrite)
    summary = {"out": str(out), "datasets": {k: str(v) for k, v in roots.items()},
               "seconds": round(time.perf_counter() - start, 1),
               "params_digest": params.digest(("seed", "world", "export"))}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_world_tables(args: argparse.Namespace) -> int:
    """Print the world's tabled conditionals at the params' bias strength."""
    from biaslib.world import World

    params = load_params(args.params, parse_overrides(args.set))
    for name, table in World(params.world, params.seed).conditionals().items():
        print(f"# p({name} | occupation), bias_strength={params.world.bias_strength}")
        print(table.round(3).to_string(), end="\n\n")
    return 0


def cmd_world_train_pipeline(args: argparse.Namespace) -> int:
    """Train (or reuse) the world's tiny diffusion pipeline with biaslib.finetune."""
    from biaslib.world import World
    from biaslib.world_models.tiny_pipeline_training import train_world_pipeline

    params = load_params(args.params, parse_overrides(args.set))
    out = args.out or RunLayout(params).tiny_pipeline
    path = train_world_pipeline(World(params.world, params.seed), out, minutes=args.minutes, overwrite=args.overwrite,
                                max_steps=args.max_steps, text_encoder=args.text_encoder,
                                text_encoder_model=args.text_encoder_model)
    print(json.dumps({"pipeline": str(path), **json.loads((path / "biaslib_train.json").read_text())}, default=str))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib world …``: the synthetic world."""
    world = steps.add_parser("world", help="the synthetic world")
    world_actions = world.add_subparsers(dest="action", required=True)
    export = world_actions.add_parser("export", help="write every real dataset format")
    add_params(export)
    export.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/<experiment>/data)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an export made with other parameters in --out")
    export.set_defaults(func=cmd_world_export)
    tables = world_actions.add_parser("tables", help="print the tabled conditionals")
    add_params(tables)
    tables.set_defaults(func=cmd_world_tables)
    tiny = world_actions.add_parser("train-pipeline", help="train (or reuse) the world's tiny diffusion pipeline")
    add_params(tiny)
    tiny.add_argument("--minutes", type=positive_number(float), default=12.0, help="CPU training budget (default 12)")
    tiny.add_argument("--max-steps", type=positive_number(int), default=None,
                      help="fix the number of updates instead of deriving it from --minutes at the measured speed "
                           "(the same pipeline on any machine and under any load)")
    tiny.add_argument("--out", type=Path, default=None, help="folder (default: <runs>/cache/tiny_pipeline)")
    tiny.add_argument("--overwrite", action="store_true", help="replace a pipeline trained with other settings")
    tiny.add_argument("--text-encoder", type=Path, default=None,
                      help="open_clip checkpoint or run folder (its newest epoch) whose text tower is the frozen text "
                           "encoder, e.g. runs/world_default/clip/world_default_000 (default: train one from scratch)")
    tiny.add_argument("--text-encoder-model", default="biaslib-tiny-rn",
                      help="open_clip model name of --text-encoder (default biaslib-tiny-rn)")
    tiny.set_defaults(func=cmd_world_train_pipeline)
