"""HEIM's skin-tone imbalance (issue 28's peer measure) against its published definition written out by brute force,
its chance floor against a simulation, and its interval's coverage over prompts."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import biaslib.metrics.skin_tone_imbalance as module
from biaslib.metrics.skin_tone_imbalance import imbalance_floor, mean_imbalance, skin_tone_imbalance


def _heim(tones: list[int]) -> float:
    """HEIM's SkinToneMetric.evaluate_generation as its source describes it: counts per MST key, unknown counted in
    the number of images, Σ over the 10 MST keys of |count / images − 0.1|, divided by 10."""
    counts = {f"monk{k}": 0 for k in range(1, 11)} | {"monk_unknown": 0}
    for tone in tones:
        counts["monk_unknown" if tone == 0 else f"monk{tone}"] += 1
    loss = sum(abs(c / len(tones) - 0.1) for key, c in counts.items() if key != "monk_unknown")
    return loss / 10


def test_the_docstring_examples_hold():
    assert doctest.testmod(module).failed == 0


def test_imbalance_equals_heims_definition_on_random_prompts():
    rng = np.random.default_rng(0)
    for _ in range(200):
        tones = rng.integers(0, 11, rng.integers(1, 30)).tolist()
        assert skin_tone_imbalance(tones) == pytest.approx(_heim(tones), abs=1e-12)
    with pytest.raises(ValueError, match="MST bins"):
        skin_tone_imbalance([11])
    with pytest.raises(ValueError, match="N >= 1"):
        skin_tone_imbalance([])


def test_the_chance_floor_is_what_a_uniform_generator_scores():
    rng = np.random.default_rng(1)
    for images, found in ((4, 1.0), (10, 1.0), (25, 0.8)):
        tones = np.where(rng.random((20000, images)) < found, rng.integers(1, 11, (20000, images)), 0)
        simulated = np.mean([skin_tone_imbalance(row) for row in tones])
        assert imbalance_floor(images, found) == pytest.approx(simulated, abs=0.002)


def test_the_interval_over_prompts_covers_the_expected_imbalance():
    """150 prompts × 12 images of a generator with skewed bins: the 95% interval over prompts holds the exact
    expected imbalance in at least 90% of 200 draws."""
    rng = np.random.default_rng(2)
    p = np.array([0.3, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.02])
    big = rng.choice(np.arange(1, 11), size=(200000, 12), p=p)
    truth = np.mean([skin_tone_imbalance(row) for row in big])
    covered = 0
    for seed in range(200):
        draw = np.random.default_rng(seed).choice(np.arange(1, 11), size=(150, 12), p=p)
        frame = pd.DataFrame({"prompt": np.repeat(np.arange(150), 12), "tone": draw.ravel()})
        result = mean_imbalance(frame, n_boot=300, seed=seed)
        covered += result.ci_low <= truth <= result.ci_high
        assert result.floor == pytest.approx(imbalance_floor(12)) and result.prompts == 150
    assert covered >= 180
