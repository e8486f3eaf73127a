"""Results: read the result JSONs of every study into tidy DataFrames.

Every study writes one JSON per result through :func:`biaslib.provenance.write_result`, in one schema
(``biaslib-result/3``, :mod:`biaslib.provenance`): ``study``, ``experiment``, ``evaluation``, ``subject`` (what
was evaluated), ``rows`` and ``provenance``, under ``<run_dir>/results/`` (a study may use a subfolder). A study
declares what its results are (:class:`biaslib.study_registry.StudyDeclaration`): the fields of its subject, a
check of its rows, how one result becomes rows of its table, the formats it wrote before; this module reads any of
them and knows none.

The rows the evaluations write (:mod:`biaslib.evaluations`) are :data:`ROW_FIELDS`::

    {"dataset", "attribute", "group", "kind", "metric", "value", "ci_low", "ci_high", "n", "low", "high",
     "p_value", "null_gap"}

``kind`` is ``overall`` (attribute and group ``all``), ``group`` (one group of an attribute), ``gap`` (group
``gap``: value of the highest group − value of the lowest, named in ``high`` and ``low``) or ``min_over_max``
(group ``min_over_max``: lowest / highest). Gap and min_over_max rows carry ``p_value`` (permutation test of "all
groups equal") and gap rows ``null_gap`` (the gap such groups show by chance); other rows have ``null`` there
(rows of format 1 lack :data:`ADDED_ROW_FIELDS`). :func:`evaluation_rows_frame` and :func:`sorted_evaluation_rows`
make the tables of the studies whose results are such rows. Missing numbers are JSON ``null``.

:func:`collect` is strict by default: a file that matches the result name pattern but is not a
readable result raises :class:`ResultsError` naming the file, so a figure never silently drops a
result. ``skip_bad=True`` skips such files instead and warns once with their count and names.
Only numpy and pandas are imported here.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import Params
from biaslib.errors import BiaslibError
from biaslib.layout import RunLayout
from biaslib.provenance import RESULT_FORMAT
from biaslib.study_registry import StudyDeclaration, declared_studies, get_study

RESULT_GLOB = "*__*__*.json"
ROW_FIELDS = ("dataset", "attribute", "group", "kind", "metric", "value", "ci_low", "ci_high", "n", "low", "high",
              "p_value", "null_gap")
#: Fields that format 2 added (gap tests); absent from format-1 rows.
ADDED_ROW_FIELDS = ("p_value", "null_gap")
KINDS = ("overall", "group", "gap", "min_over_max")
#: Provenance columns of an evaluation-rows table, after the study's own.
PROVENANCE_COLUMNS = ["params_digest", "git_commit", "created_utc", "biaslib_version", "file"]


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
    """Result JSONs (``*__*__*.json``) of ``root_or_params`` and its subfolders (a study's own folder),
    sorted by path.

    Accepts :class:`~biaslib.config.Params` (its ``<run_dir>/results``), a results folder, an
    experiment folder holding ``results/``, or a runs folder holding ``<experiment>/results/``.
    Raises :class:`ResultsError` when the folder does not exist.
    """
    return sorted(f for folder in _folders(root_or_params) if folder.is_dir() for f in folder.rglob(RESULT_GLOB))


def _earlier_formats() -> dict[str, StudyDeclaration]:
    """Result formats of earlier biaslib versions → the study that wrote them."""
    return {fmt: study for study in declared_studies().values() for fmt in study.earlier_formats}


def check_evaluation_row(row: Mapping[str, Any]) -> str | None:
    """The problem with one evaluation row (:data:`ROW_FIELDS`, format-1 rows without :data:`ADDED_ROW_FIELDS`),
    None when it has none."""
    missing = [f for f in ROW_FIELDS if f not in row and f not in ADDED_ROW_FIELDS]
    if missing:
        return f"lacks field(s) {', '.join(missing)}"
    if row["kind"] not in KINDS:
        return f"has kind {row['kind']!r}; expected one of {', '.join(KINDS)}"
    return None


def _check_rows(path: Path, study: StudyDeclaration, rows: Any) -> None:
    """Rows must be a list of objects the study accepts."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{path}: 'rows' must be a list of objects")
    if study.check_row is None:
        return
    for i, row in enumerate(rows):
        problem = study.check_row(row)
        if problem:
            raise ResultsError(f"{path}: row {i} {problem}")


