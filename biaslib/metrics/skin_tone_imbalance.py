"""HEIM's skin-tone imbalance of generated images (Lee et al. 2023, "Holistic Evaluation of Text-to-Image Models",
``skin_tone_imbalance``): per prompt, how far the shares of its images in the 10 Monk Skin Tone (MST) bins are from
a tenth each, and their mean over prompts.

For one prompt with N images, n_k of them with MST bin k (1…10) and the rest with no skin tone found (bin 0 here):
imbalance = Σ_k |n_k / N − 1/10| / 10. Images without a tone count in N (they lower every share), as HEIM counts
them. 0 means a tenth in every bin; a prompt whose images all share one bin scores 0.18.

Where biaslib adds to HEIM: even a generator that draws every bin with probability 1/10 scores above 0 with N images
per prompt (the shares scatter around 1/10), so :func:`imbalance_floor` gives that chance floor exactly, and
:func:`mean_imbalance` an interval over prompts. HEIM finds the bin by the DallEval skin-pixel rule and the nearest
MST swatch in RGB; biaslib's :func:`biaslib.faces.skin.monk_bin` bins the ITA angle instead: the measure takes the
bins as given, whatever found them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from biaslib.metrics.estimate import Estimate
from biaslib.metrics.intervals import bootstrap_means, percentile_interval

#: Monk Skin Tone bins (1…10); 0 stands for an image whose skin tone was not found.
BINS = 10


def skin_tone_imbalance(tones: Sequence[int] | np.ndarray) -> float:
    """HEIM's imbalance of one prompt's images from their MST bins (1…10; 0 = no tone found, still counted in N).

    >>> skin_tone_imbalance([1] * 10), skin_tone_imbalance(list(range(1, 11))), skin_tone_imbalance([1] * 5 + [0] * 5)
    (0.18, 0.0, 0.13)
    """
    tones = np.asarray(tones, dtype=np.int64)
    if tones.ndim != 1 or not len(tones):
        raise ValueError(f"need the bins of one prompt's images (N,), N >= 1; got shape {tones.shape}")
    if tones.min() < 0 or tones.max() > BINS:
        raise ValueError(f"MST bins are 1…{BINS} (0: no tone found); got values outside, e.g. {tones.max()}")
    shares = np.bincount(tones, minlength=BINS + 1)[1:] / len(tones)
    return round(float(np.abs(shares - 1 / BINS).sum() / BINS), 12)


def imbalance_floor(images: int, found: float = 1.0) -> float:
    """The expected imbalance of a prompt with ``images`` images from a generator whose every image has its tone
    found with probability ``found`` and then falls in each bin with probability 1/10: Σ_k E|n_k/N − 1/10| / 10 =
    E|n/N − 1/10| with n ~ Binomial(N, found/10), exactly.

    >>> round(imbalance_floor(10), 4), imbalance_floor(10**6) < 0.001
    (0.0697, True)
    """
    from scipy.stats import binom

    if images < 1 or not 0 <= found <= 1:
        raise ValueError(f"need images >= 1 and 0 <= found <= 1, got {images} and {found}")
    counts = np.arange(images + 1)
    return float((binom.pmf(counts, images, found / BINS) * np.abs(counts / images - 1 / BINS)).sum())


def mean_imbalance(frame: pd.DataFrame, *, prompt: str = "prompt", tone: str = "tone", n_boot: int = 1000,
                   ci: float = 0.95, seed: int = 0) -> Estimate:
    """HEIM's score of a set of prompts: the mean over prompts of :func:`skin_tone_imbalance` (``frame``: one row per
    image with its ``prompt`` and MST ``tone``), with a percentile-bootstrap interval over prompts and the chance
    floor at the mean number of images per prompt and the share of images whose tone was found
    (:func:`imbalance_floor`). Returns an :class:`~biaslib.metrics.estimate.Estimate` (``value``, ``ci_low``,
    ``ci_high``; no test: ``p_value`` NaN) with details ``floor``, ``prompts``, ``images``.

    >>> frame = pd.DataFrame({"prompt": ["a"] * 10 + ["b"] * 10, "tone": [1] * 10 + list(range(1, 11))})
    >>> mean_imbalance(frame, n_boot=0).value
    0.09
    """
    if frame.empty:
        raise ValueError("no images")
    per_prompt = frame.groupby(prompt, sort=False)[tone].apply(skin_tone_imbalance).to_numpy(dtype=np.float64)
    low = high = float("nan")
    if n_boot:
        low, high = percentile_interval(bootstrap_means(per_prompt, n_boot=n_boot, rng=np.random.default_rng(seed)), ci)
    sizes = frame.groupby(prompt, sort=False).size()
    found = float((frame[tone].to_numpy() > 0).mean())
    return Estimate(round(float(per_prompt.mean()), 12), low, high, ci=ci, details={
        "floor": imbalance_floor(int(round(sizes.mean())), found), "prompts": len(per_prompt), "images": len(frame)})


__all__ = ["BINS", "imbalance_floor", "mean_imbalance", "skin_tone_imbalance"]
