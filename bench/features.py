"""Benchmark: image-feature throughput of biaslib.features against the original one-image-per-forward loop.

Data: world people rendered as 64 px JPEG files (4,000; ``--quick``: 500). Every path does the same
work per image — open and decode the file, open_clip's preprocess, the image tower, an L2-normalised
row:

* ``loop``: the original extraction (formats.md A5): for each file ``Image.open`` → ``preprocess`` →
  ``model.encode_image(x[None])`` under ``torch.no_grad``, one image per forward pass, run with 1
  thread and with torch's default, the faster counted (batch-1 forwards of a tiny model are short
  operators: OpenMP threads waiting at their barriers can make the many-thread loop slower, and
  crediting the loop with its best setting keeps that from inflating the speedup);
* ``batched``: :func:`biaslib.features.extract_image_features` on the file list as a user calls it
  (``--workers`` DataLoader processes, ``--batch-size`` 128, ``inference_mode``, fp32, default
  ``encode_in``: on the CPU each worker decodes and encodes its own batches with one thread where workers
  pay off — a list of at least ``WORKERS_MIN_IMAGES`` and a model that does not dominate decoding — else
  this process decodes and encodes with every core (``--quick``'s 500 images, RN50); on CUDA the workers
  decode and the model runs in this process);
* ``batched_model_in_main`` (CPU): the workers only decode, the model runs in this process with the
  cores they leave (the placement used on a GPU);
* ``batched_workers0``: decoding and the model in this process;
* ``batched_bf16`` (``batched_fp16`` with ``--device cuda``): ``batched`` under half-precision
  autocast (bf16 only on a CPU with native bf16).

The runs take turns, ``--repeat`` rounds (best of each), so a shared machine's drifting speed hits them
alike, and no run is timed only cold: the loop gets a warm-up, and with one round the first batched run
alone paid for building its kernels (``--quick`` runs two rounds). ``speedup`` is the default pipeline's
(``precision="auto"``: bf16 autocast on a CPU with native bf16, fp16 on CUDA, else fp32) images/s over the
loop's; ``speedup_fp32`` the fp32 pipeline's. Encoding workers start per call (≈ 0.1–0.15 s on 2 cores), which
the full run's 4,000 images amortise as a real extraction (10^4–10^6 images) would; ``--quick``'s 500 are
below ``WORKERS_MIN_IMAGES``, so its default runs in one process.

Models: the world's tiny CLIP (``biaslib-tiny-rn``, 64 px; random weights unless ``--checkpoint``:
the speed is the same) and RN50 (random weights, 224 px, on ``--rn50-images`` of the files). Images/s
= images / seconds (targets: ``speedup`` ≥ 4.5 for the tiny CLIP, ``rn50_speedup`` ≥ 1.0: the default pipeline
never slower than the loop, also for a model that dominates decoding).

    python bench/features.py [--quick] [--n N] [--workers W] [--batch-size B] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from _common import machine, print_result
from PIL import Image

from biaslib import hardware
from biaslib.features import extract_image_features, resolve_precision
from biaslib.models import load_clip
from biaslib.world import World


def write_images(root: Path, n: int) -> list[Path]:
    """``n`` world people as JPEG files (quality 95)."""
    world = World(seed=0)
    paths = []
    for i, row in enumerate(world.people(n, stream="bench/features").to_dict("records")):
        paths.append(root / f"{i:05d}.jpg")
        world.render(row).save(paths[-1], quality=95)
    return paths


def original_loop(model: torch.nn.Module, preprocess: Callable, paths: list[Path]) -> torch.Tensor:
    """One image per forward pass, as the original ``image_retrieval.py`` (rows normalised here), on
    the model's device; returns the rows on the CPU."""
    device = next(model.parameters()).device
    rows = []
    with torch.no_grad():
        for path in paths:
            image = preprocess(Image.open(path)).unsqueeze(0).to(device)
            feature = model.encode_image(image)
            rows.append(feature / feature.norm(dim=-1, keepdim=True))
    return torch.cat(rows).cpu()


