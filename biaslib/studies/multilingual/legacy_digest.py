"""The params digest that multilingual results recorded before each study had a digest of its own.

Until 2026-12-06 a result's ``settings.params_digest`` was the sha256 of the whole params file (every section but
``control`` and ``analysis``, ``runs_dir`` and other paths absolute), with the fields added after results were
first written left out while at their default. So that those results stay current, :func:`legacy_digest` computes
it again by that frozen rule: a field of :data:`FIELDS_THEN` counts unless it is in :data:`NEUTRAL_THEN` at that
default; a field added since counts only when it differs from its default. A result whose recorded digest equals
the legacy digest of today's params (and whose other settings are today's) is current; any other is recomputed
under the multilingual study's own digest (:func:`biaslib.study_registry.study_digest`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from biaslib.config import AMPLIFIED_DEFAULT, CONCEPTS, Params

#: The keys of a params file then, and each section's fields then.
FIELDS_THEN: dict[str, tuple[str, ...]] = {
    "experiment": (), "seed": (), "runs_dir": (), "variants": (),
    "world": ("image_size", "bias_strength", "p_no_occupation", "p_object", "jpeg_quality", "captions"),
    "export": ("cc3m_samples", "cc3m_shard_size", "phase_val", "coco_images", "coco_captions_per_image",
               "fairface_train", "fairface_val", "geode_per_object_region", "magbig_languages", "workers",
               "fairface_occupations"),
    "generate": ("model", "amplification", "amplified", "language_shift", "scheduler", "steps", "guidance",
                 "resolution", "negative_prompt", "batch_size", "image_format", "quality", "output_size", "dtype",
                 "device", "compile", "safety_checker", "shard_size", "seed", "per_replicate"),
    "mix": ("ratios", "seed", "generated", "allow_shortfall", "allow_skipped_real"),
    "train": ("model", "epochs", "batch_size", "lr", "wd", "warmup", "precision", "workers", "gpus",
              "train_num_samples", "save_frequency", "seed", "extra_args", "replicates", "warm_start_epochs",
              "probe_ratios"),
    "eval": ("evaluations", "data_root", "phase_root", "coco_bias_root", "fairface_root", "geode_root",
             "phase_split", "coco_bias_split", "fairface_split", "fairface_margin", "intersections", "association_ks",
             "association_occupations", "association_shares", "fairface_labels", "concepts", "concept_template",
             "concept_ks", "geode_templates", "ks", "n_boot", "n_perm", "min_group_size", "ci", "seed",
             "self_similarity_ci", "batch_size", "workers", "threads", "precision", "device", "chunk_size",
             "feature_dtype", "options"),
    "multilingual": ("languages", "subset", "caption", "image_prompt", "image_language", "gender_labels",
                     "finetune_dataset", "base_pipeline", "finetune", "eval_models", "eval_prompt_set", "eval_subset",
                     "eval_images_per_prompt", "eval_generate", "eval_resample", "eval_n_boot", "clip_params",
                     "clip_ratio"),
}
#: (section, field) → the default at which a field was left out then (fields added after results were written).
NEUTRAL_THEN: dict[tuple[str, str], Any] = {
    ("train", "replicates"): 1, ("export", "fairface_occupations"): True, ("eval", "association_ks"): [100],
    ("eval", "association_occupations"): [], ("eval", "association_shares"): None,
    ("multilingual", "eval_n_boot"): 1000, ("eval", "fairface_labels"): None, ("eval", "concepts"): list(CONCEPTS),
    ("eval", "concept_template"): "a photo of a {} person", ("eval", "concept_ks"): [100, 1000],
    ("generate", "amplified"): list(AMPLIFIED_DEFAULT), ("generate", "per_replicate"): False,
    ("train", "warm_start_epochs"): 0, ("train", "probe_ratios"): [], ("eval", "options"): {},
}
_ABSENT = object()


def _section_then(name: str, values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A section's values as the old digest hashed them."""
    kept = {}
    for key, value in values.items():
        if key in FIELDS_THEN[name]:
            if NEUTRAL_THEN.get((name, key), _ABSENT) == value:
                continue
        elif value == defaults.get(key, _ABSENT):
            continue
        kept[key] = value
    return kept


def legacy_digest(params: Params) -> str:
    """The digest multilingual results recorded for ``params`` before 2026-12-06 (module docstring)."""
    plain, defaults = params.to_dict(), Params().to_dict()
    then = {key: _section_then(key, plain[key], defaults[key]) if isinstance(plain[key], dict) and FIELDS_THEN[key]
            else plain[key] for key in FIELDS_THEN}
    return hashlib.sha256(json.dumps(then, sort_keys=True).encode()).hexdigest()[:12]
