"""PHASE person annotations of Conceptual Captions images (noagarcia/phase; formats.md B1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.data._common import PathLike, layout_error, require_dir
from biaslib.errors import DataLayoutError

ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "age": ("baby", "child", "young", "adult", "senior"),
    "gender": ("male", "female"),
    "skintone": ("lighter", "darker"),
    "ethnicity": (
        "black", "east_asian", "indian", "latino", "middle_eastern", "southeast_asian", "white", "other",
    ),
}
NO_LABEL = ("unsure", "disagreement", "")
_ALIASES = {("age", "children"): "child"}  # both spellings occur in PHASE-derived code

LAYOUT = """
<root>/
  phase_annotations/
    phase_gcc_<split>_regions_20221101.json
        {"<key>": {"caption": str,
                   "person0": {"region": [x1, y1, x2, y2],
                               "annotations": {"age": ..., "gender": ..., "skintone": ..., "ethnicity": ...,
                                               "emotion": ..., "activity": ...}},
                   "person1": ...},
         ...}
  images/<split>/<key>          (no file extension; <root>/<split>/<key> is accepted too)
"""


def load_phase(root: PathLike, split: str = "val") -> pd.DataFrame:
    """Load the PHASE majority-vote annotations of one split, one row per image.

    Columns: ``image_id`` (the JSON key, kept as a string), ``file`` (``<root>/images/<split>/<key>``, or
    ``<root>/<split>/<key>`` when only that folder exists; no extension), ``caption``, ``n_persons``
    (person entries in the image) and ``age``, ``gender``, ``skintone``, ``ethnicity``. An attribute holds
    the value shared by every person of the image (see :data:`ATTRIBUTE_VALUES`; age ``children`` is
    read as ``child``) and is missing (NaN) when the persons differ, when any person's value is
    ``unsure``, ``disagreement`` or absent, when a person has no ``annotations``, or when the image has
    no person.
    """
    root = require_dir(root, "PHASE root", LAYOUT)
    path = root / "phase_annotations" / f"phase_gcc_{split}_regions_20221101.json"
    if not path.is_file():
        raise layout_error(f"PHASE annotation file not found: {path}", LAYOUT)
    try:
        with path.open(encoding="utf-8") as handle:
            images = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise layout_error(f"{path}: not a readable UTF-8 JSON file ({exc})", LAYOUT) from exc
    if not isinstance(images, dict):
        raise layout_error(f"{path}: top level must be an object keyed by image key", LAYOUT)

    image_dir = root / "images" / split
    if not image_dir.is_dir() and (root / split).is_dir():
        image_dir = root / split
    rows = [_image_row(path, key, entry, image_dir) for key, entry in images.items()]
    columns = ["image_id", "file", "caption", "n_persons", *ATTRIBUTE_VALUES]
    return pd.DataFrame(rows, columns=columns).astype({"n_persons": "int64"})


def _image_row(path: Path, key: str, entry: Any, image_dir: Path) -> dict[str, Any]:
    """Turn one JSON image entry into a table row (see :func:`load_phase`)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("caption"), str):
        raise layout_error(f"{path}: image {key!r} must be an object with a string 'caption'", LAYOUT)
    persons = [value for name, value in entry.items() if name.startswith("person")]
    row: dict[str, Any] = {
        "image_id": key, "file": str(image_dir / key), "caption": entry["caption"], "n_persons": len(persons),
    }
    for attribute in ATTRIBUTE_VALUES:
        values = {_person_value(path, key, person, attribute) for person in persons}
        row[attribute] = values.pop() if len(values) == 1 else None
    return row


def _person_value(path: Path, key: str, person: Any, attribute: str) -> str | None:
    """Return one person's canonical value for ``attribute``, or None when it carries no label."""
    annotations = person.get("annotations") if isinstance(person, dict) else None
    if not isinstance(annotations, dict):
        return None
    value = annotations.get(attribute)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataLayoutError(f"{path}: image {key!r}: {attribute} must be a string, got {value!r}")
    value = value.strip().lower().replace(" ", "_")
    value = _ALIASES.get((attribute, value), value)
    if value in NO_LABEL:
        return None
    if value not in ATTRIBUTE_VALUES[attribute]:
        raise DataLayoutError(
            f"{path}: image {key!r}: unknown {attribute} value {value!r}; allowed: "
            f"{', '.join(ATTRIBUTE_VALUES[attribute] + NO_LABEL[:2])}"
        )
    return value
