"""CLIP models: open_clip configs, local checkpoints and loading them (the library side; the trainer is
:mod:`biaslib.train`).

* :func:`register_model_configs` / :func:`check_model`: biaslib's own open_clip configs
  (``biaslib/model_configs/*.json``: ``biaslib-tiny-rn``, ``biaslib-tiny-vit``) beside open_clip's.
* :func:`read_checkpoint`: an open_clip training checkpoint (``epoch_N.pt``), a bare state dict or a
  ``.safetensors`` file, read with ``weights_only=True`` (never pickle code).
* :func:`load_clip`: an open_clip model with a local checkpoint loaded into it (nothing is downloaded).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from biaslib.data._common import PathLike
from biaslib.errors import BiaslibError

CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
Precision = Literal["auto", "fp32", "fp16", "bf16"]
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class UnknownModelError(BiaslibError, ValueError):
    """A model name with no open_clip config (message lists the available ones)."""


class CheckpointError(BiaslibError):
    """A checkpoint is missing, unreadable or does not fit its model (message names the file)."""


# ---- open_clip configs and checkpoints ----------------------------------------------------------

def register_model_configs() -> list[str]:
    """Register ``biaslib/model_configs/*.json`` with open_clip (idempotent); return their names."""
    import open_clip

    names = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
    if not set(names) <= set(open_clip.list_models()):
        open_clip.add_model_config(CONFIG_DIR)
    return names


def check_model(name: str) -> str:
    """Return ``name`` if open_clip (with biaslib's configs) knows it; else raise listing the models."""
    import open_clip

    ours = register_model_configs()
    known = open_clip.list_models()
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    builtin = [m for m in known if m not in ours]
    raise UnknownModelError(
        f"no model config named {name!r}.{hint} biaslib configs: {', '.join(ours)}; open_clip configs: "
        f"{', '.join(builtin)}. Add a JSON config to {CONFIG_DIR} or call open_clip.add_model_config.")


def read_checkpoint(path: PathLike, mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (or safetensors) on the CPU.

    Returns the raw object: open_clip training checkpoints are ``{"epoch", "name", "state_dict",
    "optimizer"}``, bare ones a state dict. ``mmap`` maps tensors instead of reading them (a cheap
    integrity check for a ``.pt`` zip archive). Raises :class:`CheckpointError` naming the file when it
    is missing, truncated, not a checkpoint, or would need pickle code to load.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first} (truncated or corrupt file, or not a "
                              "torch/safetensors checkpoint)") from exc


# ---- loading ------------------------------------------------------------------------------------

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_clip(checkpoint: PathLike | None, model_name: str, device: str | torch.device = "auto",
              precision: Precision = "auto") -> tuple[torch.nn.Module, Any, Any]:
    """Build open_clip model ``model_name`` and load a local checkpoint into it (nothing is downloaded).

    ``checkpoint``: an open_clip training checkpoint (``epoch_N.pt``), a bare state dict (``.pt``) or a
    ``.safetensors`` file, read with ``weights_only=True``; ``None`` keeps random weights (for
    benchmarks). ``precision`` is the weight dtype: ``auto``/``fp32`` keep float32 weights (the
    extraction functions then autocast to fp16 on a GPU), ``fp16``/``bf16`` cast them. Returns
    ``(model, preprocess, tokenizer)`` with the model in eval mode on ``device``.

    Raises :class:`UnknownModelError` (listing the configs) for an unknown name and :class:`CheckpointError`
    naming the file when it is unreadable or does not fit.
    """
    import open_clip

    check_model(model_name)
    state = _state_dict(read_checkpoint(checkpoint), checkpoint) if checkpoint is not None else None
    with _quiet_random_init():
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, device="cpu")
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            raise CheckpointError(f"checkpoint {checkpoint} does not fit model {model_name!r}: "
                                  f"{detail[:300]}{' …' if len(detail) > 300 else ''}") from exc
    if precision in _DTYPES:
        model = model.to(_DTYPES[precision])
    model = model.to(resolve_device(device)).eval()
    return model, preprocess, open_clip.get_tokenizer(model_name)


def _state_dict(raw: Any, path: PathLike) -> dict[str, torch.Tensor]:
    """The model weights inside a training checkpoint or a bare state dict (``module.`` stripped)."""
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


@contextlib.contextmanager
def _quiet_random_init() -> Iterator[None]:
    """Drop open_clip's 'initialized randomly' warning (biaslib loads its checkpoint itself)."""
    keep = lambda record: "initialized randomly" not in record.getMessage()  # noqa: E731
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
