"""What an evaluation runs on: the model to evaluate (:class:`Target`, its weights :class:`CheckpointInfo`) and
:class:`EvalContext`, which gives an evaluation's ``run`` the cached embeddings and the settings it needs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biaslib.config import EvalConfig, Params
from biaslib.errors import BiaslibError
from biaslib.evaluations.registry import get_evaluation
from biaslib.io import files_fingerprint, texts_fingerprint

if TYPE_CHECKING:
    from biaslib.features import Features, FeatureStore

log = logging.getLogger("biaslib.evaluate")


@dataclass(frozen=True)
class CheckpointInfo:
    """The weights a model is evaluated with: ``path`` (None: random weights), open_clip_train ``epoch`` (None
    for other weights), their ``sha256``, the ``model`` architecture and the ``run`` (or model) name."""

    path: Path | None
    epoch: int | None
    sha256: str
    model: str
    run: str


@dataclass(frozen=True)
class Target:
    """One model to evaluate and where its results go: the ``study`` and ``subject`` of its result files
    (:func:`biaslib.provenance.result_record`), its ``checkpoint``, ``load`` (device, precision) →
    (model, preprocess, tokenizer), the results ``folder`` and file ``stem`` (``<experiment>__<stem>``), and
    ``extra`` provenance records (e.g. the model spec)."""

    study: str
    subject: dict[str, Any]
    checkpoint: CheckpointInfo
    load: Callable[..., tuple[Any, Any, Any]]
    folder: Path
    stem: str
    extra: dict[str, Any] = field(default_factory=dict)

    def result_path(self, experiment: str, evaluation: str) -> Path:
        """``<folder>/<experiment>__<stem>__<evaluation>.json``."""
        return self.folder / f"{experiment}__{self.stem}__{evaluation}.json"



@dataclass
class EvalContext:
    """What one model's evaluations share — the params, the :class:`Target`, the feature store and the CLIP,
    loaded on first use — and what an evaluation asks of it: cached unit embeddings of images
    (:meth:`image_features`) and texts (:meth:`text_features`), its settings (:attr:`cfg`, :meth:`option`).
    ``evaluation`` is the evaluation being run; ``used`` and ``images`` collect the feature files and image
    embeddings it used (recorded in its result)."""

    params: Params
    target: Target
    progress: bool
    store: FeatureStore
    store_model: str
    used: dict[str, str] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    clip: tuple[Any, Any, Any] | None = None
    evaluation: str = ""

    @property
    def checkpoint(self) -> CheckpointInfo:
        return self.target.checkpoint

    @property
    def cfg(self) -> EvalConfig:
        return self.params.eval

    def option(self, key: str) -> Any:
        """The value of the running evaluation's own setting ``key``: ``eval.options.<evaluation>.<key>``, else the
        default it declares (:attr:`biaslib.evaluations.registry.Evaluation.options`)."""
        evaluation = get_evaluation(self.evaluation)
        if key not in evaluation.options:
            raise KeyError(f"evaluation {self.evaluation} declares no option {key!r} (it has "
                           f"{', '.join(evaluation.options)})")
        return evaluation.options_for(self.cfg)[key]

    def _model(self) -> tuple[Any, Any, Any]:
        """(model, preprocess, tokenizer) of the checkpoint, loaded on first use."""
        if self.clip is None:
            log.info("loading %s (%s)", self.checkpoint.path, self.checkpoint.model)
            self.clip = self.target.load(device=self.cfg.device, precision=self.cfg.precision)
        return self.clip

    def _cached(self, dataset: str, ids: list[str], compute: Callable[[], Features], source: str) -> np.ndarray:
        """Stored features of ``dataset`` when their ids equal ``ids`` (in order), their dtype is
        ``eval.feature_dtype`` and they were computed from the same inputs (``source``: a fingerprint of the
        image files or the texts), else computed and stored.

        Returns float32 (len(ids), D) unit rows, read back from the store so that a first run and a
        rerun see the same numbers (float16 stores included).
        """
        model = self.store_model
        stored = self.store.load(model, dataset) if self.store.has(model, dataset) else None
        if (stored is None or stored.ids != ids or stored.vectors.dtype != np.dtype(self.cfg.feature_dtype)
                or self.store.source(model, dataset) != source):
            features = compute()
            if features.ids != ids:
                raise BiaslibError(f"feature extraction of {dataset} returned ids out of order")
            self.store.save(model, dataset, features, dtype=self.cfg.feature_dtype, source=source)
            stored = self.store.load(model, dataset)
        self.used[dataset] = str(self.store.paths(model, dataset)[0])
        return np.array(stored.vectors, dtype=np.float32)  # a writable in-memory copy of the memmap

    def image_features(self, dataset: str, ids: Sequence[str], files: Sequence[str]) -> np.ndarray:
        """Unit image embeddings (N, D) of ``files``, row i ↔ ``ids[i]``."""
        ids = [str(i) for i in ids]

        def compute() -> Features:
            from biaslib.features import extract_image_features

            model, preprocess, _ = self._model()
            return extract_image_features(model, preprocess, list(files), ids, batch_size=self.cfg.batch_size,
                                          workers=self.cfg.workers, precision=self.cfg.precision,
                                          threads=self.cfg.threads, progress=self.progress,
                                          label=f"{self.target.stem}: {dataset} images")

        self.images[dataset] = self._cached(dataset, ids, compute, files_fingerprint(files))
        return self.images[dataset]

    def text_features(self, dataset: str, ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings (N, D) of ``texts``, row i ↔ ``ids[i]``."""
        ids = [str(i) for i in ids]

        def compute() -> Features:
            from biaslib.features import extract_text_features

            model, _, tokenizer = self._model()
            return extract_text_features(model, tokenizer, list(texts), ids, batch_size=self.cfg.batch_size,
                                         precision=self.cfg.precision, progress=self.progress,
                                         label=f"{self.target.stem}: {dataset} texts")

        return self._cached(dataset, ids, compute, texts_fingerprint(texts))
