"""Batched CLIP image and text embeddings, stored as unit-norm rows with their ids; zero-shot accuracy.

Unlike the original extraction loop (formats.md A5: one forward pass per image, no normalisation,
then every row divided by the norm of *one* row), images are decoded and preprocessed in DataLoader
workers, encoded in batches under ``torch.inference_mode`` with the model in eval mode (fp16
autocast on a GPU by default, fp32 on the CPU; on a CPU with several workers each worker encodes its
own batches), and **each row** is L2-normalised in float32. Every
row travels with its id, so the order of the output never has to be guessed.

Feature store layout (no pickle; written atomically, the ids file last)::

    <root>/<model>__<dataset>.npy        (N, D) float32 or float16, row i ↔ ids[i]; read memory-mapped
    <root>/<model>__<dataset>.ids.json   {"format", "model", "dataset", "n", "dim", "dtype", "ids": [...]}
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate, get_worker_info

from biaslib import __version__, hardware
from biaslib.articles import fill
from biaslib.data._common import PathLike
from biaslib.data.cc3m import list_shards
from biaslib.errors import DataLayoutError
from biaslib.hardware import cpu_threads
from biaslib.io import atomic_path, write_json
from biaslib.metrics.zero_shot import zero_shot_predict
from biaslib.models import Precision, load_clip
from biaslib.progress import progress

EncodeIn = Literal["auto", "main", "workers"]
ImageInput = Sequence[Image.Image] | Sequence[PathLike]
STORE_FORMAT = "biaslib-features/1"
OCCUPATION_TEMPLATES = ("a photo of a {}.", "a {}.", "a {} at work.")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*(?:_[A-Za-z0-9.+-]+)*")
_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


class Features(NamedTuple):
    """Embeddings ``vectors`` (N, D), unit-norm rows, row ``i`` belonging to ``ids[i]``."""

    ids: list[str]
    vectors: np.ndarray


# ---- models -------------------------------------------------------------------------------------

def resolve_precision(precision: Precision, device: torch.device | str) -> Literal["fp32", "fp16", "bf16"]:
    """The precision extraction runs in on ``device``: ``auto`` is fp16 autocast on CUDA and, on the CPU,
    bf16 autocast where the CPU computes bf16 natively (AVX512-BF16/AMX; the tiny CLIP's pipeline runs
    ≈ 1.5× faster than in fp32 here, rows within ≈ 1e-2 of fp32's), else fp32 (emulated bf16 is
    slower). Other values pass unchanged. Training's ``auto`` makes the same choice
    (:func:`biaslib.train.resolve_precision`)."""
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "fp16"
    return "bf16" if hardware.native_bf16() else "fp32"


def _autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """Autocast to the dtype :func:`resolve_precision` picks; nothing for fp32."""
    dtype = _DTYPES.get(resolve_precision(precision, device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _normalise(x: torch.Tensor) -> np.ndarray:
    """Rows of ``x`` (B, D) divided by their own L2 norm, in float32."""
    x = x.float()
    return (x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()


# ---- image inputs -------------------------------------------------------------------------------

class SplitPreprocess(NamedTuple):
    """An open_clip-style preprocess cut in two: ``pil`` (resize, crop, RGB: PIL → PIL, per image, in the
    DataLoader workers) and ``mean``/``std`` (3,) of the final ``ToTensor`` + ``Normalize``, which
    :meth:`finish` applies to a whole uint8 batch at once — the same float operations as the per-image
    transform, so the values are identical, and workers pass uint8 arrays (4× fewer bytes)."""

    pil: Any
    mean: torch.Tensor
    std: torch.Tensor

    def to_uint8(self, image: Image.Image) -> np.ndarray:
        """``(H, W, 3)`` uint8 after the PIL steps."""
        image = self.pil(image)
        return np.array(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)  # writable copy

    def finish(self, batch: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, 3)`` uint8 → ``(B, 3, H, W)`` float32, ToTensor's ``/255`` then ``Normalize``."""
        x = batch.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        return x.sub_(mean[:, None, None]).div_(std[:, None, None])


