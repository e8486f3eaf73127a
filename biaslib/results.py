"""Results: read every evaluation JSON into one tidy DataFrame.

:mod:`biaslib.evaluate` writes one JSON per (experiment, ratio, evaluation) to
``<run_dir>/results/<experiment>__<ratio>__<evaluation>.json``::

    {"format": "biaslib-result/2", "experiment": str, "ratio": "020", "replicate": 0, "evaluation": "retrieval",
     "rows": [{"dataset", "attribute", "group", "kind", "metric", "value", "ci_low", "ci_high", "n",
               "low", "high", "p_value", "null_gap"}, ...],
     "provenance": {"biaslib_version", "git_commit", "git_dirty", "params_digest", "seed",
                    "created_utc", "checkpoint": {"path", "epoch", "sha256", "model", "run"},
                    "data": {<dataset>: {"root", "split", "n"}}, "features": {<store dataset>: path},
                    "settings": {...}}}

``kind`` is ``overall`` (attribute and group ``all``), ``group`` (one group of an attribute),
``gap`` (group ``gap``: value of the highest group − value of the lowest, named in ``high`` and
``low``) or ``min_over_max`` (group ``min_over_max``: lowest / highest). Gap and min_over_max rows carry
``p_value`` (permutation test of "all groups equal") and gap rows ``null_gap`` (the gap such groups show by
chance); other rows have ``null`` there, and format-1 files (before gap tests) lack both. Missing numbers are
JSON ``null``.

:func:`collect` is strict by default: a file that matches the result name pattern but is not a
readable result raises :class:`ResultsError` naming the file, so a figure never silently drops a
ratio. ``skip_bad=True`` skips such files instead and warns once with their count and names.
Only numpy and pandas are imported here.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params
from biaslib.errors import BiaslibError
from biaslib.layout import RunLayout
from biaslib.ratios import ratio_code, ratio_fraction

RESULT_FORMAT = "biaslib-result/2"
#: Earlier formats :func:`collect` still reads (their rows lack :data:`ADDED_ROW_FIELDS`, read as missing).
READABLE_FORMATS = ("biaslib-result/1", RESULT_FORMAT)
RESULT_GLOB = "*__*__*.json"
ROW_FIELDS = ("dataset", "attribute", "group", "kind", "metric", "value", "ci_low", "ci_high", "n", "low", "high",
              "p_value", "null_gap")
#: Fields that format 2 added (gap tests); absent from format-1 rows.
ADDED_ROW_FIELDS = ("p_value", "null_gap")
KINDS = ("overall", "group", "gap", "min_over_max")
KEY_COLUMNS = ["experiment", "ratio", "replicate", "evaluation", "dataset", "attribute", "metric"]
#: Columns of :func:`collect`, in order: the result rows, then provenance.
COLUMNS = [
    "experiment", "ratio", "replicate", "evaluation", "dataset", "attribute", "group", "kind", "metric", "value",
    "ci_low", "ci_high", "n", "low", "high", "p_value", "null_gap", "ratio_fraction", "checkpoint_epoch", "model",
    "params_digest", "git_commit", "created_utc", "biaslib_version", "file",
]


class ResultsError(BiaslibError, ValueError):
    """A results folder is missing or a result file is malformed (the message names the file)."""


def result_files(root_or_params: Params | str | Path) -> list[Path]:
    """Result JSONs (``*__*__*.json``) of ``root_or_params``, sorted by path.

    Accepts :class:`~biaslib.config.Params` (its ``<run_dir>/results``), a results folder, an
    experiment folder holding ``results/``, or a runs folder holding ``<experiment>/results/``.
    Raises :class:`ResultsError` when the folder does not exist.
    """
    if isinstance(root_or_params, Params):
        folders = [RunLayout(root_or_params).results]
    else:
        root = Path(root_or_params).expanduser()
        if not root.is_dir():
            raise ResultsError(f"results folder not found: {root} (expected <runs>/<experiment>/results/*.json)")
        if (root / "results").is_dir():
            folders = [root / "results"]
        elif any(root.glob(RESULT_GLOB)):
            folders = [root]
        else:
            folders = sorted(p for p in root.glob("*/results") if p.is_dir())
    return sorted(f for folder in folders if folder.is_dir() for f in folder.glob(RESULT_GLOB))


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and check one result JSON; raise :class:`ResultsError` naming ``path`` if malformed."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") not in READABLE_FORMATS:
        raise ResultsError(f"{path}: not a biaslib result (expected \"format\": \"{RESULT_FORMAT}\")")
    for key in ("experiment", "ratio", "evaluation", "rows", "provenance"):
        if key not in record:
            raise ResultsError(f"{path}: missing key {key!r}")
    try:
        ratio_code(record["ratio"])
    except ValueError as exc:
        raise ResultsError(f"{path}: bad ratio {record['ratio']!r} ({exc})") from exc
    rows = record["rows"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{path}: 'rows' must be a list of objects")
    for i, row in enumerate(rows):
        missing = [f for f in ROW_FIELDS if f not in row and f not in ADDED_ROW_FIELDS]
        if missing:
            raise ResultsError(f"{path}: row {i} lacks field(s) {', '.join(missing)}")
        if row["kind"] not in KINDS:
            raise ResultsError(f"{path}: row {i} has kind {row['kind']!r}; expected one of {', '.join(KINDS)}")
    return record


def _frame_of(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one result with its identifying and provenance columns."""
    provenance = record["provenance"] if isinstance(record["provenance"], dict) else {}
    checkpoint = provenance.get("checkpoint") or {}
    code = ratio_code(record["ratio"])
    frame = pd.DataFrame(record["rows"], columns=list(ROW_FIELDS))
    constants = {
        "experiment": record["experiment"], "ratio": code, "replicate": int(record.get("replicate", 0)),
        "evaluation": record["evaluation"],
        "ratio_fraction": ratio_fraction(code), "checkpoint_epoch": checkpoint.get("epoch"),
        "model": checkpoint.get("model"), "params_digest": provenance.get("params_digest"),
        "git_commit": provenance.get("git_commit"), "created_utc": provenance.get("created_utc"),
        "biaslib_version": provenance.get("biaslib_version"), "file": str(path),
    }
    for column, value in constants.items():
        frame[column] = value
    return frame


