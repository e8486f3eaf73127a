"""The FairFace attribute classifier: torchvision ResNet-34 with an 18-output head (formats.md B3).

Layout (dchen236/FairFace): ``fc = Linear(512, 18)``; outputs ``[0:7]`` race, ``[7:9]`` gender,
``[9:18]`` age, each slice soft-maxed on its own, in the label orders :data:`RACE_OUTPUTS`,
:data:`GENDER_OUTPUTS`, :data:`AGE_OUTPUTS` (note ``70+`` where the label CSVs say
``more than 70``, and a race order unlike the CSVs'). Preprocessing: resize to 224 × 224 (no
crop), scale to [0, 1], ImageNet mean/std. Inputs are FairFace chips (300 px, padding 0.25).

Weights: :func:`load_fairface_weights` reads a local file (FairFace's released
``res34_fair_align_multi_7_20190809.pt`` / ``fairface_alldata_20191111.pt`` state dicts, or a
safetensors file written by :func:`save_fairface_weights`) with ``weights_only=True``; nothing is
downloaded. :func:`train_fairface` trains the same network on any FairFace-format folder (the
world's export on a CPU, at a smaller ``image_size`` if time is short), from random weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from biaslib.data._common import PathLike

RACE_OUTPUTS = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
GENDER_OUTPUTS = ("Male", "Female")
AGE_OUTPUTS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
#: Attribute → (slice of the 18 outputs, label names in output order).
HEAD_LAYOUT: dict[str, tuple[slice, tuple[str, ...]]] = {
    "race": (slice(0, 7), RACE_OUTPUTS),
    "gender": (slice(7, 9), GENDER_OUTPUTS),
    "age": (slice(9, 18), AGE_OUTPUTS),
}
N_OUTPUTS = 18
IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: FairFace label-CSV strings that differ from the output names.
CSV_TO_OUTPUT = {"more than 70": "70+"}


def fairface_model() -> nn.Module:
    """Randomly initialised ``torchvision.models.resnet34`` with ``fc = Linear(512, 18)``, eval mode."""
    from torchvision.models import resnet34

    model = resnet34(weights=None)
    model.fc = nn.Linear(model.fc.in_features, N_OUTPUTS)
    return model.eval()


def preprocess(chips: np.ndarray | Sequence, size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 chips ``(k, H, W, 3)`` (or PIL images) → float tensor ``(k, 3, size, size)``.

    Bilinear resize to ``size × size`` with antialiasing (torchvision ``Resize`` on PIL images), then
    ``(x / 255 − mean) / std`` with the ImageNet statistics.
    """
    arrays = [np.asarray(c.convert("RGB") if hasattr(c, "convert") else c, dtype=np.uint8) for c in chips]
    if not arrays:
        return torch.zeros(0, 3, size, size)
    if len({a.shape for a in arrays}) > 1:  # mixed sizes: bring each to the target size first
        arrays = [np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR)) for a in arrays]
    x = torch.from_numpy(np.stack(arrays))
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def split_outputs(logits: torch.Tensor) -> dict[str, np.ndarray]:
    """``(k, 18)`` logits → attribute → softmax probabilities ``(k, n_labels)`` float32."""
    if logits.ndim != 2 or logits.shape[1] != N_OUTPUTS:
        raise ValueError(f"FairFace logits must be (k, {N_OUTPUTS}), got {tuple(logits.shape)}")
    return {a: torch.softmax(logits[:, s].float(), dim=1).cpu().numpy() for a, (s, _) in HEAD_LAYOUT.items()}


def load_fairface_weights(path: PathLike, model: nn.Module | None = None) -> nn.Module:
    """FairFace ResNet-34 with weights from a local ``.pt`` state dict or ``.safetensors`` file (eval mode).

    Read with ``torch.load(weights_only=True)``; a ``module.`` prefix (DataParallel) is stripped.
    Raises :class:`~biaslib.models.CheckpointError` naming the file when it is unreadable or does
    not fit the 18-output layout.
    """
    from biaslib.models import CheckpointError, read_checkpoint

    raw = read_checkpoint(path)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    model = model or fairface_model()
    try:
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit ResNet-34 with 18 outputs: {str(exc)[:300]}") from exc
    return model.eval()


