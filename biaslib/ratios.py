"""Mixing-ratio codes: one spelling for "which share of the images is generated".

A ratio code is a 3-character string of the percent, ``"000"`` … ``"100"`` (used in folder names
such as ``mix_020``). The accepted spellings of a ratio and their meaning:

* ``float`` — a **fraction** in [0, 1]: ``0.2`` → ``"020"``, ``1.0`` → ``"100"``. The percent is
  rounded to the nearest integer (``0.57`` → ``"057"``; the original study truncated it to ``"056"``).
* ``int`` — a **percent** in [0, 100]: ``20`` → ``"020"``, ``1`` → ``"001"`` (not 100 %!).
* ``str`` of digits — a percent: ``"20"`` and ``"020"`` → ``"020"``; a string with a dot is a
  fraction: ``"0.2"`` → ``"020"``.

``bool`` is rejected (``True`` is an ``int`` in Python but never means a ratio). Anything outside
0–100 % raises :class:`ValueError` naming the value.

On the command line and in params and models files (:func:`written_ratio`, the :data:`RatioCode` fields) the bare
``1`` is refused: people write it for "all generated" as often as for 1 %;
``001`` or ``1.0`` say which.
"""

from __future__ import annotations

import math
import numbers
from typing import NewType

#: A params field that holds a ratio code (``"000"`` … ``"100"``); what a file writes there is read by
#: :func:`written_ratio`.
RatioCode = NewType("RatioCode", str)


def ratio_code(r: float | int | str) -> str:
    """The 3-digit percent code of ratio ``r`` (see the module docstring for the accepted spellings)."""
    return f"{_percent(r):03d}"


def model_code(r: float | int | str, replicate: int = 0) -> str:
    """The code of one trained model in run and result names: the ratio code for replicate 0 (``"020"``, the
    name of a single-replicate study) and ``"020_r<replicate>"`` for the others."""
    return ratio_code(r) + (f"_r{replicate}" if replicate else "")


def written_ratio(value: float | int | str) -> str:
    """The code of a ratio a person wrote (a ``--ratio`` argument, a params or models file: ``"020"``, ``0.2``,
    ``20``); the integer ``1`` (or the string ``"1"``) is an error: it means 1 % to Python and "all" to people."""
    if not isinstance(value, bool) and (value == 1 and isinstance(value, numbers.Integral)
                                        or isinstance(value, str) and value.strip() == "1"):
        raise ValueError("the ratio 1 is ambiguous: write 001 for 1 % generated images or 1.0 (or 100) for all of "
                         "them")
    return ratio_code(value)


def ratio_fraction(r: float | int | str) -> float:
    """The fraction of ratio ``r`` after rounding to its code: ``ratio_fraction("020") == 0.2``."""
    return _percent(r) / 100


def ratio_percent(r: float | int | str) -> int:
    """The integer percent 0…100 of ratio ``r``: ``ratio_percent(0.2) == 20``."""
    return _percent(r)


def _percent(r: float | int | str) -> int:
    if isinstance(r, bool):
        raise ValueError(f"ratio must be a fraction, a percent or a code, not the bool {r!r}")
    if isinstance(r, str):
        return _percent_of_string(r)
    if isinstance(r, numbers.Integral):
        return _checked(int(r), r, "percent")
    if isinstance(r, numbers.Real):
        value = float(r)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"ratio {r!r} is a float, read as a fraction, and must lie in [0, 1]")
        return round(value * 100)
    raise ValueError(f"ratio must be a float fraction, an int percent or a digit string, got {r!r}")


def _percent_of_string(text: str) -> int:
    stripped = text.strip()
    if "." in stripped:
        try:
            value = float(stripped)
        except ValueError:
            raise ValueError(f"ratio string {text!r} is neither a fraction like '0.2' nor a code like '020'") from None
        return _percent(value)
    if not stripped.isdigit() or not stripped.isascii():
        raise ValueError(f"ratio string {text!r} is neither a fraction like '0.2' nor a code like '020'")
    return _checked(int(stripped), text, "percent")


def _checked(percent: int, original: object, kind: str) -> int:
    if not 0 <= percent <= 100:
        raise ValueError(f"ratio {original!r} is read as a {kind} and must lie in 0…100")
    return percent
