"""Classifier-error correction for face labels: the matrix method lives in :mod:`biaslib.metrics.correction`
(a pure function of counts, used by both studies' metrics) and is re-exported here with the faces-side helper
:func:`gender_from_prompt` (the gender a prompt states, for confusion matrices from gender-stating prompts)."""

from __future__ import annotations

import re

from biaslib.metrics.correction import (
    STATUS_EMPTY,
    STATUS_OK,
    STATUS_UNINFORMATIVE,
    Confusion,
    corrected_shares,
    estimate_confusion,
    invert_shares,
    rate_draws,
    share_draws,
)

_WOMAN_WORDS = {"woman", "women", "female", "girl", "girls", "lady", "ladies"}
_MAN_WORDS = {"man", "men", "male", "boy", "boys", "gentleman", "gentlemen"}


def gender_from_prompt(prompt: str) -> str | None:
    """``woman`` / ``man`` if the prompt names exactly one of the two (``"a photo of a female nurse"``), else None."""
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    woman, man = bool(words & _WOMAN_WORDS), bool(words & _MAN_WORDS)
    return "woman" if woman and not man else "man" if man and not woman else None


__all__ = ["STATUS_EMPTY", "STATUS_OK", "STATUS_UNINFORMATIVE", "Confusion", "corrected_shares", "estimate_confusion",
           "gender_from_prompt", "invert_shares", "rate_draws", "share_draws"]