def split_preprocess(preprocess: Any) -> SplitPreprocess | None:
    """:class:`SplitPreprocess` of a torchvision ``Compose`` that ends in ``ToTensor`` + ``Normalize`` after
    PIL steps that include a ``CenterCrop`` (so every image of a batch has one size), as open_clip's
    evaluation transforms do; ``None`` for any other preprocess (it then runs whole, per image)."""
    from torchvision.transforms import CenterCrop, Compose, Normalize, ToTensor

    steps = list(getattr(preprocess, "transforms", []))
    if not isinstance(preprocess, Compose) or len(steps) < 3:
        return None
    *head, to_tensor, normalize = steps
    if not (isinstance(to_tensor, ToTensor) and isinstance(normalize, Normalize) and not normalize.inplace
            and any(isinstance(step, CenterCrop) for step in head)
            and all(isinstance(step, torch.nn.Module) or callable(step) for step in head)):
        return None
    mean, std = (torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in (normalize.mean, normalize.std))
    if mean.numel() != 3 or std.numel() != 3:
        return None
    return SplitPreprocess(Compose(head), mean, std)


class _ImageList(Dataset):
    """PIL images or image files → (position, preprocessed tensor or uint8 array); files are decoded in
    the worker."""

    def __init__(self, items: ImageInput, preprocess: Any):
        self.items, self.preprocess = items, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        item = self.items[i]
        if isinstance(item, Image.Image):
            return i, self.preprocess(item)
        try:
            with Image.open(item) as image:
                return i, self.preprocess(image.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataLayoutError(f"cannot read image {item}: {exc}") from exc


class _ShardImages(IterableDataset):
    """Webdataset shards → (key, preprocessed tensor); each DataLoader worker reads whole shards."""

    def __init__(self, shards: list[Path], preprocess: Any):
        self.shards, self.preprocess = shards, preprocess

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        from biaslib.data.cc3m import iter_cc3m

        info = get_worker_info()
        mine = self.shards if info is None else self.shards[info.id::info.num_workers]
        if not mine:
            return
        for sample in iter_cc3m(mine, decode=True):
            yield sample.key, self.preprocess(sample.image.convert("RGB"))


class _BatchEncoder(NamedTuple):
    """The model on one batch: ``(B, H, W, 3)`` uint8 (after :meth:`SplitPreprocess.to_uint8`) or
    ``(B, 3, H, W)`` float (a whole preprocess) → ``(B, D)`` float32 unit rows, on the model's device
    under ``torch.inference_mode`` and :func:`_autocast`."""

    model: torch.nn.Module
    split: SplitPreprocess | None
    precision: Precision
    memory_format: torch.memory_format

    def __call__(self, batch: torch.Tensor) -> np.ndarray:
        device = _device_of(self.model)
        with torch.inference_mode():
            batch = batch.to(device, non_blocking=True)
            if self.split is not None:
                batch = self.split.finish(batch)
            with _autocast(device, self.precision):
                batch = batch.to(dtype=next(self.model.parameters()).dtype)
                return _normalise(self.model.encode_image(batch.contiguous(memory_format=self.memory_format)))


def fold_batchnorm(model: torch.nn.Module, memory_format: torch.memory_format = torch.contiguous_format
                   ) -> torch.nn.Module:
    """``model`` (eval mode) for image inference with each BatchNorm of its image tower folded into the
    convolution before it: a shallow copy of ``model`` whose ``visual`` is a folded copy (torch.fx
    ``fuse``; weights in ``memory_format``), sharing every other part. The eval-mode BatchNorm is an
    affine map per channel, so the folded convolution computes the same function (rows move by float
    rounding, ≈ 3e-8) with one pass over the activations less per layer: 1.07–1.27× per image for the
    tiny ResNet CLIP on one CPU thread (bench/RESULTS.md). ``model`` itself is returned when its tower
    has no BatchNorm (ViT) or torch.fx cannot trace it."""
    from torch.fx.experimental.optimization import fuse

    tower = getattr(model, "visual", None)
    if tower is None or not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in tower.modules()):
        return model
    try:
        folded = fuse(tower.eval(), inplace=False).to(memory_format=memory_format)
    except (torch.fx.proxy.TraceError, TypeError, RuntimeError, NotImplementedError) as exc:
        logging.getLogger(__name__).info("image tower not folded (torch.fx cannot trace it: %s)", exc)
        return model
    clone = copy.copy(model)
    clone._modules = dict(model._modules)  # its own table of parts: replacing the tower leaves model alone
    clone.visual = folded
    return clone


