"""Results: read the result JSONs of every study into tidy DataFrames.

Every study writes one JSON per result through :func:`biaslib.provenance.write_result`, in one schema
(``biaslib-result/3``, :mod:`biaslib.provenance`): ``study``, ``experiment``, ``evaluation``, ``subject`` (what
was evaluated), ``rows`` and ``provenance``. The amplification study writes them to
``<run_dir>/results/<experiment>__<ratio>[_r<replicate>]__<evaluation>.json``, the multilingual study to
``<run_dir>/results/multilingual/<experiment>__<generation>__<language>.json``.

Rows of the amplification study (and of model benchmarks) are :data:`ROW_FIELDS`::

    {"dataset", "attribute", "group", "kind", "metric", "value", "ci_low", "ci_high", "n", "low", "high",
     "p_value", "null_gap"}

with ``provenance`` holding ``checkpoint`` (path, epoch, sha256, model, run), ``data`` (per dataset root,
split, n) and ``features``. ``kind`` is ``overall`` (attribute and group ``all``), ``group`` (one group of an
attribute), ``gap`` (group ``gap``: value of the highest group − value of the lowest, named in ``high`` and
``low``) or ``min_over_max`` (group ``min_over_max``: lowest / highest). Gap and min_over_max rows carry
``p_value`` (permutation test of "all groups equal") and gap rows ``null_gap`` (the gap such groups show by
chance); other rows have ``null`` there. Rows of the multilingual study are its tables' rows tagged with their
``section`` (:func:`biaslib.studies.multilingual.evaluation.write_results`). Missing numbers are JSON ``null``.

Files of earlier formats are still read: ``biaslib-result/1`` and ``/2`` (amplification: ``ratio`` and
``replicate`` at the top level; format 1 rows lack :data:`ADDED_ROW_FIELDS`) and
``biaslib-multilingual-result/1`` and ``/2`` (``generation`` and ``language`` at the top level; format 1 scored
gender only).

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
from biaslib.provenance import RESULT_FORMAT, SUBJECT_FIELDS
from biaslib.ratios import ratio_code, ratio_fraction

#: Earlier formats :func:`read_result` still reads → the study they belong to (their subject at the top level).
EARLIER_FORMATS: dict[str, str] = {"biaslib-result/1": "amplification", "biaslib-result/2": "amplification",
                                   "biaslib-multilingual-result/1": "multilingual",
                                   "biaslib-multilingual-result/2": "multilingual"}
READABLE_FORMATS = (*EARLIER_FORMATS, RESULT_FORMAT)
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

#: Columns of :func:`collect` ``study="benchmark"``: the model's name, the result rows, its architecture and
#: weights' sha256, then provenance.
BENCHMARK_COLUMNS = [
    "experiment", "model", "evaluation", "dataset", "attribute", "group", "kind", "metric", "value", "ci_low",
    "ci_high", "n", "low", "high", "p_value", "null_gap", "arch", "weights_sha256", "degenerate", "params_digest",
    "git_commit", "created_utc", "biaslib_version", "file",
]


class ResultsError(BiaslibError, ValueError):
    """A results folder is missing or a result file is malformed (the message names the file)."""


def _folders(root_or_params: Params | str | Path) -> list[Path]:
    """The results folders under ``root_or_params`` (see :func:`result_files`)."""
    if isinstance(root_or_params, Params):
        return [RunLayout(root_or_params).results]
    root = Path(root_or_params).expanduser()
    if not root.is_dir():
        raise ResultsError(f"results folder not found: {root} (expected <runs>/<experiment>/results/*.json)")
    if (root / "results").is_dir():
        return [root / "results"]
    if any(root.rglob(RESULT_GLOB)):
        return [root]
    return sorted(p for p in root.glob("*/results") if p.is_dir())


def result_files(root_or_params: Params | str | Path) -> list[Path]:
    """Result JSONs (``*__*__*.json``) of ``root_or_params`` and its subfolders (``results/multilingual``),
    sorted by path.

    Accepts :class:`~biaslib.config.Params` (its ``<run_dir>/results``), a results folder, an
    experiment folder holding ``results/``, or a runs folder holding ``<experiment>/results/``.
    Raises :class:`ResultsError` when the folder does not exist.
    """
    return sorted(f for folder in _folders(root_or_params) if folder.is_dir() for f in folder.rglob(RESULT_GLOB))


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A record of an earlier format in the current one's shape (subject fields moved into ``subject``)."""
    study = EARLIER_FORMATS[record["format"]]
    if study == "amplification":
        subject = {"ratio": record.get("ratio"), "replicate": int(record.get("replicate", 0))}
    else:
        subject = {"generation": record.get("generation"), "language": record.get("language")}
        if record["format"].endswith("/1") and isinstance(record.get("rows"), list):  # scored gender only
            record["rows"] = [{"attribute": "gender", **row} if isinstance(row, dict) else row
                              for row in record["rows"]]
    return {**record, "study": study, "subject": subject,
            "evaluation": record.get("evaluation", "multilingual")}


