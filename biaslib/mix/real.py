"""The real shards of a mix: their samples read and surveyed, corrupt samples skipped and counted.

A lost sample is counted as a sample, not as a shard or a member: a shard cut in half loses every sample after
the cut, and the number its index lists (:func:`~biaslib.data.cc3m.shard_index_count`) minus the usable ones is
the number lost. A truncated or corrupt shard without an index cannot be counted and is listed as such.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from biaslib.data._common import PathLike, layout_error, require_dir
from biaslib.data.cc3m import LAYOUT as REAL_LAYOUT
from biaslib.data.cc3m import ReadStats, list_shards, shard_index_count
from biaslib.errors import BiaslibError
from biaslib.mix.tar import (
    Sample,
    TarMember,
    drop_cut,
    group_samples,
    json_object,
    mapped_file,
    member_bytes,
    sample_image_ext,
    scan_tar,
)
from biaslib.progress import progress as progress_bar


class RealSample(NamedTuple):
    key: str
    members: dict[str, TarMember]
    image_ext: str
    caption: str
    meta: dict[str, Any] | None  # the sample's JSON, None when it has none


def read_real(buf: bytes | mmap.mmap, path: Path, stats: ReadStats) -> list[RealSample]:
    """The usable samples of a real shard; unusable samples and a broken shard are counted in ``stats``
    with :func:`~biaslib.data.cc3m.iter_cc3m`'s reasons."""
    if buf[:2] == b"\x1f\x8b":
        raise layout_error(f"{path} is gzip-compressed; mixing reads plain tars (decompress it with "
                           f"gzip -dc {path.name} > plain.tar and replace it)", REAL_LAYOUT)
    scan = scan_tar(buf)
    samples = group_samples(scan.members)
    if not scan.complete:
        if drop_cut(samples, scan) is not None:
            _skip(stats, "cut off by shard error")
        _shard_error(stats, path, "truncated or corrupt")
    elif not samples:
        _shard_error(stats, path, "empty")
    usable = []
    for sample in samples:
        real = _real_sample(sample, buf, path)
        if isinstance(real, str):
            _skip(stats, real)
        else:
            usable.append(real)
    stats.samples += len(usable)
    return usable


def _real_sample(sample: Sample, buf: bytes | mmap.mmap, path: Path) -> RealSample | str:
    """The parsed real sample, or the reason it is skipped."""
    ext = sample_image_ext(sample)
    if ext.startswith("!"):
        return ext[1:]
    if "txt" not in sample.members:
        return "missing caption"
    try:
        caption = member_bytes(buf, sample.members["txt"]).decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable caption"
    meta = None
    if "json" in sample.members:
        meta = json_object(buf, sample.members["json"])
        if meta is None:
            return "undecodable json"
        if "source" in meta or "generated" in meta:
            raise layout_error(f"{path}: sample {sample.key!r} already has a 'source'/'generated' field; "
                               "the real root must hold real shards, not a mix", REAL_LAYOUT)
    return RealSample(sample.key, sample.members, ext, caption, meta)


def _skip(stats: ReadStats, reason: str) -> None:
    stats.skipped += 1
    stats.errors[f"sample: {reason}"] += 1


def _shard_error(stats: ReadStats, path: Path, reason: str) -> None:
    stats.errors[f"shard: {reason}"] += 1
    stats.bad_shards.append(path)


@dataclass
class RealSurvey:
    """Pass 1 over the real shards: usable keys and counts per shard; ``uncounted``: truncated or corrupt shards
    without an index, whose lost samples cannot be counted."""

    keys: dict[Path, list[str]] = field(default_factory=dict)
    stats: dict[Path, ReadStats] = field(default_factory=dict)
    uncounted: list[Path] = field(default_factory=list)

    def all_keys(self) -> list[str]:
        return [k for keys in self.keys.values() for k in keys]


def survey_real(paths: list[Path], progress: bool) -> RealSurvey:
    """Read every real shard once; a key in two places raises :class:`BiaslibError` naming both."""
    survey, owner = RealSurvey(), {}
    for path in progress_bar(paths, desc="index real", unit="shard", disable=not progress, transient=True):
        stats = ReadStats(shards=1)
        with mapped_file(path) as buf:
            keys = [s.key for s in read_real(buf, path, stats)]
        for key in keys:
            if key in owner:
                raise BiaslibError(f"real key {key!r} appears twice: in {owner[key]} and {path}")
            owner[key] = path
        if not _count_lost(path, stats):
            survey.uncounted.append(path)
        survey.keys[path], survey.stats[path] = keys, stats
    return survey


def _count_lost(path: Path, stats: ReadStats) -> bool:
    """Add to ``stats`` the samples ``path``'s index lists beyond those read (usable or skipped); False when a
    truncated or corrupt shard has no index to count them from."""
    index = shard_index_count(path)
    if index is None:
        return path not in stats.bad_shards
    lost = index[0] - stats.samples - stats.skipped
    if lost > 0:
        stats.skipped += lost
        stats.errors["sample: missing from the shard (counted from its index)"] += lost
    return True


def real_shards(real_root: PathLike) -> tuple[Path, list[Path]]:
    root = require_dir(real_root, "real CC3M shard folder", REAL_LAYOUT)
    return root, list_shards(root)
