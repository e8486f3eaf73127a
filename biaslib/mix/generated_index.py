"""The index of a generation run's shards: which key has a usable generated image, and where."""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from biaslib.data._common import PathLike, require_dir
from biaslib.errors import BiaslibError
from biaslib.mix.tar import (
    IMAGE_FORMATS,
    Sample,
    TarMember,
    drop_cut,
    group_samples,
    image_format,
    json_object,
    mapped_file,
    member_bytes,
    sample_image_ext,
    scan_tar,
)
from biaslib.progress import progress as progress_bar

log = logging.getLogger(__name__)
GENERATED_LAYOUT = """
<generated_root>/
  00-00000.tar, 01-00000.tar, ...   shards of biaslib.generate (<rank:02d>-<shard:05d>.tar); per sample:
    <key>.jpg|.webp|.png            generated image (<key> = the real CC3M sample key)
    <key>.txt                       prompt
    <key>.json                      generation record {"key", "prompt", "seed", "model", ...}
  00-00000_stats.json, ...          written after its tar; a tar without it is unfinished and ignored
"""
_OPEN_SHARDS = 32  # generated shards kept mapped at once while mixing


class GeneratedEntry(NamedTuple):
    """Where a generated sample lies: shard number (index into :attr:`GeneratedIndex.shards`), image
    extension, image member and JSON (generation record) member."""

    shard: int
    ext: str
    image: TarMember
    record: TarMember


@dataclass
class GeneratedIndex:
    """Usable generated samples by key, from the finished shards of a generation folder.

    ``entries``: key → :class:`GeneratedEntry`; ``shards``: finished shards read; ``unfinished``: tars
    without their ``_stats.json`` (ignored); ``unusable``: key → reason for samples that cannot be
    used (no or several images, image bytes not matching the extension, missing or broken JSON, JSON
    key differing from the member key, cut off by a truncated shard). Unusable keys are not eligible.
    """

    root: Path
    shards: list[Path] = field(default_factory=list)
    entries: dict[str, GeneratedEntry] = field(default_factory=dict)
    unfinished: list[Path] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)
    truncated_shards: list[Path] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)  # per shard: "name size mtime_ns"

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def summary(self) -> dict[str, Any]:
        """Counts for a manifest: shards, samples, unfinished and truncated shards, unusable reasons."""
        return {
            "shards": len(self.shards), "samples": len(self.entries),
            "unfinished_shards": [p.name for p in self.unfinished],
            "truncated_shards": [p.name for p in self.truncated_shards],
            "unusable": dict(sorted(Counter(self.unusable.values()).items())),
        }


def index_generated(root: PathLike, progress: bool = False) -> GeneratedIndex:
    """Index the finished shards (``*.tar`` with ``<name>_stats.json`` beside it) of a generation folder.

    Reads tar headers, each JSON record and the first bytes of each image (to check that the bytes
    match the extension); nothing is decoded. A key in two shards raises :class:`BiaslibError` naming
    both; a missing folder raises :class:`DataLayoutError`.
    """
    root = require_dir(root, "generated image folder", GENERATED_LAYOUT)
    index = GeneratedIndex(root)
    owner: dict[str, Path] = {}
    tars = sorted(p for p in root.glob("*.tar") if not p.name.startswith("."))
    for path in progress_bar(tars, desc="index generated", unit="shard", disable=not progress, transient=True):
        if _stats_path(path).is_file():
            _index_shard(index, path, owner)
        else:
            index.unfinished.append(path)
    return index


def _stats_path(tar: Path) -> Path:
    return tar.with_name(f"{tar.stem}_stats.json")


def _index_shard(index: GeneratedIndex, path: Path, owner: dict[str, Path]) -> None:
    shard = len(index.shards)
    info = path.stat()
    index.shards.append(path)
    index.fingerprints.append(f"{path.name} {info.st_size} {info.st_mtime_ns}")
    with mapped_file(path) as buf:
        scan = scan_tar(buf)
        samples = group_samples(scan.members)
        cut = drop_cut(samples, scan)
        if not scan.complete:
            index.truncated_shards.append(path)
        for sample in samples:
            if sample.key in owner:
                raise BiaslibError(f"generated key {sample.key!r} appears in both {owner[sample.key]} and {path}; "
                                   "every id must be generated exactly once")
            owner[sample.key] = path
            entry = _generated_entry(sample, buf, shard)
            if isinstance(entry, str):
                index.unusable[sample.key] = entry
            else:
                index.entries[sample.key] = entry
        if cut is not None and cut not in owner:
            index.unusable[cut] = "cut off by shard error"


def _generated_entry(sample: Sample, buf: bytes | mmap.mmap, shard: int) -> GeneratedEntry | str:
    """The entry of a generated sample, or the reason it is unusable."""
    ext = sample_image_ext(sample)
    if ext.startswith("!"):
        return ext[1:]
    image = sample.members[ext]
    if image_format(buf[image.offset : image.offset + 12]) != IMAGE_FORMATS[ext]:
        return f"image bytes are not {IMAGE_FORMATS[ext]}"
    if "json" not in sample.members:
        return "missing json"
    record = json_object(buf, sample.members["json"])
    if record is None:
        return "undecodable json"
    if str(record.get("key", sample.key)) != sample.key:
        return "json key differs from member key"
    return GeneratedEntry(shard, ext, image, sample.members["json"])


class ShardMaps:
    """Read-only maps of generated shards, opened on demand, at most ``limit`` at once (LRU)."""

    def __init__(self, paths: list[Path], limit: int = _OPEN_SHARDS):
        self.paths, self.limit = paths, limit
        self._open: OrderedDict[int, contextlib.ExitStack] = OrderedDict()
        self._maps: dict[int, bytes | mmap.mmap] = {}

    def read(self, entry: GeneratedEntry) -> tuple[bytes, dict[str, Any]]:
        """The image bytes and the parsed generation record of ``entry``."""
        buf = self._map(entry.shard)
        return member_bytes(buf, entry.image), json.loads(member_bytes(buf, entry.record))

    def _map(self, shard: int) -> bytes | mmap.mmap:
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._maps[shard]
        if len(self._open) >= self.limit:
            oldest, stack = self._open.popitem(last=False)
            del self._maps[oldest]
            stack.close()
        stack = contextlib.ExitStack()
        self._maps[shard] = stack.enter_context(mapped_file(self.paths[shard]))
        self._open[shard] = stack
        return self._maps[shard]

    def close(self) -> None:
        for stack in self._open.values():
            stack.close()
        self._open.clear()
        self._maps.clear()
