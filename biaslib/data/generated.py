"""Reading a generation folder (:mod:`biaslib.generate`'s output): its finished shards' keys, their records
and their images. Data-level, so that the world and the studies read generated images without importing the
generation step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from PIL import Image

from biaslib.errors import DataLayoutError


def generated_keys(out_dir: str | os.PathLike) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Keys per finished shard (by name), unfinished shard names, corrupt shard names.

    A shard is corrupt when the streaming reader finds it truncated or broken, or skips a sample.
    """
    from biaslib.data.cc3m import ReadStats, iter_cc3m

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise DataLayoutError(f"generation folder not found: {out_dir}")
    per_shard, unfinished, corrupt = {}, [], []
    for tar_path in sorted(out_dir.glob("*.tar")):
        if not (out_dir / f"{tar_path.stem}_stats.json").is_file():
            unfinished.append(tar_path.stem)
            continue
        stats = ReadStats()
        keys = [sample.key for sample in iter_cc3m(tar_path, stats, decode=False)]
        if stats.bad_shards or stats.skipped:
            corrupt.append(tar_path.stem)
        per_shard[tar_path.stem] = keys
    return per_shard, unfinished, corrupt


def read_generated(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The generation records of all finished shards, one row per image (``simulated`` fields flattened)."""
    from biaslib.data.cc3m import iter_cc3m

    per_shard, _, _ = generated_keys(out_dir)
    rows = []
    for name in per_shard:
        for sample in iter_cc3m(Path(out_dir) / f"{name}.tar", decode=False):
            record = dict(sample.metadata)
            record.update({f"sim_{k}": v for k, v in record.pop("simulated", {}).items()})
            record["shard"] = name
            rows.append(record)
    return pd.DataFrame(rows)


def load_generated_images(out_dir: str | os.PathLike, keys: Sequence[str]) -> dict[str, Image.Image]:
    """Decode the generated images of ``keys`` (all finished shards are scanned once)."""
    from biaslib.data.cc3m import iter_cc3m

    wanted, found = set(keys), {}
    per_shard, _, _ = generated_keys(out_dir)
    for name in per_shard:
        for sample in iter_cc3m(Path(out_dir) / f"{name}.tar"):
            if sample.key in wanted:
                found[sample.key] = sample.image
    return found


__all__ = ["generated_keys", "load_generated_images", "read_generated"]
