"""The world's attribute classifier: a small multi-head CNN that reads perceived attributes from pixels.

It serves two purposes: it shows that the world's visual cues are learnable at 64×64 (a test trains it
for a fixed number of epochs and checks held-out accuracy), and it labels generated images of the world
(with its own error measured on images whose prompt states the attribute). Training uses blur and colour augmentation
so that it transfers to the softer images of a tiny generator.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from biaslib import hardware
from biaslib.world.attributes import AGE_LEVELS, GENDERS, SKIN_TONES, occupations

#: Heads of the classifier and their label vocabularies.
HEADS: dict[str, tuple] = {
    "gender": GENDERS,
    "age_level": AGE_LEVELS,
    "skin_tone": SKIN_TONES,
    "occupation": tuple(occupations(include_none=True)),
}


class AttributeCNN(nn.Module):
    """Conv net with one linear head per attribute.

    Input: float tensor ``(B, 3, H, W)`` in [0, 1] (any H, W ≥ 32; pooled to 2×2 at the end).
    Output: dict head → logits ``(B, n_classes)``.
    """

    def __init__(self, heads: dict[str, Sequence] | None = None, widths: tuple[int, int, int, int] = (24, 48, 96, 128)):
        super().__init__()
        self.heads_vocab = {k: tuple(v) for k, v in (heads or HEADS).items()}
        a, b, c, d = widths

        def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(3, a, 5, 2), *conv(a, b), nn.MaxPool2d(2), *conv(b, c), nn.MaxPool2d(2), *conv(c, d),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(d * 4, len(v)) for k, v in self.heads_vocab.items()})
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.adaptive_avg_pool2d(self.features(x.contiguous(memory_format=torch.channels_last)), 2).flatten(1)
        return {k: head(h) for k, head in self.heads.items()}


def images_to_tensor(images: Sequence) -> torch.Tensor:
    """PIL images or ``(H, W, 3)`` uint8 arrays → float tensor ``(B, 3, H, W)`` in [0, 1]."""
    arr = np.stack([np.asarray(im.convert("RGB") if hasattr(im, "convert") else im, dtype=np.uint8) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


def labels_to_tensor(frame: pd.DataFrame, heads: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Attribute columns of ``frame`` → class index tensors per head."""
    out = {}
    for k, vocab in heads.items():
        index = {v: i for i, v in enumerate(vocab)}
        out[k] = torch.tensor([index[v] for v in frame[k]], dtype=torch.long)
    return out


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur, brightness/contrast jitter, noise and small shifts (keeps hue: skin tone is a label)."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=generator)
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    mix = (u[:, 0] < 0.5).float().view(b, 1, 1, 1) * u[:, 1].view(b, 1, 1, 1)
    x = x * (1 - mix) + blur * mix
    gain = 1 + 0.2 * (u[:, 2] - 0.5)
    x = (x - 0.5) * gain.view(b, 1, 1, 1) + 0.5 + 0.08 * (u[:, 3] - 0.5).view(b, 1, 1, 1)
    x = x + 0.03 * torch.randn(x.shape, generator=generator)
    dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=generator))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return x.clamp_(0, 1)


@dataclass
class TrainReport:
    """Outcome of :func:`train_attribute_classifier`."""

    accuracy: dict[str, float]
    seconds: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)


