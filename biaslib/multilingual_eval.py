"""Evaluation of the multilingual study's generated images per language, before vs after fine-tuning.

For each generation set (``data``, ``base``, ``finetuned``; :mod:`biaslib.multilingual`) and language:

* :func:`image_labels` / :func:`gender_counts`: one outcome per image (``man``, ``woman``, ``no_face``,
  ``multiple_faces``, ``other``; :mod:`biaslib.faces.counts`) and their counts per occupation. On the
  synthetic world the labels are the simulator's ground truth for simulated images, else the world's
  attribute classifier (it reads the whole image, so ``no_face`` and ``multiple_faces`` are 0); for real
  images they come from a :mod:`biaslib.faces` table (``key``, ``outcome``, optional ``language``).
* The classifier's confusion (:class:`~biaslib.faces.correction.Confusion`) on images of known gender:
  world renders degraded like the generator's output (:func:`render_confusion`) or the generator's own
  images of prompts that state the gender (:func:`stated_confusion`, as :mod:`biaslib.world.fidelity`).
* :func:`share_table`: raw and corrected p(woman) per occupation (:func:`~biaslib.faces.correction.corrected_shares`).
* :func:`fairness_table`: MAGBIG fairness (:func:`~biaslib.metrics.magbig_fairness`) on raw and on
  corrected counts with bootstrap CIs; :func:`fairness_contrasts`: differences between languages (or
  between base and fine-tuned) with CIs.
* :func:`clip_scores`: CLIP score of every image with its prompt, per generation set and language.
* :func:`generator_amplification`: bias amplification of a generation set against the world's data.
* :func:`evaluate_multilingual` writes one JSON per (experiment, generation, language) to
  ``<run>/results/multilingual/<experiment>__<generation>__<language>.json`` (format
  :data:`RESULT_FORMAT`; a subfolder so that :func:`biaslib.results.collect` of the amplification study
  never reads them); :func:`collect` reads them back into one tidy DataFrame.

Bootstrap (every CI here, percentile, ``n_boot`` draws, seeded): each draw resamples the classified
images of every occupation (a multinomial draw of its man/woman counts with its classified total: an
image without a classified face enters no score) and, for corrected scores, every row of the
calibration confusion counts; the confusion draws are shared by all languages of a generation set
(one classifier), the image draws are independent per (generation, language). Occupations with no
classified face are reported (``n_excluded``, ``excluded``) and left out of every mean, never divided by.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib import __version__
from biaslib.config import Params
from biaslib.errors import DataLayoutError
from biaslib.faces.correction import (
    Confusion,
    corrected_shares,
    estimate_confusion,
    invert_shares,
    rate_draws,
    share_draws,
)
from biaslib.faces.counts import GENDER_ALIASES, OUTCOMES, face_counts, image_outcomes
from biaslib.io import write_json
from biaslib.metrics import clip_score, magbig_fairness, paired_cosine
from biaslib.metrics._checks import check_ci
from biaslib.metrics.intervals import percentile_interval
from biaslib.metrics.magbig import expected_max_l1, fair_floors, mean_l1_difference, mean_l1_inference
from biaslib.multilingual import (
    GENERATIONS,
    check_generated,
    generation_captions,
    generation_config,
    image_languages,
    language_codes,
)
from biaslib.prompts import resolve_language

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("man", "woman")
#: Scores of :func:`fairness_table`: mean p(woman) over occupations, then MAGBIG's (formats.md C6).
METRICS: tuple[str, ...] = ("share_woman", "mean_l1", "std_l1", "mean_l2", "std_l2", "exp_max_l1", "exp_max_l2")
#: Columns of :func:`fairness_table`.
FAIRNESS_COLUMNS: list[str] = ["generation", "language", "correction", "metric", "value", "ci_low", "ci_high", "floor",
                               "excess", "p_fair", "n_occupations", "n_excluded", "excluded", "classified", "labels"]
RESULT_FORMAT = "biaslib-multilingual-result/1"
#: An exact labeller (simulator ground truth): corrected shares equal the raw ones, with no extra spread.
EXACT = Confusion(LABELS, np.eye(2, dtype=np.int64))
_SQRT2 = math.sqrt(2.0)


# ---- labels and counts ----------------------------------------------------------------------------------

def _default_languages(params: Params, generation: str, languages: Sequence[str] | None) -> list[str]:
    """Codes of ``languages``, default: every language the generation set has."""
    default = image_languages(params) if generation == "data" else params.multilingual.languages
    return language_codes(languages if languages is not None else default)


def _table_outcomes(table: pd.DataFrame, keys: pd.Series, code: str) -> np.ndarray:
    """Outcome per key from a faces table (``key``/``id``, ``outcome`` or ``n_faces`` + ``gender``,
    optional ``language``); a key the table lacks is an error naming how many."""
    key = "key" if "key" in table.columns else "id"
    rows = table
    if "language" in table.columns:
        rows = table[table["language"].map(resolve_language) == code]
    if "outcome" in rows.columns:
        outcome = rows["outcome"].astype(str).map(lambda v: GENDER_ALIASES.get(v, v))
    else:
        outcome = pd.Series(image_outcomes(rows["n_faces"], rows["gender"].tolist()), index=rows.index)
    by_key = dict(zip(rows[key].astype(str), outcome))
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DataLayoutError(f"the faces table has no row for {len(missing)} image(s) of language {code}, e.g. "
                              f"{missing[:3]}; analyse every generated image (biaslib faces analyse)")
    return np.array([by_key[k] for k in keys], dtype=object)


def image_labels(params: Params, generation: str, language: str, *, world: Any = None,
                 faces: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per generated image of a generation set in one language.

    Columns: ``generation``, ``language`` (code), ``key``, ``prompt_id``, ``occupation`` (the prompted
    profession), ``caption``, ``english``, ``outcome`` (:data:`~biaslib.faces.counts.OUTCOMES`) and
    ``labels`` (``simulator``, ``classifier`` or ``faces``). With ``faces`` (a :mod:`biaslib.faces` table)
    its outcomes are used; else the world's (:func:`biaslib.world.measure.generated_attributes`).
    """
    from biaslib.world import World
    from biaslib.world.measure import generated_attributes

    code = language_codes([language])[0]
    out = check_generated(params, generation, code)
    captions = generation_captions(params, generation, code).set_index("key")
    if faces is not None:
        keys = captions.index.to_series()
        outcome, labels = _table_outcomes(faces, keys, code), "faces"
    else:
        attributes = generated_attributes(out, world or World(params.world, params.seed), params.runs_dir / "cache")
        keys, outcome = attributes["key"], attributes["gender"].map(GENDER_ALIASES).fillna("other").to_numpy()
        labels = attributes["labels"].iloc[0]
    rows = captions.loc[keys.to_numpy()]
    return pd.DataFrame({"generation": generation, "language": code, "key": keys.to_numpy(),
                         "prompt_id": rows["prompt_id"].to_numpy(), "occupation": rows["profession"].to_numpy(),
                         "caption": rows["caption"].to_numpy(), "english": rows["english"].to_numpy(),
                         "outcome": outcome, "labels": labels})


