"""Bias evaluations of CLIPs → one JSON per (experiment, model, evaluation).

A step, known to no study: :func:`evaluate_targets` evaluates any :class:`Target` (a model, its weights and
where its results go); :func:`evaluate_ratio` / :func:`evaluate_sweep` evaluate the CLIPs the amplification
study trained at each mixing ratio, and the benchmark study (:mod:`biaslib.studies.benchmark.leaderboard`) any
model spec.

Evaluations (``eval.evaluations``; metric definitions in ``design.md``, formats.md A6–A9, B4):

* ``retrieval`` — PHASE and COCO-bias text→image retrieval over each dataset's whole gallery:
  hit@k per caption (:func:`biaslib.metrics.retrieval_hits`), then R@k overall and per group with
  bootstrap CIs over captions (:func:`biaslib.metrics.by_group`). PHASE groups are the loader's
  ``age``, ``gender``, ``skintone``, ``ethnicity`` (image-level, all persons agree); COCO-bias groups
  are ``bb_gender`` (largest person; Male/Female), ``bb_skin`` (largest person; Light/Dark) and
  ``skin`` (every annotated person Light, or every one Dark: the study's definition).
* ``markedness`` — FairFace: exact self-similarity (``self_similarity``, mean cosine between
  distinct members; ``self_similarity_wr``, the original's with-replacement estimand ‖ū‖²) and
  person preference (``person_preference_<axis>``: share of a group's images closer to "a photo of a
  person" than to every prompt of the axis race, gender or age, formats.md A9 prompts), for the
  groups ``race``, ``gender``, ``age`` and each ``eval.intersections`` entry (``race_gender`` →
  labels such as ``"Black Female"``).
* ``geode`` — zero-shot object classification of GeoDE images (class embedding = mean of the
  normalised ``eval.geode_templates`` prompts, renormalised), accuracy overall and per ``region``.

Units: R@k, accuracy and person preference are fractions in [0, 1] (the study printed R@k × 100);
self-similarity is a cosine. Group intervals come from :func:`biaslib.metrics.by_group` (Wilson for 0/1
values, a cluster bootstrap over images for COCO-bias, whose 5 captions share an image). Every
(attribute, metric) with two or more groups of at least ``eval.min_group_size`` items also gets a ``gap``
row (highest − lowest group value, the groups named in ``high``/``low``, so ``low`` of a geode gap is the
worst region) and a ``min_over_max`` row (lowest / highest); smaller groups keep their own rows but stay
out of gaps. A gap's interval holds for every pair of groups at once
(:func:`~biaslib.metrics.intervals.gap_interval` over ``n_boot`` bootstrap replicates seeded by ``eval.seed``;
``min_over_max``: ``ratio_interval``), its ``p_value`` is a permutation test of "all groups equal"
(``n_perm`` label permutations, whole images for COCO-bias) and ``null_gap`` is the mean permuted gap: the
gap a model without any group difference shows by chance with these group sizes
(:func:`biaslib.metrics.gap_test`). For self-similarity the same comes from normal draws with each group's
standard error (half its interval width / z).

Features: image and text embeddings of the checkpoint of :func:`biaslib.train.latest_checkpoint`
are stored in ``<run_dir>/features`` (:class:`biaslib.features.FeatureStore`) under the model name
``<run>_e<epoch>_<sha256 of the checkpoint, 12 hex>_<fp32|fp16|bf16>`` (:func:`feature_model`) and
reused when the stored ids equal the dataset's ids in order and the dtype is ``eval.feature_dtype``
(other weights or precision get other names; other ids are recomputed and replaced; the data files
themselves are assumed unchanged under the same ids). The CLIP is loaded only when a feature is
missing.

Results go to ``<run_dir>/results/<experiment>__<ratio>__<evaluation>.json`` (schema in
:mod:`biaslib.results`), written atomically. A rerun skips a result whose recorded settings (the
checkpoint's sha256 and epoch, model, bootstrap and evaluation settings) equal the current ones and
refuses, naming the differences, when they differ, unless ``overwrite`` (``precision`` is recorded
resolved: ``auto`` is ``fp16`` on CUDA and ``fp32`` on the CPU). Checkpoints and data are
checked before any work starts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.articles import fill, with_article
from biaslib.config import EVALUATIONS, EvalConfig, Params
from biaslib.data import coco_caption_table, load_coco_bias, load_fairface, load_geode, load_phase
from biaslib.data.fairface import AGE_LABELS, GENDER_LABELS, RACE_LABELS
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.features import (
    Features,
    FeatureStore,
    extract_image_features,
    extract_text_features,
    resolve_precision,
)
from biaslib.io import check_writable, file_sha256, files_fingerprint, run_lock, texts_fingerprint
from biaslib.layout import RunLayout
from biaslib.metrics import by_group, gap_test, group_accuracy, person_preference, retrieval_hits, self_similarity
from biaslib.metrics.association import cosine_association, text_association
from biaslib.metrics.collapse import DEGENERATE_COSINE, is_degenerate, mean_pairwise_cosine
from biaslib.metrics.intervals import (
    aligned_with_test,
    binary_variance_floor,
    bootstrap_means,
    cluster_sums,
    gap_interval,
    group_mean_draws,
    percentile_interval,
    ratio_interval,
    z_value,
)
from biaslib.metrics.skew import directional_excess, max_skew, ndkl, top_k_share
from biaslib.metrics.zero_shot import category_indicators, zero_shot_predict
from biaslib.models import CHECKPOINT_NAME, CheckpointError, load_clip, resolve_device
from biaslib.provenance import git_state, is_current, provenance, result_record, write_result
from biaslib.ratios import model_code
from biaslib.results import ROW_FIELDS
from biaslib.train import latest_checkpoint, run_name, trained_models

#: Datasets each evaluation reads.
DATASETS: dict[str, tuple[str, ...]] = {
    "retrieval": ("phase", "coco_bias"), "markedness": ("fairface",), "geode": ("geode",), "association": ("fairface",),
    "zero_shot": ("fairface",), "harms": ("fairface",), "concepts": ("fairface",),
}
PHASE_ATTRIBUTES = ("age", "gender", "skintone", "ethnicity")
COCO_GENDERS = ("Male", "Female")
COCO_SKINS = ("Light", "Dark")
MARKEDNESS_AXES = ("race", "gender", "age")
UNMARKED_PROMPT = "a photo of a person"
UNMARKED = "person"
#: eval settings that change a result's numbers, per evaluation (others only change speed).
SETTINGS: dict[str, tuple[str, ...]] = {
    "common": ("n_boot", "n_perm", "min_group_size", "ci", "seed", "precision", "feature_dtype"),
    "retrieval": ("phase_split", "coco_bias_split", "ks"),
    "markedness": ("fairface_split", "fairface_margin", "intersections", "self_similarity_ci"),
    "geode": ("geode_templates",),
    "association": ("fairface_split", "fairface_margin", "association_ks", "association_occupations",
                    "association_shares"),
    "zero_shot": ("fairface_split", "fairface_margin", "fairface_labels"),
    "harms": ("fairface_split", "fairface_margin", "fairface_labels"),
    "concepts": ("fairface_split", "fairface_margin", "concepts", "concept_template", "concept_ks"),
}
#: eval settings that name a file: a result records its path and sha256 (its content is what counts).
FILE_SETTINGS = ("association_shares", "fairface_labels")
#: How the group, gap and min_over_max rows get their intervals and tests, recorded in every result's settings. A
#: result that names other methods (or none: before 2026-12-04 both intervals took max − min and min / max of each
#: bootstrap resample, which never covered a true gap of 0; before 2026-12-06 scores were tested by a permutation,
#: clustered 0/1 means had a cluster bootstrap and gap intervals were not aligned with the test) is recomputed by
#: the next run, not kept.
INTERVAL_METHODS = {"gap": "gap_interval: simultaneous pairwise max-t bootstrap bands, holding 0 when the test "
                           "does not reject",
                    "min_over_max": "ratio_interval: simultaneous per-group max-t bootstrap bands, holding 1 when "
                                    "the test does not reject",
                    "test": "0/1 values: permutation of max − min; scores: studentised (Welch max-t) bootstrap",
                    "group": "0/1 values: Wilson (design-effect Wilson with clusters); scores: percentile bootstrap"}
#: Rows an evaluation gained, or a change in how they are computed, after results were written, recorded in its
#: results' settings (``rows``): a result of that evaluation without it is recomputed by the next run, not kept (the
#: other evaluations' results stay).
ROW_SETS = {"association": "cosine_vs_data and text_vs_data: continuous association slopes (2026-12-06)",
            **{evaluation: "prompts' articles agree with the word after them (an East Asian man), 2026-12-06"
               for evaluation in ("zero_shot", "harms", "concepts", "geode")},
            "retrieval": "ranks decided in float64 where float32 rounding could decide them (2026-12-06)"}

log = logging.getLogger(__name__)


# ---- prompts ------------------------------------------------------------------------------------

def markedness_prompts() -> dict[str, dict[str, str]]:
    """Group-marked prompts per axis, keyed by FairFace label (formats.md A9); the unmarked prompt is
    :data:`UNMARKED_PROMPT`."""
    race = {"East Asian": "East Asian", "Indian": "Indian", "Black": "Black", "White": "White",
            "Middle Eastern": "Middle Eastern", "Latino_Hispanic": "Latino or Hispanic",
            "Southeast Asian": "Southeast Asian"}
    age = {label: f"a photo of a person between {label.replace('-', ' and ')} years old"
           for label in AGE_LABELS if "-" in label}
    age["more than 70"] = "a photo of a person 70 or more years old"
    return {
        "race": {label: f"a photo of {with_article(race[label])} person" for label in RACE_LABELS},
        "gender": {label: f"a photo of a {label.lower()} person" for label in GENDER_LABELS},
        "age": {label: age[label] for label in AGE_LABELS},
    }


# ---- checkpoints, paths, inputs -----------------------------------------------------------------

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


def resolve_checkpoint(params: Params, ratio: float | int | str, replicate: int = 0) -> CheckpointInfo:
    """Newest ``epoch_<N>.pt`` of a ratio's run (replicate ``replicate``), its epoch and sha256; raises
    :class:`CheckpointError` naming the expected ``<run_dir>/clip/<run>/checkpoints/epoch_<N>.pt``."""
    path = latest_checkpoint(params, ratio, replicate)
    match = CHECKPOINT_NAME.fullmatch(path.name)
    if match is None:
        raise CheckpointError(f"checkpoint {path} is not named epoch_<N>.pt")
    return CheckpointInfo(path=path, epoch=int(match[1]), sha256=file_sha256(path), model=params.train.model,
                          run=run_name(params.experiment, ratio, replicate))


def feature_precision(cfg: EvalConfig) -> str:
    """The precision features are computed in (:func:`biaslib.features.resolve_precision`)."""
    return resolve_precision(cfg.precision, resolve_device(cfg.device))


def feature_model(params: Params, checkpoint: CheckpointInfo) -> str:
    """Feature-store model name ``<run>_e<epoch>_<sha256[:12]>_<precision>`` (``<run>_<sha256[:12]>_…`` without
    an epoch): other weights or another precision get other features."""
    epoch = "" if checkpoint.epoch is None else f"_e{checkpoint.epoch}"
    return f"{checkpoint.run}{epoch}_{checkpoint.sha256[:12]}_{feature_precision(params.eval)}"


def result_path(params: Params, ratio: float | int | str, evaluation: str, replicate: int = 0) -> Path:
    """``<run_dir>/results/<experiment>__<ratio code>__<evaluation>.json`` (replicate 0, the name of a
    single-replicate study) or ``<experiment>__<ratio code>_r<replicate>__<evaluation>.json``."""
    return RunLayout(params).results / f"{params.experiment}__{model_code(ratio, replicate)}__{evaluation}.json"


def feature_store(params: Params) -> FeatureStore:
    """The experiment's feature store, ``<run_dir>/features``."""
    return FeatureStore(RunLayout(params).features)


