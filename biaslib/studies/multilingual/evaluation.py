"""Evaluation of the multilingual study's generated images per language, before vs after fine-tuning.

For each generation set (``data``, ``base``, ``finetuned``; :mod:`.pipeline`) and language:

* :func:`image_labels` / :func:`gender_counts`: one outcome per image (``man``, ``woman``, ``no_face``,
  ``multiple_faces``, ``other``; :mod:`biaslib.faces.counts`) and their counts per occupation. On the
  synthetic world the labels are the simulator's ground truth for simulated images, else the world's
  attribute classifier (it reads the whole image, so ``no_face`` and ``multiple_faces`` are 0); for real
  images they come from a :mod:`biaslib.faces` table (``key``, ``outcome``, optional ``language``).
* The classifier's confusion (:class:`~biaslib.metrics.correction.Confusion`) on images of known gender:
  world renders degraded like the generator's output (:func:`render_confusion`) or the generator's own
  images of prompts that state the gender (:func:`stated_confusion`, as :mod:`biaslib.world_models.fidelity`).
* :func:`share_table`: raw and corrected p(woman) per occupation (:func:`~biaslib.metrics.correction.corrected_shares`).
* :func:`fairness_table`: MAGBIG fairness (:func:`~biaslib.metrics.magbig_fairness`) on raw and on
  corrected counts with bootstrap CIs; :func:`fairness_contrasts`: differences between languages (or
  between base and fine-tuned) with CIs.
* :func:`clip_scores`: CLIP score of every image with its prompt, per generation set and language.
* :func:`generator_amplification`: bias amplification of a generation set against the world's data.
* :func:`evaluate_multilingual` writes one JSON per (experiment, generation, language) to
  ``<run>/results/multilingual/<experiment>__<generation>__<language>.json`` through
  :func:`biaslib.provenance.write_result` (the one result schema, study ``multilingual``);
  ``biaslib.results.collect(params, study="multilingual")`` reads them back into one tidy DataFrame.

Bootstrap (every CI here, percentile, ``n_boot`` draws, seeded): each draw resamples the classified
images of every occupation and, for corrected scores, every row of the calibration confusion counts; the
confusion draws are shared by all languages of a generation set (one classifier), the image draws are
independent per (generation, language). An occupation's images come from several prompts (e.g. 3 prompts ×
4 seeds). ``resample="images"`` (default) resamples the occupation's images as one pool (a multinomial draw
of its two label counts, man/woman or light/dark, with its classified total); ``resample="prompts"`` (counts per
prompt: :func:`counts_of` ``by_prompt=True``, what :func:`evaluate_multilingual` passes) resamples whole prompts within
each occupation, for prompts seen as a sample from a population of ways to ask. Measured coverage of a 95%
share interval (tests/test_multilingual_eval.py, docs/statistics.md "Images of one prompt"): with 3 prompts ×
4 images, pooling covers the fixed prompts' mean (≥ 95%) and under-covers a population of very different prompts
(≈ 90%), while whole-prompt resampling of only 3 prompts under-covers it too (≈ 85%); with 12 prompts per occupation
whole-prompt resampling covers both (≈ 93–95%). Resampling images within each prompt (stratified) is not
offered: with 4 images per prompt its plug-in variance under-covers (≈ 90%) even for fixed prompts.
Occupations with no
classified face are reported (``n_excluded``, ``excluded``) and left out of every mean, never divided by.

Two attributes are scored the same way (column ``attribute``): ``gender`` (labels ``man``/``woman``, share of
women) and ``skin`` (``light``/``dark``: world skin tone 1–3 vs 4–6, or Chardon's ITA categories very
light/light/intermediate vs tan/brown/dark for a faces table with ``ita``; share of dark skin). Skin scores
are raw readings (no confusion correction) and measure the distance from a 50/50 light/dark split per
occupation, with the same floors and tests as gender. Each attribute is scored on its own count columns (the MAGBIG
kernels are told which: ``labels=ATTRIBUTE_LABELS[attribute]``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import Params
from biaslib.errors import DataLayoutError
from biaslib.faces.counts import GENDER_ALIASES, OUTCOMES, face_counts, image_outcomes
from biaslib.faces.world_confusion import classify_gender, render_confusion, through_resolution
from biaslib.io import check_writable
from biaslib.metrics import amplification_table, clip_score, paired_cosine
from biaslib.metrics._checks import check_ci
from biaslib.metrics.correction import (
    Confusion,
    corrected_shares,
    estimate_confusion,
    rate_draws,
)
from biaslib.metrics.intervals import percentile_interval
from biaslib.metrics.magbig import (
    MAGBIG_SCORES,
    fair_floors,
    mean_l1_difference,
    mean_l1_inference,
    occupation_share_draws,
    point_scores,
    score_draws,
)
from biaslib.prompts import resolve_language
from biaslib.provenance import git_state, is_current, provenance, result_record, write_result
from biaslib.studies.multilingual.layout import MultilingualLayout
from biaslib.studies.multilingual.legacy_digest import legacy_digest
from biaslib.studies.multilingual.pipeline import (
    GENERATIONS,
    check_generated,
    generation_captions,
    generation_config,
    generation_dir,
    image_languages,
    language_codes,
)
from biaslib.study_registry import study_digest

log = logging.getLogger(__name__)

LABELS: tuple[str, ...] = ("man", "woman")
#: The scored attributes and their (reference, counted) labels: the share reported is that of the second.
ATTRIBUTE_LABELS: dict[str, tuple[str, str]] = {"gender": LABELS, "skin": ("light", "dark")}
#: Scores of :func:`fairness_table`: mean p(woman) over occupations, then MAGBIG's (formats.md C6).
METRICS: tuple[str, ...] = ("share_woman", *MAGBIG_SCORES)
#: Columns of :func:`fairness_table`.
FAIRNESS_COLUMNS: list[str] = ["generation", "language", "attribute", "correction", "metric", "value", "ci_low",
                               "ci_high", "floor", "excess", "p_fair", "n_occupations", "n_excluded", "excluded",
                               "classified", "labels"]
#: An exact labeller (simulator ground truth): corrected shares equal the raw ones, with no extra spread.
EXACT = Confusion(LABELS, np.eye(2, dtype=np.int64))
_SQRT2 = math.sqrt(2.0)


# ---- labels and counts ----------------------------------------------------------------------------------

def _default_languages(params: Params, generation: str, languages: Sequence[str] | None) -> list[str]:
    """Codes of ``languages``, default: every language the generation set has."""
    default = image_languages(params) if generation == "data" else params.multilingual.languages
    return language_codes(languages if languages is not None else default)


def _table_outcomes(table: pd.DataFrame, keys: pd.Series, code: str) -> tuple[np.ndarray, np.ndarray]:
    """(outcome, skin) per key from a faces table (``key``/``id``, ``outcome`` or ``n_faces`` + ``gender``,
    optional ``language``; skin from ``skin`` = light/dark or ``ita``, else None); a key the table lacks is an
    error naming how many."""
    key = "key" if "key" in table.columns else "id"
    rows = table
    if "language" in table.columns:
        rows = table[table["language"].map(resolve_language) == code]
    if "outcome" in rows.columns:
        outcome = rows["outcome"].astype(str).map(lambda v: GENDER_ALIASES.get(v, v))
    else:
        outcome = pd.Series(image_outcomes(rows["n_faces"], rows["gender"].tolist()), index=rows.index)
    if "skin" in rows.columns:
        skin = rows["skin"].where(rows["skin"].isin(ATTRIBUTE_LABELS["skin"]), None)
    elif "ita" in rows.columns:
        skin = pd.Series(skin_of_ita(rows["ita"].to_numpy(dtype=np.float64)), index=rows.index)
    else:
        skin = pd.Series(None, index=rows.index, dtype=object)
    by_key = dict(zip(rows[key].astype(str), zip(outcome, skin)))
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DataLayoutError(f"the faces table has no row for {len(missing)} image(s) of language {code}, e.g. "
                              f"{missing[:3]}; analyse every generated image (biaslib faces analyse)")
    pairs = [by_key[k] for k in keys]
    return np.array([o for o, _ in pairs], dtype=object), np.array([t for _, t in pairs], dtype=object)


def skin_of_ita(ita: np.ndarray) -> np.ndarray:
    """``light`` (Chardon very light, light, intermediate: ITA > 28°) or ``dark`` (tan, brown, dark) per ITA
    value ``(n,)`` in degrees; None where ITA is NaN (no single face measured)."""
    from biaslib.faces.skin import CHARDON_CATEGORIES, chardon_category

    light = set(CHARDON_CATEGORIES[:3])
    return np.array([None if c is None else ("light" if c in light else "dark") for c in chardon_category(ita)],
                    dtype=object)


def skin_of_world_tone(tone: np.ndarray) -> np.ndarray:
    """``light`` (world skin tone 1–3) or ``dark`` (4–6) per tone ``(n,)``; None where missing."""
    tone = pd.to_numeric(pd.Series(np.asarray(tone, dtype=object)), errors="coerce").to_numpy()
    return np.array([None if not np.isfinite(t) else ("light" if t <= 3 else "dark") for t in tone], dtype=object)


def image_labels(params: Params, generation: str, language: str, *, world: Any = None,
                 faces: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per generated image of a generation set in one language.

    Columns: ``generation``, ``language`` (code), ``key``, ``prompt_id``, ``occupation`` (the prompted
    profession), ``caption``, ``english``, ``outcome`` (:data:`~biaslib.faces.counts.OUTCOMES`), ``skin``
    (``light``/``dark``, None where not measured: module docstring) and ``labels`` (``simulator``, ``classifier``
    or ``faces``). With ``faces`` (a :mod:`biaslib.faces` table) its outcomes are used; else the world's
    (:func:`biaslib.world_models.measure.generated_attributes`).
    """
    from biaslib.world import World
    from biaslib.world_models.measure import generated_attributes

    code = language_codes([language])[0]
    out = check_generated(params, generation, code)
    captions = generation_captions(params, generation, code).set_index("key")
    if faces is not None:
        keys = captions.index.to_series()
        (outcome, skin), labels = _table_outcomes(faces, keys, code), "faces"
    else:
        attributes = generated_attributes(out, world or World(params.world, params.seed),
                                          MultilingualLayout(params).cache)
        keys, outcome = attributes["key"], attributes["gender"].map(GENDER_ALIASES).fillna("other").to_numpy()
        skin = skin_of_world_tone(attributes["skin_tone"].to_numpy())
        labels = attributes["labels"].iloc[0]
    rows = captions.loc[keys.to_numpy()]
    return pd.DataFrame({"generation": generation, "language": code, "key": keys.to_numpy(),
                         "prompt_id": rows["prompt_id"].to_numpy(), "occupation": rows["profession"].to_numpy(),
                         "caption": rows["caption"].to_numpy(), "english": rows["english"].to_numpy(),
                         "outcome": outcome, "skin": skin, "labels": labels})


