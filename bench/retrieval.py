"""Benchmark: chunked text→image retrieval hits vs a full-matrix torch.topk baseline.

50,000 captions × 50,000 images (d = 512, float32; ``--quick``: 10,000 × 10,000). Both methods
normalise rows and score by cosine; the baseline materialises the whole caption × image matrix
(10 GB at full size) and takes ``torch.topk``. Reported: wall time of each, peak resident memory
above the pre-call level (sampled every millisecond from /proc/self/statm), and whether the R@1/5/10
hits are identical. ``speedup`` = baseline time / chunked time.

Usage: ``python bench/retrieval.py [--quick]``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _common import machine, print_result

from biaslib.metrics import retrieval_hits

KS = (1, 5, 10)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def measure(fn: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``fn``; return its result, wall seconds and peak RSS above the level before the call."""
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=poll, daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return result, seconds, max(peak[0], rss_bytes()) - before


def make_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, captions near their (shuffled) own image, and each caption's image row."""
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((n, d), dtype=np.float32)
    image *= rng.uniform(0.5, 2.0, size=(n, 1)).astype(np.float32)  # norms vary: must not matter
    target = rng.permutation(n)
    own = image[target] / np.linalg.norm(image[target], axis=1, keepdims=True)
    noise = rng.standard_normal((n, d), dtype=np.float32)
    noise *= np.float32(5.0 / np.sqrt(d))
    return own + noise, image, target


def full_topk_hits(text: np.ndarray, image: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Baseline: the full cosine matrix and torch.topk (memory O(n_texts × n_images))."""
    with torch.inference_mode():
        t = torch.from_numpy(text)
        i = torch.from_numpy(image)
        sims = (t / t.norm(dim=1, keepdim=True)) @ (i / i.norm(dim=1, keepdim=True)).T
        top = sims.topk(max(KS), dim=1).indices
        del sims
        found = (top == torch.from_numpy(target)[:, None]).numpy()
    return {f"R@{k}": found[:, :k].any(axis=1).astype(np.int64) for k in KS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 × 10,000")
    parser.add_argument("--n", type=int, default=None, help="captions = images")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--chunk-size", type=int, default=1024)
    args = parser.parse_args()
    n = args.n or (10_000 if args.quick else 50_000)
    text, image, target = make_data(n, args.dim, seed=0)
    print(f"{n} captions × {n} images, d={args.dim}, float32, torch threads {torch.get_num_threads()}")
    retrieval_hits(text[:64], image[:256], target[:64] % 256)  # import torch, warm up kernels

    chunked, chunked_s, chunked_mem = measure(
        lambda: retrieval_hits(text, image, target, ks=KS, chunk_size=args.chunk_size, device="cpu")
    )
    print(f"chunked (chunk {args.chunk_size}): {chunked_s:.2f} s, peak +{chunked_mem / 2**20:.0f} MiB")
    full, full_s, full_mem = measure(lambda: full_topk_hits(text, image, target))
    print(f"full matrix + topk: {full_s:.2f} s, peak +{full_mem / 2**20:.0f} MiB")
    mismatches = {f"R@{k}": int((chunked[f"R@{k}"].to_numpy() != full[f"R@{k}"]).sum()) for k in KS}
    recall = {f"R@{k}": round(float(chunked[f"R@{k}"].mean()), 4) for k in KS}
    print(f"recall {recall}; hits differing from the baseline: {mismatches}")
    result = {
        "bench": "retrieval",
        "quick": args.quick,
        **machine(),
        "n_texts": n,
        "n_images": n,
        "dim": args.dim,
        "chunk_size": args.chunk_size,
        "chunked_seconds": round(chunked_s, 3),
        "full_seconds": round(full_s, 3),
        "speedup": round(full_s / chunked_s, 3),
        "chunked_peak_mib": round(chunked_mem / 2**20, 1),
        "full_peak_mib": round(full_mem / 2**20, 1),
        "memory_ratio": round(full_mem / max(chunked_mem, 1), 1),
        "identical_hits": not any(mismatches.values()),
        "mismatches": mismatches,
        "recall": recall,
    }
    print_result(result)


if __name__ == "__main__":
    main()
