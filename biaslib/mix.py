"""Nested ratio mixing of real and generated CC3M shards, with a manifest and a verifier.

At ratio r the mixed dataset keeps every usable real sample (N of them); a seeded subset of
``round(r·N)`` keys uses the generated image instead of the real one (design.md, "Pipeline
semantics" → Mixing). Unlike the original study's script (formats.md A3) nothing is dropped: keys
without a generated image stay real, every sample keeps its caption and all its JSON fields plus
``"source"``, the generated image keeps its own extension (no PNG bytes under a ``.jpg`` name), the
choice is a keyed hash (so the set at 0.2 ⊂ the set at 0.4 ⊂ …, reproducibly), the count is exact
and a manifest records what was done.

Layouts (``<code>`` is the ratio code of :mod:`biaslib.ratios`, e.g. ``020``)::

    <real_root>/               img2dataset webdataset shards: 00000.tar … (<key>.jpg|.txt|.json)
    <generated_root>/          biaslib.generate output (GENERATED_LAYOUT below)
    <out_root>/mix_<code>/
      00000.tar …              one shard per real shard, same name, same sample order
      00000_stats.json …       per shard: counts per source, inputs, sha256; written after the tar
      manifest.json            written last (see :func:`mix`)

Shards are read through a memory map and parsed header by header (:func:`scan_tar`): no image is
decoded and member bytes are copied as they are. Every file is written atomically
(:class:`~biaslib.io.TarShardWriter`, :func:`~biaslib.io.write_json`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import struct
from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from tqdm.auto import tqdm

from biaslib import __version__
from biaslib.data._common import PathLike, layout_error, require_dir
from biaslib.data.cc3m import IMAGE_EXTENSIONS, ReadStats, list_shards
from biaslib.data.cc3m import LAYOUT as REAL_LAYOUT
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.io import TarShardWriter, file_sha256, write_json
from biaslib.ratios import ratio_code, ratio_percent

log = logging.getLogger(__name__)

GENERATED_LAYOUT = """
<generated_root>/
  00-00000.tar, 01-00000.tar, ...   shards of biaslib.generate (<rank:02d>-<shard:05d>.tar); per sample:
    <key>.jpg|.webp|.png            generated image (<key> = the real CC3M sample key)
    <key>.txt                       prompt
    <key>.json                      generation record {"key", "prompt", "seed", "model", ...}
  00-00000_stats.json, ...          written after its tar; a tar without it is unfinished and ignored