class _EncodedBatches(Dataset):
    """Batch ``b`` of an :class:`_ImageList` (``batch_size`` images), decoded *and* encoded in the
    DataLoader worker that draws it: ``(positions (B,), rows (B, D))``."""

    def __init__(self, images: _ImageList, batch_size: int, encode: _BatchEncoder):
        self.images, self.batch_size, self.encode = images, batch_size, encode

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, np.ndarray]:
        stop = min(len(self.images), (b + 1) * self.batch_size)
        positions, batch = default_collate([self.images[i] for i in range(b * self.batch_size, stop)])
        return positions, self.encode(batch)


class _EncodedShardBatches(IterableDataset):
    """The worker's shards of a :class:`_ShardImages` in batches of ``batch_size``, encoded in the
    worker: ``(keys, rows (B, D))``."""

    def __init__(self, images: _ShardImages, batch_size: int, encode: _BatchEncoder):
        self.images, self.batch_size, self.encode = images, batch_size, encode

    def __iter__(self) -> Iterator[tuple[list[str], np.ndarray]]:
        samples = iter(self.images)
        while chunk := list(itertools.islice(samples, self.batch_size)):
            keys, batch = default_collate(chunk)
            yield keys, self.encode(batch)


def _image_loader(images: ImageInput | PathLike, ids: Sequence[str] | None, preprocess: Any, batch_size: int,
                  workers: int, encode: _BatchEncoder | None = None) -> tuple[DataLoader, list[str] | None]:
    """DataLoader over the input and the ids of its positions (``None`` for shards: keys come along).
    ``preprocess`` runs per image in the workers (a :meth:`SplitPreprocess.to_uint8` or a whole transform).
    With ``encode`` the loader yields encoded batches ``(positions or keys, rows)`` computed in the
    workers; without it, preprocessed batches ``(positions or keys, batch)``."""
    if isinstance(images, (str, Path)):
        if ids is not None:
            raise ValueError("ids come from the sample keys of webdataset shards; do not pass ids")
        dataset: Dataset = _ShardImages(list_shards(images), preprocess)
        if encode is not None:
            dataset = _EncodedShardBatches(dataset, batch_size, encode)
    else:
        dataset = _ImageList(images, preprocess)
        ids = _check_ids(ids, len(images))
        if encode is not None:
            dataset = _EncodedBatches(dataset, batch_size, encode)
    loader = DataLoader(dataset, batch_size=None if encode is not None else batch_size, num_workers=workers,
                        shuffle=False, persistent_workers=False, pin_memory=torch.cuda.is_available())
    return loader, ids


def _check_ids(ids: Sequence[str] | None, n: int) -> list[str]:
    """``ids`` as strings (default ``"0"``…``"n-1"``); raise unless there are ``n`` unique ones."""
    ids = [str(i) for i in (range(n) if ids is None else ids)]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} inputs")
    if len(set(ids)) != n:
        raise ValueError(f"ids are not unique ({n - len(set(ids))} duplicates)")
    return ids


# ---- extraction ---------------------------------------------------------------------------------

