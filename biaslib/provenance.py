"""Where a result came from, and whether an existing result was made with the same settings.

Both studies write one JSON per result with a ``provenance`` record (biaslib version, git commit and
dirty flag, params digest, creation time, the ``settings`` its numbers depend on). A rerun compares its
settings with the stored ones (:func:`is_current`): equal → the result is current; different → an error
naming every changed key, unless the caller overwrites.
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


def provenance(params: Params, settings: Mapping[str, Any], *, git: tuple[str | None, bool | None] | None = None,
               **extra: Any) -> dict[str, Any]:
    """The ``provenance`` record of a result of either study: biaslib version, git commit and dirty flag (``git``:
    a :func:`git_state` already taken, e.g. once per sweep), params digest and seed, creation time (UTC), the
    study's ``extra`` records (checkpoint, data, confusion, …) and last the ``settings`` its numbers depend on
    (as JSON, which :func:`is_current` compares)."""
    commit, dirty = git if git is not None else git_state()
    return {"biaslib_version": __version__, "git_commit": commit, "git_dirty": dirty,
            "params_digest": params.digest(), "seed": params.seed,
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
        raise BiaslibError(f"{path} is not a readable biaslib result ({exc!r}); pass overwrite=True to recompute "
                           "it") from exc
    settings = json.loads(json.dumps(settings, default=str))
    if old == settings:
        return True
    changed = "; ".join(f"{k}: {old.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(old) | set(settings))
                        if old.get(k) != settings.get(k))
    raise BiaslibError(f"{path} was computed with other settings ({changed}); pass overwrite=True to recompute it")


__all__ = ["git_state", "is_current", "provenance"]
