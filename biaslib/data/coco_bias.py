"""COCO 2014 val images with skin-tone and gender annotations (Zhao et al. 2021; formats.md B2, A7)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.data._common import (
    PathLike,
    layout_error,
    read_csv,
    require_columns,
    require_dir,
    require_unique,
)
from biaslib.errors import DataLayoutError

CSV_COLUMNS = ("id", "skin", "ratio", "bb_skin", "bb_gender", "split")
_NO_SKIN = ("", "nan", "NaN", "None", "[]")

LAYOUT = """
<root>/
  images_val2014.csv                columns: id, skin, ratio, bb_skin, bb_gender, split
  annotations/captions_val2014.json {"images": [...], "annotations": [{"image_id": int, "id": int,
                                                                       "caption": str}, ...]}
  val2014/COCO_val2014_<id zero-padded to 12 digits>.jpg
"""


def load_coco_bias(root: PathLike, split: str = "val") -> pd.DataFrame:
    """Load the COCO-bias annotation rows whose ``split`` column equals ``split``, with their captions.

    Columns, in CSV row order: ``image_id`` (COCO id as a string, ``"42"``), ``file``
    (``<root>/val2014/COCO_val2014_<12-digit id>.jpg``), ``bb_gender`` and ``bb_skin`` (label of the
    largest person; NaN when empty), ``skin`` (list of per-person labels parsed from strings such as
    ``"['Light', 'Dark']"``; ``[]`` when empty), ``ratio`` (float) and ``captions`` (list of the image's
    COCO captions, whitespace-stripped, in annotation-file order).
    """
    root = require_dir(root, "COCO-bias root", LAYOUT)
    csv_path = root / "images_val2014.csv"
    if not csv_path.is_file():
        raise layout_error(f"COCO-bias annotation CSV not found: {csv_path}", LAYOUT)
    table = read_csv(csv_path, CSV_COLUMNS, LAYOUT)
    raw = table[table["split"] == split].reset_index(drop=True)
    if raw.empty:
        present = sorted(set(table["split"]))
        raise DataLayoutError(f"{csv_path}: no row with split == {split!r}; column 'split' holds {present}")

    ids = [_coco_id(csv_path, value) for value in raw["id"]]
    captions = _read_captions(root / "annotations" / "captions_val2014.json")
    if not any(image_id in captions for image_id in ids):
        raise DataLayoutError(
            f"{root / 'annotations' / 'captions_val2014.json'}: no caption for any image of {csv_path} "
            f"(split {split!r}); is it the COCO 2014 val captions file?"
        )
    ratio = raw["ratio"].where(raw["ratio"].str.strip() != "")
    try:
        ratio = pd.to_numeric(ratio).astype("float64")
    except ValueError as exc:
        raise DataLayoutError(f"{csv_path}: column 'ratio' must hold numbers ({exc})") from exc
    frame = pd.DataFrame({
        "image_id": ids,
        "file": [str(root / "val2014" / f"COCO_val2014_{int(i):012d}.jpg") for i in ids],
        "bb_gender": raw["bb_gender"].where(raw["bb_gender"] != ""),
        "bb_skin": raw["bb_skin"].where(raw["bb_skin"] != ""),
        "skin": pd.Series([_parse_skin(csv_path, i, v) for i, v in zip(ids, raw["skin"])], dtype=object),
        "ratio": ratio,
        "captions": pd.Series([captions.get(i, []) for i in ids], dtype=object),
    })
    require_unique(frame["image_id"], csv_path)
    return frame


def coco_caption_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Expand :func:`load_coco_bias` output to one row per caption, for text-to-image retrieval.

    Columns: ``text_id`` (``"<image_id>_<k>"``, k = caption position within its image), ``image_id``,
    ``caption``; rows follow ``frame`` order, then caption order.
    """
    require_columns(frame, ["image_id", "captions"], "coco_caption_table input frame",
                    "the frame returned by load_coco_bias(): image_id, ..., captions (list of str)")
    rows = [
        (f"{image_id}_{k}", image_id, caption)
        for image_id, image_captions in zip(frame["image_id"], frame["captions"])
        for k, caption in enumerate(image_captions)
    ]
    return pd.DataFrame(rows, columns=["text_id", "image_id", "caption"])


def _coco_id(path: Path, value: str) -> str:
    """Return the canonical string form of a COCO image id (``"000042"`` and ``"42.0"`` give ``"42"``)."""
    text = value.strip().removesuffix(".0")
    if not text.isdigit():
        raise DataLayoutError(f"{path}: column 'id' must hold integer COCO image ids, got {value!r}")
    return str(int(text))


def _parse_skin(path: Path, image_id: str, value: str) -> list[str]:
    """Parse the per-person skin list string of one image; empty or NaN gives []."""
    if value.strip() in _NO_SKIN:
        return []
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError) as exc:
        raise DataLayoutError(
            f"{path}: image {image_id}: column 'skin' must be a list such as \"['Light', 'Dark']\", "
            f"got {value!r}"
        ) from exc
    if not isinstance(parsed, (list, tuple)) or not all(isinstance(v, str) for v in parsed):
        raise DataLayoutError(f"{path}: image {image_id}: column 'skin' must list strings, got {value!r}")
    return list(parsed)


def _read_captions(path: Path) -> dict[str, list[str]]:
    """Read a COCO captions file into image id (string) -> captions in annotation order."""
    if not path.is_file():
        raise layout_error(f"COCO captions file not found: {path}", LAYOUT)
    try:
        with path.open(encoding="utf-8") as handle:
            data: Any = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise layout_error(f"{path}: not a readable UTF-8 JSON file ({exc})", LAYOUT) from exc
    annotations = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(annotations, list):
        raise layout_error(f"{path}: missing the 'annotations' list of a COCO captions file", LAYOUT)
    captions: dict[str, list[str]] = {}
    for annotation in annotations:
        try:
            image_id, caption = str(int(annotation["image_id"])), annotation["caption"]
        except (KeyError, TypeError, ValueError) as exc:
            raise layout_error(
                f"{path}: every annotation needs an integer 'image_id' and a 'caption', got {annotation!r}",
                LAYOUT,
            ) from exc
        if not isinstance(caption, str):
            raise layout_error(f"{path}: caption of image {image_id} is not a string: {caption!r}", LAYOUT)
        captions.setdefault(image_id, []).append(caption.strip())
    return captions
