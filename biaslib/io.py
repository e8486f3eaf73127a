"""Atomic, reproducible file writing.

Every file biaslib writes goes through :func:`atomic_path`: the content is written to a temporary
name in the destination folder, flushed to disk and renamed into place, so a crash never leaves a
half-written file under the final name. Tar shards get fixed member metadata so the same content
gives byte-identical archives.
"""

from __future__ import annotations

import contextlib
import hashlib
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


#: Header bytes after the checksum for a regular file: type '0', no link, "ustar\0" "00", empty
#: user/group names, device numbers and prefix (what tarfile writes for such a member).
_USTAR_TAIL = b"0" + b"\0" * 100 + b"ustar\x0000" + b"\0" * (32 + 32 + 16 + 155)
_USTAR_TAIL_SUM = sum(_USTAR_TAIL) + 8 * 32  # the checksum field counts as eight spaces


def _ustar_header(name: str, size: int) -> bytes:
    """The 512-byte header tarfile writes for a regular file with mtime 0, uid/gid 0 and mode 0644.

    Names over 100 bytes get tarfile's pax extended header.
    """
    raw = name.encode("utf-8")
    if len(raw) > 100:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, 0, 0o644
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    head = raw.ljust(100, b"\0") + b"0000644\0" + b"0000000\0" + b"0000000\0" + b"%011o\0" % size + b"00000000000\0"
    checksum = sum(head) + _USTAR_TAIL_SUM
    return (head + b"%06o\0 " % checksum + _USTAR_TAIL).ljust(tarfile.BLOCKSIZE, b"\0")


class TarShardWriter:
    """Write one webdataset shard atomically: members go to a temporary tar renamed on close.

    Members get mtime 0, uid/gid 0 and mode 0644 (the bytes :mod:`tarfile` writes for them, built
    directly: header construction dominates when members are small), so equal content gives equal
    bytes. Use as a context manager; if the block raises, the temporary file is discarded.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._fh = open(self._tmp, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in __exit__)
        self._offset = 0
        self.count = 0

    def add(self, name: str, data: bytes) -> None:
        """Append a member ``name`` with ``data``."""
        pad = -len(data) % tarfile.BLOCKSIZE
        self._fh.write(_ustar_header(name, len(data)))
        self._fh.write(data)
        if pad:
            self._fh.write(b"\0" * pad)
        self._offset += tarfile.BLOCKSIZE + len(data) + pad

    def add_sample(self, key: str, members: dict[str, bytes]) -> None:
        """Append one sample: ``members`` maps extension (``"jpg"``) → bytes, written as ``key.ext``."""
        for ext, data in members.items():
            self.add(f"{key}.{ext}", data)
        self.count += 1

    def _finish(self) -> None:
        """End-of-archive: two zero blocks, then zeros up to a whole 10,240-byte record (as tarfile)."""
        end = self._offset + 2 * tarfile.BLOCKSIZE
        self._fh.write(b"\0" * (2 * tarfile.BLOCKSIZE + (-end % tarfile.RECORDSIZE)))

    def __enter__(self) -> TarShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._finish()
        finally:
            self._fh.close()
            self._ctx.__exit__(exc_type, exc, tb)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 8 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 23):
            digest.update(block)
    return digest.hexdigest()


def files_fingerprint(paths: Any) -> str:
    """sha256 over (absolute path, size, mtime in ns) of each file of ``paths``, in order: changes when a file
    is replaced, edited, truncated, added or removed, without reading any content. A missing file is
    fingerprinted as missing (size -1)."""
    digest = hashlib.sha256()
    for path in paths:
        resolved = Path(path).resolve()
        try:
            stat = resolved.stat()
            size, mtime = stat.st_size, stat.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        digest.update(f"{resolved}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def texts_fingerprint(texts: Any) -> str:
    """sha256 of the texts ``texts``, in order (each text's UTF-8 bytes, NUL-separated)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(str(text).encode("utf-8") + b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, name: str = "run") -> Iterator[Path]:
    """Hold ``<folder>/.<name>.lock`` for the block: created atomically (``O_EXCL``) with the holder's PID, host
    and start time, removed on exit. A lock of another live process is a :class:`~biaslib.errors.BiaslibError`
    naming its holder; a stale lock (its PID no longer runs on this host) is taken over with a warning."""
    import logging
    import socket
    from datetime import datetime, timezone

    from biaslib.errors import BiaslibError

    path = Path(folder) / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == me["host"] and not _pid_alive(int(holder.get("pid", -1))):
                logging.getLogger(__name__).warning("taking over the stale lock %s of %s", path, holder)
                path.unlink(missing_ok=True)
                continue
            raise BiaslibError(f"{path.parent} is in use by another run (lock {path}: pid {holder.get('pid')} on "
                               f"{holder.get('host')}, started {holder.get('started_utc')}); wait for it, or delete "
                               "the lock file if that run is gone") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        break
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (signal 0; a permission error means it exists)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike, pattern: str = "*") -> list[Path]:
    """Delete the temporary files :func:`atomic_path` leaves when a process is killed
    (``.<name>.tmp<pid>`` for names matching ``pattern``) whose PID no longer runs; returns them."""
    removed = []
    for tmp in Path(folder).glob(f".{pattern}.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be written there (before heavy work, so a run never
    computes everything and then fails at its final write); :class:`~biaslib.errors.BiaslibError` naming the
    folder otherwise."""
    from biaslib.errors import BiaslibError

    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.tmp{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise BiaslibError(f"cannot write to {path} ({err.strerror or err}); choose another output folder or fix "
                           "its permissions") from None
    return path