def read_result(path: str | Path) -> dict[str, Any]:
    """Read and check one result JSON of any study and format; returns it in the current format's shape
    (``study``, ``subject``; :mod:`biaslib.provenance`). Raises :class:`ResultsError` naming ``path`` if
    malformed."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: not a readable JSON file ({exc})") from exc
    earlier = _earlier_formats()
    if not isinstance(record, dict) or (record.get("format") != RESULT_FORMAT and record.get("format") not in earlier):
        raise ResultsError(f"{path}: not a biaslib result (expected \"format\": \"{RESULT_FORMAT}\")")
    if record["format"] in earlier:
        writer = earlier[record["format"]]
        record = {**writer.earlier_formats[record["format"]](record), "study": writer.name}
    for key in ("study", "experiment", "evaluation", "subject", "rows", "provenance"):
        if key not in record:
            raise ResultsError(f"{path}: missing key {key!r}")
    try:
        study = get_study(record["study"])
    except ValueError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    subject = record["subject"]
    if not isinstance(subject, dict) or any(subject.get(k) is None for k in study.subject_fields):
        raise ResultsError(f"{path}: a {study.name} result's subject needs {', '.join(study.subject_fields)}")
    problem = study.check_subject(subject) if study.check_subject else None
    if problem:
        raise ResultsError(f"{path}: {problem}")
    _check_rows(path, study, record["rows"])
    return record


def _provenance_of(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(provenance, its checkpoint record) of a result, empty where missing."""
    provenance = record["provenance"] if isinstance(record["provenance"], dict) else {}
    return provenance, provenance.get("checkpoint") or {}


def provenance_of(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(provenance, its checkpoint record) of a result, empty where missing."""
    provenance = record["provenance"] if isinstance(record["provenance"], dict) else {}
    return provenance, provenance.get("checkpoint") or {}


def evaluation_rows_frame(path: Path, record: dict[str, Any], identity: dict[str, Any],
                          columns: Sequence[str]) -> pd.DataFrame:
    """The :data:`ROW_FIELDS` rows of one result with ``identity`` columns (what the study's subject is), the
    result's experiment and evaluation and its provenance (:data:`PROVENANCE_COLUMNS`), as ``columns``."""
    provenance, _ = provenance_of(record)
    frame = pd.DataFrame(record["rows"], columns=list(ROW_FIELDS))
    constants = {"experiment": record["experiment"], "evaluation": record["evaluation"], **identity,
                 "params_digest": provenance.get("params_digest"), "git_commit": provenance.get("git_commit"),
                 "created_utc": provenance.get("created_utc"), "biaslib_version": provenance.get("biaslib_version"),
                 "file": str(path)}
    for column, value in constants.items():
        frame[column] = value
    return frame[list(columns)]


def sorted_evaluation_rows(frames: list[pd.DataFrame], columns: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    """Frames of :func:`evaluation_rows_frame` as one typed frame sorted by ``keys``, then kind (overall, group,
    gap, min_over_max) and group, with a fresh index; the empty frame with ``columns`` when there are none."""
    if not frames:
        return _typed(pd.DataFrame(columns=list(columns)))
    frame = _typed(pd.concat(frames, ignore_index=True))
    order = frame.assign(_kind=frame["kind"].map({k: i for i, k in enumerate(KINDS)}))
    order = order.sort_values([*keys, "_kind", "group"], kind="mergesort")
    return frame.loc[order.index].reset_index(drop=True)


def collect(root_or_params: Params | str | Path, skip_bad: bool = False, *, study: str) -> pd.DataFrame:
    """Every result JSON of ``study`` under ``root_or_params`` (see :func:`result_files`) as the study's one tidy
    table (:attr:`~biaslib.study_registry.StudyDeclaration.combine`; its columns are the study's, named in its
    ``declaration`` module). A malformed file raises :class:`ResultsError`
    naming it, unless ``skip_bad`` (then it is skipped with one warning). ``ValueError`` for an unknown study."""
    declaration = get_study(study)
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
            frames.append(declaration.frame(path, record))
    if bad:
        warnings.warn(f"skipped {len(bad)} malformed result file(s): {'; '.join(bad)}", RuntimeWarning, stacklevel=2)
    return declaration.combine(frames)


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
