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


def _generation_paths(args: argparse.Namespace, params) -> tuple[Path, Path]:
    captions = args.captions or params.run_dir / "data" / "cc3m"
    out = args.out or params.run_dir / "generated" / args.name
    return captions, out


def cmd_generate_run(args: argparse.Namespace) -> int:
    """Generate one image per caption into webdataset shards (this process's rank share)."""
    from biaslib.generate import generate, read_captions
    from biaslib.world import World

    params = load_params(args.params, _overrides(args.set))
    captions_path, out = _generation_paths(args, params)
    report = generate(read_captions(captions_path), out, params.generate, world=World(params.world, params.seed),
                      max_items=args.max_items, overwrite=args.overwrite, rank=args.rank, world_size=args.world_size)
    print(json.dumps({"out": str(report.out_dir), "rank": report.rank, "world_size": report.world_size,
                      "images": report.images, "images_per_s": round(report.images_per_s, 2),
                      "shards_done": len(report.shards_done), "shards_skipped": len(report.shards_skipped),
                      "stopped_early": report.stopped_early, "skipped_empty_captions": len(report.skipped_empty)}))
    return 0


def cmd_generate_verify(args: argparse.Namespace) -> int:
    """Check that every caption id was generated exactly once."""
    from biaslib.generate import read_captions, verify

    params = load_params(args.params, _overrides(args.set))
    captions_path, out = _generation_paths(args, params)
    check = verify(out, read_captions(captions_path))
    print(check.summary())
    return 0 if check.ok else 1


def mix_folders(params) -> tuple[Path, Path, Path]:
    """(real shards, generated shards, mixes folder) of an experiment."""
    return (params.run_dir / "data" / "cc3m", params.run_dir / "generated" / params.mix.generated,
            params.run_dir / "mixes" / params.mix.generated)


def cmd_mix_run(args: argparse.Namespace) -> int:
    """Write the mixed datasets at every ratio (or --ratio ones)."""
    from biaslib.mix import mix

    params = load_params(args.params, _overrides(args.set))
    real, generated, out = mix_folders(params)
    for ratio in args.ratio or params.mix.ratios:
        manifest = mix(real, generated, out, ratio, seed=params.mix.seed,
                       allow_shortfall=params.mix.allow_shortfall, overwrite=args.overwrite)
        print(json.dumps({"ratio": manifest["ratio"], "out": str(out / f"mix_{manifest['ratio']}"),
                          "n": manifest["n"], "counts": manifest["counts"], "shortfall": manifest["shortfall"]}))
    return 0


def cmd_mix_verify(args: argparse.Namespace) -> int:
    """Verify mixed datasets against their manifests."""
    from biaslib.mix import verify
    from biaslib.ratios import ratio_code

    params = load_params(args.params, _overrides(args.set))
    _, _, out = mix_folders(params)
    ok = True
    for ratio in args.ratio or params.mix.ratios:
        report = verify(out / f"mix_{ratio_code(ratio)}")
        ok &= report.ok
        print(f"mix_{ratio_code(ratio)}: {'OK' if report.ok else 'FAILED'} {report.counts}")
        for problem in report.problems:
            print("  -", problem)
    return 0 if ok else 1


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

    gen = steps.add_parser("generate", help="text-to-image generation into webdataset shards")
    gen_actions = gen.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_generate_run, "generate (resumes finished shards)"),
                               ("verify", cmd_generate_verify, "check every id appears exactly once")):
        sub = gen_actions.add_parser(action, help=text)
        _add_params(sub)
        sub.add_argument("--captions", type=Path, default=None,
                         help="caption table or CC3M export folder (default: <runs>/<experiment>/data/cc3m)")
        sub.add_argument("--name", default="default", help="generation run name (default: default)")
        sub.add_argument("--out", type=Path, default=None,
                         help="shard folder (default: <runs>/<experiment>/generated/<name>)")
        sub.set_defaults(func=func)
        if action == "run":
            sub.add_argument("--max-items", type=int, default=None, help="stop after this many images (resumable)")
            sub.add_argument("--overwrite", action="store_true", help="replace images made with other settings")
            sub.add_argument("--rank", type=int, default=None, help="this process's rank (default: $RANK or 0)")
            sub.add_argument("--world-size", type=int, default=None,
                             help="number of processes (default: $WORLD_SIZE or 1)")

    mixp = steps.add_parser("mix", help="nested ratio mixing of real and generated shards")
    mix_actions = mixp.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_mix_run, "write the mixes"),
                               ("verify", cmd_mix_verify, "check the mixes against their manifests")):
        sub = mix_actions.add_parser(action, help=text)
        _add_params(sub)
        sub.add_argument("--ratio", action="append", default=None,
                         help="ratio as 20, 0.2 or 020 (repeatable; default: the params' list)")
        if action == "run":
            sub.add_argument("--overwrite", action="store_true", help="replace a mix made with other parameters")
        sub.set_defaults(func=func)
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
