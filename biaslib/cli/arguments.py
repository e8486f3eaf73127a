"""Argument helpers shared by the command groups: params and ratio options, typed values, ``--set`` overrides,
choices read from a registry when needed."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from biaslib.errors import BiaslibError


def add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=None,
                        help="params YAML (default: params/default.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a parameter, e.g. --set world.bias_strength=0 (repeatable)")


def add_ratios(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ratio", action="append", default=None, type=ratio_argument,
                        help="ratio as 20, 0.2 or 020 (repeatable; default: the params' list; the ambiguous 1 is "
                             "refused: 001 = 1 %%, 1.0 = 100 %%)")


def positive_number(kind: type) -> object:
    """argparse type: a number of ``kind`` (int or float) above 0, else a usage error naming the value."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def ratio_argument(text: str) -> str:
    """argparse type of ``--ratio``: its 3-digit code (:func:`biaslib.ratios.written_ratio`)."""
    from biaslib.ratios import written_ratio

    try:
        return written_ratio(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_value(text: str) -> object:
    """A command-line value: JSON when it parses (numbers, true/false, null, lists), else the string.

    (Not YAML: YAML 1.1 would read ``no`` as false and ``020`` as an octal number.)
    """
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BiaslibError(f"expected KEY=VALUE, got {pair!r}")
        out[key] = parse_value(value)
    return out


class Registered(Sequence):
    """Choices read from a registry when argparse first needs them (to check a value or print help), so building
    the parser imports nothing heavy (the face registries import torch)."""

    def __init__(self, names: Callable[[], list[str]]):
        self._names = names

    @functools.cached_property
    def _list(self) -> list[str]:
        return list(self._names())

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._list[index]

    def __len__(self) -> int:
        return len(self._list)