def extract_image_features(model: torch.nn.Module, preprocess: Any, images: ImageInput | PathLike,
                           ids: Sequence[str] | None = None, *, batch_size: int = 256, workers: int = 0,
                           precision: Precision = "auto", threads: int | None = None,
                           channels_last: bool = True, encode_in: EncodeIn = "auto",
                           progress: bool = False, label: str = "images") -> Features:
    """Embed images: a list of PIL images, a list of image file paths, or webdataset shards.

    Shards are given as a folder, a ``.tar`` or a brace pattern (see
    :func:`biaslib.data.cc3m.list_shards`); their sample keys are the ids. For lists, ``ids`` default
    to the positions ``"0"``…``"N-1"``. Decoding and ``preprocess`` run in ``workers`` DataLoader
    processes. The model runs in eval mode under ``torch.inference_mode``, where ``encode_in`` says:

    * ``"main"``: in this process on the model's device, on batches the workers decoded; on the CPU
      with ``threads`` torch threads (``None``: the cores the workers leave, see
      :func:`biaslib.hardware.cpu_threads`);
    * ``"workers"`` (CPU only): each worker decodes *and* encodes whole batches with one torch thread —
      data parallel over processes, this process only gathers rows. On a CPU no core then waits
      for another (measured on 2 cores, tiny ResNet CLIP: 2 workers 1.1–1.4× the 2-thread model in
      this process with decoding beside it, 1.4–1.7× the model in this process beside 2 decoding
      workers; bench/RESULTS.md);
    * ``"auto"`` (default): on the CPU with ``workers >= 2``, ``"workers"`` where they pay off
      (:func:`workers_pay_off`); else — a list of fewer than :data:`WORKERS_MIN_IMAGES` images, or a model
      that dominates the work as RN50 at 224 px does — the model runs here with every core and the images
      are decoded here too, without workers (RN50 on 2 cores: 2 encoding workers 0.55× the one-image loop,
      no workers 1.09×; 500 images of the tiny CLIP: workers 1,685 images/s, none 2,432; bench/RESULTS.md).
      On a GPU, or with fewer than 2 workers, ``"main"``.

    ``channels_last`` (default) puts the model's weights and each batch in NHWC memory format, which
    oneDNN's convolutions prefer (the tiny ResNet CLIP runs ≈ 1.4× faster in fp32 and ≈ 2× with bf16
    on this CPU; values unchanged up to rounding); the model is converted in place. A ResNet tower's
    BatchNorms are folded into a copy (:func:`fold_batchnorm`). An open_clip
    evaluation transform is split (:func:`split_preprocess`): the workers resize and crop, the batch is
    converted and normalised at once on the model's device. Rows do not depend on ``batch_size``,
    ``workers`` or ``encode_in`` beyond float rounding. Returns :class:`Features` with float32 (N, D)
    unit rows.
    """
    device = _device_of(model)
    in_workers = _encode_in_workers(encode_in, device, workers)
    split = split_preprocess(preprocess)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.eval().to(memory_format=memory_format)
    encode = _BatchEncoder(fold_batchnorm(model, memory_format), split, precision, memory_format)
    if in_workers and encode_in == "auto" and not workers_pay_off(images, encode, preprocess):
        in_workers, workers = False, 0
    loader, position_ids = _image_loader(images, ids, split.to_uint8 if split else preprocess, batch_size, workers,
                                         encode if in_workers else None)
    keys: list[str] = []
    rows: list[np.ndarray] = []
    with _torch_threads(threads or cpu_threads(workers), device):
        for index, batch in _progress(loader, progress, label):
            rows.append(np.asarray(batch) if in_workers else encode(batch))
            keys += [position_ids[int(i)] for i in index] if position_ids is not None else list(index)
    return Features(keys, _stack(rows))


#: Fewest images of a list for which ``encode_in="auto"`` starts encoding workers on the CPU. Each call pays for
#: their start (fork, a first batch that builds the kernels: ≈ 0.1–0.15 s on 2 cores) before they overtake one
#: process: the tiny CLIP's crossover was ≈ 1,600 images in fp32 and ≈ 3,800 with bf16 (bench/RESULTS.md).
WORKERS_MIN_IMAGES = 2048


