"""Atomic, reproducible file writing.

Every file biaslib writes goes through :func:`atomic_path`: the content is written to a temporary
name in the destination folder, flushed to disk and renamed into place, so a crash never leaves a
half-written file under the final name. Tar shards get fixed member metadata so the same content
gives byte-identical archives.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (stable bytes for the same object)."""
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def write_csv(path: str | os.PathLike, frame: pd.DataFrame, **kwargs: Any) -> None:
    """Atomically write ``frame`` as CSV (no index unless asked)."""
    kwargs.setdefault("index", False)
    write_text(path, frame.to_csv(lineterminator="\n", **kwargs))


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Atomically write ``frame`` as Parquet (no index)."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


class TarShardWriter:
    """Write one webdataset shard atomically: members go to a temporary tar renamed on close.

    Members get mtime 0, uid/gid 0 and mode 0644, so equal content gives equal bytes. Use as a
    context manager; if the block raises, the temporary file is discarded.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._tar = tarfile.open(self._tmp, "w", format=tarfile.USTAR_FORMAT)
        self.count = 0

    def add(self, name: str, data: bytes) -> None:
        """Append a member ``name`` with ``data``."""
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        self._tar.addfile(info, io.BytesIO(data))

    def add_sample(self, key: str, members: dict[str, bytes]) -> None:
        """Append one sample: ``members`` maps extension (``"jpg"``) → bytes, written as ``key.ext``."""
        for ext, data in members.items():
            self.add(f"{key}.{ext}", data)
        self.count += 1

    def __enter__(self) -> TarShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._tar.close()
        self._ctx.__exit__(exc_type, exc, tb)