def counts_of(labels: pd.DataFrame, occupations: Sequence[str] | None = None) -> pd.DataFrame:
    """Outcome counts per (generation, language, occupation) of an :func:`image_labels`-style table.

    Every occupation of ``occupations`` (default: those in ``labels``) is listed in every (generation,
    language), with zero counts when it has no image. Columns: ``generation``, ``language``, ``occupation``,
    ``images``, :data:`~biaslib.faces.counts.OUTCOMES`, ``classified``, ``share_woman`` (NaN without a
    classified face), ``labels``.
    """
    names = list(dict.fromkeys(occupations if occupations is not None else labels["occupation"]))
    parts = []
    for (generation, code), group in labels.groupby(["generation", "language"], sort=False):
        counts = face_counts(group, ("occupation",), groups=names)
        parts.append(counts.assign(generation=generation, language=code, labels=group["labels"].iloc[0]))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["generation", "language", "occupation", "images", *OUTCOMES, "classified", "share_woman", "labels"]]


def gender_counts(params: Params, generation: str, languages: Sequence[str] | None = None, *, world: Any = None,
                  faces: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`counts_of` the :func:`image_labels` of a generation set in each of ``languages`` (default: all)."""
    labels = pd.concat([image_labels(params, generation, code, world=world, faces=faces)
                        for code in _default_languages(params, generation, languages)], ignore_index=True)
    return counts_of(labels)


# ---- classifier confusion --------------------------------------------------------------------------------

def _classify_gender(images: Sequence[Any], world: Any, cache_dir: str | os.PathLike,
                     resolution: int | None) -> list[str]:
    """The world classifier's gender label (``man``/``woman``) of each PIL image."""
    from biaslib.world.classifier import classify_images, world_classifier

    model, _ = world_classifier(world, cache_dir, through_resolution=resolution)
    return list(classify_images(model, images, world.config.image_size)["gender"])


def render_confusion(world: Any, cache_dir: str | os.PathLike, *, n: int = 1000, resolution: int | None = None,
                     seed_stream: str = "multilingual_eval/calibration") -> Confusion:
    """Confusion of the world classifier on ``n`` fresh world renders of known gender, degraded through
    ``resolution`` px like a generator working at it (``None``: full-resolution renders)."""
    import torch

    from biaslib.world.classifier import degrade, images_to_tensor

    people = world.people(n, stream=seed_stream)
    images = world.render_many(people.to_dict("records"))
    if resolution is not None:
        from PIL import Image

        tensor = degrade(images_to_tensor(images), resolution)
        arrays = (tensor.permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)).numpy()
        images = [Image.fromarray(a) for a in arrays]
    return estimate_confusion(list(people["gender"]), _classify_gender(images, world, cache_dir, resolution), LABELS)