def _check_rows(path: Path, study: str, rows: Any) -> None:
    """Rows must be a list of objects with the study's fields."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{path}: 'rows' must be a list of objects")
    for i, row in enumerate(rows):
        if study == "multilingual":
            if "section" not in row:
                raise ResultsError(f"{path}: row {i} lacks field section")
            continue
        missing = [f for f in ROW_FIELDS if f not in row and f not in ADDED_ROW_FIELDS]
        if missing:
            raise ResultsError(f"{path}: row {i} lacks field(s) {', '.join(missing)}")
        if row["kind"] not in KINDS:
            raise ResultsError(f"{path}: row {i} has kind {row['kind']!r}; expected one of {', '.join(KINDS)}")


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and check one result JSON of any study and format; returns it in the current format's shape
    (``study``, ``subject``; :mod:`biaslib.provenance`). Raises :class:`ResultsError` naming ``path`` if
    malformed."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(record, dict) or record.get("format") not in READABLE_FORMATS:
        raise ResultsError(f"{path}: not a biaslib result (expected \"format\": \"{RESULT_FORMAT}\")")
    if record["format"] in EARLIER_FORMATS:
        record = _upgraded(record)
    for key in ("study", "experiment", "evaluation", "subject", "rows", "provenance"):
        if key not in record:
            raise ResultsError(f"{path}: missing key {key!r}")
    study, subject = record["study"], record["subject"]
    if study not in SUBJECT_FIELDS:
        raise ResultsError(f"{path}: unknown study {study!r}; expected one of {', '.join(SUBJECT_FIELDS)}")
    if not isinstance(subject, dict) or any(subject.get(k) is None for k in SUBJECT_FIELDS[study]):
        raise ResultsError(f"{path}: a {study} result's subject needs {', '.join(SUBJECT_FIELDS[study])}")
    if study == "amplification":
        try:
            ratio_code(subject["ratio"])
        except ValueError as exc:
            raise ResultsError(f"{path}: bad ratio {subject['ratio']!r} ({exc})") from exc
    _check_rows(path, study, record["rows"])
    return record


def _provenance_of(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(provenance, its checkpoint record) of a result, empty where missing."""
    provenance = record["provenance"] if isinstance(record["provenance"], dict) else {}
    return provenance, provenance.get("checkpoint") or {}


