"""What the machine computes fast: one place for the precision choices of training, features and tests."""

from __future__ import annotations

import functools


@functools.cache
def native_bf16() -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX, as oneDNN reports it).

    Without it torch emulates bf16 and autocast is slower than fp32, not faster: the tiny diffusion
    pipeline's training step took 12× longer under bf16 autocast than in fp32 on an AVX2-only CPU.
    """
    import torch

    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