def _cosine_lr(base: float, step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def train_attribute_classifier(
    train_images: torch.Tensor,
    train_labels: dict[str, torch.Tensor],
    val_images: torch.Tensor,
    val_labels: dict[str, torch.Tensor],
    *,
    heads: dict[str, Sequence] | None = None,
    max_epochs: int = 30,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    widths: tuple[int, int, int, int] = (24, 48, 96, 128),
    bf16: bool | None = None,
) -> tuple[AttributeCNN, TrainReport]:
    """Train :class:`AttributeCNN` on tensors for exactly ``max_epochs`` with a cosine learning-rate schedule.

    The number of updates depends only on the data size, ``batch_size`` and ``max_epochs``, never on the
    machine's speed or load: on a slow or busy CPU the same call takes longer and learns the same.
    ``bf16`` runs forward passes under bfloat16 autocast (about 2× faster on a CPU with native bf16, 10×
    slower without it); ``None`` uses it exactly where the CPU has it (:func:`biaslib.hardware.native_bf16`).
    Returns the model (eval mode) and the held-out accuracy per head on ``val_images``.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    bf16 = hardware.native_bf16() if bf16 is None else bf16
    model = AttributeCNN(heads, widths=widths)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    n = train_images.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    total_steps = max_epochs * steps_per_epoch
    start = time.perf_counter()
    history = []
    step = 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            for group in opt.param_groups:
                group["lr"] = _cosine_lr(lr, step, total_steps, warmup=steps_per_epoch // 2)
            idx = order[i:i + batch_size]
            x = augment(train_images[idx], gen)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(x)
            loss = sum(F.cross_entropy(out[k].float(), train_labels[k][idx]) for k in out)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        history.append({"epoch": epoch, "loss": float(loss.detach()), "seconds": time.perf_counter() - start})
    model.eval()
    acc = evaluate_accuracy(model, val_images, val_labels)
    return model, TrainReport(acc, time.perf_counter() - start, max_epochs, history)


@torch.inference_mode()
def predict(model: AttributeCNN, images: torch.Tensor, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Class probabilities per head: dict head → ``(B, n_classes)`` float32 array."""
    model.eval()
    parts: dict[str, list] = {k: [] for k in model.heads_vocab}
    for i in range(0, images.shape[0], batch_size):
        for k, logits in model(images[i:i + batch_size]).items():
            parts[k].append(torch.softmax(logits, 1).numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def evaluate_accuracy(model: AttributeCNN, images: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Top-1 accuracy per head."""
    probs = predict(model, images)
    return {k: float((probs[k].argmax(1) == labels[k].numpy()).mean()) for k in labels}


def degrade(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Down- then up-sample ``(B, 3, H, W)`` images through ``resolution`` px (the look of a small generator)."""
    size = images.shape[-2:]
    small = F.interpolate(images, size=(resolution, resolution), mode="area")
    return F.interpolate(small, size=size, mode="bilinear", align_corners=False).clamp_(0, 1)


def world_classifier(world, cache_dir: str | Path, *, n_train: int = 8000, n_val: int = 1500, max_epochs: int = 14,
                     through_resolution: int | None = None, seed: int = 0) -> tuple[AttributeCNN, dict]:
    """The world's attribute classifier, trained once and cached (safetensors + JSON, no pickle).

    ``through_resolution`` trains (and validates) on renders degraded through that resolution, for
    labelling the images of a generator that works at it (the tiny pipeline: 32). Returns the model
    and its record (held-out accuracy, training seconds, parameters).
    """
    from safetensors.torch import load_file, save_file

    from biaslib.io import atomic_path, write_json

    params = {"world_seed": world.seed, "bias_strength": world.config.bias_strength, "n_train": n_train,
              "n_val": n_val, "max_epochs": max_epochs, "through_resolution": through_resolution, "seed": seed,
              "heads": {k: list(map(str, v)) for k, v in HEADS.items()}}
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(cache_dir)
    weights, record_path = cache / f"attribute_cnn_{digest}.safetensors", cache / f"attribute_cnn_{digest}.json"
    model = AttributeCNN()
    if weights.is_file() and record_path.is_file():
        model.load_state_dict(load_file(weights))
        return model.eval(), json.loads(record_path.read_text())
    train = world.people(n_train, stream="classifier/train")
    val = world.people(n_val, stream="classifier/val")
    x_train = images_to_tensor(world.render_many(train.to_dict("records")))
    x_val = images_to_tensor(world.render_many(val.to_dict("records")))
    if through_resolution:
        x_train, x_val = degrade(x_train, through_resolution), degrade(x_val, through_resolution)
    model, report = train_attribute_classifier(x_train, labels_to_tensor(train, HEADS), x_val,
                                               labels_to_tensor(val, HEADS), max_epochs=max_epochs, seed=seed)
    with atomic_path(weights) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    record = {"params": params, "digest": digest, "accuracy": report.accuracy, "seconds": report.seconds,
              "epochs": report.epochs}
    write_json(record_path, record)
    return model.eval(), record


def classify_images(model: AttributeCNN, images: Sequence, size: int = 64) -> pd.DataFrame:
    """Predicted label and its probability per head for PIL images (resized to ``size`` if needed).

    Returns a DataFrame with columns ``<head>`` and ``<head>_p`` per head.
    """
    from PIL import Image

    tensors = images_to_tensor([im if im.size == (size, size) else im.resize((size, size), Image.Resampling.BILINEAR)
                                for im in images])
    probs = predict(model, tensors)
    out = {}
    for head, p in probs.items():
        vocab = model.heads_vocab[head]
        out[head] = [vocab[i] for i in p.argmax(1)]
        out[f"{head}_p"] = p.max(1)
    return pd.DataFrame(out)
