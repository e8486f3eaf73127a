"""Does a world generator show what its prompt asks? biaslib.world_models.fidelity against planted generators,
and the tiny diffusion pipeline after a short real training run."""

from __future__ import annotations

import numpy as np
import pytest

from biaslib.metrics.intervals import wilson_interval
from biaslib.world import World
from biaslib.world.attributes import occupations
from biaslib.world.simulator import SimulatedGenerator
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline
from biaslib.world_models.classifier import HEADS, world_classifier
from biaslib.world_models.fidelity import (
    STATED_PROMPTS,
    occupation_fidelity,
    sample_images,
    stated_attribute_accuracy,
)
from biaslib.world_models.tiny_pipeline_training import train_world_pipeline

CHANCE = 1 / len(HEADS["occupation"])


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


@pytest.fixture(scope="module")
def classifier(world, tmp_path_factory):
    """A classifier trained briefly on clean renders (the simulator's output is clean renders too)."""
    model, record = world_classifier(world, tmp_path_factory.mktemp("cls"), n_train=3000, n_val=500, max_epochs=5)
    return model, record


class _IgnoresPrompt:
    """A generator that draws one fixed occupation whatever it is asked: fidelity must be ≈ 1/occupations."""

    def __init__(self, world: World):
        self.simulator = SimulatedGenerator(world)

    def __call__(self, prompts, generator=None, **kwargs):
        return self.simulator(["a photo of a firefighter"] * len(prompts), generator=generator)


def test_wilson_interval_closed_form():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    low, high = wilson_interval(0, 20)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.1611, abs=1e-4)


def test_sampling_is_per_image_seeded(world):
    simulator = SimulatedGenerator(world)
    prompts = ["a photo of a nurse", "a photo of a pilot", "a photo of a chef"]
    one = sample_images(simulator, prompts, seed=7, batch_size=1)
    three = sample_images(simulator, prompts, seed=7, batch_size=3)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(one, three))


def test_faithful_generator_is_read_as_prompted_and_a_deaf_one_is_not(world, classifier):
    model, record = classifier
    chosen = occupations()[::5]  # 8 occupations
    faithful = occupation_fidelity(SimulatedGenerator(world), model, chosen, per_occupation=12)
    deaf = occupation_fidelity(_IgnoresPrompt(world), model, chosen, per_occupation=12)
    assert len(faithful) == len(deaf) == 96 and set(faithful["prompted"]) == set(chosen)
    # the faithful simulator is read about as well as held-out renders; the deaf one only on its own occupation
    assert faithful["correct"].mean() >= 0.8 * record["accuracy"]["occupation"] > 10 * CHANCE
    assert deaf["correct"].mean() <= 2 / len(chosen)
    assert (deaf["predicted"] == "firefighter").mean() >= 0.5


def test_stated_attribute_accuracy_of_a_faithful_generator(world, classifier):
    model, record = classifier
    table = stated_attribute_accuracy(SimulatedGenerator(world), model, per_prompt=6)
    stated = {attr: sum(v[i] is not None for v in STATED_PROMPTS.values()) * 6
              for i, attr in enumerate(("gender", "age_level", "skin"))}
    assert table["n"].to_dict() == stated
    assert table.loc["gender", "accuracy"] >= 0.9
    assert (table["ci_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_high"]).all()


@pytest.mark.slow
def test_tiny_pipeline_on_the_world_clip_follows_its_prompts(world, world_clip, tmp_path_factory):
    """The tiny diffusion pipeline, its text encoder the frozen text tower of the session's world CLIP,
    trained for 300 updates of 32 (9,600 images, ≈ 6 minutes on 2 cores): samples of "a photo of a
    <occupation>" for 20 occupations (8 each) are classified as prompted well above chance.

    Measured in CI (2026-12-01): occupation 0.150 (chance 1/41 = 0.024; the 12-minute bench pipeline on the
    demo's CLIP: 0.140; the jointly trained encoder: 0.019). Bar 3× chance = 0.073: the measured value is
    ≈ 2.7 standard errors (n = 160) above it, and a pipeline that ignores its text (≈ chance) is ≈ 4 below.
    The classifier's accuracy on prompts that state gender, age or skin is measured and printed (0.66 for
    gender here) but not barred: with 56 images per attribute its run-to-run spread (CPU training is not
    bitwise deterministic) is as large as its distance from a coin flip.
    """
    out = train_world_pipeline(world, tmp_path_factory.mktemp("tiny_clip") / "pipe", n_images=9600, max_steps=300,
                               text_encoder=world_clip, progress=False)
    pipe = WorldDiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    model, record = world_classifier(world, tmp_path_factory.mktemp("cls32"), n_train=3000, n_val=500, max_epochs=5,
                                     through_resolution=32)
    fidelity = occupation_fidelity(pipe, model, occupations()[::2], per_occupation=8)
    stated = stated_attribute_accuracy(pipe, model, per_prompt=4)
    accuracy = fidelity["correct"].mean()
    print(f"occupation fidelity {accuracy:.3f} (chance {CHANCE:.3f}); stated accuracy {stated['accuracy'].to_dict()}; "
          f"classifier on degraded renders {record['accuracy']}")
    assert len(fidelity) == 160 and stated.loc["gender", "n"] == 4 * len(STATED_PROMPTS)
    assert accuracy >= 3 * CHANCE, (accuracy, record)
