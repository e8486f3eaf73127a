"""Command line: ``biaslib <step> <action> [options]``, one subcommand per pipeline step.

Each subcommand parses arguments and calls the library; notebooks call the same functions. Run
``biaslib --help`` for the list. Errors biaslib raises on purpose (bad params, missing data, invalid
values: ``BiaslibError`` and ``ValueError``) print one line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from biaslib import __version__
from biaslib.cli import (
    amplification,
    benchmark,
    evaluate,
    faces,
    features,
    figures,
    finetune,
    generate,
    mix,
    multilingual,
    prompts,
    results,
    train,
    world,
)
from biaslib.errors import BiaslibError

#: Commands renamed in 0.1 (issue 28): old name → new name. The old name still works, with a note, for one release.
RENAMED = {"bench": "benchmark", "study": "amplification"}


#: The command groups in the order --help lists them: the amplification pipeline, then the studies and the
#: multilingual steps.
GROUPS = (world, generate, mix, train, features, evaluate, benchmark, results, figures, amplification, prompts,
          finetune, faces, multilingual)


def build_parser() -> argparse.ArgumentParser:
    """The ``biaslib`` argument parser: one sub-command group per step or study, each added by the
    ``add_commands`` of its module in :mod:`biaslib.cli`."""
    parser = argparse.ArgumentParser(prog="biaslib", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("--version", action="version", version=f"biaslib {__version__}")
    steps = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(steps)
    return parser


@contextlib.contextmanager
def _warnings_once_per_kind() -> Iterator[None]:
    """While a command runs, each kind of warning (category and message) prints one line, without the source line
    Python shows: ``biaslib: warning: RuntimeWarning: Mean of empty slice``."""
    shown: set[tuple[type, str]] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        kind = (category, str(message))
        if kind not in shown:
            shown.add(kind)
            print(f"biaslib: warning: {category.__name__}: {message}", file=sys.stderr)

    with warnings.catch_warnings():  # restores showwarning afterwards
        warnings.showwarning = show
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biaslib`` console script."""
    args = build_parser().parse_args(argv)
    if args.command in RENAMED:
        print(f"biaslib: note: `biaslib {args.command}` is now `biaslib {RENAMED[args.command]}`; the old name "
              "goes in the next release", file=sys.stderr)
    try:
        with _warnings_once_per_kind():
            return args.func(args)
    except (BiaslibError, ValueError) as err:  # bad params, data or arguments: one line, no traceback
        print(f"biaslib: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biaslib: interrupted (finished work is kept; rerun the command to resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `biaslib … | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as err:  # an unwritable or misnamed path: the message names it
        print(f"biaslib: error: {err} (check the path and its permissions)", file=sys.stderr)
        return 2

