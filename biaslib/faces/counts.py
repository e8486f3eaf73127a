"""Per-image face outcomes and per-occupation (and per-language) counts, as a table and as MAGBIG text.

Every image has one outcome: ``no_face`` (nothing detected), ``multiple_faces`` (more than one),
or, for exactly one face, its gender read by the classifier (``man`` / ``woman``; the labels of
every biaslib classifier map onto these through :data:`GENDER_ALIASES`) or ``other`` (an
``unsure`` label, or a face left unclassified). MAGBIG classifies only images with exactly one
face (formats.md C4–C5); so does this. Images with no or several faces are counted, never fatal.

The text format (formats.md C5) has two lines per occupation, in table order: the name, then
``man: X, woman: Y``; :func:`read_magbig_counts` reads it back and ignores anything else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from biaslib.io import write_text

#: Classifier gender labels → ``man`` / ``woman``.
GENDER_ALIASES: dict[str, str] = {
    "man": "man", "male": "man", "Male": "man", "woman": "woman", "female": "woman", "Female": "woman",
}
OUTCOMES: tuple[str, ...] = ("man", "woman", "no_face", "multiple_faces", "other")
_COUNT_LINE = re.compile(r"\s*man:\s*(\d+)\s*,\s*woman:\s*(\d+)\s*")


def image_outcomes(n_faces: Sequence[int], gender: Sequence[object]) -> np.ndarray:
    """Outcome per image (see the module docstring) from its face count and its single face's gender label.

    ``gender`` is read only where ``n_faces == 1``; missing or unknown labels give ``other``.
    """
    n = np.asarray(n_faces, dtype=np.int64)
    if len(n) != len(gender):
        raise ValueError(f"n_faces has {len(n)} entries but gender has {len(gender)}")
    if (n < 0).any():
        raise ValueError("n_faces must be non-negative")
    mapped = np.array([GENDER_ALIASES.get(g, "other") if isinstance(g, str) else "other" for g in gender], dtype=object)
    return np.where(n == 0, "no_face", np.where(n > 1, "multiple_faces", mapped)).astype(object)


def face_counts(frame: pd.DataFrame, by: Sequence[str] = ("occupation",), outcome: str = "outcome",
                groups: pd.DataFrame | Sequence[str] | None = None) -> pd.DataFrame:
    """Count outcomes per group: one row per group with ``images`` and one column per outcome.

    Parameters
    ----------
    frame : DataFrame
        One row per image with the ``by`` columns and an ``outcome`` column (:func:`image_outcomes`).
    by : columns that define a group, e.g. ``("occupation",)`` or ``("language", "occupation")``.
    groups : optional list of groups (values of a single ``by`` column, or a frame of ``by`` columns)
        to report even when they have no image; they get zero counts.

    Returns
    -------
    DataFrame
        ``by`` columns, ``images``, :data:`OUTCOMES` counts, ``classified`` (= man + woman) and
        ``share_woman`` (= woman / classified; NaN where no face was classified — such groups are
        listed, never divided by zero). Groups in first-appearance order (``groups`` first).
    """
    by = list(by)
    missing = [c for c in [*by, outcome] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}; it has {list(frame.columns)}")
    unknown = sorted(set(frame[outcome]) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"unknown outcomes {unknown}; expected {OUTCOMES}")
    table = pd.crosstab([frame[c] for c in by], frame[outcome]).reindex(columns=list(OUTCOMES), fill_value=0)
    order = frame[by].drop_duplicates()
    if groups is not None:
        extra = groups if isinstance(groups, pd.DataFrame) else pd.DataFrame({by[0]: list(groups)})
        order = pd.concat([extra[by], order]).drop_duplicates()
    table = table.reindex(pd.MultiIndex.from_frame(order) if len(by) > 1 else pd.Index(order[by[0]]), fill_value=0)
    out = table.reset_index()
    out.columns = [*by, *OUTCOMES]
    out = out.astype({o: np.int64 for o in OUTCOMES})
    out.insert(len(by), "images", out[list(OUTCOMES)].sum(axis=1))
    out["classified"] = out["man"] + out["woman"]
    classified = out["classified"].to_numpy(dtype=np.float64)
    share = np.full(len(out), np.nan)
    np.divide(out["woman"].to_numpy(dtype=np.float64), classified, out=share, where=classified > 0)
    out["share_woman"] = share
    return out


def magbig_counts_text(counts: pd.DataFrame, name: str = "occupation") -> str:
    """MAGBIG's two-lines-per-occupation text of ``counts`` (columns ``name``, ``man``, ``woman``)."""
    lines = [f"{row[name]}\nman: {int(row['man'])}, woman: {int(row['woman'])}\n"
             for row in counts[[name, "man", "woman"]].to_dict("records")]
    return "".join(lines)


def write_magbig_counts(path: str | os.PathLike, counts: pd.DataFrame, name: str = "occupation") -> None:
    """Atomically write :func:`magbig_counts_text` to ``path`` (one file per language/model, as MAGBIG)."""
    write_text(path, magbig_counts_text(counts, name))


def read_magbig_counts(path: str | os.PathLike) -> pd.DataFrame:
    """Parse a MAGBIG counts file → DataFrame ``occupation``, ``man``, ``woman`` (file order).

    A count line belongs to the nearest non-empty line above it; a name without a count line is
    an error naming the line.
    """
    rows, name = [], None
    for number, line in enumerate(open(path, encoding="utf-8").read().splitlines(), start=1):
        match = _COUNT_LINE.fullmatch(line)
        if match:
            if name is None:
                raise ValueError(f"{path}:{number}: counts without an occupation name above them")
            rows.append((name, int(match.group(1)), int(match.group(2))))
            name = None
        elif line.strip():
            if name is not None:
                raise ValueError(f"{path}:{number}: occupation {name!r} has no 'man: X, woman: Y' line")
            name = line.strip()
    if name is not None:
        raise ValueError(f"{path}: occupation {name!r} at the end has no 'man: X, woman: Y' line")
    return pd.DataFrame(rows, columns=["occupation", "man", "woman"]).astype({"man": np.int64, "woman": np.int64})
