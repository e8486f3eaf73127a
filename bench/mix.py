"""Benchmark: mixing throughput (MB/s of real input) against a raw copy of the same shards.

Data: a world CC3M export (20,000 samples, ``--quick``: 3,000; 64 px JPEG unless ``--image-size``) and a
fake generated set (the real JPEG bytes under generated keys, for 95% of the keys, in two rank shards). Measured in one
run, page cache warm, best of ``--repeat`` runs each:

* ``copyfile``: :func:`shutil.copyfile` of every real shard (the I/O floor);
* ``tar_loop``: :mod:`tarfile` read (stream) + write member by member, no sample logic;
* ``mix``: :func:`biaslib.mix.mix` at ratio 0.5 into a fresh folder (generated index, both passes over
  the real shards, JSON rewrite, atomic fsynced writes, sha256 of each output, manifest);
* ``verify`` and a resumed rerun (every shard skipped), for information.

MB/s = real input bytes / 1e6 / seconds. ``speedup`` = mix MB/s / tar-loop MB/s, the raw tar copy
doing the same member-level work (target ≥ 0.5); ``vs_copyfile`` = mix MB/s / copyfile MB/s. At 64 px
a sample is ~6 KB (3 members of 512-byte headers plus small data), so per-member Python work dominates
both tar copies while copyfile is a kernel memcpy; larger images raise ``vs_copyfile``.

    python bench/mix.py [--quick] [--n N] [--repeat R] [--image-size PX]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import machine, print_result

from biaslib.config import WorldConfig
from biaslib.data.cc3m import iter_cc3m
from biaslib.io import TarShardWriter, write_json
from biaslib.mix import mix, verify
from biaslib.world import World
from biaslib.world.export import export_cc3m


def build_data(root: Path, n: int, shard_size: int, image_size: int = 64) -> tuple[Path, Path]:
    """Export ``n`` real samples and a generated set covering 95% of their keys; returns both folders."""
    real, generated = root / "real", root / "generated"
    export_cc3m(World(WorldConfig(image_size=image_size), seed=0), real, n=n, shard_size=shard_size, workers=2)
    samples = [s for i, s in enumerate(iter_cc3m(real, decode=False)) if i % 20 != 7]
    for rank in (0, 1):
        with TarShardWriter(generated / f"{rank:02d}-00000.tar") as tar:
            for sample in samples[rank::2]:
                record = {"key": sample.key, "prompt": sample.caption, "seed": 0, "model": "bench-copy"}
                tar.add_sample(sample.key, {"jpg": sample.image, "txt": sample.caption.encode(),
                                            "json": json.dumps(record).encode()})
        write_json(generated / f"{rank:02d}-00000_stats.json", {"count": len(samples[rank::2])})
    return real, generated


def copy_files(shards: list[Path], out: Path) -> None:
    """Raw file copy of every shard."""
    out.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        shutil.copyfile(shard, out / shard.name)


def copy_tar_members(shards: list[Path], out: Path) -> None:
    """tarfile read + write loop copying every member (no sample logic)."""
    out.mkdir(parents=True, exist_ok=True)
    for shard in shards:
        with tarfile.open(shard, "r|") as src, tarfile.open(out / shard.name, "w", format=tarfile.USTAR_FORMAT) as dst:
            for member in src:
                dst.addfile(member, src.extractfile(member))


def best_seconds(run: Callable[[int], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls of ``run(attempt)``."""
    times = []
    for attempt in range(repeat):
        start = time.perf_counter()
        run(attempt)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3,000 samples, one repeat (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="real samples (default 20,000; quick 3,000)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per measurement (default 3; quick 1)")
    parser.add_argument("--image-size", type=int, default=64, help="real image side in pixels (default 64)")
    args = parser.parse_args(argv)
    n = args.n or (3000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="bench_mix_") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        real, generated = build_data(root, n, shard_size=max(1, n // 8), image_size=args.image_size)
        build_s = time.perf_counter() - start
        shards = sorted(real.glob("*.tar"))
        megabytes = sum(p.stat().st_size for p in shards) / 1e6
        copy_files(shards, root / "warm")  # page cache warm for every measurement

        copy_s = best_seconds(lambda i: copy_files(shards, root / f"copy{i}"), repeat)
        loop_s = best_seconds(lambda i: copy_tar_members(shards, root / f"loop{i}"), repeat)
        mix_s = best_seconds(lambda i: mix(real, generated, root / f"mix{i}", 0.5, progress=False), repeat)
        mix_dir = root / "mix0" / "mix_050"
        start = time.perf_counter()
        report = verify(mix_dir)
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        mix(real, generated, root / "mix0", 0.5, progress=False)
        resume_s = time.perf_counter() - start

    rate = lambda seconds: round(megabytes / seconds, 1)  # noqa: E731
    result = {
        "n": n, "image_size": args.image_size, "shards": len(shards), "input_mb": round(megabytes, 1),
        **machine(), "build_s": round(build_s, 1), "repeat": repeat,
        "copyfile_mb_s": rate(copy_s), "tar_loop_mb_s": rate(loop_s), "mix_mb_s": rate(mix_s),
        "mix_samples_per_s": round(n / mix_s), "verify_mb_s": rate(verify_s), "verify_ok": report.ok,
        "resume_s": round(resume_s, 2),
        "speedup": round(loop_s / mix_s, 3), "vs_copyfile": round(copy_s / mix_s, 4), "target": 0.5,
    }
    return print_result(result)


if __name__ == "__main__":
    main()