"""
SELECTION_RULE = (
    "keys with a usable generated image, ordered by int.from_bytes(blake2b(f'{seed}:{key}', digest_size=8), "
    "'big') then key; the first round(Fraction(percent * N, 100)) of them (Python's round: exact, ties to even) "
    "use the generated image (N = usable real samples)"
)
MANIFEST_FORMAT = "biaslib-mix/1"

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_FILE_TYPES = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file
_META_TYPES = (b"x", b"g", b"L", b"K")  # pax header, pax global header, GNU long name, GNU long link
_IMAGE_FORMAT = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}
_OPEN_SHARDS = 32  # generated shards kept mapped at once while mixing


class ShortfallError(BiaslibError):
    """Fewer real samples have a usable generated image than the ratio needs."""


# ---- tar parsing ----------------------------------------------------------------------------------

class TarMember(NamedTuple):
    """A regular-file member: its ``name``, the byte ``offset`` of its data in the archive and its ``size``."""

    name: str
    offset: int
    size: int


class TarScan(NamedTuple):
    """The members of an archive in order; ``complete`` is False when it is truncated or corrupt
    (no end-of-archive block where the last member ends, a bad header checksum, data past the end);
    ``cut`` names the member whose header was read but whose data runs past the end."""

    members: list[TarMember]
    complete: bool
    cut: str | None = None


def scan_tar(buf: bytes | mmap.mmap) -> TarScan:
    """Parse the headers of a tar archive held in ``buf`` (USTAR, GNU long names, pax ``path``/``size``).

    Reads 512-byte headers only, jumping over member data; equivalent to ``tarfile`` in ``"r:"`` mode
    iterating ``TarInfo.offset_data``/``size`` for regular files, but an early end is reported in
    ``complete`` instead of being taken silently as the end of the archive.
    """
    members: list[TarMember] = []
    pending: dict[str, str] = {}  # pax / GNU overrides for the next member
    pos = 0
    while pos + _BLOCK <= len(buf):
        header = buf[pos : pos + _BLOCK]
        if header == _ZERO_BLOCK:
            return TarScan(members, True)
        try:
            name, size, kind = _parse_header(header)
            if kind not in _META_TYPES:
                name, size = pending.get("path", name), int(pending.get("size", size))
        except ValueError:
            break
        start = pos + _BLOCK
        if start + size > len(buf):
            return TarScan(members, False, None if kind in _META_TYPES else name)
        pos = start + -(-size // _BLOCK) * _BLOCK
        if kind in _META_TYPES:
            try:
                pending.update(_meta_records(kind, buf[start : start + size]))
            except ValueError:
                break
            continue
        if kind in _FILE_TYPES and not name.endswith("/"):
            members.append(TarMember(name, start, size))
        pending = {}
    return TarScan(members, False)


def _parse_header(header: bytes) -> tuple[str, int, bytes]:
    """(name, size, type flag) of a 512-byte header; ValueError on a bad checksum or number."""
    stored = _number(header[148:156])
    unsigned = sum(header) - sum(header[148:156]) + 8 * ord(" ")
    if stored != unsigned and stored != sum(struct.unpack("148b8x356b", header)) + 8 * ord(" "):
        raise ValueError("bad header checksum")
    kind = header[156:157]
    name = _text(header[:100])
    if header[345] and kind not in (b"L", b"K", b"S"):  # USTAR splits long names into prefix/name
        name = f"{_text(header[345:500])}/{name}"
    return name, _number(header[124:136]), kind


def _number(field: bytes) -> int:
    """A numeric header field: NUL/space-terminated octal, or GNU base-256 when the top bit is set."""
    if field[0] & 0x80:
        if field[0] != 0x80:
            raise ValueError("negative number in tar header")
        return int.from_bytes(field[1:], "big")
    return int(field.split(b"\0", 1)[0].strip() or b"0", 8)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _meta_records(kind: bytes, data: bytes) -> dict[str, str]:
    """Overrides for the next member from a pax header (``path``, ``size``) or a GNU long name."""
    if kind == b"L":
        return {"path": _text(data)}
    if kind != b"x":
        return {}
    records, pos = {}, 0
    while pos < len(data):
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        if length <= space - pos:
            raise ValueError("bad pax record length")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        if key in (b"path", b"size"):
            records[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class _Sample(NamedTuple):
    """Consecutive members sharing a key: ``members`` maps lower-case extension → member."""

    key: str
    members: dict[str, TarMember]
    duplicate: bool  # two members with the same extension


def split_member_name(name: str) -> tuple[str, str]:
    """Webdataset key and lower-case extension of a member name, as :mod:`biaslib.data.cc3m` splits
    them: ``a/01.JPG`` → ``("a/01", "jpg")``, ``./01.seg.png`` → ``("01", "seg.png")``."""
    name = name.removeprefix("./")
    dot = name.find(".", name.rfind("/") + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1 :].lower())


def _group(members: list[TarMember]) -> list[_Sample]:
    """Runs of consecutive members with the same key, as samples."""
    samples: list[_Sample] = []
    key, by_ext, duplicate = None, {}, False
    for member in members:
        member_key, ext = split_member_name(member.name)
        if member_key != key:
            if key is not None:
                samples.append(_Sample(key, by_ext, duplicate))
            key, by_ext, duplicate = member_key, {}, False
        duplicate = duplicate or ext in by_ext
        by_ext[ext] = member
    if key is not None:
        samples.append(_Sample(key, by_ext, duplicate))
    return samples


def _drop_cut(samples: list[_Sample], scan: TarScan) -> str | None:
    """Remove the sample that a truncated or corrupt archive cut off from ``samples``; return its key.

    As in :func:`~biaslib.data.cc3m.iter_cc3m`, the lost sample is the one whose member was being read:
    the owner of ``scan.cut``, else (an unreadable header) the last sample, which may lack members.
    """
    if scan.complete:
        return None
    if scan.cut is not None:
        key = split_member_name(scan.cut)[0]
        if samples and samples[-1].key == key:
            samples.pop()
        return key
    return samples.pop().key if samples else None


def _data(buf: bytes | mmap.mmap, member: TarMember) -> bytes:
    return buf[member.offset : member.offset + member.size]


def image_format(head: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the first 12 bytes of an image file, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _image_ext(sample: _Sample) -> str:
    """The single image extension of ``sample``, or a reason (prefixed ``!``) why there is none."""
    if sample.duplicate:
        return "!duplicate member"
    images = [ext for ext in sample.members if ext in IMAGE_EXTENSIONS]
    if not images:
        return "!missing image"
    return images[0] if len(images) == 1 else "!several images"


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The bytes of ``path`` as a read-only memory map (``b""`` for an empty file)."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            yield buf


# ---- generated index ------------------------------------------------------------------------------

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
    for path in tqdm(tars, desc="index generated", unit="shard", disable=not progress, leave=False):
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
    with _mapped(path) as buf:
        scan = scan_tar(buf)
        samples = _group(scan.members)
        cut = _drop_cut(samples, scan)
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


def _generated_entry(sample: _Sample, buf: bytes | mmap.mmap, shard: int) -> GeneratedEntry | str:
    """The entry of a generated sample, or the reason it is unusable."""
    ext = _image_ext(sample)
    if ext.startswith("!"):
        return ext[1:]
    image = sample.members[ext]
    if image_format(buf[image.offset : image.offset + 12]) != _IMAGE_FORMAT[ext]:
        return f"image bytes are not {_IMAGE_FORMAT[ext]}"
    if "json" not in sample.members:
        return "missing json"
    try:
        record = json.loads(_data(buf, sample.members["json"]))
    except ValueError:
        return "undecodable json"
    if not isinstance(record, dict):
        return "undecodable json"
    if str(record.get("key", sample.key)) != sample.key:
        return "json key differs from member key"
    return GeneratedEntry(shard, ext, image, sample.members["json"])


class _ShardMaps:
    """Read-only maps of generated shards, opened on demand, at most ``limit`` at once (LRU)."""

    def __init__(self, paths: list[Path], limit: int = _OPEN_SHARDS):
        self.paths, self.limit = paths, limit
        self._open: OrderedDict[int, contextlib.ExitStack] = OrderedDict()
        self._maps: dict[int, bytes | mmap.mmap] = {}

    def read(self, entry: GeneratedEntry) -> tuple[bytes, dict[str, Any]]:
        """The image bytes and the parsed generation record of ``entry``."""
        buf = self._map(entry.shard)
        return _data(buf, entry.image), json.loads(_data(buf, entry.record))

    def _map(self, shard: int) -> bytes | mmap.mmap:
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._maps[shard]
        if len(self._open) >= self.limit:
            oldest, stack = self._open.popitem(last=False)
            del self._maps[oldest]
            stack.close()
        stack = contextlib.ExitStack()
        self._maps[shard] = stack.enter_context(_mapped(self.paths[shard]))
        self._open[shard] = stack
        return self._maps[shard]

    def close(self) -> None:
        for stack in self._open.values():
            stack.close()
        self._open.clear()
        self._maps.clear()


# ---- selection ------------------------------------------------------------------------------------

def selection_hash(key: str, seed: int) -> int:
    """The 64-bit rank of ``key`` under ``seed``: ``blake2b(f"{seed}:{key}", digest_size=8)`` as a big-endian int."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big")