def save_fairface_weights(model: nn.Module, path: PathLike) -> Path:
    """Write the model's state dict as safetensors, atomically; returns the path."""
    from safetensors.torch import save_file

    from biaslib.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
    return path


def label_targets(frame, attributes: Sequence[str] = ("race", "gender", "age")) -> dict[str, torch.Tensor]:
    """FairFace label columns (CSV strings, as :func:`biaslib.data.load_fairface` returns) → output indices."""
    out = {}
    for attr in attributes:
        names = HEAD_LAYOUT[attr][1]
        index = {n: i for i, n in enumerate(names)}
        values = [CSV_TO_OUTPUT.get(v, v) for v in frame[attr]]
        unknown = sorted(set(values) - set(index))
        if unknown:
            raise ValueError(f"{attr} labels {unknown[:5]} are not FairFace outputs {names}")
        out[attr] = torch.tensor([index[v] for v in values], dtype=torch.long)
    return out


def fairface_loss(logits: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over attributes of the cross-entropy of each output slice."""
    return sum(F.cross_entropy(logits[:, HEAD_LAYOUT[a][0]], t) for a, t in targets.items())


@dataclass
class FairFaceTrainReport:
    """Outcome of :func:`train_fairface`: per-epoch mean loss and held-out accuracy per attribute."""

    losses: list[float]
    accuracy: dict[str, float]
    seconds: float
    n_train: int


def _load_images(files: Sequence[str], size: int) -> torch.Tensor:
    """Image files → preprocessed tensor ``(n, 3, size, size)``."""
    chips = [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)) for f in files]
    return preprocess(np.stack(chips), size)


@torch.inference_mode()
def _accuracy(model: nn.Module, x: torch.Tensor, targets: dict[str, torch.Tensor], batch_size: int) -> dict[str, float]:
    """Top-1 accuracy per attribute on preprocessed images."""
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    return {a: float((logits[:, HEAD_LAYOUT[a][0]].argmax(1) == t).float().mean()) for a, t in targets.items()}


def train_fairface(root: PathLike, *, split: str = "train", val_split: str | None = "val", margin: str | int = "025",
                   epochs: int = 3, image_size: int = IMAGE_SIZE, batch_size: int = 32, lr: float = 1e-3,
                   max_images: int | None = None, seed: int = 0, time_budget_s: float = math.inf,
                   model: nn.Module | None = None) -> tuple[nn.Module, FairFaceTrainReport]:
    """Train the 18-output ResNet-34 on a FairFace-format folder (:func:`biaslib.data.load_fairface`).

    AdamW with a cosine learning-rate decay over ``epochs``, random horizontal flips, loss = sum of
    the three slices' cross-entropies. ``max_images`` keeps the first images of each split;
    ``image_size`` below 224 trades accuracy for CPU time (the head layout does not change);
    training stops after the epoch that passes ``time_budget_s``. ``model`` continues training
    given weights. Returns the model (eval mode) and a :class:`FairFaceTrainReport` whose accuracy
    is on ``val_split`` (empty when ``None``).
    """
    from biaslib.data.fairface import load_fairface

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train = load_fairface(root, split, margin).iloc[:max_images]
    x, targets = _load_images(train["file"].tolist(), image_size), label_targets(train)
    model = model or fairface_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    start, losses = time.perf_counter(), []
    for _ in range(epochs):
        model.train()
        order, total = torch.randperm(len(x), generator=gen), 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            batch = torch.where(flip.view(-1, 1, 1, 1), x[idx].flip(-1), x[idx])
            loss = fairface_loss(model(batch), {a: t[idx] for a, t in targets.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
        if time.perf_counter() - start > time_budget_s:
            break
    accuracy = {}
    if val_split is not None:
        val = load_fairface(root, val_split, margin).iloc[:max_images]
        accuracy = _accuracy(model, _load_images(val["file"].tolist(), image_size), label_targets(val), batch_size)
    model.eval()
    return model, FairFaceTrainReport(losses, accuracy, time.perf_counter() - start, len(x))
