"""Benchmark: batched vs one-prompt-at-a-time generation through ``biaslib.generate`` (target ≥ 3× on CPU).

The same pipeline (the world's tiny diffusion pipeline: the cached trained one in
``runs/cache/tiny_pipeline`` if present, else a random-weight one of the same architecture — speed
does not depend on the weights), the same prompts, DPMSolver 20 steps, guidance 3, written to
shards by :func:`biaslib.generate.generate`. Variants, measured side by side in one run:

* ``loop``: batch size 1, fp32 (the original study generated prompt by prompt);
* ``batched_fp32``: batch size ``--batch``;
* ``batched_bf16``: batch size ``--batch`` under bfloat16 autocast, only on a CPU with native bf16
  (emulated bf16 is many times slower than fp32; :func:`biaslib.hardware.native_bf16`).

Also checks that the images of the batched runs match the loop's (per-id noise) and reports the
largest pixel difference (0–255). ``speedup`` = best batched images/s ÷ loop images/s.

    python bench/generate.py [--quick] [--n N] [--batch B] [--pipeline DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import machine, print_result

from biaslib.config import GenerateConfig
from biaslib.generate import generate, load_generated_images, load_pipeline
from biaslib.hardware import native_bf16
from biaslib.world import World
from biaslib.world.tiny_pipeline import build_tiny_pipeline

CACHE = Path(__file__).resolve().parent.parent / "runs" / "cache" / "tiny_pipeline"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="prompts per variant (default 96; quick 24)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pipeline", type=Path, default=None, help="pipeline folder (default: cached tiny one)")
    args = parser.parse_args(argv)
    n = args.n or (24 if args.quick else 96)
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.pipeline or (CACHE if (CACHE / "model_index.json").is_file() else Path(tmp) / "random")
        trained = folder != Path(tmp) / "random"
        if not trained:
            build_tiny_pipeline(seed=0).save_pretrained(folder)
        base = GenerateConfig(model=str(folder), steps=20, guidance=3.0, shard_size=10_000, image_format="png",
                              dtype="fp32", device="cpu")
        pipe = load_pipeline(base)
        people = World(seed=0).people(n, stream="bench/generate")
        captions = pd.DataFrame({"key": [f"{i:09d}" for i in range(n)], "caption": people["caption"]})
        variants = {"loop": replace(base, batch_size=1), "batched_fp32": replace(base, batch_size=args.batch)}
        if native_bf16():
            variants["batched_bf16"] = replace(base, batch_size=args.batch, dtype="bf16")
        generate(captions.head(2), Path(tmp) / "warmup", list(variants.values())[-1], pipeline=pipe, progress=False)
        speed, images = {}, {}
        for name, config in variants.items():
            out = Path(tmp) / name
            start = time.perf_counter()
            generate(captions, out, config, pipeline=pipe, progress=False)
            speed[name] = n / (time.perf_counter() - start)
            images[name] = load_generated_images(out, list(captions["key"]))
        diff = {name: max(int(np.abs(np.asarray(images[name][k], dtype=int) - np.asarray(images["loop"][k], dtype=int))
                              .max()) for k in captions["key"]) for name in variants if name != "loop"}
    result = {
        "n": n, "batch": args.batch, "steps": 20, "pipeline": "trained tiny" if trained else "random-weight tiny",
        **machine(),
        **{f"{k}_images_per_s": round(v, 2) for k, v in speed.items()},
        **{f"max_pixel_diff_vs_loop_{name.removeprefix('batched_')}": d for name, d in diff.items()},
        "native_bf16": native_bf16(), "speedup_fp32": round(speed["batched_fp32"] / speed["loop"], 2),
        "speedup": round(max(v for k, v in speed.items() if k != "loop") / speed["loop"], 2),
        "target": 3.0,
    }
    return print_result(result)


if __name__ == "__main__":
    main()