def collect(root_or_params: Params | str | Path, skip_bad: bool = False) -> pd.DataFrame:
    """Every result JSON under ``root_or_params`` as one tidy frame (see :func:`result_files`).

    Returns the :data:`COLUMNS`: one row per result row; ``ratio`` is the 3-digit code string
    (``"020"``) and ``ratio_fraction`` its float; ``value``/``ci_*`` are floats (NaN for JSON null;
    fractions in [0, 1] for R@k, accuracy and person preference, cosines for self-similarity);
    ``n`` is an integer. Sorted by experiment, ratio, evaluation, dataset, attribute, metric, kind
    (overall, group, gap, min_over_max) and group, with a fresh index. A malformed file raises
    :class:`ResultsError` naming it, unless ``skip_bad`` (then it is skipped with one warning).
    """
    frames, bad = [], []
    for path in result_files(root_or_params):
        try:
            frames.append(_frame_of(path, read_result(path)))
        except ResultsError as exc:
            if not skip_bad:
                raise
            bad.append(str(exc))
    if bad:
        warnings.warn(f"skipped {len(bad)} malformed result file(s): {'; '.join(bad)}", RuntimeWarning, stacklevel=2)
    if not frames:
        return _typed(pd.DataFrame(columns=COLUMNS))
    frame = _typed(pd.concat(frames, ignore_index=True)[COLUMNS])
    order = frame.assign(_kind=frame["kind"].map({k: i for i, k in enumerate(KINDS)}))
    order = order.sort_values([*KEY_COLUMNS, "_kind", "group"], kind="mergesort")
    return frame.loc[order.index].reset_index(drop=True)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float/int, the rest as object."""
    for column in ("value", "ci_low", "ci_high", "ratio_fraction"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["n"] = pd.to_numeric(frame["n"]).astype("int64")
    frame["checkpoint_epoch"] = pd.to_numeric(frame["checkpoint_epoch"]).astype("Int64")
    return frame


def per_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the per-group rows (``kind == "group"``) of a :func:`collect` frame."""
    return frame[frame["kind"] == "group"].reset_index(drop=True)