def best_rates(runs: dict[str, Callable[[], np.ndarray]], images: int, repeat: int
               ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Images per second of each run (the fastest of ``repeat``) and its last output. The runs take turns
    (``repeat`` rounds of all of them), so a change in the machine's speed during the benchmark (a
    shared VM's neighbours) affects every run alike instead of the ones measured last."""
    seconds: dict[str, float] = {}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = run()
            seconds[name] = min(seconds.get(name, float("inf")), time.perf_counter() - start)
    return {name: round(images / s, 1) for name, s in seconds.items()}, outputs


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure(model_name: str, checkpoint: str | None, paths: list[Path], workers: int, batch_size: int,
            repeat: int, device: str = "cpu") -> dict[str, float]:
    """Images/s of the loop and of the batched pipeline for one model — default placement (on the CPU
    with ``workers`` ≥ 2: the workers decode and encode), fp32 with the model in this process beside
    ``workers`` decoding processes, fp32 with decoding in this process, and half-precision autocast
    (bf16 on a CPU with native bf16, fp16 on CUDA) — and the largest difference to the loop's rows."""
    torch.manual_seed(0)
    half = "fp16" if device.startswith("cuda") else "bf16"
    model, preprocess, _ = load_clip(checkpoint, model_name, device=device)
    batched = lambda precision, w, where="auto": lambda: extract_image_features(  # noqa: E731
        model, preprocess, paths, batch_size=batch_size, workers=w, precision=precision, encode_in=where).vectors
    thread_counts = sorted({1, torch.get_num_threads()})

    def loop(threads: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            with torch_threads(threads):
                return original_loop(model, preprocess, paths).numpy()
        return run

    runs = {f"loop_{n}": loop(n) for n in thread_counts}
    runs["batched"] = batched("fp32", workers)
    if device == "cpu" and workers >= 2:
        runs["batched_model_in_main"] = batched("fp32", workers, "main")
    runs["batched_workers0"] = batched("fp32", 0)
    if half == "fp16" or hardware.native_bf16():  # emulated bf16 is slower than fp32: not a lever there
        runs[f"batched_{half}"] = batched(half, workers)
    original_loop(model, preprocess, paths[:4])  # warm-up
    rates, outputs = best_rates(runs, len(paths), repeat)
    threads = max(thread_counts, key=lambda n: rates[f"loop_{n}"])
    rates = {"loop": rates.pop(f"loop_{threads}")} | {k: v for k, v in rates.items() if not k.startswith("loop_")}
    return {**{f"{name}_images_per_s": rate for name, rate in rates.items()}, "loop_threads": threads,
            "max_abs_diff_vs_loop": float(np.abs(outputs["batched"] - outputs[f"loop_{threads}"]).max())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 images, RN50 on 16, two rounds (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="images for the tiny CLIP (default 4,000; quick 500)")
    parser.add_argument("--rn50-images", type=int, default=None, help="images for RN50 (default 256; quick 16)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader processes (default 2; on the CPU they decode and encode)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per batch (default 128)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds of all runs (default 3; quick 2)")
    parser.add_argument("--checkpoint", default=None, help="tiny CLIP checkpoint (default: random weights)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: where the models run")
    args = parser.parse_args(argv)
    n = args.n or (500 if args.quick else 4000)
    n_rn50 = args.rn50_images or (16 if args.quick else 256)
    repeat = args.repeat or (2 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        paths = write_images(Path(tmp), n)
        tiny = measure("biaslib-tiny-rn", args.checkpoint, paths, args.workers, args.batch_size, repeat, args.device)
        rn50 = measure("RN50", None, paths[:n_rn50], args.workers, args.batch_size, repeat, args.device)
    auto = resolve_precision("auto", args.device)
    rate_key = "batched_images_per_s" if auto == "fp32" else f"batched_{auto}_images_per_s"
    result = {
        "n": n, "rn50_images": n_rn50, "workers": args.workers, "batch_size": args.batch_size, "repeat": repeat,
        **machine(), "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "tiny": tiny, "rn50": rn50,
        "rn50_speedup": round(rn50[rate_key] / rn50["loop_images_per_s"], 2),
        "rn50_speedup_fp32": round(rn50["batched_images_per_s"] / rn50["loop_images_per_s"], 2), "rn50_target": 1.0,
        "default_precision": auto, "speedup_fp32": round(tiny["batched_images_per_s"] / tiny["loop_images_per_s"], 2),
        "speedup": round(tiny[rate_key] / tiny["loop_images_per_s"], 2), "target": 4.5,
    }
    return print_result(result)


if __name__ == "__main__":
    main()
