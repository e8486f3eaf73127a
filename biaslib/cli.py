"""Command line: ``biaslib <step> <action> [options]``, one subcommand per pipeline step.

Each subcommand parses arguments and calls the library; notebooks call the same functions. Run
``biaslib --help`` for the list. Errors biaslib raises on purpose (bad params, missing data) print
one line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from biaslib.config import load_params
from biaslib.errors import BiaslibError


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None,
                        help="params YAML (default: params/default.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set world.bias_strength=0 (repeatable)")


def _overrides(pairs: list[str]) -> dict[str, object]:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BiaslibError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value)
    return out


def cmd_world_export(args: argparse.Namespace) -> int:
    """Write the synthetic world in every real dataset format."""
    from biaslib.world import World
    from biaslib.world.export import export_all

    params = load_params(args.params, _overrides(args.set))
    out = args.out or params.run_dir / "data"
    start = time.perf_counter()
    roots = export_all(World(params.world, params.seed), out, params.export, overwrite=args.overwrite)
    summary = {"out": str(out), "datasets": {k: str(v) for k, v in roots.items()},
               "seconds": round(time.perf_counter() - start, 1), "params_digest": params.digest()}
    print(json.dumps(summary, indent=1))
    return 0


def cmd_world_tables(args: argparse.Namespace) -> int:
    """Print the world's tabled conditionals at the params' bias strength."""
    from biaslib.world import World

    params = load_params(args.params, _overrides(args.set))
    for name, table in World(params.world, params.seed).conditionals().items():
        print(f"# p({name} | occupation), bias_strength={params.world.bias_strength}")
        print(table.round(3).to_string(), end="\n\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="biaslib", description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)

    world = steps.add_parser("world", help="the synthetic world")
    world_actions = world.add_subparsers(dest="action", required=True)
    export = world_actions.add_parser("export", help="write every real dataset format")
    _add_params(export)
    export.add_argument("--out", type=Path, default=None, help="output folder (default: <runs>/<experiment>/data)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace an export made with other parameters in --out")
    export.set_defaults(func=cmd_world_export)
    tables = world_actions.add_parser("tables", help="print the tabled conditionals")
    _add_params(tables)
    tables.set_defaults(func=cmd_world_tables)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biaslib`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BiaslibError as err:
        print(f"biaslib: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