def _through(images: Sequence[Any], world: Any) -> int | None:
    """The resolution the classifier should be trained through for these images (as
    :func:`biaslib.world.measure.generated_attributes`): their size when below the world's, else None."""
    native = min(min(im.size) for im in images)
    return native if native < world.config.image_size else None


def stated_confusion(pipe: Any, world: Any, cache_dir: str | os.PathLike, *, per_prompt: int = 8, seed: int = 5000,
                     steps: int = 20, guidance: float = 3.0) -> Confusion:
    """Confusion of the world classifier on ``pipe``'s images of prompts that state the gender
    (:data:`biaslib.world.fidelity.STATED_PROMPTS`, ``per_prompt`` images each): the classifier's error on
    this generator's output."""
    from biaslib.world.fidelity import STATED_PROMPTS, sample_images

    prompts = [p for p in STATED_PROMPTS for _ in range(per_prompt)]
    images = sample_images(pipe, prompts, seed, steps=steps, guidance=guidance)
    true = [STATED_PROMPTS[p][0] for p in prompts]
    return estimate_confusion(true, _classify_gender(images, world, cache_dir, _through(images, world)), LABELS)


def generation_confusion(params: Params, generation: str, *, world: Any = None, source: str = "renders",
                         per_prompt: int = 8, n_renders: int = 1000) -> Confusion:
    """The confusion to correct a generation set's world-classifier labels with.

    :data:`EXACT` for the simulator (its labels are ground truth); otherwise ``renders`` (default:
    :func:`render_confusion`, world renders of known gender through the pipeline's output size) or
    ``stated`` (the pipeline's own images of gender-stating prompts, :func:`stated_confusion`). ``stated``
    measures the classifier only if the pipeline shows the stated gender: for a pipeline that ignores
    it (the world's tiny one, bench/RESULTS.md) it mixes the generator's infidelity into the "confusion"
    (measured on multilingual_world: Youden's J < 0 for the base pipeline, so no correction exists).
    """
    from biaslib.generate import load_generated_images, load_pipeline, read_generated
    from biaslib.world import World

    if source not in ("stated", "renders"):
        raise ValueError(f"confusion source must be 'stated' or 'renders', got {source!r}")
    config = generation_config(params, generation)
    if config.model == "simulator":
        return EXACT
    world = world or World(params.world, params.seed)
    cache = params.runs_dir / "cache"
    if source == "stated":
        return stated_confusion(load_pipeline(config), world, cache, per_prompt=per_prompt, steps=config.steps,
                                guidance=config.guidance)
    out = check_generated(params, generation, _default_languages(params, generation, None)[0])
    first = load_generated_images(out, [read_generated(out)["key"].iloc[0]])
    return render_confusion(world, cache, n=n_renders, resolution=_through(list(first.values()), world))


def _confusion_of(confusion: Confusion | Mapping[str, Confusion] | None, generation: str) -> Confusion:
    """The confusion of one generation set: a single one, a mapping by generation, or None (exact)."""
    if isinstance(confusion, Mapping):
        return confusion.get(generation) or EXACT
    return confusion or EXACT


# ---- shares and fairness -----------------------------------------------------------------------------------