def counts_of(labels: pd.DataFrame, occupations: Sequence[str] | None = None, *, by_prompt: bool = False
              ) -> pd.DataFrame:
    """Outcome counts per (generation, language, occupation) of an :func:`image_labels`-style table.

    Every occupation of ``occupations`` (default: those in ``labels``) is listed in every (generation,
    language), with zero counts when it has no image. Columns: ``generation``, ``language``, ``occupation``,
    (with ``by_prompt``: ``prompt_id``, one row per prompt of the occupation, every prompt seen in ``labels``
    listed in every group), ``images``, :data:`~biaslib.faces.counts.OUTCOMES`, ``classified``,
    ``share_woman`` (NaN without a classified face), ``light``, ``dark`` (faces of each skin reading; 0 when
    ``labels`` has no ``skin``), ``labels``.
    """
    names = list(dict.fromkeys(occupations if occupations is not None else labels["occupation"]))
    by = ["occupation", "prompt_id"] if by_prompt else ["occupation"]
    if by_prompt:
        seen = labels[by].drop_duplicates()
        absent = pd.DataFrame({"occupation": [n for n in names if n not in set(seen["occupation"])], "prompt_id": ""})
        groups: Any = pd.concat([seen, absent], ignore_index=True)
        groups = groups.iloc[np.argsort([names.index(o) for o in groups["occupation"]], kind="stable")]
    else:
        groups = names
    skin = labels["skin"] if "skin" in labels.columns else pd.Series(None, index=labels.index, dtype=object)
    parts = []
    for (generation, code), group in labels.groupby(["generation", "language"], sort=False):
        counts = face_counts(group, by, groups=groups)
        tones = pd.crosstab([group[c] for c in by], skin.loc[group.index]).reindex(columns=ATTRIBUTE_LABELS["skin"],
                                                                                  fill_value=0)
        counts = counts.join(tones, on=by).fillna({t: 0 for t in ATTRIBUTE_LABELS["skin"]})
        counts = counts.astype({t: np.int64 for t in ATTRIBUTE_LABELS["skin"]})
        parts.append(counts.assign(generation=generation, language=code, labels=group["labels"].iloc[0]))
    frame = pd.concat(parts, ignore_index=True)
    return frame[["generation", "language", *by, "images", *OUTCOMES, "classified", "share_woman",
                  *ATTRIBUTE_LABELS["skin"], "labels"]]


