"""The multilingual study's own params section, ``multilingual`` (:class:`MultilingualConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from biaslib.config import FinetuneParams
from biaslib.ratios import RatioCode


@dataclass(frozen=True)
class MultilingualConfig:
    """The multilingual gender-bias study (``multilingual`` section; :mod:`biaslib.studies.multilingual.pipeline`).

    ``languages``: prompt languages (codes or MAGBIG names of :func:`biaslib.prompts.supported_languages`).
    ``subset``: template slots → first N values or a list (:func:`biaslib.prompts.template_table`).
    Dataset (formats.md C3): each language's ``caption`` prompt (``neutral`` as the original, or
    ``gendered``) is paired with the image generated for the same prompt id from the ``image_prompt``
    (``gendered`` as the original, or ``neutral``) in ``image_language`` (``en`` as the original, a
    language, or ``same`` = the caption's own language). The ``balanced`` variant keeps equal numbers of
    men and women per (profession, language); labels come from the simulator's record, else from
    ``gender_labels`` (a table with ``key``/``id``, ``gender``/``outcome`` and, with several image
    languages, ``language``; e.g. ``biaslib faces analyse`` output), else from the prompt's gender slot.
    ``finetune_dataset`` is the variant fine-tuned; ``base_pipeline`` the pipeline folder fine-tuned
    (``None``: the world's tiny pipeline in ``<runs_dir>/cache/tiny_pipeline``). Generation again:
    ``eval_models`` (``base``, ``finetuned``) draw ``eval_images_per_prompt`` images per prompt of
    ``eval_prompt_set`` (``template``: the neutral prompts; ``magbig``: MAGBIG's prompts) restricted by
    ``eval_subset`` (``None``: ``subset``), with the ``generate`` section changed by ``eval_generate``.
    ``eval_resample``: how the evaluation's bootstrap resamples an occupation's images (``images``: as one
    pool; ``prompts``: whole prompts, for many prompts per occupation; coverage of each:
    :mod:`biaslib.studies.multilingual.evaluation`); ``eval_n_boot`` its bootstrap draws for every interval (the
    seed is the params' ``seed``). ``clip_params``: the amplification-study params file whose CLIP
    (at ``clip_ratio``) scores the images (``None``: no CLIP score unless a checkpoint is given).
    """

    languages: tuple[str, ...] = ("en", "de", "zh", "ja")
    subset: dict[str, Any] = field(default_factory=dict)
    caption: Literal["neutral", "gendered"] = "neutral"
    image_prompt: Literal["gendered", "neutral"] = "gendered"
    image_language: str = "en"
    gender_labels: Path | None = None
    finetune_dataset: Literal["full", "balanced"] = "balanced"
    base_pipeline: Path | None = None
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    eval_models: tuple[str, ...] = ("base", "finetuned")
    eval_prompt_set: Literal["template", "magbig"] = "template"
    eval_subset: dict[str, Any] | None = None
    eval_images_per_prompt: int = 1
    eval_generate: dict[str, Any] = field(default_factory=dict)
    eval_resample: Literal["images", "prompts"] = "images"
    eval_n_boot: int = 1000
    clip_params: Path | None = None
    clip_ratio: RatioCode = RatioCode("000")
