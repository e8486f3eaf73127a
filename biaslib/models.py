"""CLIP models: open_clip configs, local checkpoints and loading them (the library side; the trainer is
:mod:`biaslib.train`).

* :func:`register_model_configs` / :func:`check_model`: biaslib's own open_clip configs
  (``biaslib/model_configs/*.json``: ``biaslib-tiny-rn``, ``biaslib-tiny-vit``) beside open_clip's.
* :func:`read_checkpoint`: an open_clip training checkpoint (``epoch_N.pt``), a bare state dict or a
  ``.safetensors`` file, read with ``weights_only=True`` (never pickle code).
* :func:`load_clip`: an open_clip model with a local checkpoint loaded into it (nothing is downloaded).
* Model specs (:class:`ModelSpec`, :func:`read_models_file`, e.g. ``params/models.yaml``): any CLIP a
  benchmark evaluates: an open_clip architecture with local weights, an open_clip pretrained tag found in
  the local cache, random weights (tests), a transformers ``CLIPModel`` folder, or the amplification study's
  runs. :func:`resolve_model` finds and hashes the files (every error before anything loads);
  :meth:`ResolvedModel.load` builds the model with open_clip's interface (``encode_image``, ``encode_text``).
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from biaslib.config import project_folder, read_yaml
from biaslib.data._common import PathLike
from biaslib.errors import BiaslibError
from biaslib.ratios import written_ratio

log = logging.getLogger(__name__)
CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
#: The file name of an open_clip_train checkpoint, ``epoch_<N>.pt`` (group 1: N).
CHECKPOINT_NAME = re.compile(r"epoch_(\d+)\.pt")
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
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UnknownModelError(f"no model config named {name!r}{hint}; all {len(known)}, biaslib's {len(ours)} included: "
                            "open_clip.list_models(); add one in biaslib/model_configs/")


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
    return _placed(model, device, precision), preprocess, open_clip.get_tokenizer(model_name)


def _placed(model: torch.nn.Module, device: str | torch.device, precision: Precision) -> torch.nn.Module:
    """``model`` in eval mode on ``device``, its weights cast for ``fp16``/``bf16`` (float32 otherwise)."""
    if precision in _DTYPES:
        model = model.to(_DTYPES[precision])
    return model.to(resolve_device(device)).eval()


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


# ---- model specs: what to load ------------------------------------------------------------------

#: A model name: letters, digits, ``.+-`` and single underscores (it becomes part of file names).
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*(?:_[A-Za-z0-9.+-]+)*")
#: The keys a spec may have, per kind (``kind`` is inferred from ``arch`` / ``hf`` / ``runs``).
SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "open_clip": ("arch", "weights", "pretrained", "cache_dir"),
    "hf": ("hf",),
    "runs": ("runs", "ratios"),
}
#: Where open_clip keeps the files of pretrained tags by default (``open_clip.create_model(cache_dir=None)``).
OPEN_CLIP_CACHE = Path("~/.cache/huggingface/hub").expanduser()
#: The images' mean and std of the OpenAI CLIPs (used for an HF folder without ``preprocessor_config.json``).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class ModelSpecError(BiaslibError, ValueError):
    """A model spec that cannot name a loadable model (the message names the spec and the fix)."""


@dataclass(frozen=True)
class ModelSpec:
    """One CLIP to evaluate, as a models file names it (:func:`read_models_file`).

    ``kind``:

    * ``open_clip``: architecture ``arch`` (an open_clip config name, biaslib's included) with ``weights`` (a
      local ``open_clip_pytorch_model.bin``, ``.safetensors``, open_clip_train ``epoch_N.pt`` or bare state
      dict), or ``pretrained`` (an open_clip tag such as ``openai`` or ``laion2b_s34b_b79k``, resolved from
      the local cache ``cache_dir``, default :data:`OPEN_CLIP_CACHE`; never downloaded), or ``pretrained:
      none`` (random initialisation, seeded: for tests and benchmarks only, recorded as such).
    * ``hf``: a transformers ``CLIPModel`` folder (``save_pretrained`` layout: ``config.json`` and
      ``model.safetensors`` or ``pytorch_model.bin``; tokenizer files optional).
    * ``runs``: the amplification study's trained CLIPs of a params file (``runs: params/world_study.yaml``):
      one model per ratio × replicate (``ratios``: a subset of its ``mix.ratios``; expanded by
      :func:`biaslib.studies.benchmark.leaderboard.resolve_models`).
    """

    name: str
    kind: str
    arch: str | None = None
    weights: Path | None = None
    pretrained: str | None = None
    cache_dir: Path | None = None
    folder: Path | None = None
    params: Path | None = None
    ratios: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, str]:
        """The spec as written (paths as strings, empty fields left out): what a result's provenance records."""
        fields = {"arch": self.arch, "weights": self.weights, "pretrained": self.pretrained,
                  "cache_dir": self.cache_dir, "hf": self.folder, "runs": self.params,
                  "ratios": None if self.ratios is None else " ".join(self.ratios)}
        return {"name": self.name, "kind": self.kind, **{k: str(v) for k, v in fields.items() if v is not None}}


