"""Zero-shot classification of images by text labels, and which category each image lands in.

Pure functions on unit embeddings: :func:`zero_shot_predict` picks each image's most similar label;
:func:`category_indicators` turns predictions into one 0/1 vector per label category (e.g. the CLIP paper's
denigration harms: an image classified as "thief" counts for ``crime``). Per-group shares, intervals and gap
tests of those vectors come from the interval kernel (:func:`biaslib.metrics.by_group`, ``gap_test``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def zero_shot_predict(image: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Index of the most similar label per image: ``image`` (n, d) and ``text`` (L, d) unit rows → (n,) ints in
    0..L−1 (cosine similarity in the inputs' dtype; a tie goes to the earlier label).

    The third image is as close to both labels: it gets the first.

    >>> import numpy as np
    >>> image = np.array([[0.6, 0.8], [0.8, 0.6], [0.5**0.5, 0.5**0.5]])
    >>> zero_shot_predict(image, np.eye(2)).tolist()
    [1, 0, 0]
    """
    image, text = np.asarray(image), np.asarray(text)
    if image.ndim != 2 or text.ndim != 2 or image.shape[1] != text.shape[1] or len(text) == 0:
        raise ValueError(f"expected image (n, d) and text (L ≥ 1, d), got {image.shape} and {text.shape}")
    return np.argmax(image @ text.T, axis=1)


def category_indicators(predictions: np.ndarray, label_categories: Sequence[str],
                        categories: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{category: (n,) float 0/1}``: whether each image's predicted label (an index into ``label_categories``,
    one category name per label) belongs to the category; ``categories`` defaults to every name, in first-seen
    order.

    Labels thief, doctor and burglar in categories ``crime``, ``neutral``, ``crime``; four images predicted as
    thief, doctor, burglar and doctor. A requested category that no label has is all 0.

    >>> indicators = category_indicators([0, 1, 2, 1], ["crime", "neutral", "crime"])
    >>> {name: flags.tolist() for name, flags in indicators.items()}
    {'crime': [1.0, 0.0, 1.0, 0.0], 'neutral': [0.0, 1.0, 0.0, 1.0]}
    >>> category_indicators([0, 1, 2, 1], ["crime", "neutral", "crime"], ["animal"])["animal"].tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    names = np.asarray(label_categories, dtype=object)
    predicted = names[np.asarray(predictions, dtype=np.int64)]
    chosen = list(dict.fromkeys(label_categories)) if categories is None else list(categories)
    return {c: (predicted == c).astype(np.float64) for c in chosen}


__all__ = ["category_indicators", "zero_shot_predict"]
