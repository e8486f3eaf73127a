"""open_clip_train's webdataset loader with every random source drawn from the run's seed.

``open_clip_train.data.get_wds_dataset`` shuffles shards with a seeded stage (``detshuffle2``: ``--seed`` +
epoch) but samples with ``wds.shuffle(bufsize, initial)``, which gets no random generator: webdataset then
seeds it from the process id and the clock, so two runs with the same ``--seed`` see different batches (measured
here: two 2-epoch trainings of the tiny CLIP on 1,200 samples ended with weights up to 0.55 apart).
:func:`seeded_webdataset` wraps ``get_wds_dataset`` for the length of one training run and replaces that stage
by :class:`SeededSampleShuffle`, which, at the start of each pass over the data,

* seeds its buffer shuffle from ``(seed, epoch, rank, worker, pass)`` and
* seeds the process's torch, numpy and ``random`` generators from the same numbers, so the augmentation that
  runs downstream in the same process (open_clip's ``RandomResizedCrop``, in the DataLoader worker or, with
  ``--workers 0``, in the trainer) depends on nothing else either.

Model initialisation is seeded by open_clip_train itself (``random_seed(args.seed, …)`` before the model is
built). With these, two runs with the same settings and seed on one machine write identical checkpoints, and a
resumed run continues exactly where the uninterrupted run would have been (the epoch, not the history of the
process, fixes the data order). The trainer's loop is not changed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
from webdataset.filters import FilterFunction, _shuffle
from webdataset.pipeline import DataPipeline, PipelineStage
from webdataset.utils import pytorch_worker_info

#: Stream name mixed into every derived seed, so these seeds differ from other uses of the run's seed.
_STREAM = 0x0C11_5EED


def pass_seed(seed: int, epoch: int, rank: int, worker: int, passes: int) -> int:
    """A 63-bit seed for one pass of one data worker: a :class:`numpy.random.SeedSequence` of the five numbers
    (different for every argument, the same on every machine)."""
    state = np.random.SeedSequence([_STREAM, int(seed) & (2**63 - 1), epoch, rank, worker, passes]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & (2**63 - 1)


def seed_process(seed: int) -> None:
    """Seed this process's torch, numpy and ``random`` generators (what open_clip's augmentation draws from)."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class SeededSampleShuffle(PipelineStage):
    """webdataset's buffer shuffle (same buffer and start-up sizes) with its generator, and the process's,
    seeded per pass (module docstring). ``epoch`` is open_clip_train's ``SharedEpoch`` of the same loader, which
    the trainer sets before each epoch; ``run`` is called once per pass over the data in each worker process.
    """

    def __init__(self, bufsize: int, initial: int, seed: int, epoch: Any) -> None:
        self.bufsize, self.initial, self.seed, self.epoch = bufsize, initial, seed, epoch
        self._epoch, self._passes = -1, 0

    def run(self, src: Iterator[Any]) -> Iterator[Any]:
        epoch = int(self.epoch.get_value())
        if epoch != self._epoch:
            self._epoch, self._passes = epoch, 0
        rank, _, worker, _ = pytorch_worker_info()
        seed = pass_seed(self.seed, epoch, rank, worker, self._passes)
        self._passes += 1
        seed_process(seed)
        return _shuffle(src, self.bufsize, self.initial, random.Random(seed))


def seed_sample_shuffle(info: Any, seed: int) -> int:
    """Replace the unseeded sample shuffle of an open_clip_train webdataset ``DataInfo`` (its loader not yet
    iterated) by :class:`SeededSampleShuffle`; returns how many stages were replaced (1 for a training loader)."""
    replaced = 0
    for pipeline in _pipelines(info.dataloader):
        for i, stage in enumerate(pipeline.pipeline):
            if isinstance(stage, FilterFunction) and stage.f is _shuffle:
                bufsize, initial = (list(stage.args) + [stage.kw.get("bufsize"), stage.kw.get("initial")])[:2]
                pipeline.pipeline[i] = SeededSampleShuffle(bufsize, initial, seed, info.shared_epoch)
                replaced += 1
    return replaced


def _pipelines(loader: Any) -> Iterator[DataPipeline]:
    """The webdataset pipelines inside a loader: ``wds.WebLoader`` is a pipeline whose first stage is a torch
    ``DataLoader`` over the sample pipeline (``.dataset``)."""
    if isinstance(loader, DataPipeline):
        yield loader
        for stage in loader.pipeline:
            yield from _pipelines(getattr(stage, "dataset", None))


@contextlib.contextmanager
def seeded_webdataset() -> Iterator[None]:
    """While open_clip_train runs in this process, every training loader it builds from webdataset shards gets
    :func:`seed_sample_shuffle` with the run's ``--seed``; raises ``RuntimeError`` if a training loader has no
    sample shuffle to replace (open_clip_train changed: the runs would not be reproducible)."""
    import open_clip_train.data as data

    original = data.get_wds_dataset

    def get_wds_dataset(args: Any, preprocess_img: Any, is_train: bool, *rest: Any, **kwargs: Any) -> Any:
        info = original(args, preprocess_img, is_train, *rest, **kwargs)
        if is_train and seed_sample_shuffle(info, args.seed) != 1:
            raise RuntimeError("open_clip_train's webdataset training loader has no sample shuffle stage to seed "
                               "(biaslib.seeded_loader): training would not be reproducible")
        return info

    data.get_wds_dataset = get_wds_dataset
    try:
        yield
    finally:
        data.get_wds_dataset = original