def gender_counts(params: Params, generation: str, languages: Sequence[str] | None = None, *, world: Any = None,
                  faces: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`counts_of` the :func:`image_labels` of a generation set in each of ``languages`` (default: all)."""
    labels = pd.concat([image_labels(params, generation, code, world=world, faces=faces)
                        for code in _default_languages(params, generation, languages)], ignore_index=True)
    return counts_of(labels)


# ---- classifier confusion --------------------------------------------------------------------------------

def stated_confusion(pipe: Any, world: Any, cache_dir: str | os.PathLike, *, per_prompt: int = 8, seed: int = 5000,
                     steps: int = 20, guidance: float = 3.0) -> Confusion:
    """Confusion of the world classifier on ``pipe``'s images of prompts that state the gender
    (:data:`biaslib.world_models.fidelity.STATED_PROMPTS`, ``per_prompt`` images each): the classifier's error on
    this generator's output."""
    from biaslib.world_models.fidelity import STATED_PROMPTS, sample_images

    prompts = [p for p in STATED_PROMPTS for _ in range(per_prompt)]
    images = sample_images(pipe, prompts, seed, steps=steps, guidance=guidance)
    true = [STATED_PROMPTS[p][0] for p in prompts]
    read = classify_gender(images, world, cache_dir, through_resolution(images, world))
    return estimate_confusion(true, read, LABELS)


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
    from biaslib.data.generated import load_generated_images, read_generated
    from biaslib.generate import load_pipeline
    from biaslib.world import World

    if source not in ("stated", "renders"):
        raise ValueError(f"confusion source must be 'stated' or 'renders', got {source!r}")
    config = generation_config(params, generation)
    if config.model == "simulator":
        return EXACT
    world = world or World(params.world, params.seed)
    cache = MultilingualLayout(params).cache
    if source == "stated":
        return stated_confusion(load_pipeline(config), world, cache, per_prompt=per_prompt, steps=config.steps,
                                guidance=config.guidance)
    out = check_generated(params, generation, _default_languages(params, generation, None)[0])
    first = load_generated_images(out, [read_generated(out)["key"].iloc[0]])
    return render_confusion(world, cache, n=n_renders, resolution=through_resolution(list(first.values()), world))


def _confusion_of(confusion: Confusion | Mapping[str, Confusion] | None, generation: str) -> Confusion:
    """The confusion of one generation set: a single one, a mapping by generation, or None (exact)."""
    if isinstance(confusion, Mapping):
        return confusion.get(generation) or EXACT
    return confusion or EXACT


# ---- shares and fairness -----------------------------------------------------------------------------------

def per_occupation(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`counts_of` rows per prompt (with ``prompt_id``) summed per (generation, language, occupation);
    rows without ``prompt_id`` are returned unchanged."""
    if "prompt_id" not in counts.columns:
        return counts
    keys = ["generation", "language", "occupation"]
    summed = [c for c in counts.columns if c not in (*keys, "prompt_id") and pd.api.types.is_integer_dtype(counts[c])]
    first = counts.groupby(keys, sort=False).first().drop(columns=[*summed, "prompt_id"])
    out = counts.groupby(keys, sort=False)[summed].sum().join(first).reset_index()
    if "share_woman" in out.columns:
        classified = out["classified"].to_numpy(dtype=np.float64)
        share = np.full(len(out), np.nan)
        np.divide(out["woman"].to_numpy(dtype=np.float64), classified, out=share, where=classified > 0)
        out["share_woman"] = share
    return out[[c for c in counts.columns if c != "prompt_id"]]


def share_table(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                n_boot: int = 1000, seed: int = 0, ci: float = 0.95, attribute: str = "gender") -> pd.DataFrame:
    """Raw and corrected share of the attribute's counted label (p(woman), p(dark skin)) per (generation,
    language, occupation) with bootstrap CIs (the occupation's images resampled as one stratum).

    ``counts``: :func:`counts_of` rows (per prompt rows are summed per occupation); ``confusion``: one, one per
    generation set, or None (exact labels); skin is not corrected. Returns the per-occupation counts plus
    ``attribute`` and the columns of :func:`~biaslib.metrics.correction.corrected_shares`.
    """
    reference, counted = _check_attribute(attribute)
    exact = Confusion((reference, counted), np.eye(2, dtype=np.int64))
    parts = []
    for generation, group in per_occupation(counts).groupby("generation", sort=False):
        chosen = _confusion_of(confusion, generation) if attribute == "gender" else exact
        parts.append(corrected_shares(group, chosen, label=counted, n_boot=n_boot, seed=seed, ci=ci)
                     .assign(attribute=attribute))
    return pd.concat(parts, ignore_index=True)


def _metric_names(attribute: str) -> tuple[str, ...]:
    """:data:`METRICS` of one attribute: its share (``share_woman``, ``share_dark``) then MAGBIG's scores."""
    return (f"share_{_check_attribute(attribute)[1]}", *METRICS[1:])


def _check_attribute(attribute: str) -> tuple[str, str]:
    """The (reference, counted) labels of ``attribute``; an unknown one is an error listing the choices."""
    if attribute not in ATTRIBUTE_LABELS:
        raise ValueError(f"unknown attribute {attribute!r}; choose one of {', '.join(ATTRIBUTE_LABELS)}")
    return ATTRIBUTE_LABELS[attribute]


def _named(scores: dict[str, Any], share: str) -> dict[str, Any]:
    """MAGBIG scores with their ``share`` entry named for the attribute (``share_woman``, ``share_dark``)."""
    return {share if key == "share" else key: value for key, value in scores.items()}


def _all_draws(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None, n_boot: int,
               seed: int, attribute: str = "gender", resample: str = "images"
               ) -> dict[tuple[str, str], tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(generation, language) → (its rows, one per occupation: ``occupation``, ``generation``, ``language``,
    ``labels`` where ``counts`` has it, the attribute's reference and counted label counts under their own names
    (``man``/``woman`` or ``light``/``dark``) and ``classified``, their sum;
    :func:`~biaslib.metrics.magbig.occupation_share_draws`), confusion draws shared within a generation. Counts per
    prompt (a ``prompt_id`` column) are summed per occupation for the rows and kept apart for the draws. Skin is
    never corrected (the exact confusion)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    reference, counted = _check_attribute(attribute)
    missing = [c for c in ("generation", "language", "occupation", reference, counted) if c not in counts.columns]
    if missing:
        raise ValueError(f"counts lacks columns {missing}; it has {list(counts.columns)}")
    counts = counts.assign(classified=counts[reference] + counts[counted])
    kept = [c for c in ("generation", "language", "labels") if c in counts.columns]
    exact = Confusion((reference, counted), np.eye(2, dtype=np.int64))
    rng = np.random.default_rng(seed)
    out = {}
    for generation, rows in counts.groupby("generation", sort=False):
        chosen = _confusion_of(confusion, generation) if attribute == "gender" else exact
        rates_drawn = rate_draws(chosen, n_boot=n_boot, rng=rng)
        for code, group in rows.groupby("language", sort=False):
            by_occupation = group.groupby("occupation", sort=False)
            strata = [part[[reference, counted]].to_numpy(dtype=np.int64) for _, part in by_occupation]
            first = by_occupation.head(1).set_index("occupation")[kept]
            summed = by_occupation[[reference, counted, "classified"]].sum()
            frame = first.join(summed).reset_index()
            out[(generation, code)] = (frame, occupation_share_draws(strata, chosen.rates, rates_drawn, rng=rng,
                                                                     resample=resample))
    return out


def fairness_table(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                   n_boot: int = 1000, seed: int = 0, ci: float = 0.95, occupations: int = 10,
                   images: int = 10, attribute: str = "gender", resample: str = "images") -> pd.DataFrame:
    """MAGBIG fairness per (generation, language) on raw and on corrected counts, with bootstrap CIs.

    Parameters
    ----------
    counts : :func:`counts_of` rows (``generation``, ``language``, ``occupation``, optional ``prompt_id``, and
        the attribute's label counts: ``man``/``woman`` or ``light``/``dark``).
    confusion : the classifier's gender confusion (one, a mapping generation → confusion, or None = exact
        labels); skin readings are not corrected (only ``raw`` rows).
    n_boot, seed, ci : bootstrap (module docstring: classified images resampled within occupation, or whole
        prompts with ``resample="prompts"`` and counts per prompt; confusion rows resampled),
        ``numpy.random.default_rng`` seed, interval level.
    occupations, images : k and n of the expected max (k is capped at the occupations with a face).
    attribute : ``gender`` (share of women) or ``skin`` (share of dark skin): :data:`ATTRIBUTE_LABELS`.

    Returns
    -------
    DataFrame
        One row per (generation, language, correction ∈ {raw, corrected}, metric: the share, then MAGBIG's),
        columns :data:`FAIRNESS_COLUMNS`: ``value`` (scores in [0, 1]; point value =
        :func:`~biaslib.metrics.magbig_fairness` on the raw counts, or on corrected counts reference = (1 − p̂)·n,
        counted = p̂·n), ``ci_low``, ``ci_high``, ``n_occupations`` (with a classified face), ``n_excluded`` and
        ``excluded`` (occupations without one, comma-separated), ``classified`` (faces), ``labels``. ``floor``:
        what a fair generator (p = ½ per occupation) scores on average with the same classified faces per
        occupation (mean L1/L2 and expected max; NaN for the other metrics; for corrected shares a lower
        bound, as correction adds spread) and ``excess`` = value − floor. One more row per group, metric
        ``mean_l1_bc`` on raw counts: the bias-corrected mean L1 with an interval that covers whatever its
        remaining bias (coverage by occupations, faces and shares: docs/statistics.md) and ``p_fair``, the p-value
        of "every occupation's p is ½" (:func:`~biaslib.metrics.mean_l1_inference`).
    """
    check_ci(ci)
    names = _metric_names(attribute)
    rows = []
    for (generation, code), (group, draws) in _all_draws(counts, confusion, n_boot, seed, attribute,
                                                         resample).items():
        empty = group["occupation"][(group["classified"] == 0).to_numpy()].tolist()
        common = {"generation": generation, "language": code, "attribute": attribute,
                  "n_occupations": len(group) - len(empty), "n_excluded": len(empty),
                  "excluded": ",".join(map(str, empty)), "classified": int(group["classified"].sum()),
                  "labels": group["labels"].iloc[0] if "labels" in group.columns else None}
        floors = _floors(group, occupations, images)
        for correction, (point, boot) in draws.items():
            if attribute != "gender" and correction == "corrected":
                continue
            values = _named(point_scores(point, group["classified"], occupations, images), names[0])
            spread = _named(score_draws(boot, occupations, images), names[0])
            for metric in names:
                low, high = percentile_interval(spread[metric], ci)
                floor = floors.get(metric, float("nan"))
                rows.append({**common, "correction": correction, "metric": metric, "value": values[metric],
                             "ci_low": low, "ci_high": high, "floor": floor, "excess": values[metric] - floor,
                             "p_fair": float("nan")})
        if common["n_occupations"] > 0:
            rows.append(_bias_corrected_row(common, group, floors, n_boot, seed, ci, _check_attribute(attribute)))
    return pd.DataFrame(rows, columns=FAIRNESS_COLUMNS)


def _floors(group: pd.DataFrame, occupations: int, images: int) -> dict[str, float]:
    """What a fair generator (p = ½ everywhere) scores on average with this group's classified faces per
    occupation (:func:`~biaslib.metrics.magbig.fair_floors`): the floor of the plug-in mean L1/L2, and the
    expected max of k fair occupations (k capped at the occupations with a face)."""
    classified = group["classified"].to_numpy()
    classified = classified[classified > 0]
    if len(classified) == 0:
        return {}
    floors = fair_floors(classified, min(occupations, len(classified)), images)
    return {"mean_l1": floors["floor_mean_l1"], "mean_l2": floors["floor_mean_l2"],
            "exp_max_l1": floors["floor_exp_max_l1"], "exp_max_l2": floors["floor_exp_max_l1"] / _SQRT2}


def _face_counts(group: pd.DataFrame, labels: tuple[str, str]) -> pd.DataFrame:
    """``occupation`` and the two ``labels`` columns (reference, counted; e.g. ``light``, ``dark``) of a group's
    occupations with a face."""
    kept = group[group["classified"] > 0]
    return pd.DataFrame({"occupation": kept["occupation"], **{label: kept[label] for label in labels}})


def _bias_corrected_row(common: dict[str, Any], group: pd.DataFrame, floors: dict[str, float], n_boot: int,
                        seed: int, ci: float, labels: tuple[str, str]) -> dict[str, Any]:
    """The ``mean_l1_bc`` row on raw counts of the ``labels`` columns (:func:`~biaslib.metrics.mean_l1_inference`):
    the bias-corrected mean L1 with its bias-aware interval and ``p_fair``, the test of "every p is ½"."""
    result = mean_l1_inference(_face_counts(group, labels), n_boot=n_boot, ci=ci, seed=seed, labels=labels)
    return {**common, "correction": "raw", "metric": "mean_l1_bc", "value": result.value,
            "ci_low": result.ci_low, "ci_high": result.ci_high, "floor": floors["mean_l1"],
            "excess": result.value - floors["mean_l1"], "p_fair": result.p_value}


#: Columns of :func:`fairness_contrasts`.
CONTRAST_COLUMNS: list[str] = ["generation", "language", "reference", "attribute", "correction", "metric", "value",
                               "ci_low", "ci_high", "p_value"]


def fairness_contrasts(counts: pd.DataFrame, confusion: Confusion | Mapping[str, Confusion] | None = None, *,
                       by: str = "language", reference: str = "en", metrics: Sequence[str] | None = None,
                       n_boot: int = 1000, seed: int = 0, ci: float = 0.95, occupations: int = 10,
                       images: int = 10, attribute: str = "gender", resample: str = "images") -> pd.DataFrame:
    """Differences of fairness scores against a reference group, with bootstrap CIs.

    ``by="language"``: each language minus ``reference`` (a language code) within the same generation set;
    ``by="generation"``: each generation set minus ``reference`` (e.g. ``base``) within the same language.
    ``metrics``: default the attribute's share and ``mean_l1``. The difference of the point values; its CI is
    the percentile interval of the per-draw differences (the two groups' images resampled independently as in
    :func:`fairness_table`, conservative for the paired seeds; shared confusion draws within a generation set).
    Scores use the occupations with a classified face in each group. Returns :data:`CONTRAST_COLUMNS`; with
    ``mean_l1`` among ``metrics`` also a ``mean_l1_bc`` row per pair on raw counts: the difference of the
    small-sample-bias-corrected mean L1s with an interval that covers whatever their remaining bias, and its p-value
    (:func:`~biaslib.metrics.mean_l1_difference`; coverage in docs/statistics.md).
    """
    check_ci(ci)
    if by not in ("language", "generation"):
        raise ValueError(f"by must be 'language' or 'generation', got {by!r}")
    names = _metric_names(attribute)
    labels = _check_attribute(attribute)
    metrics = list(metrics if metrics is not None else names[:2])
    unknown = sorted(set(metrics) - set(names))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose among {names}")
    draws = _all_draws(counts, confusion, n_boot, seed, attribute, resample)
    rows = []
    for (generation, code), (group, groups) in draws.items():
        other = (generation, reference) if by == "language" else (reference, code)
        if other == (generation, code) or other not in draws:
            continue
        ref_group, ref_groups = draws[other]
        for correction, (point, boot) in groups.items():
            if attribute != "gender" and correction == "corrected":
                continue
            ref_point, ref_boot = ref_groups[correction]
            values = _named(point_scores(point, group["classified"], occupations, images), names[0])
            ref_values = _named(point_scores(ref_point, ref_group["classified"], occupations, images), names[0])
            spread = _named(score_draws(boot, occupations, images), names[0])
            ref_spread = _named(score_draws(ref_boot, occupations, images), names[0])
            for metric in metrics:
                low, high = percentile_interval(spread[metric] - ref_spread[metric], ci)
                rows.append({"generation": generation, "language": code, "reference": reference,
                             "attribute": attribute, "correction": correction, "metric": metric,
                             "value": values[metric] - ref_values[metric], "ci_low": low, "ci_high": high,
                             "p_value": float("nan")})
        if "mean_l1" in metrics:
            result = mean_l1_difference(_face_counts(group, labels), _face_counts(ref_group, labels), ci=ci,
                                        labels=labels)
            rows.append({"generation": generation, "language": code, "reference": reference, "attribute": attribute,
                         "correction": "raw", "metric": "mean_l1_bc", "value": result.value,
                         "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value})
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


# ---- CLIP score -----------------------------------------------------------------------------------------------

def find_clip_checkpoint(params: Params) -> tuple[Path, str] | None:
    """(checkpoint, open_clip model name) of the CLIP named by ``multilingual.clip_params`` (an
    amplification-study params file, relative to the repository root) at ``multilingual.clip_ratio``, or None
    (with a warning naming what is missing) when no file is named or its CLIP has not been trained. Never
    reads another params file than the one named."""
    from biaslib.config import REPO_ROOT, load_params
    from biaslib.models import CheckpointError
    from biaslib.train import latest_checkpoint

    named = params.multilingual.clip_params
    if named is None:
        log.warning("multilingual.clip_params is not set: no CLIP checkpoint (set it to the params file of a "
                    "trained amplification study, e.g. params/default.yaml, or pass one)")
        return None
    path = named if named.is_absolute() else REPO_ROOT / named
    clip_params = load_params(path)
    try:
        return latest_checkpoint(clip_params, params.multilingual.clip_ratio), clip_params.train.model
    except CheckpointError as err:
        log.warning("no CLIP of %s at ratio %s (%s): train it first (make demo)", path,
                    params.multilingual.clip_ratio, err)
        return None


def choose_clip(params: Params, checkpoint: str | os.PathLike | None = None,
                model: str | None = None) -> tuple[Path, str] | None:
    """The CLIP that scores the images, chosen one way for the notebook and the CLI: ``checkpoint`` (a local
    open_clip checkpoint) with its open_clip ``model`` name, else :func:`find_clip_checkpoint` (the CLIP of
    ``multilingual.clip_params`` at ``multilingual.clip_ratio``, or None). A checkpoint without its model name, or a
    model name without a checkpoint, is a ``ValueError``: the architecture is never guessed."""
    if checkpoint is None and model is None:
        return find_clip_checkpoint(params)
    if checkpoint is None or not model:
        raise ValueError("a CLIP checkpoint needs its open_clip model name and a model name its checkpoint "
                         f"(got checkpoint {checkpoint!r}, model {model!r}; e.g. biaslib-tiny-rn)")
    return Path(checkpoint), model


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
    from biaslib.data.generated import load_generated_images
    from biaslib.features import extract_image_features, extract_text_features
    from biaslib.models import load_clip

    model, preprocess, tokenizer = load_clip(checkpoint, model_name, device=device)
    rng = np.random.default_rng(seed)
    rows = []
    for (generation, code), part in groups:
        found = load_generated_images(generation_dir(params, generation, code), list(part["key"]))
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


def generator_amplification(labels: pd.DataFrame, train: pd.DataFrame, *,
                            confusion: Confusion | Mapping[str, Confusion] | None = None, n_boot: int = 500,
                            seed: int = 0) -> pd.DataFrame:
    """Gender × occupation amplification of generated images (``labels``: :func:`image_labels` rows, the
    prompted profession as the task and images with a man/woman outcome) against ``train`` people
    (``occupation``, ``gender``; e.g. :func:`world_people`), per (generation, language): raw, corrected with
    the generation set's ``confusion`` and the faithful generator's baseline read the same way.

    Returns the rows of :func:`biaslib.metrics.amplification_table` plus ``generation``, ``language``.
    """
    people = labels[labels["outcome"].isin(LABELS)].rename(columns={"outcome": "gender"})
    parts = [amplification_table(train, part, confusion=_confusion_of(confusion, generation), n_boot=n_boot,
                                 seed=seed).assign(generation=generation, language=code)
             for (generation, code), part in people.groupby(["generation", "language"], sort=False)]
    return pd.concat(parts, ignore_index=True)


# ---- results ----------------------------------------------------------------------------------------------

def result_path(params: Params, generation: str, language: str) -> Path:
    """``<run>/results/multilingual/<experiment>__<generation>__<language>.json``."""
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation set {generation!r}; choose one of {', '.join(GENERATIONS)}")
    return MultilingualLayout(params).multilingual_results / f"{params.experiment}__{generation}__{language}.json"


def _json_rows(section: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as JSON objects tagged with ``section`` (NaN → null)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{"section": section, **row} for row in clean.to_dict("records")]


def write_results(params: Params, tables: Mapping[str, pd.DataFrame], *,
                  confusion: Confusion | Mapping[str, Confusion] | None = None,
                  settings: Mapping[str, Any] | None = None, overwrite: bool = False) -> list[Path]:
    """Write one result per (generation, language) present in ``tables`` (section name → table with
    ``generation`` and ``language`` columns, e.g. ``fairness``, ``shares``, ``clip``, ``amplification``) through
    :func:`~biaslib.provenance.write_result` (study ``multilingual``, evaluation ``multilingual``, subject
    generation and language; ``rows``: every table's rows of that group, with ``section``; the provenance holds
    the confusion used). A result with the same ``settings`` is kept, one with other settings is an error unless
    ``overwrite``. Returns the paths."""
    git = git_state()
    keys = sorted({k for t in tables.values() for k in zip(t["generation"], t["language"])})
    paths = []
    for generation, code in keys:
        rows = [r for section, table in tables.items()
                for r in _json_rows(section, table[(table["generation"] == generation) & (table["language"] == code)])]
        chosen = _confusion_of(confusion, generation)
        record = result_record("multilingual", params.experiment, "multilingual",
                               {"generation": generation, "language": code}, rows,
                               provenance(params, settings or {}, study="multilingual", git=git, confusion={
                                   "labels": list(chosen.labels), "counts": chosen.counts.tolist()}))
        path = result_path(params, generation, code)
        if overwrite or not is_current(path, as_recorded(path, record["provenance"]["settings"], params)):
            write_result(path, record, overwrite=overwrite)
        paths.append(path)
    return paths


def eval_settings(params: Params, *, n_boot: int, seed: int, clip: tuple[str | os.PathLike, str] | None,
                  amplification_boot: int = 300, faces: bool = False) -> dict[str, Any]:
    """What an evaluation's numbers depend on (stored in each result's provenance, compared on a rerun): the
    study's params digest (:func:`~biaslib.study_registry.study_digest`), bootstrap sizes and seed, the resampling
    design, the CLIP checkpoint and the label source."""
    return {"params_digest": study_digest(params, "multilingual"), "n_boot": n_boot, "seed": seed,
            "resample": params.multilingual.eval_resample, "amplification_boot": amplification_boot,
            "clip": [str(c) for c in clip] if clip else None, "labels": "faces table" if faces else "world"}


def check_results(params: Params, generations: Sequence[str], languages: Sequence[str] | None,
                  settings: Mapping[str, Any], *, overwrite: bool = False) -> None:
    """Refuse (:class:`~biaslib.errors.BiaslibError` naming the file and every changed key) when a result of
    these generations and languages exists with other ``settings``, unless ``overwrite``; call it before heavy
    work. Results with the same settings are recomputed and kept as they are (the evaluation is deterministic)."""
    if overwrite:
        return
    for generation in generations:
        for code in _default_languages(params, generation, languages):
            path = result_path(params, generation, code)
            is_current(path, as_recorded(path, settings, params))


def as_recorded(path: Path, settings: Mapping[str, Any], params: Params) -> dict[str, Any]:
    """``settings`` as the result at ``path`` would have recorded them: a result written before the study had a
    digest of its own recorded the whole params file's (:func:`~.legacy_digest.legacy_digest`); where that equals
    the legacy digest of ``params``, the comparison uses it, so the result stays current."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["provenance"]["settings"]["params_digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return dict(settings)
    legacy = legacy_digest(params)
    return {**settings, "params_digest": legacy} if recorded == legacy else dict(settings)


def evaluate_multilingual(params: Params, generations: Sequence[str] | None = None,
                          languages: Sequence[str] | None = None, *, world: Any = None,
                          confusion: Confusion | Mapping[str, Confusion] | None = None,
                          clip: tuple[str | os.PathLike, str] | None = None, faces: pd.DataFrame | None = None,
                          n_boot: int | None = None, seed: int | None = None, amplification_boot: int = 300,
                          overwrite: bool = False) -> dict[str, pd.DataFrame]:
    """The whole evaluation of ``generations`` (default: ``multilingual.eval_models``) in ``languages``
    (default: all): labels, counts, shares, fairness, CLIP score (``clip`` = (checkpoint, model name); None:
    skipped with a warning) and amplification against :func:`world_people`; writes the result JSONs and
    returns the tables ``labels``, ``counts`` (per prompt), ``shares``, ``fairness``, ``language_gaps``,
    ``finetune_change`` (gender, and skin where the labels read it: column ``attribute``), ``clip``,
    ``amplification``. The bootstrap follows ``multilingual.eval_resample``; ``n_boot`` defaults to
    ``multilingual.eval_n_boot`` and ``seed`` to ``params.seed`` (the CLI's and the notebook's). An existing
    result with other settings (:func:`eval_settings`) is an error unless ``overwrite`` (:func:`check_results`,
    before any labelling)."""
    from biaslib.world import World

    seed = params.seed if seed is None else seed
    n_boot = params.multilingual.eval_n_boot if n_boot is None else n_boot
    chosen = list(generations if generations is not None else params.multilingual.eval_models)
    settings = eval_settings(params, n_boot=n_boot, seed=seed, clip=clip, amplification_boot=amplification_boot,
                             faces=faces is not None)
    check_results(params, chosen, languages, settings, overwrite=overwrite)
    check_writable(result_path(params, chosen[0], "en").parent)  # fail now, not after the work
    world = world or World(params.world, params.seed)
    labels = pd.concat([image_labels(params, g, code, world=world, faces=faces) for g in chosen
                        for code in _default_languages(params, g, languages)], ignore_index=True)
    counts = counts_of(labels, by_prompt=True)
    resample = params.multilingual.eval_resample
    attributes = [a for a in ATTRIBUTE_LABELS if a == "gender" or counts[list(ATTRIBUTE_LABELS[a])].to_numpy().any()]

    def each(function: Any, **kwargs: Any) -> pd.DataFrame:
        return pd.concat([function(counts, confusion, n_boot=n_boot, seed=seed, attribute=a, **kwargs)
                          for a in attributes], ignore_index=True)

    tables = {
        "shares": each(share_table),
        "fairness": each(fairness_table, resample=resample),
        "clip": clip_scores(labels, params, clip[0] if clip else None, clip[1] if clip else "", n_boot=n_boot,
                            seed=seed),
        "amplification": generator_amplification(labels, world_people(params, sorted(set(labels["occupation"])),
                                                                      world=world), confusion=confusion,
                                                 n_boot=amplification_boot, seed=seed),
        "language_gaps": each(fairness_contrasts, by="language", reference="en", resample=resample),
        "finetune_change": each(fairness_contrasts, by="generation", reference="base", resample=resample),
    }
    write_results(params, tables, confusion=confusion, settings=settings, overwrite=overwrite)
    return {"labels": labels, "counts": counts, **tables}


__all__ = [
    "ATTRIBUTE_LABELS",
    "CONTRAST_COLUMNS",
    "EXACT",
    "LABELS",
    "METRICS",
    "choose_clip",
    "clip_scores",
    "check_results",
    "counts_of",
    "eval_settings",
    "evaluate_multilingual",
    "fairness_contrasts",
    "fairness_table",
    "find_clip_checkpoint",
    "gender_counts",
    "generation_confusion",
    "generator_amplification",
    "image_labels",
    "per_occupation",
    "render_confusion",
    "result_path",
    "share_table",
    "skin_of_ita",
    "skin_of_world_tone",
    "stated_confusion",
    "world_people",
    "write_results",
]
