"""The world's attribute classifier as a gender labeller, and its confusion on images of known gender.

Both studies read generated images of the synthetic world with the world classifier
(:mod:`biaslib.world_models.classifier`); its errors are corrected with a :class:`~biaslib.metrics.correction.Confusion`
measured here on fresh world renders, degraded through the generator's output size
(:func:`render_confusion`), as :mod:`biaslib.metrics.correction` expects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from biaslib.metrics.correction import Confusion, estimate_confusion

#: Gender labels of the confusion (true and read), the counted label last.
GENDER_LABELS: tuple[str, str] = ("man", "woman")


def classify_gender(images: Sequence[Any], world: Any, cache_dir: str | os.PathLike,
                    resolution: int | None) -> list[str]:
    """The world classifier's gender label (``man``/``woman``) of each PIL image, the classifier trained
    through ``resolution`` px (None: full-resolution renders)."""
    from biaslib.world_models.classifier import classify_images, world_classifier

    model, _ = world_classifier(world, cache_dir, through_resolution=resolution)
    return list(classify_images(model, images, world.config.image_size)["gender"])


def through_resolution(images: Sequence[Any], world: Any) -> int | None:
    """The resolution the classifier should be trained through for these images (as
    :func:`biaslib.world_models.measure.generated_attributes`): their size when below the world's, else None."""
    native = min(min(im.size) for im in images)
    return native if native < world.config.image_size else None


def render_confusion(world: Any, cache_dir: str | os.PathLike, *, n: int = 1000, resolution: int | None = None,
                     seed_stream: str = "multilingual_eval/calibration") -> Confusion:
    """Confusion of the world classifier on ``n`` fresh world renders of known gender, degraded through
    ``resolution`` px like a generator working at it (``None``: full-resolution renders)."""
    import torch

    from biaslib.world_models.classifier import degrade, images_to_tensor

    people = world.people(n, stream=seed_stream)
    images = world.render_many(people.to_dict("records"))
    if resolution is not None:
        from PIL import Image

        tensor = degrade(images_to_tensor(images), resolution)
        arrays = (tensor.permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)).numpy()
        images = [Image.fromarray(a) for a in arrays]
    return estimate_confusion(list(people["gender"]), classify_gender(images, world, cache_dir, resolution),
                              GENDER_LABELS)


__all__ = ["GENDER_LABELS", "classify_gender", "render_confusion", "through_resolution"]