def workers_pay_off(images: ImageInput | PathLike, encode: _BatchEncoder, preprocess: Any) -> bool:
    """Whether encoding in DataLoader workers beats one process using every core for ``images`` on the CPU:
    not for a list of fewer than :data:`WORKERS_MIN_IMAGES` (their start-up outweighs what they save), nor for
    a model that dominates decoding (:func:`model_dominates`, timed only when the count allows workers). Shards
    are taken as large (a dataset)."""
    if not isinstance(images, (str, Path)) and len(images) < WORKERS_MIN_IMAGES:
        return False
    return not model_dominates(encode, preprocess)


#: One thread's seconds per image above which the model dominates decoding (a web-size JPEG decoded and resized
#: takes ≈ 1–3 ms on the CPUs measured): ``encode_in="auto"`` then gives the model every core, without workers.
MODEL_DOMINATES_S = 0.010


def model_dominates(encode: _BatchEncoder, preprocess: Any, images: int = 4) -> bool:
    """Whether ``encode``'s model takes at least :data:`MODEL_DOMINATES_S` per image on one CPU thread, timed on
    the second of two batches of ``images`` blank images through ``preprocess`` (the first warms the kernels)."""
    blank = Image.new("RGB", (256, 256))
    one = encode.split.to_uint8(blank) if encode.split is not None else preprocess(blank)
    batch = torch.stack([torch.as_tensor(one)] * images)
    with _torch_threads(1, torch.device("cpu")):
        encode(batch)
        start = time.perf_counter()
        encode(batch)
        seconds = time.perf_counter() - start
    return seconds / images >= MODEL_DOMINATES_S


def _encode_in_workers(encode_in: EncodeIn, device: torch.device, workers: int) -> bool:
    """Whether the DataLoader workers run the model (see :func:`extract_image_features`)."""
    if encode_in not in ("auto", "main", "workers"):
        raise ValueError(f"encode_in must be 'auto', 'main' or 'workers', not {encode_in!r}")
    if encode_in == "workers" and (device.type != "cpu" or workers < 1):
        raise ValueError(f"encode_in='workers' needs a CPU model and workers >= 1 (model on {device}, "
                         f"workers={workers})")
    return encode_in == "workers" or (encode_in == "auto" and device.type == "cpu" and workers >= 2)


def extract_text_features(model: torch.nn.Module, tokenizer: Any, texts: Sequence[str],
                          ids: Sequence[str] | None = None, *, batch_size: int = 256,
                          precision: Precision = "auto", progress: bool = False, label: str = "texts") -> Features:
    """Embed ``texts`` (ids default to positions ``"0"``…``"N-1"``); float32 (N, D) unit rows. ``progress``: a
    progress bar named ``label`` (what is embedded), gone when done."""
    ids = _check_ids(ids, len(texts))
    device = _device_of(model)
    model.eval()
    rows = []
    with torch.inference_mode():
        starts = range(0, len(texts), batch_size)
        for start in _progress(starts, progress, label):
            tokens = tokenizer(list(texts[start:start + batch_size])).to(device)
            length = pooled_length(model, tokens)
            with _autocast(device, precision), _context_length(model, length):
                rows.append(_normalise(model.encode_text(tokens if length is None else tokens[:, :length])))
    return Features(ids, _stack(rows))


def pooled_length(model: torch.nn.Module, tokens: torch.Tensor) -> int | None:
    """How many leading positions of ``tokens`` (N, context) decide the text features of an open_clip ``CLIP``
    text tower: up to the last row's end-of-text token, which it pools (``text_pool_type`` ``argmax``). The tower's
    attention is causal, so the positions after a row's end-of-text token never reach it: encoding only this prefix
    gives the same features (to float rounding, ≈ 1e-6) for ≈ 4× less work on short captions (20 of 77 positions).
    None (encode every position) for any other model: another pooling, no causal mask, or a text tower of another
    class (``CustomTextCLIP``, a transformers model)."""
    import open_clip

    if (type(model).encode_text is not open_clip.model.CLIP.encode_text or model.text_pool_type != "argmax"
            or not isinstance(getattr(model, "attn_mask", None), torch.Tensor)):
        return None
    length = int(tokens.argmax(dim=-1).max()) + 1
    return length if length < tokens.shape[1] else None


