"""Tar shards read header by header through a memory map: members, samples, image formats (no decoding)."""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from biaslib.data.cc3m import IMAGE_EXTENSIONS

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_FILE_TYPES = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file
_META_TYPES = (b"x", b"g", b"L", b"K")  # pax header, pax global header, GNU long name, GNU long link
_NONZERO = re.compile(rb"[^\x00]")
IMAGE_FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp"}


class TarMember(NamedTuple):
    """A regular-file member: its ``name``, the byte ``offset`` of its data in the archive and its ``size``."""

    name: str
    offset: int
    size: int


class TarScan(NamedTuple):
    """The members of an archive in order; ``complete`` is False when it is truncated or corrupt
    (no end-of-archive block where the last member ends, a bad header checksum, data past the end,
    non-zero bytes after a zero block: blocks zeroed mid-archive);
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
        if header == _ZERO_BLOCK:  # the end-of-archive marker, unless data follows it (zeroed blocks mid-archive)
            return TarScan(members, _NONZERO.search(buf, pos) is None)
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


class Sample(NamedTuple):
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


def group_samples(members: list[TarMember]) -> list[Sample]:
    """Runs of consecutive members with the same key, as samples."""
    samples: list[Sample] = []
    key, by_ext, duplicate = None, {}, False
    for member in members:
        member_key, ext = split_member_name(member.name)
        if member_key != key:
            if key is not None:
                samples.append(Sample(key, by_ext, duplicate))
            key, by_ext, duplicate = member_key, {}, False
        duplicate = duplicate or ext in by_ext
        by_ext[ext] = member
    if key is not None:
        samples.append(Sample(key, by_ext, duplicate))
    return samples


def drop_cut(samples: list[Sample], scan: TarScan) -> str | None:
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


def member_bytes(buf: bytes | mmap.mmap, member: TarMember) -> bytes:
    return buf[member.offset : member.offset + member.size]


def json_object(buf: bytes | mmap.mmap, member: TarMember) -> dict | None:
    """A member's bytes as a JSON object; None when they are not valid JSON or not an object."""
    try:
        value = json.loads(member_bytes(buf, member))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def image_format(head: bytes) -> str | None:
    """``"jpeg"``, ``"png"`` or ``"webp"`` from the first 12 bytes of an image file, else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def sample_image_ext(sample: Sample) -> str:
    """The single image extension of ``sample``, or a reason (prefixed ``!``) why there is none."""
    if sample.duplicate:
        return "!duplicate member"
    images = [ext for ext in sample.members if ext in IMAGE_EXTENSIONS]
    if not images:
        return "!missing image"
    return images[0] if len(images) == 1 else "!several images"


@contextlib.contextmanager
def mapped_file(path: Path) -> Iterator[bytes | mmap.mmap]:
    """The bytes of ``path`` as a read-only memory map (``b""`` for an empty file)."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            yield buf