def target_count(ratio: float | int | str, n: int) -> int:
    """``round(r·n)`` for ratio ``r``, computed exactly from its percent code (Python's round: ties to
    even, so 50 % of 81 is 40)."""
    return round(Fraction(ratio_percent(ratio) * n, 100))


def select_generated(keys: Collection[str], eligible: Iterable[str], ratio: float | int | str, seed: int,
                     allow_shortfall: bool = False) -> set[str]:
    """The keys that use their generated image at ``ratio``.

    ``keys`` are all real sample keys (N = their number), ``eligible`` the keys that have a usable
    generated image (others are never chosen). The eligible keys are ordered by
    :func:`selection_hash` (ties by key) and the first ``target_count(ratio, N)`` are taken, so the
    sets are nested across ratios for one seed. If fewer are eligible, :class:`ShortfallError` says
    how many are missing, unless ``allow_shortfall``: then all eligible keys are taken.
    """
    key_set = set(keys)
    pool = [k for k in set(eligible) if k in key_set]
    target = target_count(ratio, len(key_set))
    if target > len(pool) and not allow_shortfall:
        raise ShortfallError(
            f"ratio {ratio_code(ratio)} needs {target} generated images ({ratio_percent(ratio)}% of {len(key_set)} "
            f"real samples) but only {len(pool)} real samples have a usable generated image: "
            f"{target - len(pool)} missing; generate them or allow a shortfall")
    pool.sort(key=lambda k: (selection_hash(k, seed), k))
    return set(pool[:target])


