"""``biaslib results …``: every result of a params file in one tidy table."""

from __future__ import annotations

import argparse
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
)
from biaslib.config import load_params
from biaslib.errors import BiaslibError

#: What `results collect` counts per study: (grouped by, besides experiment; counted; its name).
_COLLECT_SUMMARY = {"amplification": ("evaluation", "ratio", "ratios"),
                    "multilingual": ("section", "language", "languages"),
                    "benchmark": ("evaluation", "model", "models")}


def cmd_results_collect(args: argparse.Namespace) -> int:
    """Aggregate result JSONs into one tidy table (CSV or parquet by suffix; stdout summary)."""
    from biaslib.io import write_csv, write_parquet
    from biaslib.results import collect

    source = args.root if args.root is not None else load_params(args.params, parse_overrides(args.set))
    if args.out is not None and args.out.suffix not in (".csv", ".parquet"):
        raise BiaslibError(f"--out {args.out}: write .csv or .parquet (no other table format is written)")
    frame = collect(source, skip_bad=args.skip_bad, study=args.study)
    if args.out is not None:
        (write_parquet if args.out.suffix == ".parquet" else write_csv)(args.out, frame)
    by, counted, name = _COLLECT_SUMMARY[args.study]
    print(frame.groupby(["experiment", by])[counted].nunique().rename(name).to_string() if len(frame)
          else "no results")
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib results …``: aggregate result JSONs."""
    resultsp = steps.add_parser("results", help="aggregate result JSONs")
    results_actions = resultsp.add_subparsers(dest="action", required=True)
    collect = results_actions.add_parser("collect", help="one tidy table of every result row")
    add_params(collect)
    collect.add_argument("--root", type=Path, default=None,
                         help="results, experiment or runs folder (default: the params' experiment)")
    collect.add_argument("--out", type=Path, default=None, help="write the table (.csv or .parquet)")
    collect.add_argument("--skip-bad", action="store_true", help="skip malformed JSON files with a warning")
    collect.add_argument("--study", choices=tuple(_COLLECT_SUMMARY), default="amplification",
                         help="whose results to read (one schema, one table per study; default amplification)")
    collect.set_defaults(func=cmd_results_collect)
