"""The multilingual study as the core sees it (:mod:`biaslib.study_registry`): its params section
``multilingual``, the shared sections its numbers depend on, and its results — one per (generated set, language)
(subject: ``generation`` and ``language``) in ``<run>/results/multilingual/``, each row one row of one of its tables
tagged with its ``section`` (:func:`biaslib.studies.multilingual.evaluation.write_results`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import check_ranges
from biaslib.studies.multilingual.params import MultilingualConfig
from biaslib.study_registry import StudyDeclaration

#: The shared params keys its numbers depend on: the seed, the world (people and their labels) and the generator
#: settings its generation starts from.
READS = ("seed", "world", "generate")
RANGES = {"multilingual.eval_n_boot": (1, None)}


def _frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one result (every section's columns) with ``generation``, ``language``, ``experiment``,
    ``created_utc`` and ``file``."""
    from biaslib.results import provenance_of

    provenance, _ = provenance_of(record)
    return pd.DataFrame(record["rows"]).assign(**record["subject"], experiment=record["experiment"],
                                               created_utc=provenance.get("created_utc"), file=str(path))


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Every result's rows in file order; an empty frame when there are none."""
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _check_row(row: dict[str, Any]) -> str | None:
    return None if "section" in row else "lacks field section"


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A result of ``biaslib-multilingual-result/1`` or ``/2`` (``generation`` and ``language`` at the top level;
    format 1 scored gender only) in the current shape."""
    if record["format"].endswith("/1") and isinstance(record.get("rows"), list):
        record = {**record, "rows": [{"attribute": "gender", **row} if isinstance(row, dict) else row
                                     for row in record["rows"]]}
    return {**record, "subject": {"generation": record.get("generation"), "language": record.get("language")},
            "evaluation": record.get("evaluation", "multilingual")}


STUDY = StudyDeclaration(
    name="multilingual", subject_fields=("generation", "language"), frame=_frame, combine=_combine,
    sections={"multilingual": MultilingualConfig}, reads=READS, results_folder="multilingual", check_row=_check_row,
    check_params=lambda params, path: check_ranges(params, RANGES, path),
    earlier_formats={"biaslib-multilingual-result/1": _upgraded, "biaslib-multilingual-result/2": _upgraded})
