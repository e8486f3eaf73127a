"""FairFace face images with age, gender and race labels (joojs/fairface; formats.md B3)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pandas as pd

from biaslib.data._common import PathLike, first_existing, read_csv, read_labels, require_dir, require_unique

AGE_LABELS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70")
GENDER_LABELS = ("Male", "Female")
RACE_LABELS = (
    "East Asian", "Indian", "Black", "White", "Middle Eastern", "Latino_Hispanic", "Southeast Asian",
)

LAYOUT = """
<root>/
  fairface_label_<split>.csv       (or label_<split>.csv) columns: file, age, gender, race[, service_test]
  fairface-img-margin<margin>-trainval/
    <split>/1.jpg, 2.jpg, ...     (the CSV's file column is <split>/<n>.jpg)
"""

# A spreadsheet reads '3-9' and '10-19' as dates and writes them back as e.g. '9-Mar', 'Mar-09',
# '3-Sep', 'Sep-03' or '19-Oct', 'Oct-19'. Keys: (month number, day/year number) -> original label.
_DATE_REPAIRS = {(3, 9): "3-9", (9, 3): "3-9", (10, 19): "10-19"}
_MONTHS = {"mar": 3, "mär": 3, "mrz": 3, "sep": 9, "oct": 10, "okt": 10}
_NUMBER_MONTH = re.compile(r"(\d{1,2})[-/ .]([^\W\d_]{3,9})\.?")
_MONTH_NUMBER = re.compile(r"([^\W\d_]{3,9})\.?[-/ .](\d{1,2})")


def repair_age(value: str) -> str | None:
    """Return the FairFace age bin for ``value``, undoing spreadsheet date mangling; None if unknown."""
    value = value.strip()
    if value in AGE_LABELS:
        return value
    if match := _NUMBER_MONTH.fullmatch(value):
        number, month = match.groups()
    elif match := _MONTH_NUMBER.fullmatch(value):
        month, number = match.groups()
    else:
        return None
    month_number = _MONTHS.get(month[:3].lower())
    return _DATE_REPAIRS.get((month_number, int(number))) if month_number else None


def load_fairface(root: PathLike, split: str = "train", margin: str | int = "125") -> pd.DataFrame:
    """Load the FairFace labels of one split.

    Columns: ``image_id`` (file stem, ``"1"`` for ``train/1.jpg``), ``file`` (absolute image path),
    ``age`` (one of :data:`AGE_LABELS`; spreadsheet-mangled forms such as ``9-Mar`` and ``19-Oct`` are
    repaired), ``gender`` (:data:`GENDER_LABELS`), ``race`` (:data:`RACE_LABELS`) and, when the CSV has
    it, ``service_test`` (bool). ``margin`` picks the image folder: ``"125"`` (padding 1.25, used by the
    markedness studies) or ``"025"``; ``25`` and ``125`` as ints work too. Images are not opened; use
    :func:`biaslib.data.check_images` to validate them.
    """
    root = require_dir(root, "FairFace root", LAYOUT)
    margin = f"{int(margin):03d}" if str(margin).isdigit() else str(margin)
    labels = first_existing(
        [root / f"fairface_label_{split}.csv", root / f"label_{split}.csv"], "FairFace label file", LAYOUT
    )
    raw = read_csv(labels, ["file", "age", "gender", "race"], LAYOUT)
    image_dir = root / f"fairface-img-margin{margin}-trainval"
    frame = pd.DataFrame({
        "image_id": [PurePosixPath(f).stem for f in raw["file"]],
        "file": [str(image_dir / f) for f in raw["file"]],
        "age": read_labels(raw["age"], AGE_LABELS, labels, "age", repair=repair_age),
        "gender": read_labels(raw["gender"], GENDER_LABELS, labels, "gender", repair=str.strip),
        "race": read_labels(raw["race"], RACE_LABELS, labels, "race", repair=str.strip),
    })
    if "service_test" in raw.columns:
        flags = read_labels(raw["service_test"], ("True", "False"), labels, "service_test",
                            repair=lambda v: v.strip().capitalize())
        frame["service_test"] = flags == "True"
    require_unique(frame["image_id"], labels)
    return frame
