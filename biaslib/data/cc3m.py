"""Streaming reader for CC3M webdataset shards in img2dataset layout (formats.md A1, A3).

Each sample is a run of consecutive tar members sharing a key: ``<key>.jpg`` (or ``.jpeg``, ``.png``,
``.webp``), ``<key>.txt`` (caption) and ``<key>.json`` (metadata, optional). Shards are read with
:mod:`tarfile` in stream mode, plain or gzip-compressed (GAB's mixing script writes gzip data under
a ``.tar`` name). Broken samples and broken shards are skipped and counted in :class:`ReadStats`.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import posixpath
import re
import tarfile
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from PIL import Image

from biaslib.data._common import PathLike, layout_error

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
_BLOCK = tarfile.BLOCKSIZE
_TAIL_BYTES = 1 << 20  # enough for any end-of-archive marker plus record padding
_BRACES = re.compile(r"(.*)\{(\d+)\.\.(\d+)\}(.*)")

LAYOUT = """
<root>/
  00000.tar, 00001.tar, ...     webdataset shards (img2dataset output); per sample:
    <key>.jpg                   image (or .jpeg/.png/.webp)
    <key>.txt                   caption (UTF-8)
    <key>.json                  metadata (optional)
  00000_stats.json              img2dataset's count of the shard's samples ("successes"; optional), or
  00000.parquet                 its per-sample table (rows with status "success"; optional): the index that
                                counts the samples a truncated or corrupt shard lost
"""

log = logging.getLogger(__name__)


class CC3MSample(NamedTuple):
    """One image-caption pair: ``image`` is a loaded PIL image, or the raw bytes when not decoding."""

    key: str
    image: Image.Image | bytes
    caption: str
    metadata: dict[str, Any]


@dataclass
class ReadStats:
    """Counts of one or more :func:`iter_cc3m` passes.

    ``samples``: samples yielded; ``skipped``: samples dropped; ``errors``: reason -> count, with
    ``"sample: ..."`` reasons for dropped samples and ``"shard: empty"`` or ``"shard: truncated or
    corrupt"`` for shards whose rest was skipped; ``shards``: shard files opened; ``bad_shards``: paths
    of the empty or broken shards.
    """

    samples: int = 0
    skipped: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    shards: int = 0
    bad_shards: list[Path] = field(default_factory=list)


def shard_index_count(shard: PathLike) -> tuple[int, Path] | None:
    """(samples, index file) of the samples img2dataset wrote to ``shard``, from the index beside it:
    ``<stem>_stats.json`` (``successes``) or else ``<stem>.parquet`` (rows whose ``status`` is ``success``, every
    row without that column); None when the shard has no readable index."""
    shard = Path(shard)
    stats = shard.with_name(f"{shard.stem}_stats.json")
    try:
        successes = json.loads(stats.read_text(encoding="utf-8")).get("successes")
        if isinstance(successes, int) and not isinstance(successes, bool) and successes >= 0:
            return successes, stats
    except (OSError, ValueError, AttributeError):
        pass
    table = shard.with_name(f"{shard.stem}.parquet")
    if not table.is_file():
        return None
    import pandas as pd

    try:
        frame = pd.read_parquet(table, columns=None)
    except (OSError, ValueError, ImportError):
        return None
    return (int((frame["status"] == "success").sum()) if "status" in frame.columns else len(frame)), table


def list_shards(root_or_paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Return the sorted, absolute shard paths named by a folder, a tar file, a list of those, or a brace
    pattern such as ``cc3m/{00000..00331}.tar``. A folder contributes its ``*.tar`` files.
    """
    if isinstance(root_or_paths, (str, os.PathLike)):
        items = _expand_braces(os.fspath(root_or_paths))
    else:
        items = [os.fspath(p) for p in root_or_paths]
    shards: set[Path] = set()
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            shards.update(p.resolve() for p in path.glob("*.tar"))
        elif path.is_file():
            shards.add(path.resolve())
        else:
            raise layout_error(f"CC3M shard or shard folder not found: {path}", LAYOUT)
    if not shards:
        raise layout_error(f"no .tar shards found in {', '.join(items) or 'an empty list'}", LAYOUT)
    return sorted(shards)


def iter_cc3m(
    shards: PathLike | Iterable[PathLike], stats: ReadStats | None = None, decode: bool = True
) -> Iterator[CC3MSample]:
    """Stream the samples of ``shards`` (see :func:`list_shards`) in shard and member order.

    Samples whose image is missing or cannot be decoded (only checked when ``decode``), whose caption
    is missing or not UTF-8, or whose metadata is not a JSON object are skipped; an empty, truncated or
    otherwise corrupt shard ends that shard (the sample being read at that point is dropped). Both are
    counted in ``stats``. Shard paths are checked at call time, so a missing path raises
    :class:`~biaslib.errors.DataLayoutError` before iteration starts.
    """
    paths = list_shards(shards)
    return _iterate(paths, stats if stats is not None else ReadStats(), decode)


