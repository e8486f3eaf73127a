"""``biaslib prompts …``: multilingual template and MAGBIG prompt tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    parse_overrides,
    parse_value,
)
from biaslib.errors import BiaslibError


def cmd_prompts_write(args: argparse.Namespace) -> int:
    """Write the template or MAGBIG prompt table in the given languages (offline translation)."""
    from biaslib.prompts import write_prompt_table

    subset = parse_value(args.subset) if args.subset else None
    if subset is not None and not isinstance(subset, dict):
        raise BiaslibError(f"--subset must be a JSON object such as '{{\"profession\": 10}}', got {args.subset!r}")
    models = dict(parse_overrides(args.model)) if args.model else None
    languages = args.language or ("en", "de", "zh", "ja")
    table = write_prompt_table(args.out, languages, prompt_set=args.prompt_set, subset=subset, model_paths=models)
    print(json.dumps({"out": str(args.out), "rows": len(table), "languages": sorted(table["language"].unique())}))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib prompts …``: multilingual template and MAGBIG prompt tables."""
    promptsp = steps.add_parser("prompts", help="multilingual template and MAGBIG prompt tables")
    prompt_actions = promptsp.add_subparsers(dest="action", required=True)
    write = prompt_actions.add_parser("write", help="write a prompt table (offline translation)")
    write.add_argument("--out", type=Path, required=True, help="output table (.csv or .parquet)")
    write.add_argument("--language", action="append", default=None,
                       help="en | de | zh | ja or the MAGBIG name (repeatable; default: all four)")
    write.add_argument("--prompt-set", default="template", choices=["template", "magbig"])
    write.add_argument("--subset", default=None,
                       help='JSON object: slot -> first N values or a list, e.g. \'{"profession": 10}\'')
    write.add_argument("--model", action="append", default=[], metavar="LANG=FOLDER",
                       help="local seq2seq translation model per language (default: the shipped dictionaries)")
    write.set_defaults(func=cmd_prompts_write)
