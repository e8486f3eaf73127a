"""``biaslib mix …``: real and generated images mixed at each ratio, and the mixes' verification."""

from __future__ import annotations

import argparse
import json

from biaslib.cli.arguments import (
    add_params,
    add_ratios,
    parse_overrides,
)
from biaslib.config import load_params
from biaslib.layout import RunLayout


def cmd_mix_run(args: argparse.Namespace) -> int:
    """Write the mixed datasets at every ratio (or --ratio ones)."""
    from biaslib.mix import mix_run

    params = load_params(args.params, parse_overrides(args.set))
    layout = RunLayout(params)
    for manifest in mix_run(params, args.ratio, overwrite=args.overwrite).values():
        print(json.dumps({"ratio": manifest["ratio"], "out": str(layout.mix(manifest["ratio"])),
                          "n": manifest["n"], "counts": manifest["counts"], "shortfall": manifest["shortfall"],
                          "skipped_real": manifest["skipped_real"]["samples"]}))
    return 0


def cmd_mix_verify(args: argparse.Namespace) -> int:
    """Verify mixed datasets against their manifests."""
    from biaslib.mix import verify
    from biaslib.ratios import ratio_code

    params = load_params(args.params, parse_overrides(args.set))
    ok = True
    for ratio in args.ratio or params.mix.ratios:
        report = verify(RunLayout(params).mix(ratio), params.mix.allow_skipped_real)
        ok &= report.ok
        print(f"mix_{ratio_code(ratio)}: {'OK' if report.ok else 'FAILED'} {report.counts}")
        for problem in report.problems:
            print("  -", problem)
    return 0 if ok else 1


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib mix …``: nested ratio mixing of real and generated shards."""
    mixp = steps.add_parser("mix", help="nested ratio mixing of real and generated shards")
    mix_actions = mixp.add_subparsers(dest="action", required=True)
    for action, func, text in (("run", cmd_mix_run, "write the mixes"),
                               ("verify", cmd_mix_verify, "check the mixes against their manifests")):
        sub = mix_actions.add_parser(action, help=text)
        add_params(sub)
        add_ratios(sub)
        if action == "run":
            sub.add_argument("--overwrite", action="store_true", help="replace a mix made with other parameters")
        sub.set_defaults(func=func)
