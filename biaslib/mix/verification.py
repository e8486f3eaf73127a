"""Checking a mix folder against its manifest (:func:`verify`)."""

from __future__ import annotations

import json
import mmap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biaslib.data._common import PathLike, require_dir
from biaslib.data.cc3m import shard_index_count
from biaslib.errors import DataLayoutError
from biaslib.io import file_sha256
from biaslib.mix.mixing import MANIFEST_FORMAT, load_json
from biaslib.mix.selection import select_generated, target_count
from biaslib.mix.tar import (
    IMAGE_FORMATS,
    Sample,
    group_samples,
    image_format,
    mapped_file,
    member_bytes,
    sample_image_ext,
    scan_tar,
)


@dataclass
class VerifyReport:
    """Result of :func:`verify`: ``ok`` iff ``problems`` is empty; ``counts`` has shards, samples,
    generated, real as found in the shards."""

    ok: bool
    problems: list[str]
    counts: dict[str, int]


_SHOWN_PER_SHARD = 5  # sample-level problems listed per shard before summarising


def verify(mix_dir: PathLike, allow_skipped_real: int | None = None) -> VerifyReport:
    """Check a mix folder against its manifest and the real shards it was made from.

    Re-hashes every shard (sha256), parses every sample (exactly one image whose bytes match its
    extension, one ``.txt``, one ``.json`` whose ``key`` and ``source`` agree with the member and whose
    ``generated`` record is present iff ``source`` is generated), checks that keys are unique across
    shards, that counts per source match the manifest and ``target_generated - shortfall``, that no
    extra tar lies in the folder, and recomputes the selection from the manifest's seed, the keys found
    and ``missing_generated_keys``. The real samples left out are counted again from the real shards' indexes
    (:func:`~biaslib.data.cc3m.shard_index_count`, where a shard has one) and judged against
    ``allow_skipped_real`` (the current ``mix.allow_skipped_real``; None: the allowance the manifest records).
    Problems name the shard. A folder without ``manifest.json`` raises :class:`DataLayoutError`.
    """
    mix_dir = require_dir(mix_dir, "mix folder", "<out_root>/mix_<code>/ with manifest.json and shards")
    manifest = load_json(mix_dir / "manifest.json")
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
    allowed = manifest.get("skipped_real", {}).get("allowed", 0) if allow_skipped_real is None else allow_skipped_real
    problems += _verify_totals(manifest, counts, allowed)
    problems += _verify_lost(manifest, allowed)
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
    with mapped_file(path) as buf:
        scan = scan_tar(buf)
        if not scan.complete:
            problems.append(f"{name}: truncated or corrupt tar (readable up to member {len(scan.members)})")
        for sample in group_samples(scan.members):
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


def _output_source(sample: Sample, buf: bytes | mmap.mmap) -> str:
    """``"real"``/``"generated"`` for a well-formed output sample, else what is wrong with it."""
    ext = sample_image_ext(sample)
    if ext.startswith("!") or set(sample.members) != {ext, "txt", "json"}:
        return f"members {sorted(sample.members)}; expected one image, txt and json"
    image = sample.members[ext]
    if image_format(buf[image.offset : image.offset + 12]) != IMAGE_FORMATS[ext]:
        return f"image bytes are not {IMAGE_FORMATS[ext]} but the member is .{ext}"
    try:
        member_bytes(buf, sample.members["txt"]).decode("utf-8")
        meta = json.loads(member_bytes(buf, sample.members["json"]))
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


def _verify_totals(manifest: dict[str, Any], counts: dict[str, int], allowed: int) -> list[str]:
    problems = []
    skipped = manifest.get("skipped_real", {})
    if skipped.get("samples", 0) > allowed:
        problems.append(f"the mix left out {skipped['samples']} unusable real sample(s) "
                        f"({skipped.get('errors')}; shards {skipped.get('bad_shards')}), more than the "
                        f"{allowed} allowed (mix.allow_skipped_real)")
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


def _verify_lost(manifest: dict[str, Any], allowed: int) -> list[str]:
    """The real samples the mix lacks, counted from the indexes of the real shards it names (those that have
    one), against the manifest's record and ``allowed``."""
    real_root = Path(manifest.get("real_root") or "")
    listed = held = recorded = 0
    for record in manifest["shards"]:
        index = shard_index_count(real_root / record["name"])
        if index is not None:
            listed, held, recorded = listed + index[0], held + record["samples"], recorded + record.get("skipped", 0)
    lost = listed - held
    problems = []
    if lost > recorded:
        problems.append(f"the real shards' indexes in {real_root} list {listed} samples where the mix holds {held}: "
                        f"{lost} lost, the manifest records {recorded}")
    if lost > allowed:
        problems.append(f"{lost} real samples lost, more than the {allowed} allowed (mix.allow_skipped_real)")
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