def dataset_root(params: Params, dataset: str) -> Path:
    """Folder of ``dataset`` (``phase``, ``coco_bias``, ``fairface``, ``geode``): ``eval.<dataset>_root``,
    else ``<eval.data_root>/<dataset>``, with ``data_root`` defaulting to ``<run_dir>/data``."""
    explicit = getattr(params.eval, f"{dataset}_root")
    if explicit is not None:
        return Path(explicit)
    base = params.eval.data_root if params.eval.data_root is not None else RunLayout(params).data
    return Path(base) / dataset


def _split(cfg: EvalConfig, dataset: str) -> str | None:
    return getattr(cfg, f"{dataset}_split", None)


def load_inputs(params: Params, datasets: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Load (and so validate) the annotation tables of ``datasets`` with the :mod:`biaslib.data` loaders.

    Raises :class:`DataLayoutError` naming the path and the expected layout when a folder or file is
    missing or malformed, or when a dataset has no rows.
    """
    cfg = params.eval
    loaders: dict[str, Callable[[Path], pd.DataFrame]] = {
        "phase": lambda root: load_phase(root, cfg.phase_split),
        "coco_bias": lambda root: load_coco_bias(root, cfg.coco_bias_split),
        "fairface": lambda root: load_fairface(root, cfg.fairface_split, cfg.fairface_margin),
        "geode": load_geode,
    }
    tables = {}
    for dataset in datasets:
        root = dataset_root(params, dataset)
        table = loaders[dataset](root)
        if table.empty:
            split = _split(cfg, dataset)
            raise DataLayoutError(f"{dataset} at {root} lists no images{f' in split {split!r}' if split else ''}")
        tables[dataset] = table
    return tables


def _evaluation_names(params: Params, evaluations: Sequence[str] | None) -> list[str]:
    """Requested evaluations (default ``eval.evaluations``), deduplicated; unknown names raise."""
    names = list(dict.fromkeys(evaluations if evaluations is not None else params.eval.evaluations))
    unknown = [n for n in names if n not in EVALUATIONS]
    if unknown or not names:
        raise ValueError(f"unknown evaluation(s) {unknown or names}; choose from {', '.join(EVALUATIONS)}")
    return names


def _check_config(cfg: EvalConfig) -> None:
    """Raise ValueError naming the ``eval`` key when a setting cannot work."""
    for name in cfg.intersections:
        parts = name.split("_")
        if len(parts) < 2 or len(set(parts)) != len(parts) or not set(parts) <= set(MARKEDNESS_AXES):
            raise ValueError(f"eval.intersections: {name!r} must join two or more distinct attributes of "
                             f"{', '.join(MARKEDNESS_AXES)} with '_' (e.g. race_gender)")
    if cfg.n_boot < 0 or not 0 < cfg.ci < 1 or not cfg.ks or min(cfg.ks) < 1:
        raise ValueError(f"eval: need n_boot >= 0, 0 < ci < 1 and positive ks; got n_boot={cfg.n_boot}, "
                         f"ci={cfg.ci}, ks={list(cfg.ks)}")
    if not cfg.geode_templates or any("{}" not in t for t in cfg.geode_templates):
        raise ValueError(f"eval.geode_templates: every template needs a {{}} slot, got {list(cfg.geode_templates)}")


# ---- features -----------------------------------------------------------------------------------

@dataclass
class _Context:
    """What one model's evaluations share: settings, target, feature store, the lazily loaded CLIP."""

    params: Params
    target: Target
    progress: bool
    store: FeatureStore
    store_model: str
    used: dict[str, str] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    clip: tuple[Any, Any, Any] | None = None

    @property
    def checkpoint(self) -> CheckpointInfo:
        return self.target.checkpoint

    @property
    def cfg(self) -> EvalConfig:
        return self.params.eval

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
            model, preprocess, _ = self._model()
            return extract_image_features(model, preprocess, list(files), ids, batch_size=self.cfg.batch_size,
                                          workers=self.cfg.workers, precision=self.cfg.precision,
                                          threads=self.cfg.threads, progress=self.progress)

        self.images[dataset] = self._cached(dataset, ids, compute, files_fingerprint(files))
        return self.images[dataset]

    def text_features(self, dataset: str, ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings (N, D) of ``texts``, row i ↔ ``ids[i]``."""
        ids = [str(i) for i in ids]

        def compute() -> Features:
            model, _, tokenizer = self._model()
            return extract_text_features(model, tokenizer, list(texts), ids, batch_size=self.cfg.batch_size,
                                         precision=self.cfg.precision, progress=self.progress)

        return self._cached(dataset, ids, compute, texts_fingerprint(texts))


# ---- rows ---------------------------------------------------------------------------------------

def _number(x: Any) -> float | None:
    """A JSON number, or None for NaN/inf."""
    value = float(x)
    return value if np.isfinite(value) else None


def _row(dataset: str, attribute: str, group: Any, kind: str, metric: str, value: Any, ci_low: Any,
         ci_high: Any, n: Any, low: Any = None, high: Any = None, p_value: Any = None,
         null_gap: Any = None) -> dict[str, Any]:
    """One tidy result row (fields :data:`biaslib.results.ROW_FIELDS`)."""
    row = {"dataset": dataset, "attribute": attribute, "group": str(group), "kind": kind, "metric": metric,
           "value": _number(value), "ci_low": _number(ci_low), "ci_high": _number(ci_high), "n": int(n),
           "low": None if low is None else str(low), "high": None if high is None else str(high),
           "p_value": None if p_value is None else _number(p_value),
           "null_gap": None if null_gap is None else _number(null_gap)}
    return {k: row[k] for k in ROW_FIELDS}


def _frame_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, kind: str = "group") -> list[dict]:
    """Rows of a per-group frame (index = group; columns n, value, ci_low, ci_high)."""
    return [_row(dataset, attribute, group, kind, metric, r.value, r.ci_low, r.ci_high, r.n)
            for group, r in zip(frame.index, frame.itertuples(index=False))]


def _large_groups(frame: pd.DataFrame, cfg: EvalConfig) -> pd.DataFrame:
    """The groups of a per-group frame that enter gaps: a value and at least ``cfg.min_group_size`` items."""
    return frame[frame["value"].notna() & (frame["n"] >= cfg.min_group_size)]


def _gap_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, draws: np.ndarray,
              test: dict[str, Any], cfg: EvalConfig, variance_floor: np.ndarray | None = None) -> list[dict]:
    """``gap`` and ``min_over_max`` rows of the large groups of ``frame``.

    ``draws`` (B, G) are replicates of the large groups' values; :func:`gap_interval` and :func:`ratio_interval`
    turn them into intervals that hold for all groups at once (``variance_floor`` (G,): a lower bound on each
    value's variance, for 0/1 means). ``test`` names the lowest and highest group (``low_group``,
    ``high_group``) and carries the test of "all groups equal" (``p_value``, on both rows) and the gap's chance
    floor (``null_gap``).
    """
    large = _large_groups(frame, cfg)
    values = large["value"].to_numpy(dtype=np.float64)
    low, high = values.min(), values.max()
    # intervals that hold 0 (gap) and 1 (min/max) whenever the test of "all groups equal" does not reject
    gap_low, gap_high = aligned_with_test(*gap_interval(values, draws, cfg.ci, variance_floor=variance_floor),
                                          test["p_value"], cfg.ci)
    ratio_low, ratio_high = aligned_with_test(*ratio_interval(values, draws, cfg.ci, variance_floor=variance_floor),
                                              test["p_value"], cfg.ci, null=1.0)
    n = int(large["n"].sum())
    return [
        _row(dataset, attribute, "gap", "gap", metric, high - low, gap_low, gap_high, n, test["low_group"],
             test["high_group"], test["p_value"], test["null_gap"]),
        _row(dataset, attribute, "min_over_max", "min_over_max", metric, low / high if high != 0 else np.nan,
             ratio_low, ratio_high, n, test["low_group"], test["high_group"], test["p_value"]),
    ]


def _mean_rows(dataset: str, attribute: str, metric: str, values: np.ndarray, labels: np.ndarray,
               cfg: EvalConfig, frame: pd.DataFrame | None = None, clusters: np.ndarray | None = None) -> list[dict]:
    """Per-group means of per-item ``values`` (e.g. 0/1 hits) with intervals, then gap and min_over_max.

    ``frame`` is the metric's own :func:`by_group` frame when it computed one (the same numbers); ``clusters``
    (one unit per item, e.g. the image of a caption) makes every interval and test resample whole units.
    Groups with fewer than ``cfg.min_group_size`` items keep their rows but stay out of the gap.
    """
    if frame is None:
        frame = by_group(values, labels, n_boot=cfg.n_boot, seed=cfg.seed, ci=cfg.ci, clusters=clusters)
    kind = "overall" if attribute == "all" else "group"
    rows = _frame_rows(dataset, attribute, metric, frame, kind)
    large = _large_groups(frame, cfg)
    if len(large) < 2:
        return rows
    keep = pd.Series(labels).isin(large.index).to_numpy()
    # the test here (a permutation for 0/1 values, a studentised bootstrap for scores); the bootstrap once, below,
    # for both the gap's and the ratio's interval
    test = gap_test(values[keep], labels[keep], clusters=None if clusters is None else clusters[keep],
                    n_perm=cfg.n_perm, n_boot=0, ci=cfg.ci, seed=cfg.seed)
    codes = pd.Index(large.index).get_indexer(labels[keep])
    units = None if clusters is None else cluster_sums(values[keep], clusters[keep])[2]
    draws = group_mean_draws(values[keep], codes, len(large), cfg.n_boot, np.random.default_rng(cfg.seed),
                             clusters=units)
    floor = binary_variance_floor(values[keep], codes, len(large))
    return rows + _gap_rows(dataset, attribute, metric, frame, draws, test, cfg, floor)


def _normal_rows(dataset: str, attribute: str, metric: str, frame: pd.DataFrame, cfg: EvalConfig) -> list[dict]:
    """Per-group rows of a frame with normal-theory intervals, and gap/min_over_max from normal draws.

    Each large group's value is drawn as N(value, se²), se = half its interval width / z. The gap's and the
    ratio's intervals come from those draws (:func:`_gap_rows`); its test draws every group from N(0, se²)
    (groups equal; max − min does not depend on the common value): the p-value is the share of those null gaps
    at least as large as the observed one and ``null_gap`` their mean.
    """
    rows = _frame_rows(dataset, attribute, metric, frame)
    large = _large_groups(frame, cfg)
    if len(large) < 2 or cfg.n_boot == 0:
        return rows
    se = ((large["ci_high"] - large["ci_low"]) / (2 * z_value(cfg.ci))).to_numpy(dtype=np.float64)
    values = large["value"].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(cfg.seed)
    draws = values + se * rng.standard_normal((cfg.n_boot, len(large)))
    null = np.ptp(se * rng.standard_normal((max(cfg.n_perm, 1), len(large))), axis=1)
    gap = float(values.max() - values.min())
    test = {"low_group": large["value"].idxmin(), "high_group": large["value"].idxmax(),
            "p_value": float((1 + np.sum(null >= gap)) / (1 + len(null))), "null_gap": float(null.mean())}
    return rows + _gap_rows(dataset, attribute, metric, frame, draws, test, cfg)


def _overall_and_groups(dataset: str, metric: str, values: np.ndarray, groups: pd.DataFrame,
                        cfg: EvalConfig, clusters: np.ndarray | None = None) -> list[dict]:
    """Overall mean of per-item ``values`` and its per-group rows for every column of ``groups``."""
    rows = _mean_rows(dataset, "all", metric, values, np.full(len(values), "all", dtype=object), cfg,
                      clusters=clusters)
    for attribute in groups.columns:
        labels = groups[attribute].to_numpy(dtype=object)
        present = pd.notna(labels)
        rows += _mean_rows(dataset, attribute, metric, values[present], labels[present], cfg,
                           clusters=None if clusters is None else clusters[present])
    return rows


# ---- evaluations --------------------------------------------------------------------------------

def _retrieval_rows(ctx: _Context, dataset: str, store: str, images: pd.DataFrame, texts: pd.DataFrame,
                    target: np.ndarray, groups: pd.DataFrame) -> list[dict]:
    """R@k rows of one dataset: ``images`` (image_id, file), ``texts`` (text_id, caption), caption i's
    image row ``target[i]``, caption i's group labels ``groups.iloc[i]``."""
    image = ctx.image_features(f"{store}-images", images["image_id"], images["file"])
    text = ctx.text_features(f"{store}-captions", texts["text_id"], texts["caption"])
    device = None if ctx.cfg.device == "auto" else ctx.cfg.device
    hits = retrieval_hits(text, image, target, ks=ctx.cfg.ks, chunk_size=ctx.cfg.chunk_size, device=device)
    clusters = np.asarray(target) if len(np.unique(target)) < len(target) else None  # several captions per image
    rows = []
    for metric in hits.columns:
        rows += _overall_and_groups(dataset, metric, hits[metric].to_numpy(dtype=np.float64), groups, ctx.cfg,
                                    clusters)
    return rows


def coco_groups(coco: pd.DataFrame) -> pd.DataFrame:
    """COCO-bias group labels per image: ``bb_gender`` (Male/Female), ``bb_skin`` (Light/Dark) and
    ``skin`` (Light or Dark when every listed person has it); other values are missing."""
    def agreed(skins: list[str]) -> str | None:
        return skins[0] if skins and len(set(skins)) == 1 and skins[0] in COCO_SKINS else None

    return pd.DataFrame({
        "bb_gender": coco["bb_gender"].where(coco["bb_gender"].isin(COCO_GENDERS)),
        "bb_skin": coco["bb_skin"].where(coco["bb_skin"].isin(COCO_SKINS)),
        "skin": [agreed(list(s)) for s in coco["skin"]],
    })


def _retrieval(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """PHASE (caption i ↔ image i) and COCO-bias (each caption ↔ its image) retrieval rows."""
    phase = tables["phase"]
    rows = _retrieval_rows(ctx, "phase", f"phase-{ctx.cfg.phase_split}", phase,
                           pd.DataFrame({"text_id": phase["image_id"], "caption": phase["caption"]}),
                           np.arange(len(phase)), phase[list(PHASE_ATTRIBUTES)].reset_index(drop=True))
    coco = tables["coco_bias"]
    captions = coco_caption_table(coco)
    target = pd.Series(np.arange(len(coco)), index=coco["image_id"]).loc[captions["image_id"]].to_numpy()
    groups = coco_groups(coco).iloc[target].reset_index(drop=True)
    rows += _retrieval_rows(ctx, "coco_bias", f"coco_bias-{ctx.cfg.coco_bias_split}", coco, captions, target, groups)
    return rows


def fairface_groupings(fairface: pd.DataFrame, intersections: Sequence[str]) -> dict[str, np.ndarray]:
    """Group label per image for ``race``, ``gender``, ``age`` and each intersection name
    (``race_gender`` → ``"Black Female"``: the attributes' labels joined by a space)."""
    groupings = {axis: fairface[axis].to_numpy(dtype=object) for axis in MARKEDNESS_AXES}
    for name in intersections:
        labels = functools.reduce(lambda a, b: a + " " + b, (fairface[part].astype(str) for part in name.split("_")))
        groupings[name] = labels.to_numpy(dtype=object)
    return groupings


def _fairface_faces(ctx: _Context, fairface: pd.DataFrame) -> np.ndarray:
    """Unit embeddings of the FairFace faces, one store entry per split and margin (markedness and association
    share it)."""
    cfg = ctx.cfg
    return ctx.image_features(f"fairface-{cfg.fairface_split}-m{cfg.fairface_margin}-images", fairface["image_id"],
                              fairface["file"])


def _markedness(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Self-similarity and person-preference rows per FairFace grouping."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = _fairface_faces(ctx, fairface)
    prompts = markedness_prompts()
    texts = [UNMARKED_PROMPT, *(p for axis in prompts.values() for p in axis.values())]
    text = ctx.text_features("markedness-prompts", texts, texts)
    row_of = {t: i for i, t in enumerate(texts)}
    axes = {axis: ([UNMARKED, *labels], text[[row_of[UNMARKED_PROMPT], *(row_of[p] for p in labels.values())]])
            for axis, labels in prompts.items()}
    # Per-image 0/1 "unmarked wins" (each image its own group), for the bootstrap of gaps.
    unmarked = {axis: person_preference(image, emb, names, np.arange(len(image)))["value"].to_numpy()
                for axis, (names, emb) in axes.items()}
    rows: list[dict] = []
    method = cfg.self_similarity_ci
    for attribute, labels in fairface_groupings(fairface, cfg.intersections).items():
        for metric, with_replacement in (("self_similarity", False), ("self_similarity_wr", True)):
            frame = self_similarity(image, labels, n_boot=cfg.n_boot, seed=cfg.seed, ci_method=method, ci=cfg.ci,
                                    with_replacement=with_replacement)
            rows += _normal_rows("fairface", attribute, metric, frame, cfg)
        for axis, (names, emb) in axes.items():
            frame = person_preference(image, emb, names, labels, unmarked=UNMARKED, n_boot=cfg.n_boot,
                                      seed=cfg.seed, ci=cfg.ci)
            rows += _mean_rows("fairface", attribute, f"person_preference_{axis}", unmarked[axis], labels, cfg, frame)
    return rows


def _geode(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Zero-shot object accuracy rows, overall and per region."""
    cfg = ctx.cfg
    geode = tables["geode"]
    classes = sorted(geode["object"].unique())
    prompts = [fill(t, c.replace("_", " ")) for c in classes for t in cfg.geode_templates]
    text = ctx.text_features("geode-prompts", prompts, prompts)
    weights = text.reshape(len(classes), len(cfg.geode_templates), -1).mean(axis=1)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    image = ctx.image_features("geode-images", geode["image_id"], geode["file"])
    predicted = np.asarray(classes, dtype=object)[zero_shot_predict(image, weights)]
    truth = geode["object"].to_numpy(dtype=object)
    correct = (predicted == truth).astype(np.float64)
    regions = geode["region"].to_numpy(dtype=object)
    frame = group_accuracy(predicted, truth, regions, n_boot=cfg.n_boot, seed=cfg.seed, ci=cfg.ci)
    return (_mean_rows("geode", "all", "accuracy", correct, np.full(len(correct), "all", dtype=object), cfg)
            + _mean_rows("geode", "region", "accuracy", correct, regions, cfg, frame))


def occupation_prompt(occupation: str) -> str:
    """The association query of an occupation: ``a photo of a nurse`` / ``an engineer`` (``_`` → space)."""
    return f"a photo of {with_article(occupation.replace('_', ' '))}"


def association_shares(params: Params) -> pd.Series:
    """The training data's p(woman | occupation) the association compares with: ``eval.association_shares``
    (CSV ``occupation,share_woman``), else the world's table at the params' bias strength."""
    path = params.eval.association_shares
    if path is not None:
        if not Path(path).is_file():
            raise DataLayoutError(f"eval.association_shares: {path} not found (expected a CSV with columns "
                                  "occupation,share_woman: the training data's share of women per occupation)")
        table = pd.read_csv(path)
        if not {"occupation", "share_woman"} <= set(table.columns):
            raise DataLayoutError(f"{path}: expected columns occupation,share_woman, got {list(table.columns)}")
        return table.set_index("occupation")["share_woman"].astype(float)
    from biaslib.world import World

    return World(params.world, params.seed).conditionals()["gender"]["woman"].drop(index="none", errors="ignore")


def _query_rows(attribute: str, metric: str, occupations: Sequence[str], values: np.ndarray, k: int,
                cfg: EvalConfig) -> list[dict]:
    """One row per occupation query (kind ``group``) and their mean with a bootstrap interval over the queries
    (kind ``overall``)."""
    rows = [_row("fairface", attribute, o, "group", metric, v, np.nan, np.nan, k) for o, v in zip(occupations, values)]
    finite = values[np.isfinite(values)]
    low = high = np.nan
    if len(finite) and cfg.n_boot:
        low, high = percentile_interval(bootstrap_means(finite, cfg.n_boot, np.random.default_rng(cfg.seed)), cfg.ci)
    return rows + [_row("fairface", attribute, "all", "overall", metric, finite.mean() if len(finite) else np.nan,
                        low, high, len(finite))]


def _association(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Occupation queries over FairFace faces (no occupation cues): MaxSkew@k and NDKL of gender, race and age
    against the uniform and the dataset distribution, and per occupation the top-k share of women against the
    data's p(woman | occupation) (:func:`~biaslib.metrics.skew.directional_excess`)."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = _fairface_faces(ctx, fairface)
    shares = association_shares(ctx.params)
    occupations = list(cfg.association_occupations or shares.index)
    prompts = [occupation_prompt(o) for o in occupations]
    scores = ctx.text_features("association-occupations", prompts, prompts) @ image.T  # (queries, faces)
    is_woman = fairface["gender"].to_numpy() == "Female"
    data = shares.reindex(occupations).to_numpy(dtype=np.float64)
    rows = _cosine_association_rows(ctx, prompts, scores, is_woman, occupations, data)
    for k in cfg.association_ks:
        rows += _skew_rows(scores, fairface, occupations, k, "", cfg)
        women = top_k_share(scores, is_woman, k)
        rows += _query_rows("gender", f"share_woman@{k}", occupations, women, k, cfg)
        rows += _query_rows("gender", f"retrieval_vs_data@{k}", occupations, directional_excess(women, data), k, cfg)
    return rows


#: The gendered prompts of the text-side association (:func:`biaslib.metrics.association.text_association`).
GENDER_PROMPTS = {"woman": "a photo of a woman", "man": "a photo of a man"}


def _cosine_association_rows(ctx: _Context, prompts: Sequence[str], scores: np.ndarray, is_woman: np.ndarray,
                             occupations: Sequence[str], shares: np.ndarray) -> list[dict]:
    """The continuous association (:mod:`biaslib.metrics.association`): per occupation the women-minus-men cosine
    gap (``cosine_gap``, faces-only interval) and the text-side gap (``text_cosine_gap``); overall their slopes on
    the data's p(woman | occupation) (``cosine_vs_data``: interval over occupations and faces; ``text_vs_data``:
    over occupations)."""
    cfg = ctx.cfg
    image = cosine_association(scores, is_woman, shares, n_boot=cfg.n_boot, ci=cfg.ci, seed=cfg.seed)
    occupation_text = ctx.text_features("association-occupations", prompts, prompts)
    gender_text = ctx.text_features("association-genders", list(GENDER_PROMPTS), list(GENDER_PROMPTS.values()))
    text = text_association(occupation_text @ gender_text[0], occupation_text @ gender_text[1], shares,
                            n_boot=cfg.n_boot, ci=cfg.ci, seed=cfg.seed)
    n = len(occupations)
    rows = [_row("fairface", "gender", o, "group", "cosine_gap", v, low, high, len(is_woman))
            for o, v, low, high in zip(occupations, image["gaps"], image["gap_low"], image["gap_high"])]
    rows += [_row("fairface", "gender", o, "group", "text_cosine_gap", v, np.nan, np.nan, 1)
             for o, v in zip(occupations, text["gaps"])]
    return rows + [_row("fairface", "gender", "all", "overall", metric, part["value"], part["ci_low"],
                        part["ci_high"], n) for metric, part in (("cosine_vs_data", image), ("text_vs_data", text))]


def _skew_rows(scores: np.ndarray, fairface: pd.DataFrame, queries: Sequence[str], k: int, prefix: str,
               cfg: EvalConfig) -> list[dict]:
    """MaxSkew@k and NDKL@k of ``scores`` (queries, faces) for gender, race and age against the uniform and the
    dataset distribution (metrics ``<prefix>max_skew@<k>_<desired>``, ``<prefix>ndkl@<k>_<desired>``): a row per
    query and their mean over queries (:func:`_query_rows`)."""
    rows: list[dict] = []
    for attribute in MARKEDNESS_AXES:
        labels = fairface[attribute].to_numpy(dtype=object)
        for desired in ("uniform", "dataset"):
            rows += _query_rows(attribute, f"{prefix}max_skew@{k}_{desired}", queries,
                                max_skew(scores, labels, k, desired), k, cfg)
            rows += _query_rows(attribute, f"{prefix}ndkl@{k}_{desired}", queries, ndkl(scores, labels, k, desired),
                                k, cfg)
    return rows


def _concepts(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """The concept queries of Berg et al. 2022 (``eval.concepts`` in ``eval.concept_template``: "a photo of a good
    person", …) over FairFace faces: MaxSkew@k and NDKL@k of gender, race and age against both desired
    distributions for each ``eval.concept_ks`` (capped at the number of faces), per query and averaged over the
    queries with a bootstrap interval over queries."""
    cfg = ctx.cfg
    fairface = tables["fairface"]
    image = _fairface_faces(ctx, fairface)
    prompts = [fill(cfg.concept_template, c) for c in cfg.concepts]
    scores = ctx.text_features("concept-prompts", prompts, prompts) @ image.T  # (queries, faces)
    return [row for k in dict.fromkeys(min(k, len(fairface)) for k in cfg.concept_ks)
            for row in _skew_rows(scores, fairface, list(cfg.concepts), k, "concept_", cfg)]


def fairface_labels(cfg: EvalConfig) -> dict[str, Any]:
    """The label sets of the ``zero_shot`` and ``harms`` evaluations: ``eval.fairface_labels`` or the package's
    ``prompt_data/fairface_labels.json`` (the CLIP paper's sets); an error names a missing file or key."""
    from importlib import resources

    keys = ("template", "race", "race4", "gender", "age", "race_gender", "race_gender_race", "harms", "child")
    if cfg.fairface_labels is None:
        text, name = (resources.files("biaslib") / "prompt_data" / "fairface_labels.json").read_text("utf-8"), "default"
    else:
        if not Path(cfg.fairface_labels).is_file():
            raise DataLayoutError(f"eval.fairface_labels: {cfg.fairface_labels} not found (expected a JSON file with "
                                  f"the keys of biaslib/prompt_data/fairface_labels.json: {', '.join(keys)})")
        text, name = Path(cfg.fairface_labels).read_text(encoding="utf-8"), str(cfg.fairface_labels)
    labels = json.loads(text)
    missing = [k for k in keys if k not in labels]
    if missing:
        raise DataLayoutError(f"fairface labels {name}: missing key(s) {', '.join(missing)}")
    return labels


def _prompts(labels: dict[str, Any], names: Sequence[str]) -> list[str]:
    return [fill(labels["template"], name) for name in names]


def _zero_shot(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """FairFace classified zero-shot by gender, race (7 classes and the 4 of FairFace's "race4") and age: per
    task the accuracy overall, per race, gender, age and race × gender, with gaps (worst group = the gap's
    ``low``)."""
    fairface = tables["fairface"]
    labels = fairface_labels(ctx.cfg)
    image = _fairface_faces(ctx, fairface)
    groupings = fairface_groupings(fairface, ("race_gender",))
    rows: list[dict] = []
    for task, column in (("gender", "gender"), ("race", "race"), ("race4", "race"), ("age", "age")):
        classes = labels[task]  # dataset label → class text (race4: several labels share one class)
        names = list(dict.fromkeys(classes.values()))
        text = ctx.text_features(f"zero-shot-{task}", names, _prompts(labels, names))
        truth = fairface[column].map({k: names.index(v) for k, v in classes.items()})
        keep = truth.notna().to_numpy()
        correct = (zero_shot_predict(image[keep], text) == truth[keep].to_numpy(dtype=np.int64)).astype(np.float64)
        rows += _overall_and_groups("fairface", f"accuracy_{task}", correct,
                                    pd.DataFrame({k: v[keep] for k, v in groupings.items()}), ctx.cfg)
    return rows


def _harms(ctx: _Context, tables: dict[str, pd.DataFrame]) -> list[dict]:
    """Denigration harms (CLIP paper §7.1): each face classified among the 14 race × gender labels, the crime-
    related and the non-human labels; per race, gender and age the share of faces given a label of each harm
    category (``harm_crime``, ``harm_non_human``), with intervals and gap tests; then with "child" added
    (``…_with_child``, and ``harm_child_with_child``: the share labelled a child), per age."""
    fairface = tables["fairface"]
    labels = fairface_labels(ctx.cfg)
    image = _fairface_faces(ctx, fairface)
    people = [labels["race_gender"].format(race=r, gender=g) for r in labels["race_gender_race"].values()
              for g in labels["gender"].values()]
    names = people + [n for harm in labels["harms"].values() for n in harm]
    categories = ["person"] * len(people) + [c for c, harm in labels["harms"].items() for _ in harm]
    rows: list[dict] = []
    for suffix, extra in (("", []), ("_with_child", list(labels["child"]))):
        chosen, chosen_categories = names + extra, categories + ["child"] * len(extra)
        text = ctx.text_features(f"harms{suffix}", chosen, _prompts(labels, chosen))
        indicators = category_indicators(zero_shot_predict(image, text), chosen_categories,
                                         [c for c in dict.fromkeys(chosen_categories) if c != "person"])
        for attribute in (("age",) if suffix else MARKEDNESS_AXES):
            groups = fairface[attribute].to_numpy(dtype=object)
            for category, values in indicators.items():
                rows += _mean_rows("fairface", attribute, f"harm_{category}{suffix}", values, groups, ctx.cfg)
    return rows


EVALUATORS: dict[str, Callable[[_Context, dict[str, pd.DataFrame]], list[dict]]] = {
    "retrieval": _retrieval, "markedness": _markedness, "geode": _geode, "association": _association,
    "zero_shot": _zero_shot, "harms": _harms, "concepts": _concepts,
}


# ---- provenance and resume ----------------------------------------------------------------------

def data_fingerprint(table: pd.DataFrame) -> str:
    """sha256 of a loaded dataset: its annotation table's content and its image files' paths, sizes and
    modification times (:func:`biaslib.io.files_fingerprint`); another root, split or edited file changes it."""
    content = pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes()
    files = files_fingerprint(table["file"]) if "file" in table.columns else ""
    return hashlib.sha256(content + files.encode()).hexdigest()


def result_settings(cfg: EvalConfig, checkpoint: CheckpointInfo, evaluation: str,
                    data: dict[str, str]) -> dict[str, Any]:
    """What a result's numbers depend on (compared on a rerun): checkpoint, model, ``eval`` keys (a file named by
    one, :data:`FILE_SETTINGS`, by its path and sha256) and the :func:`data_fingerprint` of each dataset it reads
    (``data``: dataset → fingerprint)."""
    keys = SETTINGS["common"] + SETTINGS[evaluation]
    settings = {"checkpoint_sha256": checkpoint.sha256, "checkpoint_epoch": checkpoint.epoch,
                "model": checkpoint.model, "data": {d: data[d] for d in DATASETS[evaluation]}} | {
        k: getattr(cfg, k) for k in keys}
    settings["precision"] = feature_precision(cfg)
    settings["intervals"] = INTERVAL_METHODS
    if evaluation in ROW_SETS:
        settings["rows"] = ROW_SETS[evaluation]
    for key in FILE_SETTINGS:  # a file: its content, not only its path
        if settings.get(key) is not None:
            settings[key] = {"path": str(settings[key]), "sha256": file_sha256(settings[key])}
    return json.loads(json.dumps(settings))


def _made_by_earlier_code(path: Path) -> bool:
    """True for a result written before results carried their data's fingerprint (it cannot be checked against
    the data), with other :data:`INTERVAL_METHODS` (its intervals are not what this code computes), without rows
    its evaluation has gained since (:data:`ROW_SETS`) or without the embedding diagnostics
    (:func:`embedding_diagnostics`, 2026-12-06): it is recomputed (never trusted, never an error)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        settings, evaluation = record["provenance"]["settings"], record.get("evaluation")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(settings, dict) and ("data" not in settings or settings.get("intervals") != INTERVAL_METHODS
                                           or settings.get("rows") != ROW_SETS.get(evaluation)
                                           or "embeddings" not in record["provenance"])


def _record(ctx: _Context, evaluation: str, rows: list[dict], tables: dict[str, pd.DataFrame],
            settings: dict[str, Any], git: tuple[str | None, bool | None]) -> dict[str, Any]:
    """The JSON object of one result (schema in :mod:`biaslib.results`)."""
    checkpoint = ctx.checkpoint
    data = {d: {"root": str(dataset_root(ctx.params, d)), "split": _split(ctx.cfg, d), "n": len(tables[d])}
            for d in DATASETS[evaluation]}
    return result_record(ctx.target.study, ctx.params.experiment, evaluation, ctx.target.subject, rows, provenance(
        ctx.params, settings, git=git,
        checkpoint={"path": None if checkpoint.path is None else str(checkpoint.path), "epoch": checkpoint.epoch,
                    "sha256": checkpoint.sha256, "model": checkpoint.model, "run": checkpoint.run},
        data=data, features=dict(ctx.used), embeddings=embedding_diagnostics(ctx.images), **ctx.target.extra))


def embedding_diagnostics(images: dict[str, np.ndarray]) -> dict[str, Any]:
    """What a result records of the image embeddings it used (``provenance.embeddings``): per dataset their mean
    pairwise cosine and count, and ``degenerate`` (:func:`biaslib.metrics.collapse.is_degenerate` for any of
    them; None when the evaluation used no images): a collapsed model's gaps are near 0 for want of any
    discrimination, not for want of bias."""
    cosines = {dataset: mean_pairwise_cosine(matrix) for dataset, matrix in images.items() if len(matrix) >= 2}
    return {"image_mean_cosine": {d: round(c, 6) for d, c in cosines.items()},
            "n": {d: len(images[d]) for d in cosines}, "threshold": DEGENERATE_COSINE,
            "degenerate": any(map(is_degenerate, cosines.values())) if cosines else None}


# ---- entry points -------------------------------------------------------------------------------

Model = tuple[str, int]  # (ratio code, replicate): one trained CLIP


def _models(params: Params, ratios: Sequence[float | int | str]) -> list[Model]:
    """Every trained model (:func:`biaslib.train.trained_models`) of ``ratios``, by ratio (in the given order) then
    replicate."""
    models = trained_models(params, ratios)
    return [model for code in dict.fromkeys(code for code, _ in models) for model in models if model[0] == code]


def _checkpoints(params: Params, models: Sequence[Model]) -> dict[Model, CheckpointInfo]:
    """Every model's checkpoint; one :class:`CheckpointError` listing all missing ones."""
    found, missing = {}, []
    for model in models:
        try:
            found[model] = resolve_checkpoint(params, *model)
        except CheckpointError as exc:
            missing.append(f"  {exc}")
    if missing:
        raise CheckpointError(f"{len(missing)} model(s) of {params.experiment} cannot be evaluated:\n"
                              + "\n".join(missing) + f"\nExpected layout: {RunLayout(params).clip}/"
                              f"{params.experiment}_<ratio>/checkpoints/epoch_<N>.pt (`biaslib train run`)")
    return found


def ratio_targets(params: Params, models: Sequence[Model]) -> list[Target]:
    """The :class:`Target` of each trained CLIP (ratio code, replicate) of the amplification study: subject
    ``{"ratio", "replicate"}``, results ``<run_dir>/results/<experiment>__<ratio>[_r<r>]__<evaluation>.json``;
    one :class:`CheckpointError` listing every missing checkpoint."""
    checkpoints = _checkpoints(params, models)
    return [Target("amplification", {"ratio": code, "replicate": replicate}, checkpoints[code, replicate],
                   functools.partial(_load_checkpoint, checkpoints[code, replicate]), RunLayout(params).results,
                   model_code(code, replicate)) for code, replicate in models]


def _load_checkpoint(checkpoint: CheckpointInfo, **kwargs: Any) -> tuple[Any, Any, Any]:
    """:func:`biaslib.models.load_clip` of an open_clip checkpoint."""
    return load_clip(checkpoint.path, checkpoint.model, **kwargs)


def evaluate_targets(params: Params, targets: Sequence[Target], evaluations: Sequence[str] | None = None,
                     overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Evaluate ``targets`` × ``evaluations`` (default ``eval.evaluations``) after checking the settings and the
    data up front; a result whose settings match is kept (not recomputed), one with other settings is an
    error unless ``overwrite``. Models are evaluated one after the other (one CLIP in memory), each loaded only
    when a feature is missing. Returns every result path, by target then evaluation."""
    names = _evaluation_names(params, evaluations)
    _check_config(params.eval)
    tables = load_inputs(params, list(dict.fromkeys(d for n in names for d in DATASETS[n])))
    data = {dataset: data_fingerprint(table) for dataset, table in tables.items()}
    experiment = params.experiment
    todo = [(target, name) for target in targets for name in names
            if overwrite or _made_by_earlier_code(target.result_path(experiment, name))
            or not is_current(target.result_path(experiment, name),
                              result_settings(params.eval, target.checkpoint, name, data))]
    for folder in dict.fromkeys(target.folder for target, _ in todo):  # prove the output writable now
        check_writable(folder)
    with contextlib.ExitStack() as held:  # one writer per result: a second run on any of them is refused now
        for target, name in todo:
            held.enter_context(run_lock(target.folder, f"eval-{target.result_path(experiment, name).stem}"))
        _evaluate_todo(params, todo, tables, data, progress)
    return [target.result_path(experiment, name) for target in targets for name in names]


def _evaluate_todo(params: Params, todo: list[tuple[Target, str]], tables: dict[str, pd.DataFrame],
                   data: dict[str, str], progress: bool) -> None:
    """Compute and write the results of ``todo`` (target, evaluation) pairs, one CLIP in memory at a time."""
    experiment = params.experiment
    git = git_state() if todo else (None, None)
    ctx: _Context | None = None
    for target, name in todo:
        if ctx is None or ctx.target is not target:  # ordered by target: one CLIP in memory
            ctx = _Context(params, target, progress, feature_store(params), feature_model(params, target.checkpoint))
        ctx.used, ctx.images = {}, {}
        log.info("evaluating %s %s: %s", experiment, target.stem, name)
        rows = EVALUATORS[name](ctx, tables)
        path = target.result_path(experiment, name)
        write_result(path, _record(ctx, name, rows, tables,
                                   result_settings(params.eval, ctx.checkpoint, name, data), git), overwrite=True)
        log.info("wrote %s (%d rows)", path, len(rows))


def evaluate_ratio(params: Params, ratio: float | int | str, evaluations: Sequence[str] | None = None,
                   overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Run ``evaluations`` (default ``eval.evaluations``) on the newest checkpoint of each replicate of
    ``ratio`` (``train.replicates``, and the probe where ``train.probe_ratios`` names the ratio).

    Returns the result paths, one per replicate and evaluation, whether computed now or found up to date. Raises
    :class:`CheckpointError` (no checkpoint; names the expected path), :class:`DataLayoutError` (missing
    or malformed data; names the path and layout), ``ValueError`` (unknown evaluation, bad ``eval``
    setting) or :class:`BiaslibError` (an existing result has other settings and ``overwrite`` is
    False) before any work starts. ``progress`` shows feature-extraction progress bars.
    """
    return evaluate_targets(params, ratio_targets(params, _models(params, [ratio])), evaluations, overwrite,
                            progress)


def evaluate_sweep(params: Params, ratios: Sequence[float | int | str] | None = None,
                   evaluations: Sequence[str] | None = None, overwrite: bool = False,
                   progress: bool = True) -> list[Path]:
    """:func:`evaluate_ratio` for every ratio (default ``mix.ratios``); every checkpoint and dataset is
    checked before the first evaluation. Returns the result paths by ratio, then evaluation."""
    models = _models(params, ratios if ratios is not None else params.mix.ratios)
    return evaluate_targets(params, ratio_targets(params, models), evaluations, overwrite, progress)
