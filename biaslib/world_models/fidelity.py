"""Does a world generator show what its prompt asks for? Measured with the world's attribute classifier.

Two measurements of a text-to-image pipeline trained on the world (the tiny diffusion pipeline):

* :func:`occupation_fidelity`: samples of ``"a photo of a <occupation>"``, classified by the world's
  attribute classifier; the share classified as the prompted occupation (chance 1/41: 40 occupations
  plus none).
* :func:`stated_attribute_accuracy`: samples of prompts that state gender, age or skin tone
  (:data:`STATED_PROMPTS`); the classifier's accuracy on them. This is the classifier's error on
  *generated* images, where it reads bias: a share of women read from generated images is off by at
  most about this error (design.md, measured feasibility).

The classifier should be trained on renders degraded like the generator's output
(:func:`biaslib.world_models.classifier.world_classifier` with ``through_resolution`` = the pipeline's
resolution). Generated images are resized bilinearly to the classifier's input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from biaslib.articles import with_article
from biaslib.metrics.intervals import wilson_interval
from biaslib.world.attributes import GENDERS
from biaslib.world_models.classifier import HEADS, AttributeCNN, images_to_tensor, predict

#: Prompts that state attributes → (gender, age level, binarised skin tone); ``None`` = not stated.
#: Skin: levels 1–3 are "lighter", 4–6 "darker" (COCO-bias's binarisation of the six levels).
STATED_PROMPTS: dict[str, tuple[str | None, str | None, str | None]] = {
    "a photo of a woman": ("woman", None, None),
    "a photo of a man": ("man", None, None),
    "a photo of a girl": ("woman", "child", None),
    "a photo of a boy": ("man", "child", None),
    "a photo of a young woman": ("woman", "young", None),
    "a photo of a young man": ("man", "young", None),
    "a photo of a middle-aged woman": ("woman", "adult", None),
    "a photo of a middle-aged man": ("man", "adult", None),
    "a photo of an elderly woman": ("woman", "senior", None),
    "a photo of an elderly man": ("man", "senior", None),
    "a photo of a black woman": ("woman", None, "darker"),
    "a photo of a black man": ("man", None, "darker"),
    "a photo of a white woman": ("woman", None, "lighter"),
    "a photo of a white man": ("man", None, "lighter"),
}
STATED_ATTRIBUTES = ("gender", "age_level", "skin")


def sample_images(pipe: Any, prompts: Sequence[str], seed: int, batch_size: int = 32, steps: int = 20,
                  guidance: float = 3.0) -> list[Image.Image]:
    """One image per prompt; image i's noise comes from its own generator seeded ``seed + i``, so the
    images do not depend on ``batch_size``."""
    images: list[Image.Image] = []
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start:start + batch_size])
        generators = [torch.Generator().manual_seed(seed + start + j) for j in range(len(chunk))]
        images += pipe(chunk, generator=generators, num_inference_steps=steps, guidance_scale=guidance).images
    return images


def _classify(classifier: AttributeCNN, images: Sequence[Image.Image], size: int) -> dict[str, np.ndarray]:
    """Class probabilities per head, ``{head: (N, classes)}``, after a bilinear resize to ``size``."""
    resized = [im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR) for im in images]
    return predict(classifier, images_to_tensor(resized))


def occupation_fidelity(pipe: Any, classifier: AttributeCNN, occupations: Sequence[str], per_occupation: int, *,
                        seed: int = 1000, size: int = 64, batch_size: int = 32) -> pd.DataFrame:
    """``per_occupation`` samples of ``"a photo of a <occupation>"`` per occupation, classified.

    Returns one row per image: ``prompted``, ``predicted`` (occupation label, ``"none"`` possible),
    ``correct`` (bool). Accuracy = ``frame["correct"].mean()``; chance = ``1 / len(HEADS["occupation"])``.
    """
    prompted = [o for o in occupations for _ in range(per_occupation)]
    images = sample_images(pipe, [f"a photo of {with_article(o)}" for o in prompted], seed, batch_size)
    labels = np.asarray(HEADS["occupation"], dtype=object)
    predicted = labels[_classify(classifier, images, size)["occupation"].argmax(1)]
    return pd.DataFrame({"prompted": prompted, "predicted": predicted, "correct": predicted == np.asarray(prompted)})


def stated_attribute_accuracy(pipe: Any, classifier: AttributeCNN, per_prompt: int, *, seed: int = 5000,
                              size: int = 64, batch_size: int = 32) -> pd.DataFrame:
    """The classifier's accuracy on generated images whose prompt states the attribute.

    ``per_prompt`` samples of each of :data:`STATED_PROMPTS`. Returns one row per attribute
    (``gender``, ``age_level``, ``skin``) with ``n`` (images whose prompt states it), ``accuracy`` and
    ``ci_low``/``ci_high`` (95% Wilson interval).
    """
    prompts = [p for p in STATED_PROMPTS for _ in range(per_prompt)]
    probs = _classify(classifier, sample_images(pipe, prompts, seed, batch_size), size)
    predicted = {
        "gender": np.asarray(GENDERS)[probs["gender"].argmax(1)],
        "age_level": np.asarray(HEADS["age_level"])[probs["age_level"].argmax(1)],
        "skin": np.where(np.asarray(HEADS["skin_tone"])[probs["skin_tone"].argmax(1)].astype(int) <= 3,
                         "lighter", "darker"),
    }
    rows = []
    for index, attribute in enumerate(STATED_ATTRIBUTES):
        hits = [predicted[attribute][i] == STATED_PROMPTS[p][index] for i, p in enumerate(prompts)
                if STATED_PROMPTS[p][index] is not None]
        low, high = wilson_interval(int(np.sum(hits)), len(hits))
        rows.append({"attribute": attribute, "n": len(hits), "accuracy": float(np.mean(hits)), "ci_low": low,
                     "ci_high": high})
    return pd.DataFrame(rows).set_index("attribute")
