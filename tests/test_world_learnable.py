"""The world's visual cues are learnable: a small CNN trained for a fixed number of epochs reads every
attribute from held-out renders."""

from __future__ import annotations

import pytest
import torch

from biaslib.world import World
from biaslib.world_models.classifier import HEADS, images_to_tensor, labels_to_tensor, train_attribute_classifier

#: Bars from the acceptance list (held-out accuracy).
BARS = {"gender": 0.95, "age_level": 0.90, "skin_tone": 0.90, "occupation": 0.90}
#: A fixed schedule (never a time budget: the verdict must not depend on the machine's speed or load).
#: Measured on an idle 2-core AVX2 machine (fp32, ≈ 26 s per epoch, 2026-12-02): 8 epochs reach occupation 0.901
#: (on the bar), 12 epochs gender 0.999, age 0.987, skin 0.974, occupation 0.933 (5 binomial SEs above its bar
#: at n = 1,500) in 316 s. The old test stopped after 115 s whatever the epoch: 4–5 epochs on this CPU, 0.80–0.84.
EPOCHS = 12


@pytest.mark.slow
def test_small_cnn_learns_every_attribute():
    """8,000 training and 1,500 held-out people, 64 px, batch 128, cosine schedule over EPOCHS epochs."""
    torch.set_num_threads(2)
    world = World(seed=0)
    train = world.people(8000, stream="learnability/train")
    val = world.people(1500, stream="learnability/val")
    x_train = images_to_tensor(world.render_many(train.to_dict("records")))
    x_val = images_to_tensor(world.render_many(val.to_dict("records")))
    _, report = train_attribute_classifier(
        x_train, labels_to_tensor(train, HEADS), x_val, labels_to_tensor(val, HEADS), max_epochs=EPOCHS, seed=0,
    )
    print(f"accuracy {report.accuracy} in {report.seconds:.0f} s, {report.epochs} epochs")  # reported, never asserted
    assert report.epochs == EPOCHS
    chance = {k: 1 / len(v) for k, v in HEADS.items()}
    for head, bar in BARS.items():
        assert report.accuracy[head] >= bar, (head, report.accuracy, chance)