@contextlib.contextmanager
def _context_length(model: torch.nn.Module, length: int | None) -> Iterator[None]:
    """While inside: ``model``'s positional embedding and causal mask cut to the first ``length`` positions
    (views of the same storage; restored on exit); nothing for None."""
    if length is None:
        yield
        return
    embedding, mask = model.positional_embedding, model.attn_mask
    try:
        model.positional_embedding = torch.nn.Parameter(embedding.detach()[:length], requires_grad=False)
        model.attn_mask = mask[:length, :length]
        yield
    finally:
        model.positional_embedding, model.attn_mask = embedding, mask


@contextlib.contextmanager
def _torch_threads(threads: int, device: torch.device) -> Iterator[None]:
    """Use ``threads`` intra-op threads for a CPU block (unchanged for a GPU)."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    """Concatenate batch outputs; raise on an empty input."""
    if not rows:
        raise ValueError("nothing to embed: the input holds no images or texts")
    return np.concatenate(rows).astype(np.float32, copy=False)


def _progress(items: Iterable, enabled: bool, desc: str) -> Iterable:
    """``items`` with a progress bar named ``desc`` that disappears when done (a sweep leaves no pile of finished
    bars in a notebook)."""
    if not enabled:
        return items
    return progress(items, desc=desc, unit="batch", transient=True)


# ---- feature store ------------------------------------------------------------------------------

class FeatureStore:
    """Folder of feature arrays, one per (model, dataset) pair (layout in the module docstring).

    ``model`` and ``dataset`` are file-name parts: letters, digits, ``.+-`` and single ``_`` (a double
    underscore separates them in the file name).
    """

    def __init__(self, root: PathLike):
        self.root = Path(root)

    def paths(self, model: str, dataset: str) -> tuple[Path, Path]:
        """``(<model>__<dataset>.npy, <model>__<dataset>.ids.json)``."""
        for what, name in (("model", model), ("dataset", dataset)):
            if not _NAME.fullmatch(name):
                raise ValueError(f"{what} name {name!r} is not a safe file-name part (letters, digits, .+-, "
                                 "single underscores)")
        stem = f"{model}__{dataset}"
        return self.root / f"{stem}.npy", self.root / f"{stem}.ids.json"

    def save(self, model: str, dataset: str, features: Features,
             dtype: Literal["float32", "float16"] = "float32", source: str | None = None) -> Path:
        """Write ``features`` atomically (array first, ids last); return the ``.npy`` path. ``source``: a
        fingerprint of the inputs they were computed from (:func:`biaslib.io.files_fingerprint`), kept in the
        ids file and returned by :meth:`source`."""
        array, ids_path = self.paths(model, dataset)
        vectors = np.asarray(features.vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(features.ids):
            raise ValueError(f"features hold {len(features.ids)} ids but an array of shape {vectors.shape}")
        _check_ids(features.ids, len(features.ids))
        with atomic_path(array) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vectors.astype(dtype, copy=False), allow_pickle=False)
        write_json(ids_path, {"format": STORE_FORMAT, "biaslib_version": __version__, "model": model,
                              "dataset": dataset, "n": len(features.ids), "dim": int(vectors.shape[1]),
                              "dtype": dtype, "source": source, "ids": list(features.ids)})
        return array

    def source(self, model: str, dataset: str) -> str | None:
        """The input fingerprint stored with the pair (None when absent or stored without one)."""
        ids_path = self.paths(model, dataset)[1]
        if not ids_path.is_file():
            return None
        return json.loads(ids_path.read_text(encoding="utf-8")).get("source")

    def has(self, model: str, dataset: str) -> bool:
        """True when both files of the pair exist (the ids file is written last)."""
        return all(p.is_file() for p in self.paths(model, dataset))

    def load(self, model: str, dataset: str) -> Features:
        """The ids and a read-only memory-mapped array; raises :class:`DataLayoutError` if missing or
        inconsistent."""
        array, ids_path = self.paths(model, dataset)
        if not self.has(model, dataset):
            raise DataLayoutError(f"no features for model {model!r} on {dataset!r}: expected {array} and {ids_path}")
        record = json.loads(ids_path.read_text(encoding="utf-8"))
        vectors = np.load(array, mmap_mode="r", allow_pickle=False)
        if vectors.shape != (record["n"], record["dim"]) or len(record["ids"]) != record["n"]:
            raise DataLayoutError(f"{array} has shape {vectors.shape} but {ids_path} lists "
                                  f"{len(record['ids'])} ids of dimension {record['dim']}")
        return Features(record["ids"], vectors)

    def entries(self) -> pd.DataFrame:
        """Every stored pair: columns ``model``, ``dataset``, ``n``, ``dim``, ``dtype``, ``path``."""
        rows = []
        for ids_path in sorted(self.root.glob("*__*.ids.json")):
            record = json.loads(ids_path.read_text(encoding="utf-8"))
            rows.append({k: record[k] for k in ("model", "dataset", "n", "dim", "dtype")}
                        | {"path": ids_path.with_name(ids_path.name.removesuffix(".ids.json") + ".npy")})
        return pd.DataFrame(rows, columns=["model", "dataset", "n", "dim", "dtype", "path"])


# ---- zero-shot classification -------------------------------------------------------------------

def zero_shot_classifier(model: torch.nn.Module, tokenizer: Any, classnames: Sequence[str],
                         templates: Sequence[str] = ("a photo of a {}.",), *,
                         precision: Precision = "auto") -> np.ndarray:
    """Class embeddings (C, D), CLIP_benchmark style: per class the mean of its unit template
    embeddings, renormalised."""
    prompts = [fill(t, c) for c in classnames for t in templates]
    text = extract_text_features(model, tokenizer, prompts, precision=precision).vectors
    mean = text.reshape(len(classnames), len(templates), -1).mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def zero_shot_accuracy(model: torch.nn.Module, tokenizer: Any, preprocess: Any, images: ImageInput,
                       labels: Sequence[str], classnames: Sequence[str],
                       templates: Sequence[str] = ("a photo of a {}.",), *, batch_size: int = 256,
                       workers: int = 0, precision: Precision = "auto") -> float:
    """Top-1 accuracy of zero-shot classification of ``images`` (true class names ``labels``)."""
    unknown = sorted(set(labels) - set(classnames))
    if unknown:
        raise ValueError(f"labels not among the class names: {unknown[:5]}")
    weights = zero_shot_classifier(model, tokenizer, classnames, templates, precision=precision)
    feats = extract_image_features(model, preprocess, images, batch_size=batch_size, workers=workers,
                                   precision=precision).vectors
    predicted = np.asarray(classnames)[zero_shot_predict(feats, weights)]
    return float(np.mean(predicted == np.asarray(labels)))


def occupation_zero_shot(clip: PathLike | tuple[torch.nn.Module, Any, Any], world: Any, *, n: int = 2000,
                         model_name: str = "biaslib-tiny-rn", templates: Sequence[str] = OCCUPATION_TEMPLATES,
                         stream: str = "zeroshot/eval", batch_size: int = 256) -> dict[str, float]:
    """Zero-shot occupation accuracy of a CLIP on ``n`` held-out world people (uniform over the 40
    occupations, so chance is 1/40; people without an occupation are not drawn).

    ``clip`` is a checkpoint path (built as ``model_name``) or a ``(model, preprocess, tokenizer)``
    tuple. Returns ``{"accuracy", "chance", "n", "classes"}``.
    """
    from biaslib.world.attributes import occupations

    model, preprocess, tokenizer = load_clip(clip, model_name) if isinstance(clip, (str, Path)) else clip
    names = occupations()
    people = world.people(n, stream=stream, occupations=names)
    images = world.render_many(people.to_dict("records"))
    accuracy = zero_shot_accuracy(model, tokenizer, preprocess, images, list(people["occupation"]), names,
                                  templates, batch_size=batch_size)
    return {"accuracy": accuracy, "chance": 1 / len(names), "n": n, "classes": len(names)}
