"""The registry of evaluation datasets: how each is loaded from its folder, and which ``eval`` settings choose its
split.

A dataset is registered with :func:`register_dataset` (the built-in loaders of :mod:`biaslib.data` below). Its
folder is ``eval.<name>_root`` where that setting exists (the built-in ones), else ``<eval.data_root>/<name>``,
with ``data_root`` defaulting to ``<run_dir>/data`` (docs/development.md, "Add a dataset").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from biaslib.config import EvalConfig, Params
from biaslib.data import load_coco_bias, load_fairface, load_geode, load_phase
from biaslib.errors import DataLayoutError
from biaslib.layout import RunLayout


@dataclass(frozen=True)
class EvalDataset:
    """A dataset evaluations read: ``load(root, cfg)`` → its annotation table (one row per image, with a ``file``
    column of image paths; raises :class:`~biaslib.errors.DataLayoutError` naming the path and the layout it
    expects), and ``split_setting``, the ``eval`` key of its split (recorded with each result), if any."""

    name: str
    load: Callable[[Path, EvalConfig], pd.DataFrame]
    split_setting: str | None = None

    def split(self, cfg: EvalConfig) -> str | None:
        """The split ``cfg`` chooses (None for a dataset without splits)."""
        return None if self.split_setting is None else getattr(cfg, self.split_setting)


_DATASETS: dict[str, EvalDataset] = {}


def register_dataset(dataset: EvalDataset, *, replace: bool = False) -> EvalDataset:
    """Add ``dataset`` to the registry and return it; a second dataset of the same name is refused unless
    ``replace``."""
    if dataset.name in _DATASETS and not replace and _DATASETS[dataset.name] is not dataset:
        raise ValueError(f"a dataset named {dataset.name!r} is already registered")
    _DATASETS[dataset.name] = dataset
    return dataset


def get_dataset(name: str) -> EvalDataset:
    """The registered dataset ``name``; ``ValueError`` naming every registered one otherwise."""
    try:
        return _DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(_DATASETS)}") from None


def dataset_root(params: Params, dataset: str) -> Path:
    """Folder of ``dataset``: ``eval.<dataset>_root`` where set, else ``<eval.data_root>/<dataset>``, with
    ``data_root`` defaulting to ``<run_dir>/data``."""
    explicit = getattr(params.eval, f"{dataset}_root", None)
    if explicit is not None:
        return Path(explicit)
    base = params.eval.data_root if params.eval.data_root is not None else RunLayout(params).data
    return Path(base) / dataset


def load_dataset(params: Params, name: str) -> pd.DataFrame:
    """The annotation table of dataset ``name`` from its folder (:func:`dataset_root`); a
    :class:`~biaslib.errors.DataLayoutError` when it lists no images."""
    dataset = get_dataset(name)
    root = dataset_root(params, name)
    table = dataset.load(root, params.eval)
    if table.empty:
        split = dataset.split(params.eval)
        raise DataLayoutError(f"{name} at {root} lists no images{f' in split {split!r}' if split else ''}")
    return table


for _builtin in (EvalDataset("phase", lambda root, cfg: load_phase(root, cfg.phase_split), "phase_split"),
                 EvalDataset("coco_bias", lambda root, cfg: load_coco_bias(root, cfg.coco_bias_split),
                             "coco_bias_split"),
                 EvalDataset("fairface", lambda root, cfg: load_fairface(root, cfg.fairface_split, cfg.fairface_margin),
                             "fairface_split"),
                 EvalDataset("geode", lambda root, cfg: load_geode(root))):
    register_dataset(_builtin)