def model_spec(name: str, entry: Any, folder: Path | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of one models-file entry (a mapping, or the shorthands ``"runs:<params file>"``
    and ``"hf:<folder>"``); its relative paths resolve against ``folder`` (the models file's
    :func:`~biaslib.config.project_folder`; None: left relative). Raises one :class:`ModelSpecError` listing
    every problem of the entry, a line each naming the model: a bad name, unknown keys (close names listed), keys of
    two kinds, weights and pretrained together, a bad ratio."""
    where = f"model {name!r}"
    problems = []
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        problems.append(f"{where}: a model name is letters, digits, '.', '+', '-' and single underscores")
    if isinstance(entry, str) and entry.partition(":")[0] in ("runs", "hf"):
        kind, _, value = entry.partition(":")
        entry = {kind: value}
    if not isinstance(entry, dict) or not entry:
        problems.append(f"{where}: expected a mapping such as {{arch: RN50, weights: path/to/model.bin}}, "
                        f"{{hf: path/to/folder}} or {{runs: params/world_study.yaml}}; got {str(entry)[:60]!r}")
        raise ModelSpecError("\n".join(problems))
    known = {key for keys in SPEC_KEYS.values() for key in keys}
    for key in entry:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=2)
            problems.append(f"{where}: unknown key {key!r}" + (f" (did you mean {' or '.join(close)}?)" if close
                            else "") + f"; keys: {', '.join(sorted(known))}")
    kinds = [kind for kind, keys in SPEC_KEYS.items() if keys[0] in entry]
    if len(kinds) != 1 or any(k not in SPEC_KEYS[kinds[0]] for k in entry if k in known):
        problems.append(f"{where}: give exactly one of arch (open_clip), hf (a transformers folder) or runs "
                        f"(a params file), with only that kind's keys; got {', '.join(map(str, entry))}")
    if "weights" in entry and "pretrained" in entry or "arch" in entry and not ({"weights", "pretrained"} & set(entry)):
        problems.append(f"{where}: an open_clip model needs weights (a local file) or pretrained (an open_clip tag "
                        "from the local cache, or none for random weights), not both")
    ratios = entry.get("ratios")
    if ratios is not None:
        try:
            ratios = tuple(written_ratio(r) for r in (ratios if isinstance(ratios, (list, tuple)) else [ratios]))
        except ValueError as exc:
            problems.append(f"{where}: ratios: {exc} (quote codes: ['000', '050'])")
    if problems:
        raise ModelSpecError("\n".join(problems))
    kind = kinds[0]

    def path(key: str) -> Path | None:
        value = entry.get(key)
        if value is None:
            return None
        path = Path(str(value)).expanduser()
        return path if folder is None or path.is_absolute() else folder / path

    pretrained = entry.get("pretrained")
    return ModelSpec(name=name, kind=kind, arch=entry.get("arch"), weights=path("weights"),
                     pretrained=None if pretrained is None else "none" if str(pretrained).lower() in
                     ("none", "false") else str(pretrained), cache_dir=path("cache_dir"),
                     folder=path("hf"), params=path("runs"), ratios=ratios)


def read_models_file(path: str | Path) -> list[ModelSpec]:
    """The :class:`ModelSpec` of every entry of a models file (YAML: ``models: {<name>: <spec>, ...}``; relative
    paths resolve against the file's :func:`~biaslib.config.project_folder`, like a params file's: the repository
    root for ``params/models.yaml``, whatever the working folder); raises :class:`ModelSpecError` naming the file."""
    import yaml

    path = Path(path).expanduser()
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelSpecError(f"{path}: not a readable YAML file ({' '.join(str(exc).split())[:200]})") from exc
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict) or not models:
        raise ModelSpecError(f"{path}: expected 'models:' mapping names to specs, e.g.\n"
                             "models:\n  rn50_random: {arch: RN50, pretrained: none}\n"
                             "  my_vit: {arch: ViT-B-32, weights: /models/vit-b-32/open_clip_pytorch_model.bin}\n"
                             "  hf_vit: {hf: /models/clip-vit-base-patch32}\n  world: {runs: params/world_study.yaml}")
    specs, problems = [], []
    for name, entry in models.items():
        try:
            specs.append(model_spec(str(name), entry, project_folder(path)))
        except ModelSpecError as exc:
            problems += str(exc).splitlines()
    if problems:
        raise ModelSpecError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return specs


@dataclass(frozen=True)
class ResolvedModel:
    """A model whose files were found and hashed: ready to :meth:`load` (nothing is loaded yet).

    ``name`` is the spec's (for ``runs`` specs ``<name>-<ratio code>[_r<replicate>]``), ``arch`` the open_clip
    architecture or ``hf:<folder name>``, ``path`` the weights file or HF folder (None: random weights),
    ``sha256`` the weights' hash (:func:`random_weights_id` for random ones; it keys the features cache),
    ``epoch`` an open_clip_train checkpoint's epoch, ``spec`` what the models file said (for provenance).
    """

    name: str
    arch: str
    path: Path | None
    sha256: str
    spec: dict[str, str]
    epoch: int | None = None
    quick_gelu: bool = False
    mean_std: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def load(self, device: str | torch.device = "auto", precision: Precision = "auto") -> tuple[Any, Any, Any]:
        """``(model, preprocess, tokenizer)`` as :func:`load_clip` returns them (an HF ``CLIPModel`` wrapped in
        :class:`HFCLIP` with an open_clip-style preprocess and tokenizer)."""
        if self.arch.startswith("hf:"):
            return load_hf_clip(self.path, device=device, precision=precision)
        if self.path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_SEED)
                return load_clip(None, self.arch, device=device, precision=precision)
        if self.mean_std is not None:  # an open_clip pretrained tag (resolve_model sets its mean and std)
            return _load_pretrained(self, device, precision)
        return load_clip(self.path, self.arch, device=device, precision=precision)


#: The seed of a ``pretrained: none`` model's random initialisation.
RANDOM_SEED = 0


def random_weights_id(arch: str) -> str:
    """The stand-in for the weights' sha256 of a randomly initialised ``arch``: sha256 of
    ``random:<arch>:seed<RANDOM_SEED>`` (the same weights for the same torch version)."""
    return hashlib.sha256(f"random:{arch}:seed{RANDOM_SEED}".encode()).hexdigest()


def resolve_model(spec: ModelSpec) -> ResolvedModel:
    """Find and hash the files of an ``open_clip`` or ``hf`` spec (``runs`` specs expand in the benchmark
    study). Raises :class:`ModelSpecError` / :class:`UnknownModelError` naming what is missing before any
    model is built: a wrong path, an unknown architecture (close names listed), a tag open_clip does not know
    for the architecture or that is not in the local cache, an HF folder without ``config.json`` or weights."""
    from biaslib.io import file_sha256

    where = f"model {spec.name!r}"
    if spec.kind == "hf":
        folder = spec.folder
        if folder is None or not folder.is_dir():
            raise ModelSpecError(f"{where}: HF folder not found: {folder} (expected a CLIPModel.save_pretrained "
                                 "folder: config.json, model.safetensors or pytorch_model.bin)")
        if not (folder / "config.json").is_file():
            raise ModelSpecError(f"{where}: {folder} has no config.json (expected a CLIPModel.save_pretrained "
                                 "folder: config.json, model.safetensors or pytorch_model.bin)")
        model_type = _hf_model_type(folder / "config.json")
        if model_type != "clip":
            raise ModelSpecError(f"{where}: {folder} holds a {model_type!r} model (config.json model_type), not a "
                                 "CLIP (model_type 'clip', a CLIPModel.save_pretrained folder)")
        weights = next((folder / w for w in _HF_WEIGHTS if (folder / w).is_file()), None)
        if weights is None:
            raise ModelSpecError(f"{where}: {folder} has no {' or '.join(_HF_WEIGHTS)}")
        return ResolvedModel(spec.name, f"hf:{folder.name}", folder, file_sha256(weights), spec.as_dict())
    if spec.kind != "open_clip":
        raise ModelSpecError(f"{where}: a {spec.kind} spec expands into models in the benchmark study")
    try:
        arch = check_model(spec.arch or "")
    except UnknownModelError as exc:
        raise UnknownModelError(f"{where}: {exc}") from None
    if spec.weights is not None:
        if not spec.weights.is_file():
            raise ModelSpecError(f"{where}: weights file not found: {spec.weights}")
        epoch = CHECKPOINT_NAME.fullmatch(spec.weights.name)
        return ResolvedModel(spec.name, arch, spec.weights, file_sha256(spec.weights), spec.as_dict(),
                             epoch=int(epoch[1]) if epoch else None)
    if spec.pretrained == "none":
        return ResolvedModel(spec.name, arch, None, random_weights_id(arch), spec.as_dict())
    path, config = pretrained_file(arch, spec.pretrained or "", spec.cache_dir, where)
    return ResolvedModel(spec.name, arch, path, file_sha256(path), spec.as_dict(),
                         quick_gelu=bool(config.get("quick_gelu")),
                         mean_std=(tuple(config.get("mean", CLIP_MEAN)), tuple(config.get("std", CLIP_STD))))


def _hf_model_type(config: Path) -> str:
    """``model_type`` of a transformers ``config.json`` (``"unreadable"`` when it is not a JSON object)."""
    try:
        record = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unreadable"
    return str(record.get("model_type", "unnamed")) if isinstance(record, dict) else "unreadable"


def pretrained_file(arch: str, tag: str, cache_dir: Path | None, where: str = "model") -> tuple[Path, dict[str, Any]]:
    """(local file, open_clip's pretrained config) of open_clip tag ``tag`` of ``arch``, looked up in
    ``cache_dir`` (default :data:`OPEN_CLIP_CACHE`) the way open_clip stores it: a Hugging Face hub cache entry
    (safetensors first) or the file of the tag's URL; never downloaded. Raises :class:`ModelSpecError` naming
    the tags of ``arch`` or the cache folder searched and how to fill it."""
    import open_clip

    config = open_clip.get_pretrained_cfg(arch, tag)
    if not config:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ModelSpecError(f"{where}: open_clip has no pretrained tag {tag!r} for {arch}; its tags: "
                             f"{', '.join(tags) or 'none'} (or give weights: <local file>, or pretrained: none)")
    cache = (cache_dir or OPEN_CLIP_CACHE).expanduser()
    candidates: list[Path] = []
    if config.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = config["hf_hub"].rstrip("/"), None
        if not config["hf_hub"].endswith("/"):
            repo, filename = config["hf_hub"].rsplit("/", 1)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=cache)
            if isinstance(found, str):
                return Path(found), config
            candidates.append(cache / f"models--{repo.replace('/', '--')}" / name)
    if config.get("url"):
        candidates.append(cache / Path(config["url"]).name)
        if candidates[-1].is_file():
            return candidates[-1], config
    raise ModelSpecError(
        f"{where}: open_clip's {arch} {tag!r} weights are not in the local cache {cache} (looked for "
        f"{', '.join(str(c) for c in candidates)}). Nothing is downloaded at run time: on a machine with internet "
        f"run `python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{tag}', "
        f"cache_dir='{cache}')\"` and copy {cache}, or give weights: <local file>.")


def _load_pretrained(model: ResolvedModel, device: str | torch.device, precision: Precision) -> tuple[Any, Any, Any]:
    """An open_clip pretrained tag's model from its local file, with the tag's QuickGELU and image mean/std."""
    import open_clip

    mean, std = model.mean_std
    with _quiet_random_init():
        clip, _, preprocess = open_clip.create_model_and_transforms(
            model.arch, pretrained=str(model.path), force_quick_gelu=model.quick_gelu, image_mean=mean,
            image_std=std, device="cpu")
    return _placed(clip, device, precision), preprocess, open_clip.get_tokenizer(model.arch)


class HFCLIP(torch.nn.Module):
    """A transformers ``CLIPModel`` with open_clip's interface: ``encode_image(pixel_values)`` and
    ``encode_text(input_ids)`` return the projected features (``get_image_features`` /
    ``get_text_features``), unnormalised like open_clip's."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    @staticmethod
    def _tensor(out: Any) -> torch.Tensor:
        """transformers < 5 returns the features, 5.x an output whose ``pooler_output`` holds them."""
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self._tensor(self.model.get_image_features(pixel_values=pixel_values))

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self._tensor(self.model.get_text_features(input_ids=input_ids))


class HFTokenizer:
    """Texts → ``(N, context)`` int64 input ids: the folder's own tokenizer when it has one (padded to the
    context length, truncated), else open_clip's (the same BPE and special tokens as OpenAI's CLIP)."""

    def __init__(self, folder: Path, context_length: int):
        import open_clip

        self.context_length = context_length
        self.tokenizer: Any = None
        self.fallback: Any = None
        if (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file():
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            self.fallback = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)

    def __call__(self, texts: list[str]) -> torch.Tensor:
        if self.fallback is not None:
            return self.fallback(list(texts))
        return self.tokenizer(list(texts), padding="max_length", max_length=self.context_length, truncation=True,
                              return_tensors="pt")["input_ids"]


def _quiet_hf_load(model_class: Any, folder: Path) -> Any:
    """``model_class.from_pretrained(folder)`` without transformers' console output (its load report table and
    progress bar): weights the checkpoint lacks or has in excess are one warning line naming the folder, the full
    lists go to the debug log."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = model_class.from_pretrained(folder, output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    missing, unexpected = sorted(info.get("missing_keys") or []), sorted(info.get("unexpected_keys") or [])
    if missing or unexpected:
        log.warning("%s: %d weight(s) missing from the checkpoint (initialised randomly, e.g. %s), %d unexpected",
                    folder, len(missing), ", ".join(missing[:3]) or "none", len(unexpected))
        log.debug("%s: missing %s; unexpected %s", folder, missing, unexpected)
    return model


def load_hf_clip(folder: Path, device: str | torch.device = "auto",
                 precision: Precision = "auto") -> tuple[HFCLIP, Any, HFTokenizer]:
    """``(model, preprocess, tokenizer)`` of a transformers ``CLIPModel`` folder: the model in eval mode on
    ``device`` (cast for ``fp16``/``bf16``), open_clip's evaluation transform at the vision config's image size
    with the folder's ``preprocessor_config.json`` mean/std (else OpenAI's), :class:`HFTokenizer`."""
    import open_clip
    from transformers import CLIPModel

    model = _quiet_hf_load(CLIPModel, folder).eval()
    mean, std = CLIP_MEAN, CLIP_STD
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        config = json.loads(processor.read_text(encoding="utf-8"))
        mean, std = tuple(config.get("image_mean", mean)), tuple(config.get("image_std", std))
    preprocess = open_clip.image_transform(model.config.vision_config.image_size, is_train=False, mean=mean, std=std)
    tokenizer = HFTokenizer(folder, model.config.text_config.max_position_embeddings)
    return _placed(HFCLIP(model), device, precision), preprocess, tokenizer