def _selection_digest(keys: list[str], chosen: set[str], index: GeneratedIndex) -> str:
    """sha256 over the chosen keys of one shard and where their generated bytes lie (shard name, size,
    mtime; member offsets and sizes), so that a regenerated image makes a rerun rebuild the shard."""
    digest = hashlib.sha256()
    for key in keys:
        if key in chosen:
            entry = index.entries[key]
            digest.update(f"{key}\t{index.fingerprints[entry.shard]}\t{entry.image}\t{entry.record}\n".encode())
    return digest.hexdigest()


# ---- real shards ----------------------------------------------------------------------------------

class _RealSample(NamedTuple):
    key: str
    members: dict[str, TarMember]
    image_ext: str
    caption: str
    meta: dict[str, Any] | None  # the sample's JSON, None when it has none


def _read_real(buf: bytes | mmap.mmap, path: Path, stats: ReadStats) -> list[_RealSample]:
    """The usable samples of a real shard; unusable samples and a broken shard are counted in ``stats``
    with :func:`~biaslib.data.cc3m.iter_cc3m`'s reasons."""
    if buf[:2] == b"\x1f\x8b":
        raise layout_error(f"{path} is gzip-compressed; mixing reads plain tars (decompress it with "
                           f"gzip -dc {path.name} > plain.tar and replace it)", REAL_LAYOUT)
    scan = scan_tar(buf)
    samples = _group(scan.members)
    if not scan.complete:
        if _drop_cut(samples, scan) is not None:
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


def _real_sample(sample: _Sample, buf: bytes | mmap.mmap, path: Path) -> _RealSample | str:
    """The parsed real sample, or the reason it is skipped."""
    ext = _image_ext(sample)
    if ext.startswith("!"):
        return ext[1:]
    if "txt" not in sample.members:
        return "missing caption"
    try:
        caption = _data(buf, sample.members["txt"]).decode("utf-8")
    except UnicodeDecodeError:
        return "undecodable caption"
    meta = None
    if "json" in sample.members:
        try:
            meta = json.loads(_data(buf, sample.members["json"]))
        except ValueError:
            return "undecodable json"
        if not isinstance(meta, dict):
            return "undecodable json"
        if "source" in meta or "generated" in meta:
            raise layout_error(f"{path}: sample {sample.key!r} already has a 'source'/'generated' field; "
                               "the real root must hold real shards, not a mix", REAL_LAYOUT)
    return _RealSample(sample.key, sample.members, ext, caption, meta)


def _skip(stats: ReadStats, reason: str) -> None:
    stats.skipped += 1
    stats.errors[f"sample: {reason}"] += 1


def _shard_error(stats: ReadStats, path: Path, reason: str) -> None:
    stats.errors[f"shard: {reason}"] += 1
    stats.bad_shards.append(path)


@dataclass
class _RealSurvey:
    """Pass 1 over the real shards: usable keys and counts per shard."""

    keys: dict[Path, list[str]] = field(default_factory=dict)
    stats: dict[Path, ReadStats] = field(default_factory=dict)

    def all_keys(self) -> list[str]:
        return [k for keys in self.keys.values() for k in keys]


def _survey_real(paths: list[Path], progress: bool) -> _RealSurvey:
    """Read every real shard once; a key in two places raises :class:`BiaslibError` naming both."""
    survey, owner = _RealSurvey(), {}
    for path in tqdm(paths, desc="index real", unit="shard", disable=not progress, leave=False):
        stats = ReadStats(shards=1)
        with _mapped(path) as buf:
            keys = [s.key for s in _read_real(buf, path, stats)]
        for key in keys:
            if key in owner:
                raise BiaslibError(f"real key {key!r} appears twice: in {owner[key]} and {path}")
            owner[key] = path
        survey.keys[path], survey.stats[path] = keys, stats
    return survey


def _real_shards(real_root: PathLike) -> tuple[Path, list[Path]]:
    root = require_dir(real_root, "real CC3M shard folder", REAL_LAYOUT)
    return root, list_shards(root)


# ---- mixing ---------------------------------------------------------------------------------------

