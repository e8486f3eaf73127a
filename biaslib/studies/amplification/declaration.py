"""The amplification study as the core sees it (:mod:`biaslib.study_registry`): its params sections ``control``
and ``analysis`` (analysis only), the shared sections its numbers depend on, and its results — one per trained
CLIP (subject: ``ratio`` code and ``replicate``) in ``<run>/results/``, read as :data:`COLUMNS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.config import ParamsError, check_ranges
from biaslib.ratios import ratio_code, ratio_fraction
from biaslib.studies.amplification.params import GAP_FAMILY_COLUMNS, AnalysisConfig, ControlConfig
from biaslib.study_registry import StudyDeclaration

#: Columns of :func:`biaslib.results.collect` ``study="amplification"``, in order: the result rows, then provenance.
COLUMNS = [
    "experiment", "ratio", "replicate", "evaluation", "dataset", "attribute", "group", "kind", "metric", "value",
    "ci_low", "ci_high", "n", "low", "high", "p_value", "null_gap", "ratio_fraction", "checkpoint_epoch", "model",
    "params_digest", "git_commit", "created_utc", "biaslib_version", "file",
]
#: What its table is sorted by (then kind and group).
KEY_COLUMNS = ["experiment", "ratio", "replicate", "evaluation", "dataset", "attribute", "metric"]
#: The shared params keys its numbers depend on: the data, the generator, the mixes, the training, the evaluations.
READS = ("seed", "world", "export", "generate", "mix", "train", "eval")
#: Ranges of its own sections' values.
RANGES = {"control.primary.alpha": (0.0, 1.0), "control.q_level": (0.0, 1.0), "analysis.q_level": (0.0, 1.0)}


def _frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one result with its identifying and provenance columns (:data:`COLUMNS`): ``ratio`` is the
    3-digit code string (``"020"``) and ``ratio_fraction`` its float; ``value``/``ci_*`` are floats (NaN for JSON
    null; fractions in [0, 1] for R@k, accuracy and person preference, cosines for self-similarity)."""
    from biaslib.results import evaluation_rows_frame, provenance_of

    _, checkpoint = provenance_of(record)
    code = ratio_code(record["subject"]["ratio"])
    return evaluation_rows_frame(path, record, {
        "ratio": code, "replicate": int(record["subject"]["replicate"]), "ratio_fraction": ratio_fraction(code),
        "checkpoint_epoch": checkpoint.get("epoch"), "model": checkpoint.get("model")}, COLUMNS)


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Results' frames sorted by experiment, ratio, replicate, evaluation, dataset, attribute, metric, kind
    (overall, group, gap, min_over_max) and group."""
    from biaslib.results import sorted_evaluation_rows

    return sorted_evaluation_rows(frames, COLUMNS, KEY_COLUMNS)


def _check_subject(subject: dict[str, Any]) -> str | None:
    try:
        ratio_code(subject["ratio"])
    except ValueError as exc:
        return f"bad ratio {subject['ratio']!r} ({exc})"
    return None


def _check_row(row: dict[str, Any]) -> str | None:
    from biaslib.results import check_evaluation_row

    return check_evaluation_row(row)


def _check_params(params: Any, path: Path) -> None:
    """Its sections' ranges, and ``analysis.gap_family`` naming result columns."""
    check_ranges(params, RANGES, path)
    unknown = sorted(set(params.analysis.gap_family) - set(GAP_FAMILY_COLUMNS))
    if unknown:
        raise ParamsError(f"analysis.gap_family ({path}): unknown columns {unknown}; choose among "
                          f"{list(GAP_FAMILY_COLUMNS)}")


def _upgraded(record: dict[str, Any]) -> dict[str, Any]:
    """A result of format 1 or 2 (``ratio`` and ``replicate`` at the top level; format 1's rows lack
    :data:`biaslib.results.ADDED_ROW_FIELDS`) in the current shape."""
    subject = {"ratio": record.get("ratio"), "replicate": int(record.get("replicate", 0))}
    return {**record, "subject": subject}


STUDY = StudyDeclaration(
    name="amplification", subject_fields=("ratio", "replicate"), frame=_frame, combine=_combine,
    sections={"control": ControlConfig, "analysis": AnalysisConfig}, analysis_sections=("control", "analysis"),
    reads=READS, check_subject=_check_subject, check_row=_check_row, check_params=_check_params,
    earlier_formats={"biaslib-result/1": _upgraded, "biaslib-result/2": _upgraded})
