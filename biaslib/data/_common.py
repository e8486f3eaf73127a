"""Shared helpers for the dataset loaders: path and column checks, label validation, image checks.

Every check raises :class:`~biaslib.errors.DataLayoutError` with a message that names the offending
path or column and shows the expected on-disk layout, so that a user can fix the data without reading
the loader's source.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from biaslib.errors import DataLayoutError

PathLike = str | os.PathLike[str]


def layout_error(problem: str, layout: str) -> DataLayoutError:
    """Build a DataLayoutError whose message is ``problem`` followed by the expected ``layout`` tree."""
    tree = textwrap.indent(textwrap.dedent(layout).strip("\n"), "  ")
    return DataLayoutError(f"{problem}\nExpected layout:\n{tree}")


def require_dir(path: PathLike, what: str, layout: str) -> Path:
    """Return ``path`` as an absolute Path; raise if it is not an existing directory."""
    path = Path(path).expanduser()
    if not path.is_dir():
        state = "is not a directory" if path.exists() else "not found"
        raise layout_error(f"{what} {state}: {path}", layout)
    return path.resolve()


def first_existing(candidates: Sequence[Path], what: str, layout: str) -> Path:
    """Return the first existing file among ``candidates``; raise naming all of them if none exists."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = "\n".join(f"  {c}" for c in candidates)
    raise layout_error(f"{what} not found; looked for:\n{looked}", layout)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], source: PathLike, layout: str) -> None:
    """Raise if ``frame`` (read from ``source``) lacks any of ``columns``."""
    columns = list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise layout_error(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"expected columns {', '.join(columns)} (found: {', '.join(map(str, frame.columns))})",
            layout,
        )


def read_csv(path: Path, columns: Iterable[str], layout: str) -> pd.DataFrame:
    """Read a UTF-8 CSV with every cell as a string (empty cells stay ``""``) and check its columns."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise layout_error(f"{path}: not a readable UTF-8 CSV ({exc})", layout) from exc
    require_columns(frame, columns, path, layout)
    return frame


def read_labels(
    values: pd.Series,
    allowed: Collection[str],
    source: PathLike,
    column: str,
    repair: Callable[[str], str | None],
) -> pd.Series:
    """Map every value to its canonical label in ``allowed``; raise naming the unknown values.

    ``repair`` returns the canonical label for a raw value (e.g. after stripping spaces), or None.
    """
    mapping: dict[str, str] = {}
    unknown: list[str] = []
    for value in values.unique():
        label = repair(value)
        if label in allowed:
            mapping[value] = label
        else:
            unknown.append(value)
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataLayoutError(
            f"{source}: column {column!r} has unknown label(s) {shown}; "
            f"allowed labels: {', '.join(repr(a) for a in allowed)}"
        )
    return values.map(mapping)


def require_unique(ids: pd.Series, source: PathLike) -> None:
    """Raise if the canonical ``image_id`` values read from ``source`` are not unique."""
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        shown = ", ".join(repr(v) for v in duplicated[:5])
        raise DataLayoutError(f"{source}: duplicate image ids {shown} ({len(duplicated)} in all)")


def check_images(frame: pd.DataFrame, column: str = "file") -> pd.DataFrame:
    """Return the rows of ``frame`` whose image file is missing or cannot be decoded.

    Each file is checked with PIL's ``verify`` (container and checksums) and then fully decoded
    (``verify`` alone does not notice a truncated JPEG). The result holds the failing rows, in their
    original order, with an extra string column ``problem`` (``"missing"`` or ``"undecodable: ..."``).
    """
    if column not in frame.columns:
        raise DataLayoutError(
            f"check_images: frame has no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    positions: list[int] = []
    problems: list[str] = []
    for position, file in enumerate(frame[column]):
        problem = _image_problem(file)
        if problem is not None:
            positions.append(position)
            problems.append(problem)
    bad = frame.iloc[positions].copy()
    bad["problem"] = problems
    return bad


def _image_problem(file: object) -> str | None:
    """Describe why ``file`` is not a path to a decodable image, or return None if it is one."""
    if not isinstance(file, (str, os.PathLike)) or not Path(file).is_file():
        return "missing"
    path = Path(file)
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, struct.error, ...)
        return f"undecodable: {type(exc).__name__}: {exc}"
    return None