@dataclass
class _Plan:
    """Everything one output shard needs."""

    out_dir: Path
    params: dict[str, Any]
    chosen: set[str]
    index: GeneratedIndex
    maps: _ShardMaps


def mix(real_root: PathLike, generated_root: PathLike, out_root: PathLike, ratio: float | int | str,
        seed: int = 0, allow_shortfall: bool = False, overwrite: bool = False, progress: bool = True,
        allow_skipped_real: int = 0) -> dict[str, Any]:
    """Write the mix at ``ratio`` to ``<out_root>/mix_<code>/`` and return its manifest.

    One output shard per real shard (same name and sample order). A chosen key's image member is
    replaced by the generated bytes under ``<key>.<generated ext>``; ``.txt`` is copied; ``.json`` is
    the real JSON with every field plus ``"source": "real" | "generated"`` and, for generated samples,
    ``"generated": <generation record>`` (a real sample without JSON gets ``key``, ``caption``,
    ``source``). Unusable real samples (truncated shard, missing image or caption, broken JSON) are
    skipped, counted, logged as a warning and recorded; more than ``allow_skipped_real`` of them is a
    :class:`BiaslibError` naming the shards and reasons before anything is written (and :func:`verify`
    fails a manifest that records more than it allowed). ``<shard>_stats.json`` follows each tar; a rerun
    skips shards whose stats match the same parameters, input file (name, size, mtime) and chosen keys. A
    folder holding a mix with other parameters (ratio, seed, roots) is refused unless ``overwrite`` (which
    deletes it).

    ``manifest.json`` (written last) holds: ``ratio`` (code), ``fraction``, ``seed``, ``n`` (usable
    real samples), ``target_generated`` = round(r·n), ``shortfall``, ``counts`` per source,
    ``n_eligible``, ``n_missing_generated`` and ``missing_generated_keys`` (usable real keys without a
    usable generated image), ``n_generated_unmatched`` (generated keys with no real sample),
    ``skipped_real``, ``generated_index``, ``shards`` (name, samples, generated, real, skipped, bytes,
    sha256), ``real_root``, ``generated_root``, ``selection`` (the rule) and the biaslib version.

    Raises :class:`DataLayoutError` for a missing root, :class:`ShortfallError` when too few keys have
    a generated image (unless ``allow_shortfall``), :class:`BiaslibError` for duplicate keys or a
    folder holding another mix.
    """
    code = ratio_code(ratio)
    real_dir, real_paths = _real_shards(real_root)
    index = index_generated(generated_root, progress)
    survey = _survey_real(real_paths, progress)
    _check_skipped(survey, allow_skipped_real)
    keys = survey.all_keys()
    eligible = [k for k in keys if k in index.entries]
    try:
        chosen = select_generated(keys, eligible, code, seed, allow_shortfall)
    except ShortfallError as err:
        raise ShortfallError(f"{err}. Generated folder {index.root}: {len(index.unfinished)} unfinished shard(s), "
                             f"{len(index.unusable)} unusable sample(s)") from None
    params = {"ratio": code, "seed": int(seed), "real_root": str(real_dir),
              "generated_root": str(index.root)}
    out_dir = Path(out_root).expanduser().resolve() / f"mix_{code}"
    _claim(out_dir, params, {p.name for p in real_paths}, overwrite)
    plan = _Plan(out_dir, params, chosen, index, _ShardMaps(index.shards))
    bar = tqdm(total=sum(p.stat().st_size for p in real_paths), desc=f"mix {code}", unit="B", unit_scale=True,
               disable=not progress)
    try:
        shards = []
        for path in real_paths:
            shards.append(_mix_shard(path, survey.keys[path], survey.stats[path], plan))
            bar.update(path.stat().st_size)
    finally:
        plan.maps.close()
        bar.close()
    manifest = _manifest(params, survey, index, eligible, chosen, shards)
    manifest["skipped_real"]["allowed"] = int(allow_skipped_real)
    if _load_json(out_dir / "manifest.json") != manifest:  # a rerun that changed nothing leaves it untouched
        write_json(out_dir / "manifest.json", manifest)
    return manifest


