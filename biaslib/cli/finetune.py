"""``biaslib finetune …``: fine-tune a diffusion pipeline on a prompt/image dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    parse_overrides,
)
from biaslib.errors import BiaslibError


def cmd_finetune_run(args: argparse.Namespace) -> int:
    """Fine-tune a text-to-image pipeline folder on an imagefolder or webdataset shards."""
    import dataclasses

    from biaslib.finetune import FinetuneConfig, finetune, load_finetune_dataset
    from biaslib.generate import GenerateConfig, load_pipeline

    options = parse_overrides(args.opt)
    known = {f.name for f in dataclasses.fields(FinetuneConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BiaslibError(f"unknown fine-tuning option {unknown[0]}; allowed: {', '.join(sorted(known))}")
    try:
        config = FinetuneConfig(output_dir=args.out, **options)
    except (TypeError, ValueError) as err:
        raise BiaslibError(f"fine-tuning options: {err}") from None
    dataset = load_finetune_dataset(args.data, resolution=config.resolution, center_crop=config.center_crop,
                                    random_flip=config.random_flip, image_column=config.image_column,
                                    caption_column=config.caption_column)
    pipe = load_pipeline(GenerateConfig(model=str(args.pipeline), dtype="fp32"))
    result = finetune(pipe, dataset, config)
    print(json.dumps({"output_dir": str(args.out), "global_step": result.global_step,
                      "train_seconds": round(result.train_seconds, 1)}))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib finetune …``: fine-tune a text-to-image pipeline (biaslib.finetune)."""
    ft = steps.add_parser("finetune", help="fine-tune a text-to-image pipeline (biaslib.finetune)")
    ft_actions = ft.add_subparsers(dest="action", required=True)
    ft_run = ft_actions.add_parser("run", help="fine-tune; resumable with --opt resume_from_checkpoint=latest")
    ft_run.add_argument("--pipeline", type=Path, required=True, help="diffusers pipeline folder to start from")
    ft_run.add_argument("--data", type=Path, required=True, help="imagefolder with metadata.jsonl, or shards")
    ft_run.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, final pipeline)")
    ft_run.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                        help="FinetuneConfig field, e.g. --opt learning_rate=1e-4 --opt mixed_precision=bf16")
    ft_run.set_defaults(func=cmd_finetune_run)
