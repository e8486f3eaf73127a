"""Benchmark: training throughput through biaslib.train against calling open_clip_train.main directly.

Data: a world CC3M export (4,000 samples in 2 shards; ``--quick``: 1,000). Model ``biaslib-tiny-rn``,
batch 100, 1 epoch, 1 DataLoader worker, fp32 on the CPU. Each measurement is one complete run (model
creation, data pipeline, epoch, checkpoint) timed from the call to its return:

* ``biaslib``: :func:`biaslib.train.train` (config registration, data checks, worker clamp, run
  record, torch threads = cores − workers, ``open_clip_train.main.main`` in process);
* ``direct``: ``open_clip_train.main.main`` with the very argv biaslib builds and the same torch
  thread count (isolates the wrapper's own cost);
* ``direct_default_threads``: the same argv with torch's default thread count (what a user calling
  open_clip_train by hand on this machine gets).

After one untimed warm-up run, the variants run ``--repeat`` times in alternating order
(``direct_default_threads`` not with ``--quick``); samples/s = samples × epochs / seconds, best of the
repeats. ``speedup`` = biaslib / direct (target: within 5% of 1).

    python bench/train.py [--quick] [--n N] [--repeat R]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, print_result

from biaslib.config import TrainConfig
from biaslib.hardware import cpu_threads
from biaslib.models import register_model_configs
from biaslib.train import (
    clamp_workers,
    open_clip_argv,
    train,
    training_data,
)
from biaslib.world import World
from biaslib.world.export import export_cc3m


def direct(argv: list[str], threads: int) -> None:
    """``open_clip_train.main.main(argv)`` with ``threads`` torch threads; its log handlers removed after."""
    from open_clip_train.main import main as open_clip_main

    register_model_configs()
    root = logging.getLogger()
    handlers, before = list(root.handlers), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        open_clip_main(argv)
    finally:
        torch.set_num_threads(before)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 samples, one repeat (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="training samples (default 4,000; quick 1,000)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per variant (default 2; quick 1)")
    args = parser.parse_args(argv)
    n = args.n or (1000 if args.quick else 4000)
    repeat = args.repeat or (1 if args.quick else 2)
    config = TrainConfig(epochs=1, batch_size=100, warmup=2, workers=1)
    times: dict[str, list[float]] = {"biaslib": [], "direct": []}
    if not args.quick:
        times["direct_default_threads"] = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        root = Path(tmp)
        export_cc3m(World(seed=0), root / "data", n, shard_size=n // 2)
        data = training_data(root / "data")
        workers = clamp_workers(config.workers, len(data.shards))
        warm = open_clip_argv(data=data, config=config, name="warm-up", logs=root / "logs", workers=workers)
        direct(warm, cpu_threads(workers))  # first-call costs (imports, oneDNN set-up) land here
        for attempt in range(repeat):
            order = list(times) if attempt % 2 == 0 else list(reversed(times))
            for variant in order:
                name = f"{variant}_{attempt}"
                start = time.perf_counter()
                if variant == "biaslib":
                    train(data_dir=root / "data", name=name, logs=root / "logs", config=config)
                else:
                    run_argv = open_clip_argv(data=data, config=config, name=name, logs=root / "logs", workers=workers)
                    direct(run_argv, cpu_threads(workers) if variant == "direct" else torch.get_num_threads())
                times[variant].append(time.perf_counter() - start)
    rate = {k: round(n * config.epochs / min(v), 1) for k, v in times.items()}
    result = {
        "n": n, "epochs": config.epochs, "batch_size": config.batch_size, "workers": workers, "repeat": repeat,
        "model": config.model, **machine(),
        "seconds": {k: [round(s, 1) for s in v] for k, v in times.items()},
        "biaslib_samples_per_s": rate["biaslib"], "direct_samples_per_s": rate["direct"],
        "direct_default_threads_samples_per_s": rate.get("direct_default_threads"),
        "speedup": round(rate["biaslib"] / rate["direct"], 3), "target": "0.95-1.05",
    }
    return print_result(result)


if __name__ == "__main__":
    main()
