"""What the machine computes fast: one place for the precision choices of training, features and tests."""

from __future__ import annotations

import functools
import os


@functools.cache
def native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports it).

    Without it torch emulates bf16 and autocast is slower than fp32, not faster: the tiny diffusion
    pipeline's training step took 12× longer under bf16 autocast than in fp32 on an AVX2-only CPU.
    """
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_threads(workers: int) -> int:
    """Torch compute threads for CPU training next to ``workers`` DataLoader processes: the cores left.

    OpenMP threads wait for each other at every operator; when a DataLoader worker (or another job)
    takes one of their cores they stall: a tiny-CLIP step on 2 cores took 5 s with 2 threads beside a
    busy process, 0.9 s with 1 thread.
    """
    return max(1, len(os.sched_getaffinity(0)) - workers)
