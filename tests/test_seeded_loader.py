"""biaslib.seeded_loader: the sample shuffle of open_clip_train's webdataset loader, seeded from (seed, epoch, rank,
worker, pass), on open_clip_train's own loader (trainings that use it: test_train)."""

from __future__ import annotations

import random
import types

import torch

from biaslib.seeded_loader import SeededSampleShuffle, pass_seed, seed_sample_shuffle, seeded_webdataset


class _Epoch:
    def __init__(self, value: int = 0) -> None:
        self.value = value

    def get_value(self) -> int:
        return self.value


def _order(stage: SeededSampleShuffle, n: int = 200) -> list[int]:
    return list(stage.run(iter(range(n))))


def test_seeds_differ_in_every_argument_and_repeat_exactly():
    seeds = {pass_seed(s, e, r, w, p) for s in (0, 1) for e in (0, 1) for r in (0, 1) for w in (0, 1) for p in (0, 1)}
    assert len(seeds) == 32 and all(0 <= s < 2**63 for s in seeds)
    assert pass_seed(3, 1, 0, 0, 0) == pass_seed(3, 1, 0, 0, 0)


def test_order_follows_seed_and_epoch_and_a_new_epoch_restarts_the_pass_count():
    epoch = _Epoch()
    stage, twin = SeededSampleShuffle(100, 10, 7, epoch), SeededSampleShuffle(100, 10, 7, epoch)
    first = _order(stage)
    assert sorted(first) == list(range(200)) and first != list(range(200))
    assert first == _order(twin)  # same seed and epoch: same order
    second_pass = _order(stage)  # the same epoch read again (webdataset's with_epoch repeats the pipeline)
    assert second_pass != first
    epoch.value = 1
    assert _order(stage) not in (first, second_pass)
    fresh = SeededSampleShuffle(100, 10, 7, epoch)  # e.g. a resumed run that starts at epoch 1
    assert _order(fresh) == _order(SeededSampleShuffle(100, 10, 7, _Epoch(1)))
    assert _order(SeededSampleShuffle(100, 10, 8, _Epoch(0))) != first  # another seed


def test_augmentation_generators_of_the_process_follow_the_pass():
    stage = SeededSampleShuffle(10, 2, 5, _Epoch(3))
    _order(stage, 5)
    draws = (torch.rand(3).tolist(), random.random())
    _order(SeededSampleShuffle(10, 2, 5, _Epoch(3)), 5)
    assert (torch.rand(3).tolist(), random.random()) == draws


def test_open_clip_train_loader_gets_the_seeded_shuffle(tmp_path):
    """The real ``get_wds_dataset`` through the context manager: the one sample shuffle is replaced, the shard
    shuffle (already seeded by open_clip) is kept, and the function is restored afterwards."""
    import open_clip_train.data as data
    from webdataset.filters import FilterFunction, _shuffle

    from biaslib.world import World
    from biaslib.world.export import export_cc3m

    export_cc3m(World(seed=0), tmp_path, 40, shard_size=20)
    args = types.SimpleNamespace(train_data=f"{tmp_path}/{{00000..00001}}.tar", train_num_samples=40,
                                 dataset_resampled=False, train_data_upsampling_factors=None, seed=3, workers=0,
                                 world_size=1, batch_size=10)
    original = data.get_wds_dataset
    with seeded_webdataset():
        info, twin = (data.get_wds_dataset(args, lambda image: torch.zeros(1), True, tokenizer=lambda t: [t])
                      for _ in range(2))
    assert data.get_wds_dataset is original
    stages = info.dataloader.pipeline[0].dataset.pipeline
    assert sum(isinstance(s, SeededSampleShuffle) for s in stages) == 1
    assert not any(isinstance(s, FilterFunction) and s.f is _shuffle for s in stages)
    assert seed_sample_shuffle(info, 3) == 0  # nothing left to replace
    first = [text for _, texts in info.dataloader for text in texts]
    assert len(first) == 40 and first != sorted(first)
    assert [text for _, texts in twin.dataloader for text in texts] == first  # a second run: the same batches
    unseeded = [[text for _, texts in data.get_wds_dataset(args, lambda image: torch.zeros(1), True,
                                                             tokenizer=lambda t: [t]).dataloader for text in texts]
                for _ in range(2)]
    assert unseeded[0] != unseeded[1]  # open_clip_train alone: its sample shuffle is seeded from pid and clock