def _check_skipped(survey: _RealSurvey, allowed: int) -> None:
    """Warn about unusable real samples; raise when there are more than ``allowed``."""
    skipped = sum(s.skipped for s in survey.stats.values())
    if skipped == 0:
        return
    errors: Counter[str] = Counter()
    for stats in survey.stats.values():
        errors.update(stats.errors)
    bad = sorted(p.name for s in survey.stats.values() for p in s.bad_shards)
    detail = (f"{skipped} unusable real sample(s) ({', '.join(f'{k}: {v}' for k, v in sorted(errors.items()))}"
              f"{'; truncated or corrupt shards ' + ', '.join(bad) if bad else ''})")
    if skipped > allowed:
        raise BiaslibError(f"{detail}, more than mix.allow_skipped_real = {allowed}: repair the real shards, or "
                           "allow them in params (they are then left out and recorded in the manifest)")
    log.warning("%s are left out of the mix (allowed: %d)", detail, allowed)


def _claim(out_dir: Path, params: dict[str, Any], shard_names: set[str], overwrite: bool) -> None:
    """Refuse (or with ``overwrite`` clear) an output folder that holds a mix with other parameters."""
    conflicts = []
    manifest = out_dir / "manifest.json"
    if manifest.is_file() and _params_of(_load_json(manifest)) != params:
        conflicts.append(manifest.name)
    for stats in sorted(out_dir.glob("*_stats.json")):
        if _load_json(stats).get("params") != params:
            conflicts.append(stats.name)
    conflicts += sorted(p.name for p in out_dir.glob("*.tar") if p.name not in shard_names)
    if not conflicts:
        return
    if not overwrite:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise BiaslibError(f"{out_dir} holds a mix with other parameters or inputs ({shown}); this run has "
                           f"{params}. Pass overwrite=True to replace it, or choose another output folder")
    for path in [manifest, *out_dir.glob("*_stats.json"), *out_dir.glob("*.tar")]:
        path.unlink(missing_ok=True)


def _params_of(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("ratio", "seed", "real_root", "generated_root")}