def _iterate(paths: list[Path], stats: ReadStats, decode: bool) -> Iterator[CC3MSample]:
    """Generator behind :func:`iter_cc3m`, which checks the paths before the first ``next``."""
    for path in paths:
        stats.shards += 1
        yield from _read_shard(path, stats, decode)


def _read_shard(path: Path, stats: ReadStats, decode: bool) -> Iterator[CC3MSample]:
    """Yield the good samples of one shard; count bad samples and a bad shard in ``stats``."""
    if path.stat().st_size == 0:
        _shard_error(stats, path, "empty")
        return
    group_key: str | None = None
    group: dict[str, bytes] = {}
    with path.open("rb") as raw:
        stream = _TailKeeper(gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == b"\x1f\x8b" else raw)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, extension = _split_name(member.name)
                    if key != group_key:
                        if sample := _make_sample(group_key, group, stats, decode):
                            yield sample
                        group_key, group = key, {}
                    group[extension] = tar.extractfile(member).read()
                end = tar.offset
            complete = stream.ends_with_eof_marker(end)
        except (tarfile.TarError, EOFError, OSError, zlib.error):
            complete = False
    if not complete:
        if group_key is not None:  # the sample being read when the shard broke is lost
            _skip(stats, "cut off by shard error")
        _shard_error(stats, path, "truncated or corrupt")
    elif group_key is None:
        _shard_error(stats, path, "empty")
    elif sample := _make_sample(group_key, group, stats, decode):
        yield sample


def _make_sample(
    key: str | None, group: dict[str, bytes], stats: ReadStats, decode: bool
) -> CC3MSample | None:
    """Build a sample from the members of one key; count and return None when it is unusable."""
    if key is None:
        return None
    extension = next((e for e in IMAGE_EXTENSIONS if e in group), None)
    if extension is None:
        return _skip(stats, "missing image")
    if "txt" not in group:
        return _skip(stats, "missing caption")
    try:
        caption = group["txt"].decode("utf-8")
    except UnicodeDecodeError:
        return _skip(stats, "undecodable caption")
    metadata: Any = {}
    if "json" in group:
        try:
            metadata = json.loads(group["json"])
        except ValueError:
            return _skip(stats, "undecodable json")
        if not isinstance(metadata, dict):
            return _skip(stats, "undecodable json")
    image: Image.Image | bytes = group[extension]
    if decode:
        try:
            image = Image.open(io.BytesIO(group[extension]))
            image.load()
        except Exception:  # PIL raises many types (OSError, SyntaxError, struct.error, ...)
            return _skip(stats, "undecodable image")
    stats.samples += 1
    return CC3MSample(key, image, caption, metadata)


def _skip(stats: ReadStats, reason: str) -> None:
    stats.skipped += 1
    stats.errors[f"sample: {reason}"] += 1


def _shard_error(stats: ReadStats, path: Path, reason: str) -> None:
    log.warning("CC3M shard %s is %s; its remaining samples are skipped", path, reason)
    stats.errors[f"shard: {reason}"] += 1
    stats.bad_shards.append(path)


def _split_name(name: str) -> tuple[str, str]:
    """Split a member name into webdataset key and lower-case extension.

    ``a/01.JPG`` gives ``("a/01", "jpg")``; ``01.seg.png`` gives ``("01", "seg.png")``.
    """
    folder, base = posixpath.split(name.removeprefix("./"))
    stem, _, extension = base.partition(".")
    return posixpath.join(folder, stem) if folder else stem, extension.lower()


def _expand_braces(pattern: str) -> list[str]:
    """Expand one ``{first..last}`` numeric range, zero-padded to the width of ``first``."""
    match = _BRACES.fullmatch(pattern)
    if match is None:
        return [pattern]
    head, first, last, tail = match.groups()
    return [f"{head}{i:0{len(first)}d}{tail}" for i in range(int(first), int(last) + 1)]


class _TailKeeper:
    """Read-only stream wrapper that remembers its last bytes, to check how a tar stream ended.

    :mod:`tarfile` stops silently when a file is cut at a header boundary; a complete archive instead
    has a zero block (end-of-archive marker) where the last member ends.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.position += len(data)
        self._tail.append(data)
        self._tail_size += len(data)
        while self._tail_size - len(self._tail[0]) >= _TAIL_BYTES:
            self._tail_size -= len(self._tail.popleft())
        return data

    def ends_with_eof_marker(self, offset: int) -> bool:
        """Read to the end; True if a full zero block starts at ``offset`` (where tarfile stopped)."""
        while self.read(1 << 16):
            pass
        start = self.position - self._tail_size
        if offset < start or self.position - offset < _BLOCK:
            return False
        tail = b"".join(self._tail)
        return tail[offset - start : offset - start + _BLOCK] == bytes(_BLOCK)
