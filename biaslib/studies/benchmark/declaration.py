"""The benchmark study as the core sees it (:mod:`biaslib.study_registry`): no params section of its own, the
shared sections its numbers depend on, and its results — one per (model, evaluation) (subject: the models file's
``model`` name) in ``<run>/results/benchmark/``, read as :data:`COLUMNS`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from biaslib.study_registry import StudyDeclaration

#: Columns of :func:`biaslib.results.collect` ``study="benchmark"``: the model's name, the result rows, its
#: architecture and weights' sha256, then provenance.
COLUMNS = [
    "experiment", "model", "evaluation", "dataset", "attribute", "group", "kind", "metric", "value", "ci_low",
    "ci_high", "n", "low", "high", "p_value", "null_gap", "arch", "weights_sha256", "degenerate", "params_digest",
    "git_commit", "created_utc", "biaslib_version", "file",
]
#: What its table is sorted by (then kind and group).
KEY_COLUMNS = ["experiment", "model", "evaluation", "dataset", "attribute", "metric"]
#: The shared params keys its numbers depend on: the evaluation data and the evaluations (the models are named
#: by the models file, and each result records its weights' sha256).
READS = ("seed", "world", "export", "eval")


def _frame(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The rows of one result with the model's name, architecture and weights (:data:`COLUMNS`)."""
    from biaslib.results import evaluation_rows_frame, provenance_of

    provenance, checkpoint = provenance_of(record)
    return evaluation_rows_frame(path, record, {"model": record["subject"]["model"], "arch": checkpoint.get("model"),
                                                "weights_sha256": checkpoint.get("sha256"),
                                                "degenerate": (provenance.get("embeddings") or {}).get("degenerate")},
                                 COLUMNS)


def _combine(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Results' frames sorted by experiment, model, evaluation, dataset, attribute, metric, kind and group."""
    from biaslib.results import sorted_evaluation_rows

    return sorted_evaluation_rows(frames, COLUMNS, KEY_COLUMNS)


def _check_row(row: dict[str, Any]) -> str | None:
    from biaslib.results import check_evaluation_row

    return check_evaluation_row(row)


STUDY = StudyDeclaration(name="benchmark", subject_fields=("model",), frame=_frame, combine=_combine, reads=READS,
                         results_folder="benchmark", check_row=_check_row)
