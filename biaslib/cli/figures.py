"""``biaslib figures …``: the amplification study's figures from its results."""

from __future__ import annotations

import argparse
from pathlib import Path

from biaslib.cli.arguments import (
    add_params,
    parse_overrides,
    positive_number,
)


def cmd_figures_draw(args: argparse.Namespace) -> int:
    """Draw the amplification study's figures (every variant of the params file) and print its findings."""
    from biaslib.config import REPO_ROOT
    from biaslib.studies.amplification.figures import draw_study

    drawn = draw_study(args.params, parse_overrides(args.set), args.figures_dir or REPO_ROOT / "figures", k=args.k,
                       amplification=not args.no_amplification)
    for name, path in drawn["figures"].items():
        print(f"{name}: {path}")
    for section, lines in drawn["findings"].items():
        print(f"\n## {section}")
        print("\n".join(f"- {line}" for line in lines) or "- none")
    if drawn["missing"]:
        print(f"\nno results yet for {', '.join(drawn['missing'])}")
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib figures …``: the amplification study's figures and findings (notebook 05)."""
    figuresp = steps.add_parser("figures", help="the amplification study's figures and findings (notebook 05)")
    figures_actions = figuresp.add_subparsers(dest="action", required=True)
    draw = figures_actions.add_parser("draw", help="draw every figure from the result JSONs and print the findings")
    add_params(draw)
    draw.add_argument("--figures-dir", type=Path, default=None, help="output folder (default: <repo>/figures)")
    draw.add_argument("--k", type=positive_number(int), default=1, help="retrieval cut-off drawn: R@k (default 1)")
    draw.add_argument("--no-amplification", action="store_true",
                      help="skip the generator-vs-data amplification (it reads the generated images)")
    draw.set_defaults(func=cmd_figures_draw)