def _load_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when it is unreadable (treated as not matching)."""
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _mix_shard(path: Path, keys: list[str], stats: ReadStats, plan: _Plan) -> dict[str, Any]:
    """Write (or keep, when finished with the same inputs) the output shard of one real shard."""
    out = plan.out_dir / path.name
    stats_path = plan.out_dir / f"{path.stem}_stats.json"
    info = path.stat()
    inputs = {"name": path.name, "bytes": info.st_size, "mtime_ns": info.st_mtime_ns,
              "selection_sha256": _selection_digest(keys, plan.chosen, plan.index)}
    previous = _load_json(stats_path)
    if (previous.get("params") == plan.params and previous.get("inputs") == inputs and out.is_file()
            and out.stat().st_size == previous.get("shard", {}).get("bytes")):
        return previous["shard"]
    generated = _write_shard(path, out, keys, plan)
    shard = {"name": path.name, "samples": len(keys), "generated": generated, "real": len(keys) - generated,
             "skipped": stats.skipped, "bytes": out.stat().st_size, "sha256": file_sha256(out)}
    write_json(stats_path, {"params": plan.params, "inputs": inputs, "shard": shard,
                            "errors": dict(sorted(stats.errors.items()))})
    return shard


def _write_shard(path: Path, out: Path, keys: list[str], plan: _Plan) -> int:
    """Stream the usable samples of ``path`` into ``out``; returns the number of generated samples."""
    generated = 0
    with _mapped(path) as buf, TarShardWriter(out) as writer:
        samples = _read_real(buf, path, ReadStats())
        if [s.key for s in samples] != keys:
            raise BiaslibError(f"{path} changed while mixing (its samples differ from the first pass); rerun mix")
        for sample in samples:
            entry = plan.index.entries[sample.key] if sample.key in plan.chosen else None
            for name, data in _output_members(sample, buf, entry, plan.maps):
                writer.add(name, data)
            generated += entry is not None
    return generated


def _output_members(sample: _RealSample, buf: bytes | mmap.mmap, entry: GeneratedEntry | None,
                    maps: _ShardMaps) -> list[tuple[str, bytes]]:
    """The output members of one sample, in input order (a JSON is appended when the input had none)."""
    meta = sample.meta if sample.meta is not None else {"key": sample.key, "caption": sample.caption}
    meta["source"] = "real" if entry is None else "generated"
    image = None
    if entry is not None:
        image, meta["generated"] = maps.read(entry)
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    out = []
    for ext, member in sample.members.items():
        if ext == sample.image_ext and image is not None:
            out.append((f"{sample.key}.{entry.ext}", image))
        elif ext == "json":
            out.append((member.name, meta_bytes))
        else:
            out.append((member.name, _data(buf, member)))
    if sample.meta is None:
        out.append((f"{sample.key}.json", meta_bytes))
    return out


def _manifest(params: dict[str, Any], survey: _RealSurvey, index: GeneratedIndex, eligible: list[str],
              chosen: set[str], shards: list[dict[str, Any]]) -> dict[str, Any]:
    keys = survey.all_keys()
    n, target = len(keys), target_count(params["ratio"], len(keys))
    eligible_set = set(eligible)
    errors: Counter[str] = Counter()
    for stats in survey.stats.values():
        errors.update(stats.errors)
    key_set = set(keys)
    return {
        "format": MANIFEST_FORMAT, "biaslib_version": __version__, **params,
        "fraction": ratio_percent(params["ratio"]) / 100, "n": n, "target_generated": target,
        "shortfall": target - len(chosen), "counts": {"generated": len(chosen), "real": n - len(chosen)},
        "n_eligible": len(eligible), "n_missing_generated": n - len(eligible),
        "missing_generated_keys": sorted(k for k in keys if k not in eligible_set),
        "n_generated_unmatched": sum(k not in key_set for k in index.entries),
        "skipped_real": {"samples": sum(s.skipped for s in survey.stats.values()),
                         "errors": dict(sorted(errors.items())),
                         "bad_shards": sorted(p.name for s in survey.stats.values() for p in s.bad_shards)},
        "generated_index": index.summary(),
        "selection": {"rule": SELECTION_RULE, "hash": "blake2b", "digest_size": 8},
        "shards": shards,
    }


# ---- verification ---------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    """Result of :func:`verify`: ``ok`` iff ``problems`` is empty; ``counts`` has shards, samples,
    generated, real as found in the shards."""

    ok: bool
    problems: list[str]
    counts: dict[str, int]


_SHOWN_PER_SHARD = 5  # sample-level problems listed per shard before summarising


def verify(mix_dir: PathLike) -> VerifyReport:
    """Check a mix folder against its manifest.

    Re-hashes every shard (sha256), parses every sample (exactly one image whose bytes match its
    extension, one ``.txt``, one ``.json`` whose ``key`` and ``source`` agree with the member and whose
    ``generated`` record is present iff ``source`` is generated), checks that keys are unique across
    shards, that counts per source match the manifest and ``target_generated - shortfall``, that no
    extra tar lies in the folder, and recomputes the selection from the manifest's seed, the keys found
    and ``missing_generated_keys``. Problems name the shard. A folder without ``manifest.json`` raises
    :class:`DataLayoutError`.
    """
    mix_dir = require_dir(mix_dir, "mix folder", "<out_root>/mix_<code>/ with manifest.json and shards")
    manifest = _load_json(mix_dir / "manifest.json")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise DataLayoutError(f"{mix_dir / 'manifest.json'} is missing or not a {MANIFEST_FORMAT} manifest "
                              "(an interrupted mix writes it last; rerun mix)")
    problems: list[str] = []
    sources: dict[str, str] = {}
    owner: dict[str, str] = {}
    for record in manifest["shards"]:
        problems += _verify_shard(mix_dir / record["name"], record, sources, owner)
    listed = {r["name"] for r in manifest["shards"]}
    problems += [f"{p.name}: tar not listed in the manifest" for p in sorted(mix_dir.glob("*.tar"))
                 if p.name not in listed]
    counts = {"shards": len(listed), "samples": len(sources),
              "generated": sum(s == "generated" for s in sources.values())}
    counts["real"] = counts["samples"] - counts["generated"]
    problems += _verify_totals(manifest, counts)
    if not problems:
        problems += _verify_selection(manifest, sources)
    return VerifyReport(not problems, problems, counts)


def _verify_shard(path: Path, record: dict[str, Any], sources: dict[str, str], owner: dict[str, str]) -> list[str]:
    name = path.name
    if not path.is_file():
        return [f"{name}: shard listed in the manifest is missing"]
    problems = []
    digest = file_sha256(path)
    if digest != record["sha256"]:
        problems.append(f"{name}: sha256 {digest[:16]}… differs from the manifest's {record['sha256'][:16]}…")
    sample_problems: list[str] = []
    found = Counter()
    with _mapped(path) as buf:
        scan = scan_tar(buf)
        if not scan.complete:
            problems.append(f"{name}: truncated or corrupt tar (readable up to member {len(scan.members)})")
        for sample in _group(scan.members):
            source = _output_source(sample, buf)
            if source not in ("real", "generated"):
                sample_problems.append(f"sample {sample.key!r}: {source}")
            elif sample.key in owner:
                sample_problems.append(f"key {sample.key!r} also in {owner[sample.key]}")
            else:
                sources[sample.key], owner[sample.key] = source, name
                found[source] += 1
    problems += [f"{name}: {p}" for p in sample_problems[:_SHOWN_PER_SHARD]]
    if len(sample_problems) > _SHOWN_PER_SHARD:
        problems.append(f"{name}: {len(sample_problems) - _SHOWN_PER_SHARD} more bad samples")
    if (found["generated"], found["real"]) != (record["generated"], record["real"]):
        problems.append(f"{name}: {found['generated']} generated + {found['real']} real samples, manifest says "
                        f"{record['generated']} + {record['real']}")
    return problems


def _output_source(sample: _Sample, buf: bytes | mmap.mmap) -> str:
    """``"real"``/``"generated"`` for a well-formed output sample, else what is wrong with it."""
    ext = _image_ext(sample)
    if ext.startswith("!") or set(sample.members) != {ext, "txt", "json"}:
        return f"members {sorted(sample.members)}; expected one image, txt and json"
    image = sample.members[ext]
    if image_format(buf[image.offset : image.offset + 12]) != _IMAGE_FORMAT[ext]:
        return f"image bytes are not {_IMAGE_FORMAT[ext]} but the member is .{ext}"
    try:
        _data(buf, sample.members["txt"]).decode("utf-8")
        meta = json.loads(_data(buf, sample.members["json"]))
    except ValueError:
        return "undecodable caption or json"
    if not isinstance(meta, dict) or str(meta.get("key", sample.key)) != sample.key:
        return "json is not an object with the member's key"
    source, record = meta.get("source"), meta.get("generated")
    if source == "generated" and not (isinstance(record, dict) and str(record.get("key", sample.key)) == sample.key):
        return "source is generated but the generation record is missing or has another key"
    if source == "real" and record is not None:
        return "source is real but a generation record is present"
    return source if source in ("real", "generated") else f"json source {source!r} is neither real nor generated"


def _verify_totals(manifest: dict[str, Any], counts: dict[str, int]) -> list[str]:
    problems = []
    skipped = manifest.get("skipped_real", {})
    if skipped.get("samples", 0) > skipped.get("allowed", 0):
        problems.append(f"the mix left out {skipped['samples']} unusable real sample(s) "
                        f"({skipped.get('errors')}; shards {skipped.get('bad_shards')}), more than the "
                        f"{skipped.get('allowed', 0)} allowed")
    expected = manifest["counts"]
    if (counts["generated"], counts["real"]) != (expected["generated"], expected["real"]):
        problems.append(f"found {counts['generated']} generated + {counts['real']} real samples, manifest counts "
                        f"{expected['generated']} + {expected['real']}")
    if counts["samples"] != manifest["n"]:
        problems.append(f"found {counts['samples']} samples, manifest n = {manifest['n']}")
    wanted = target_count(manifest["ratio"], manifest["n"]) - manifest["shortfall"]
    if expected["generated"] != wanted:
        problems.append(f"manifest counts {expected['generated']} generated samples; ratio {manifest['ratio']} of "
                        f"n = {manifest['n']} with shortfall {manifest['shortfall']} needs {wanted}")
    return problems


def _verify_selection(manifest: dict[str, Any], sources: dict[str, str]) -> list[str]:
    missing = set(manifest["missing_generated_keys"])
    eligible = [k for k in sources if k not in missing]
    expected = select_generated(list(sources), eligible, manifest["ratio"], manifest["seed"], allow_shortfall=True)
    actual = {k for k, s in sources.items() if s == "generated"}
    if expected == actual:
        return []
    extra, absent = sorted(actual - expected), sorted(expected - actual)
    return [f"generated keys differ from the selection rule (seed {manifest['seed']}): {len(extra)} generated but "
            f"not selected (e.g. {extra[:3]}), {len(absent)} selected but real (e.g. {absent[:3]})"]
