"""MAGBIG multilingual occupation and adjective prompts (felifri/MAGBIG; formats.md C1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from biaslib.data._common import PathLike, layout_error, read_csv, require_dir

KINDS = ("direct", "gender_neutral", "adjectives")
# The original folder name contains a colon, which Windows cannot store; both spellings are accepted.
GENDER_NEUTRAL_DIRS = ("indirect:gender_neutral", "gender_neutral")

LAYOUT = """
<root>/                                 (MAGBIG's prompts/ folder; every CSV: UTF-8, header name,prompt)
  occ_<language>.csv                    kind="direct", e.g. occ_english.csv, occ_german.csv
  adj_<language>.csv                    kind="adjectives"
  indirect:gender_neutral/              kind="gender_neutral" (or gender_neutral/)
    occ_<language>.csv
"""


def load_magbig_prompts(root: PathLike, language: str, kind: str = "direct") -> pd.DataFrame:
    """Load the MAGBIG prompts of one language and kind.

    ``kind`` is ``"direct"`` (``occ_<language>.csv``), ``"gender_neutral"``
    (``indirect:gender_neutral/occ_<language>.csv``) or ``"adjectives"`` (``adj_<language>.csv``).
    Columns: ``name`` (English key, same row order in every language), ``prompt`` (text exactly as
    stored, leading spaces included) and ``language``. Extra columns of a file are dropped.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown MAGBIG prompt kind {kind!r}; choose one of {', '.join(KINDS)}")
    root = require_dir(root, "MAGBIG prompt root", LAYOUT)
    folder, prefix = root, "adj_" if kind == "adjectives" else "occ_"
    if kind == "gender_neutral":
        candidates = [root / name for name in GENDER_NEUTRAL_DIRS]
        folder = next((c for c in candidates if c.is_dir()), None)
        if folder is None:
            raise layout_error(
                f"MAGBIG gender-neutral prompt folder not found: {' or '.join(map(str, candidates))}", LAYOUT
            )
    path = folder / f"{prefix}{language}.csv"
    if not path.is_file():
        raise layout_error(
            f"MAGBIG {kind} prompts for language {language!r} not found: {path}; languages available "
            f"there: {', '.join(_languages(folder, prefix)) or 'none'}",
            LAYOUT,
        )
    raw = read_csv(path, ["name", "prompt"], LAYOUT)
    return pd.DataFrame({"name": raw["name"], "prompt": raw["prompt"], "language": language})


def _languages(folder: Path, prefix: str) -> list[str]:
    """Languages that have a ``<prefix><language>.csv`` file in ``folder``, sorted."""
    return sorted(p.name[len(prefix):-len(".csv")] for p in folder.glob(f"{prefix}*.csv"))