def share_table(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Raw and corrected p(woman) per (generation, language, occupation) with bootstrap CIs.

    ``counts``: :func:`gender_counts` rows; ``confusion``: one, one per generation set, or None (exact
    labels). Returns ``counts`` plus the columns of :func:`~biaslib.faces.correction.corrected_shares`.
    """
    parts = [corrected_shares(group, _confusion_of(confusion, generation), label="woman", n_boot=n_boot, seed=seed,
                              ci=ci)
             for generation, group in counts.groupby("generation", sort=False)]
    return pd.concat(parts, ignore_index=True)


def _scores(woman: np.ndarray, occupations: int, images: int) -> dict[str, np.ndarray]:
    """:data:`METRICS` of p(woman) draws ``(B, O)`` (NaN = no classified face, left out), each ``(B,)``.

    The expected max uses k = min(``occupations``, occupations with a share) of each draw; NaN if none.
    """
    usable = np.isfinite(woman)
    counted = usable.sum(axis=1)
    safe = np.where(usable, woman, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=1) / counted
        l1 = np.abs(2.0 * safe - 1.0)
        mean_l1 = np.where(usable, l1, 0.0).sum(axis=1) / counted
        std_l1 = np.sqrt(np.where(usable, (l1 - mean_l1[:, None]) ** 2, 0.0).sum(axis=1) / counted)
    exp_max = np.full(len(woman), np.nan)
    for b in np.flatnonzero(counted > 0):
        exp_max[b] = expected_max_l1(1.0 - woman[b, usable[b]], min(occupations, int(counted[b])), images)[0]
    return {"share_woman": mean, "mean_l1": mean_l1, "std_l1": std_l1, "mean_l2": mean_l1 / _SQRT2,
            "std_l2": std_l1 / _SQRT2, "exp_max_l1": exp_max, "exp_max_l2": exp_max / _SQRT2}


def _point_scores(frame: pd.DataFrame, woman: np.ndarray, occupations: int, images: int) -> dict[str, float]:
    """:data:`METRICS` of one group: :func:`~biaslib.metrics.magbig_fairness` on counts man = (1 − p)·n,
    woman = p·n of its occupations with a classified face (p: raw or corrected share, n: classified)."""
    usable = np.isfinite(woman)
    if not usable.any():
        return dict.fromkeys(METRICS, float("nan"))
    n = frame["classified"].to_numpy(dtype=np.float64)[usable]
    table = pd.DataFrame({"occupation": frame["occupation"].to_numpy()[usable], "man": (1.0 - woman[usable]) * n,
                          "woman": woman[usable] * n})
    scores = magbig_fairness(table, min(occupations, int(usable.sum())), images)
    return {"share_woman": float(woman[usable].mean()), **{m: scores[m] for m in METRICS if m in scores}}


def _group_draws(frame: pd.DataFrame, rates: np.ndarray, rates_drawn: np.ndarray,
                 rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Point p(woman) ``(O,)`` and its bootstrap draws ``(B, O)`` (:func:`~biaslib.faces.correction.share_draws`),
    raw and corrected, of one group's occupations."""
    observed = frame[list(LABELS)].to_numpy(dtype=np.int64)
    n = observed.sum(axis=1)
    q = np.divide(observed, n[:, None], out=np.full(observed.shape, np.nan), where=n[:, None] > 0)
    raw, corrected = share_draws(observed, rates_drawn, 1, rng)
    point = invert_shares(q, rates)[:, 1]
    point[n == 0] = np.nan
    return {"raw": (q[:, 1], raw), "corrected": (point, corrected)}


def _all_draws(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None, n_boot: int,
               seed: int) -> dict[tuple[str, str], tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(generation, language) → (its rows, :func:`_group_draws`), confusion draws shared within a generation."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    missing = [c for c in ("generation", "language", "occupation", *LABELS) if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks columns {missing}; it has {list(counts.columns)}")
    counts = counts.assign(classified=counts["man"] + counts["woman"])
    rng = np.random.default_rng(seed)
    out = {}
    for generation, rows in counts.groupby("generation", sort=False):
        chosen = _confusion_of(confusion, generation)
        rates_drawn = rate_draws(chosen, n_boot, rng)
        for code, group in rows.groupby("language", sort=False):
            out[(generation, code)] = (group, _group_draws(group, chosen.rates, rates_drawn, rng))
    return out


def fairness_table(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                   n_boot: int = 1000, seed: int = 0, ci: float = 0.95, occupations: int = 10,
                   images: int = 10) -> pd.DataFrame:
    """MAGBIG fairness per (generation, language) on raw and on corrected counts, with bootstrap CIs.

    Parameters
    ----------
    counts : :func:`gender_counts` rows (``generation``, ``language``, ``occupation``, ``man``, ``woman``).
    confusion : the classifier's confusion (one, a mapping generation → confusion, or None = exact labels).
    n_boot, seed, ci : bootstrap (module docstring: classified images resampled within occupation, confusion
        rows resampled), ``numpy.random.default_rng`` seed, interval level.
    occupations, images : k and n of the expected max (k is capped at the occupations with a face).

    Returns
    -------
    DataFrame
        One row per (generation, language, correction ∈ {raw, corrected}, metric of :data:`METRICS`):
        ``value`` (scores in [0, 1]; point value = :func:`~biaslib.metrics.magbig_fairness` on the raw counts,
        or on corrected counts man = (1 − p̂)·n, woman = p̂·n), ``ci_low``, ``ci_high``, ``n_occupations``
        (with a classified face), ``n_excluded`` and ``excluded`` (occupations without one, comma-separated),
        ``classified`` (faces), ``labels``. ``floor``: what a fair generator scores on average with the same
        classified faces per occupation (mean L1/L2 and expected max; NaN for the other metrics; for corrected
        shares a lower bound, as correction adds spread) and ``excess`` = value − floor. One more row per group,
        metric ``mean_l1_bc`` on raw counts: the bias-corrected mean L1 with its parametric-bootstrap interval
        (coverage by share and faces per occupation: README) and ``p_fair``, the p-value of "every occupation's
        p(woman) is ½" (:func:`~biaslib.metrics.mean_l1_inference`).
    """
    check_ci(ci)
    rows = []
    for (generation, code), (group, draws) in _all_draws(counts, confusion, n_boot, seed).items():
        empty = group["occupation"][(group["classified"] == 0).to_numpy()].tolist()
        common = {"generation": generation, "language": code, "n_occupations": len(group) - len(empty),
                  "n_excluded": len(empty), "excluded": ",".join(map(str, empty)),
                  "classified": int(group["classified"].sum()),
                  "labels": group["labels"].iloc[0] if "labels" in group.columns else None}
        floors = _floors(group, occupations, images)
        for correction, (point, boot) in draws.items():
            values = _point_scores(group, point, occupations, images)
            spread = _scores(boot, occupations, images)
            for metric in METRICS:
                low, high = percentile_interval(spread[metric], ci)
                floor = floors.get(metric, float("nan"))
                rows.append({**common, "correction": correction, "metric": metric, "value": values[metric],
                             "ci_low": low, "ci_high": high, "floor": floor, "excess": values[metric] - floor,
                             "p_fair": float("nan")})
        if common["n_occupations"] > 0:
            rows.append(_bias_corrected_row(common, group, floors, n_boot, seed, ci))
    return pd.DataFrame(rows, columns=FAIRNESS_COLUMNS)


def _floors(group: pd.DataFrame, occupations: int, images: int) -> dict[str, float]:
    """What a fair generator (p(woman) = ½ everywhere) scores on average with this group's classified faces per
    occupation (:func:`~biaslib.metrics.magbig.fair_floors`): the floor of the plug-in mean L1/L2, and the
    expected max of k fair occupations (k capped at the occupations with a face)."""
    classified = group["classified"].to_numpy()
    classified = classified[classified > 0]
    if len(classified) == 0:
        return {}
    floors = fair_floors(classified, min(occupations, len(classified)), images)
    return {"mean_l1": floors["floor_mean_l1"], "mean_l2": floors["floor_mean_l2"],
            "exp_max_l1": floors["floor_exp_max_l1"], "exp_max_l2": floors["floor_exp_max_l1"] / _SQRT2}


def _bias_corrected_row(common: dict[str, Any], group: pd.DataFrame, floors: dict[str, float], n_boot: int,
                        seed: int, ci: float) -> dict[str, Any]:
    """The ``mean_l1_bc`` row on raw counts (:func:`~biaslib.metrics.mean_l1_inference`): the bias-corrected
    mean L1 with its parametric-bootstrap interval and ``p_fair``, the test of "every p(woman) is ½"."""
    faces = group[group["classified"] > 0]
    result = mean_l1_inference(pd.DataFrame({"occupation": faces["occupation"], "man": faces["man"],
                                             "woman": faces["woman"]}), n_boot=n_boot, ci=ci, seed=seed)
    return {**common, "correction": "raw", "metric": "mean_l1_bc", "value": result["mean_l1_corrected"],
            "ci_low": result["ci_low"], "ci_high": result["ci_high"], "floor": floors["mean_l1"],
            "excess": result["mean_l1_corrected"] - floors["mean_l1"], "p_fair": result["p_fair"]}


def fairness_contrasts(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                       by: str = "language", reference: str = "en", metrics: Sequence[str] = ("share_woman", "mean_l1"),
                       n_boot: int = 1000, seed: int = 0, ci: float = 0.95, occupations: int = 10,
                       images: int = 10) -> pd.DataFrame:
    """Differences of fairness scores against a reference group, with bootstrap CIs.

    ``by="language"``: each language minus ``reference`` (a language code) within the same generation set;
    ``by="generation"``: each generation set minus ``reference`` (e.g. ``base``) within the same language.
    The difference of the point values; its CI is the percentile interval of the per-draw differences
    (the two groups' images resampled independently, conservative for the paired seeds; shared confusion
    draws within a generation set). Scores use the occupations with a classified face in each group.
    Returns ``generation``, ``language``, ``reference``, ``correction``, ``metric``, ``value``,
    ``ci_low``, ``ci_high``, ``p_value``; with ``mean_l1`` among ``metrics`` also a ``mean_l1_bc`` row per pair on
    raw counts: the difference of the small-sample-bias-corrected mean L1s with its parametric-bootstrap
    interval and p-value (:func:`~biaslib.metrics.mean_l1_difference`; coverage in README).
    """
    check_ci(ci)
    if by not in ("language", "generation"):
        raise ValueError(f"by must be 'language' or 'generation', got {by!r}")
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose among {METRICS}")
    draws = _all_draws(counts, confusion, n_boot, seed)
    rows = []
    for (generation, code), (group, groups) in draws.items():
        other = (generation, reference) if by == "language" else (reference, code)
        if other == (generation, code) or other not in draws:
            continue
        ref_group, ref_groups = draws[other]
        for correction, (point, boot) in groups.items():
            ref_point, ref_boot = ref_groups[correction]
            values = _point_scores(group, point, occupations, images)
            ref_values = _point_scores(ref_group, ref_point, occupations, images)
            spread, ref_spread = _scores(boot, occupations, images), _scores(ref_boot, occupations, images)
            for metric in metrics:
                low, high = percentile_interval(spread[metric] - ref_spread[metric], ci)
                rows.append({"generation": generation, "language": code, "reference": reference,
                             "correction": correction, "metric": metric, "value": values[metric] - ref_values[metric],
                             "ci_low": low, "ci_high": high, "p_value": float("nan")})
        if "mean_l1" in metrics:
            rows.append(_corrected_difference_row(group, ref_group, generation, code, reference, n_boot, seed, ci))
    return pd.DataFrame(rows, columns=["generation", "language", "reference", "correction", "metric", "value",
                                       "ci_low", "ci_high", "p_value"])


def _corrected_difference_row(group: pd.DataFrame, ref_group: pd.DataFrame, generation: str, code: str,
                              reference: str, n_boot: int, seed: int, ci: float) -> dict[str, Any]:
    """The ``mean_l1_bc`` difference on raw counts (:func:`~biaslib.metrics.mean_l1_difference`)."""
    def faces(frame: pd.DataFrame) -> pd.DataFrame:
        kept = frame[frame["classified"] > 0]
        return pd.DataFrame({"occupation": kept["occupation"], "man": kept["man"], "woman": kept["woman"]})

    result = mean_l1_difference(faces(group), faces(ref_group), n_boot=n_boot, ci=ci, seed=seed)
    return {"generation": generation, "language": code, "reference": reference, "correction": "raw",
            "metric": "mean_l1_bc", "value": result["difference_corrected"], "ci_low": result["ci_low"],
            "ci_high": result["ci_high"], "p_value": result["p_value"]}


# ---- CLIP score -----------------------------------------------------------------------------------------------

def find_clip_checkpoint(params_file: str | os.PathLike | None = None, ratio: float | int | str = 0
                         ) -> tuple[Path, str] | None:
    """(checkpoint, open_clip model name) of an amplification-study CLIP (default: the demo's, ``params/default.yaml``,
    ratio 0: trained on real world data only), or None when it has not been trained."""
    from biaslib.config import load_params
    from biaslib.train import CheckpointError, latest_checkpoint

    params = load_params(params_file)
    try:
        return latest_checkpoint(params, ratio), params.train.model
    except CheckpointError:
        return None


def clip_scores(labels: pd.DataFrame, params: Params, checkpoint: str | os.PathLike | None, model_name: str, *,
                text: str = "english", n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
                device: str = "cpu") -> pd.DataFrame:
    """CLIP score (100·max(cos, 0)) and raw cosine (formats.md C7) of every image with its prompt, per
    (generation, language).

    ``labels``: :func:`image_labels` rows (``generation``, ``language``, ``key``, ``caption``, ``english``);
    ``text``: ``english`` (the English prompt of the same id, as MAGBIG scores every language, and what a
    CLIP trained on English captions reads) or ``caption`` (the prompt in its own language). Returns
    ``generation``, ``language``, ``value`` (mean CLIP score), ``ci_low``/``ci_high`` (percentile bootstrap over
    images), ``cosine`` (mean raw cosine, MAGBIG's number) with ``cosine_low``/``cosine_high`` (the same
    resamples), ``n``, ``checkpoint``. Without a checkpoint (``None`` or a missing file) every value is NaN and
    a warning says so: nothing fails.
    """
    check_ci(ci)
    groups = list(labels.groupby(["generation", "language"], sort=False))
    if checkpoint is None or not Path(checkpoint).is_file():
        log.warning("no CLIP checkpoint (%s): CLIP scores are skipped (NaN); train one (make demo) or pass a path",
                    checkpoint)
        nan = float("nan")
        return pd.DataFrame([{"generation": g, "language": c, "value": nan, "ci_low": nan, "ci_high": nan,
                              "cosine": nan, "cosine_low": nan, "cosine_high": nan, "n": len(part),
                              "checkpoint": None} for (g, c), part in groups])
    from biaslib.features import extract_image_features, extract_text_features, load_clip
    from biaslib.generate import load_generated_images
    from biaslib.multilingual import generated_dir

    model, preprocess, tokenizer = load_clip(checkpoint, model_name, device=device)
    rng = np.random.default_rng(seed)
    rows = []
    for (generation, code), part in groups:
        found = load_generated_images(generated_dir(params, generation, code), list(part["key"]))
        images = extract_image_features(model, preprocess, [found[k] for k in part["key"]]).vectors
        texts = extract_text_features(model, tokenizer, list(part[text])).vectors
        cosines = paired_cosine(images, texts)
        scores = clip_score(images, texts)
        picks = rng.integers(0, len(scores), size=(n_boot, len(scores)))
        low, high = percentile_interval(scores[picks].mean(axis=1), ci)
        cosine_low, cosine_high = percentile_interval(cosines[picks].mean(axis=1), ci)
        rows.append({"generation": generation, "language": code, "value": float(scores.mean()), "ci_low": low,
                     "ci_high": high, "cosine": float(cosines.mean()), "cosine_low": cosine_low,
                     "cosine_high": cosine_high, "n": len(scores), "checkpoint": str(checkpoint)})
    return pd.DataFrame(rows)


# ---- amplification against the world's data -------------------------------------------------------------------

def world_people(params: Params, occupations: Sequence[str], n: int = 20000, world: Any = None) -> pd.DataFrame:
    """``n`` people of the world's data distribution restricted to ``occupations`` (``occupation``, ``gender``):
    the people in the web data a world generator was trained on."""
    from biaslib.world import World

    world = world or World(params.world, params.seed)
    return world.people(n, stream="multilingual_eval/data", occupations=list(occupations))[["occupation", "gender"]]


def generator_amplification(labels: pd.DataFrame, train: pd.DataFrame, *, n_boot: int = 500,
                            seed: int = 0) -> pd.DataFrame:
    """Gender × occupation amplification of generated images (``labels``: :func:`image_labels` rows, the
    prompted profession as the task and images with a man/woman outcome) against ``train`` people
    (``occupation``, ``gender``; e.g. :func:`world_people`), per (generation, language).

    Returns the rows of :func:`biaslib.amplification.amplification_table` plus ``generation``, ``language``.
    """
    from biaslib.amplification import amplification_table

    people = labels[labels["outcome"].isin(LABELS)].rename(columns={"outcome": "gender"})
    parts = [amplification_table(train, part, n_boot=n_boot, seed=seed).assign(generation=generation, language=code)
             for (generation, code), part in people.groupby(["generation", "language"], sort=False)]
    return pd.concat(parts, ignore_index=True)


# ---- results ----------------------------------------------------------------------------------------------

def result_path(params: Params, generation: str, language: str) -> Path:
    """``<run>/results/multilingual/<experiment>__<generation>__<language>.json``."""
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation set {generation!r}; choose one of {', '.join(GENERATIONS)}")
    return params.run_dir / "results" / "multilingual" / f"{params.experiment}__{generation}__{language}.json"


def _json_rows(section: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as JSON objects tagged with ``section`` (NaN → null)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{"section": section, **row} for row in clean.to_dict("records")]


def write_results(params: Params, tables: Mapping[str, pd.DataFrame], *,
                  confusion: Confusion | Mapping[str, Confusion] | None = None,
                  settings: Mapping[str, Any] | None = None) -> list[Path]:
    """Write one JSON per (generation, language) present in ``tables`` (section name → table with
    ``generation`` and ``language`` columns, e.g. ``fairness``, ``shares``, ``clip``, ``amplification``),
    atomically; returns the paths. Each holds ``format``, ``experiment``, ``generation``, ``language``,
    ``rows`` (every table's rows of that group, with ``section``) and ``provenance``."""
    from biaslib.evaluate import _git

    commit, dirty = _git()
    keys = sorted({k for t in tables.values() for k in zip(t["generation"], t["language"])})
    paths = []
    for generation, code in keys:
        rows = [r for section, table in tables.items()
                for r in _json_rows(section, table[(table["generation"] == generation) & (table["language"] == code)])]
        chosen = _confusion_of(confusion, generation)
        record = {"format": RESULT_FORMAT, "experiment": params.experiment, "generation": generation, "language": code,
                  "rows": rows,
                  "provenance": {"biaslib_version": __version__, "git_commit": commit, "git_dirty": dirty,
                                 "params_digest": params.digest(), "seed": params.seed,
                                 "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 "confusion": {"labels": list(chosen.labels), "counts": chosen.counts.tolist()},
                                 "settings": json.loads(json.dumps(dict(settings or {}), default=str))}}
        path = result_path(params, generation, code)
        write_json(path, record)
        paths.append(path)
    return paths


def collect(root: Params | str | os.PathLike) -> pd.DataFrame:
    """Every multilingual result JSON under ``root`` (params, a run folder, or its ``results/multilingual``)
    as one tidy frame: the rows plus ``experiment``, ``created_utc`` and ``file``. Raises
    :class:`~biaslib.errors.DataLayoutError` naming a file that is not such a result."""
    if isinstance(root, Params):
        folder = root.run_dir / "results" / "multilingual"
    else:
        folder = Path(root)
        folder = next((f for f in (folder / "results" / "multilingual", folder / "multilingual") if f.is_dir()), folder)
    frames = []
    for path in sorted(folder.glob("*__*__*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataLayoutError(f"{path}: not a readable JSON file ({exc})") from exc
        if not isinstance(record, dict) or record.get("format") != RESULT_FORMAT:
            raise DataLayoutError(f"{path}: not a multilingual result (expected format {RESULT_FORMAT})")
        frames.append(pd.DataFrame(record["rows"]).assign(
            experiment=record["experiment"], created_utc=record["provenance"].get("created_utc"), file=str(path)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def evaluate_multilingual(params: Params, generations: Sequence[str] | None = None,
                          languages: Sequence[str] | None = None, *, world: Any = None,
                          confusion: Confusion | Mapping[str, Confusion] | None = None,
                          clip: tuple[str | os.PathLike, str] | None = None, faces: pd.DataFrame | None = None,
                          n_boot: int = 1000, seed: int = 0, amplification_boot: int = 300) -> dict[str, pd.DataFrame]:
    """The whole evaluation of ``generations`` (default: ``multilingual.eval_models``) in ``languages``
    (default: all): labels, counts, shares, fairness, CLIP score (``clip`` = (checkpoint, model name); None:
    skipped with a warning) and amplification against :func:`world_people`; writes the result JSONs and
    returns the tables ``labels``, ``counts``, ``shares``, ``fairness``, ``language_gaps``, ``finetune_change``,
    ``clip``, ``amplification``."""
    from biaslib.world import World

    world = world or World(params.world, params.seed)
    chosen = list(generations if generations is not None else params.multilingual.eval_models)
    labels = pd.concat([image_labels(params, g, code, world=world, faces=faces) for g in chosen
                        for code in _default_languages(params, g, languages)], ignore_index=True)
    counts = counts_of(labels)
    settings = {"n_boot": n_boot, "seed": seed, "clip": [str(c) for c in clip] if clip else None}
    tables = {
        "shares": share_table(counts, confusion, n_boot=n_boot, seed=seed),
        "fairness": fairness_table(counts, confusion, n_boot=n_boot, seed=seed),
        "clip": clip_scores(labels, params, clip[0] if clip else None, clip[1] if clip else "", n_boot=n_boot,
                            seed=seed),
        "amplification": generator_amplification(labels, world_people(params, sorted(set(labels["occupation"])),
                                                                      world=world), n_boot=amplification_boot,
                                                 seed=seed),
    }
    tables["language_gaps"] = fairness_contrasts(counts, confusion, by="language", reference="en", n_boot=n_boot,
                                                 seed=seed)
    tables["finetune_change"] = fairness_contrasts(counts, confusion, by="generation", reference="base",
                                                   n_boot=n_boot, seed=seed)
    write_results(params, tables, confusion=confusion, settings=settings)
    return {"labels": labels, "counts": counts, **tables}


__all__ = [
    "EXACT",
    "LABELS",
    "METRICS",
    "RESULT_FORMAT",
    "clip_scores",
    "collect",
    "counts_of",
    "evaluate_multilingual",
    "fairness_contrasts",
    "fairness_table",
    "find_clip_checkpoint",
    "gender_counts",
    "generation_confusion",
    "generator_amplification",
    "image_labels",
    "render_confusion",
    "result_path",
    "share_table",
    "stated_confusion",
    "world_people",
    "write_results",
]
