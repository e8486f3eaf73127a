"""Face detectors with one interface: a list of images in, one ``(k, 5)`` box array per image out.

Boxes are float32 ``x0, y0, x1, y1, score`` in pixels of the input image (``x1``/``y1``
exclusive), highest score first. Scores are not comparable across detectors.

* ``none``: every image is one face (inputs that are already face crops, such as FairFace chips or
  the world's face renders); score 1.
* ``haar``: OpenCV's frontal-face Haar cascade (``cv2.data``, ships with opencv-python-headless);
  score = the number of merged neighbour windows.
* ``hog``: dlib's HOG + linear SVM frontal detector (dlib-bin wheel; its weights are compiled in);
  score = SVM margin (dlib's default threshold 0).
* ``mtcnn``: the MTCNN cascade (:mod:`biaslib.faces.mtcnn`) with facenet-pytorch's weights; score =
  O-Net face probability. The only one that batches images through a network.

``haar`` and ``hog`` are CPU algorithms that take one image at a time; their ``detect`` simply loops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np

from biaslib.faces._images import ImageLike, as_rgb_list


class FaceDetector(Protocol):
    """Anything with a name and ``detect(images) -> list[(k_i, 5) float32]``."""

    name: str

    def detect(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """One ``(k_i, 5)`` array of ``x0, y0, x1, y1, score`` per image, best first."""
        ...


def _sorted(boxes: np.ndarray) -> np.ndarray:
    """``(k, 5)`` float32 boxes sorted by descending score (column 4)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 5)
    return boxes[np.argsort(-boxes[:, 4], kind="stable")]


class WholeImageDetector:
    """``none``: each image is one face box covering the whole image, score 1."""

    name = "none"

    def detect(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """One box ``[0, 0, W, H, 1]`` per image."""
        return [np.array([[0, 0, im.shape[1], im.shape[0], 1]], np.float32) for im in as_rgb_list(images)]


class HaarDetector:
    """OpenCV's ``haarcascade_frontalface_default.xml`` on the grey image.

    ``scale_factor`` and ``min_neighbors`` are OpenCV's ``detectMultiScale`` settings; faces smaller
    than ``min_size`` px are not searched.
    """

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24,
                 cascade: str = "haarcascade_frontalface_default.xml"):
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        if self.cascade.empty():
            raise FileNotFoundError(f"OpenCV cascade {cascade} not found in {cv2.data.haarcascades}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def _one(self, image: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, neighbours = self.cascade.detectMultiScale2(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        if len(rects) == 0:
            return np.zeros((0, 5), np.float32)
        rects = np.asarray(rects, np.float32)
        return _sorted(np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:], np.asarray(neighbours)]))

    def detect(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Boxes per image (see the module docstring)."""
        return [self._one(im) for im in as_rgb_list(images)]


class HogDetector:
    """dlib's ``get_frontal_face_detector`` (HOG features, linear SVM, 80 px window).

    ``upsample`` doubles the image that many times first (1 finds faces down to about 40 px);
    ``threshold`` is dlib's ``adjust_threshold`` (0 = dlib's default; higher is stricter).
    """

    name = "hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.0):
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.upsample, self.threshold = upsample, threshold

    def _one(self, image: np.ndarray) -> np.ndarray:
        rects, scores, _ = self.detector.run(image, self.upsample, self.threshold)
        rows = [(r.left(), r.top(), r.right() + 1, r.bottom() + 1, s) for r, s in zip(rects, scores)]
        return _sorted(np.array(rows, np.float32))

    def detect(self, images: Sequence[ImageLike]) -> list[np.ndarray]:
        """Boxes per image (see the module docstring)."""
        return [self._one(im) for im in as_rgb_list(images)]


def _mtcnn(**kwargs) -> FaceDetector:
    from biaslib.faces.mtcnn import MTCNNDetector

    return MTCNNDetector(**kwargs)


_DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "none": WholeImageDetector, "haar": HaarDetector, "hog": HogDetector, "mtcnn": _mtcnn,
}


def list_detectors() -> list[str]:
    """Names accepted by :func:`create_detector`."""
    return list(_DETECTORS)


def create_detector(name: str, **kwargs) -> FaceDetector:
    """Detector ``name`` (one of :func:`list_detectors`) built with its keyword settings."""
    if name not in _DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {list_detectors()}")
    return _DETECTORS[name](**kwargs)


def detect_faces(images: Sequence[ImageLike], detector: FaceDetector | str = "mtcnn",
                 batch_size: int = 32) -> list[np.ndarray]:
    """Boxes ``(k_i, 5)`` per image, running ``detector`` on ``batch_size`` images at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    det = create_detector(detector) if isinstance(detector, str) else detector
    out: list[np.ndarray] = []
    for start in range(0, len(images), batch_size):
        out += det.detect(images[start:start + batch_size])
    return out
