"""Where a result came from, whether an existing result was made with the same settings, and the one result file.

Every study writes one JSON per result through :func:`write_result`, in one schema (:data:`RESULT_FORMAT`)::

    {"format": "biaslib-result/3", "study": <a declared study's name>,
     "experiment": str, "evaluation": str, "subject": {<the study's subject fields>: ...},
     "rows": [{...}, ...], "provenance": {...}}

``subject`` names what was evaluated, in the fields the study declares
(:attr:`biaslib.study_registry.StudyDeclaration.subject_fields`: a trained model, a generated set and language, …).
The rows are the study's table (:mod:`biaslib.results` reads them all). The ``provenance`` record holds the biaslib
version, git commit and dirty flag, the study's params digest (:func:`biaslib.study_registry.study_digest`: what its
numbers depend on), creation time and the ``settings`` its numbers depend on.
A rerun compares its settings with the stored ones (:func:`is_current`): equal → the result is current and
kept; different → an error naming every changed key, unless the caller overwrites.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from biaslib import __version__
from biaslib.config import REPO_ROOT, Params
from biaslib.errors import BiaslibError
from biaslib.io import write_json
from biaslib.study_registry import get_study, study_digest

RESULT_FORMAT = "biaslib-result/3"


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository biaslib runs from; (None, None) outside a git checkout."""
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no") if commit else None
    return commit, (bool(status) if status is not None else None)


def provenance(params: Params, settings: Mapping[str, Any], *, study: str,
               git: tuple[str | None, bool | None] | None = None, **extra: Any) -> dict[str, Any]:
    """The ``provenance`` record of a result of ``study``: biaslib version, git commit and dirty flag (``git``:
    a :func:`git_state` already taken, e.g. once per sweep), the study's params digest and the seed, creation time
    (UTC), the study's ``extra`` records (checkpoint, data, confusion, …) and last the ``settings`` its numbers
    depend on (as JSON, which :func:`is_current` compares)."""
    commit, dirty = git if git is not None else git_state()
    return {"biaslib_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "params_digest": study_digest(params, study), "seed": params.seed,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra,
            "settings": json.loads(json.dumps(dict(settings), default=str))}


def is_current(path: Path, settings: dict[str, Any]) -> bool:
    """True when ``path`` holds a result whose ``provenance.settings`` equal ``settings`` (compared as JSON);
    False when absent; :class:`~biaslib.errors.BiaslibError` naming every changed key when they differ or the
    file is not a readable result."""
    if not path.is_file():
        return False
    try:
        old = json.loads(path.read_text(encoding="utf-8"))["provenance"]["settings"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BiaslibError(f"{path} is not a readable biaslib result ({exc!r}); pass --overwrite "
                           "(overwrite=True in Python) to recompute "
                           "it") from exc
    settings = json.loads(json.dumps(settings, default=str))
    if old == settings:
        return True
    changed = "; ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(old) | set(settings))
                        if old.get(k) != settings.get(k))
    raise BiaslibError(f"{path} was computed with other settings ({changed}); pass --overwrite "
                       "(overwrite=True in Python) to recompute it")


def result_record(study: str, experiment: str, evaluation: str, subject: Mapping[str, Any],
                  rows: list[dict[str, Any]], record: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one result (module docstring): ``subject`` must hold exactly the study's subject fields,
    ``record`` is its :func:`provenance`."""
    fields = get_study(study).subject_fields
    if set(subject) != set(fields):
        raise ValueError(f"a {study} result's subject has fields {', '.join(fields)}; got "
                         f"{', '.join(subject) or 'none'}")
    return {"format": RESULT_FORMAT, "study": study, "experiment": experiment, "evaluation": evaluation,
            "subject": {k: subject[k] for k in fields}, "rows": rows, "provenance": record}


def write_result(path: Path, result: dict[str, Any], *, overwrite: bool = False) -> bool:
    """Write ``result`` (:func:`result_record`) to ``path`` atomically. An existing result with the same
    settings is kept (returns False: its numbers would be the same); one with other settings is an error naming
    every changed key (:func:`is_current`) unless ``overwrite``. Returns True when the file was written."""
    if not overwrite and is_current(path, result["provenance"]["settings"]):
        return False
    write_json(path, result)
    return True


__all__ = ["RESULT_FORMAT", "git_state", "is_current", "provenance", "result_record",
           "write_result"]