def _rows_frame(path: Path, record: dict[str, Any], identity: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    """The :data:`ROW_FIELDS` rows of one result with ``identity`` columns, the result's evaluation and provenance
    (params digest, git commit, creation time, biaslib version) and ``file``, as ``columns``."""
    provenance, _ = _provenance_of(record)
    frame = pd.DataFrame(record["rows"], columns=list(ROW_FIELDS))
    constants = {"experiment": record["experiment"], "evaluation": record["evaluation"], **identity,
                 "params_digest": provenance.get("params_digest"), "git_commit": provenance.get("git_commit"),
                 "created_utc": provenance.get("created_utc"), "biaslib_version": provenance.get("biaslib_version"),
                 "file": str(path)}
    for column, value in constants.items():
        frame[column] = value
    return frame[columns]


def _amplification_frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one amplification result with its identifying and provenance columns (:data:`COLUMNS`)."""
    _, checkpoint = _provenance_of(record)
    code = ratio_code(record["subject"]["ratio"])
    return _rows_frame(path, record, {
        "ratio": code, "replicate": int(record["subject"]["replicate"]), "ratio_fraction": ratio_fraction(code),
        "checkpoint_epoch": checkpoint.get("epoch"), "model": checkpoint.get("model")}, COLUMNS)


def _benchmark_frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one benchmark result with the model's name, architecture and weights (:data:`BENCHMARK_COLUMNS`)."""
    provenance, checkpoint = _provenance_of(record)
    return _rows_frame(path, record, {"model": record["subject"]["model"], "arch": checkpoint.get("model"),
                                      "weights_sha256": checkpoint.get("sha256"),
                                      "degenerate": (provenance.get("embeddings") or {}).get("degenerate")},
                       BENCHMARK_COLUMNS)


def _multilingual_frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one multilingual result (every section's columns) with ``experiment``, ``created_utc``,
    ``file``."""
    provenance, _ = _provenance_of(record)
    return pd.DataFrame(record["rows"]).assign(**record["subject"], experiment=record["experiment"],
                                               created_utc=provenance.get("created_utc"), file=str(path))


def collect(root_or_params: Params | str | Path, skip_bad: bool = False, *,
            study: str = "amplification") -> pd.DataFrame:
    """Every result JSON of ``study`` under ``root_or_params`` as one tidy frame (see :func:`result_files`).

    ``study="amplification"`` (default) returns the :data:`COLUMNS`: one row per result row; ``ratio`` is the
    3-digit code string (``"020"``) and ``ratio_fraction`` its float; ``value``/``ci_*`` are floats (NaN for JSON
    null; fractions in [0, 1] for R@k, accuracy and person preference, cosines for self-similarity); ``n`` is an
    integer. Sorted by experiment, ratio, evaluation, dataset, attribute, metric, kind (overall, group, gap,
    min_over_max) and group, with a fresh index. ``study="benchmark"`` returns the :data:`BENCHMARK_COLUMNS`
    (the same rows per model name, sorted by experiment, model, evaluation, dataset, attribute, metric, kind and
    group). ``study="multilingual"`` returns every section's rows (column
    ``section``; ``generation``, ``language``, ``experiment``, ``created_utc``, ``file``) in file order; an empty
    frame when there are none. A malformed file raises :class:`ResultsError` naming it, unless ``skip_bad``
    (then it is skipped with one warning).
    """
    if study not in _FRAMES:
        raise ValueError(f"unknown study {study!r}; expected one of {', '.join(_FRAMES)}")
    frames, bad = [], []
    for path in result_files(root_or_params):
        try:
            record = read_result(path)
        except ResultsError as exc:
            if not skip_bad:
                raise
            bad.append(str(exc))
            continue
        if record["study"] == study:
            frames.append(_FRAMES[study](path, record))
    if bad:
        warnings.warn(f"skipped {len(bad)} malformed result file(s): {'; '.join(bad)}", RuntimeWarning, stacklevel=2)
    if study == "multilingual":
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    columns, keys = (COLUMNS, KEY_COLUMNS) if study == "amplification" else (BENCHMARK_COLUMNS, BENCHMARK_KEYS)
    if not frames:
        return _typed(pd.DataFrame(columns=columns))
    frame = _typed(pd.concat(frames, ignore_index=True))
    order = frame.assign(_kind=frame["kind"].map({k: i for i, k in enumerate(KINDS)}))
    order = order.sort_values([*keys, "_kind", "group"], kind="mergesort")
    return frame.loc[order.index].reset_index(drop=True)


_FRAMES = {"amplification": _amplification_frame, "multilingual": _multilingual_frame,
           "benchmark": _benchmark_frame}
BENCHMARK_KEYS = ["experiment", "model", "evaluation", "dataset", "attribute", "metric"]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float/int, the rest as object."""
    for column in ("value", "ci_low", "ci_high", "ratio_fraction"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["n"] = pd.to_numeric(frame["n"]).astype("int64")
    if "checkpoint_epoch" in frame.columns:
        frame["checkpoint_epoch"] = pd.to_numeric(frame["checkpoint_epoch"]).astype("Int64")
    return frame


def per_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the per-group rows (``kind == "group"``) of a :func:`collect` frame."""
    return frame[frame["kind"] == "group"].reset_index(drop=True)
