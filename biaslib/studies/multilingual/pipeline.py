"""The multilingual gender-bias study (formats.md C): prompts → per-language generation → datasets →
fine-tuning → generation again, each step resumable, driven by the ``multilingual`` params section.

Steps (:data:`STEPS`), each the same call as its CLI command (``biaslib multilingual ...``) and notebook:

1. ``prompts``: the template prompts in every language (:func:`biaslib.prompts.prompt_table`) →
   ``<run>/prompts.parquet``, and the evaluation prompts → ``<run>/eval_prompts.parquet``.
2. ``generate``: the dataset's images, one per prompt id of the ``image_prompt`` column, in each image
   language, with ``generate.model`` through :func:`biaslib.generate.generate` →
   ``<run>/generated/data/<lang>/``.
3. ``dataset``: HF imagefolders ``<run>/datasets/{full,balanced}/train/`` (images + ``metadata.jsonl``
   lines ``file_name, text, language, prompt_id, slots, image_language, gender_label``) and a
   ``manifest.json``. As the original (mm-debias ``collect_datasets.py``), every language's prompt of row
   i captions image i of the image language, so each neutral caption meets as many men as women;
   ``balanced`` also evens out the genders actually shown per (profession, language).
4. ``finetune``: the base pipeline (AltDiffusion-m9 built from its parts at paper scale, the world's
   tiny pipeline on a CPU) fine-tuned on one dataset variant with :func:`biaslib.finetune.finetune`
   (resumes from its last checkpoint) → ``<run>/finetuned/``, a pipeline :func:`biaslib.generate.load_pipeline`
   reads like any other.
5. ``generate_eval``: the evaluation prompts in every language with the base and the fine-tuned
   pipelines → ``<run>/generated/{base,finetuned}/<lang>/``.

The text side on the synthetic world: the world's :class:`~biaslib.world.simulator.SimulatedGenerator`
parses English only, so :class:`EnglishParsingSimulator` hands it the English prompt of the same prompt
id (every translated row keeps its English slot values and id) while the shards record the translated
prompt and the language (its ``language_shift`` applies per language). Diffusion pipelines, the world's
tiny one included, see the translated prompt itself: the tiny pipeline was trained on English captions
only, so before fine-tuning its German, Chinese and Japanese prompts are barely understood, which is
what fine-tuning on the multilingual dataset (the CPU stand-in for fine-tuning AltDiffusion) changes.

Every folder records what made it (prompt digest, generation settings, dataset digest); a rerun with
other settings is refused unless ``overwrite`` (then that step's outputs are replaced).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from biaslib import __version__
from biaslib.config import GenerateConfig, Params, build_config
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.io import write_json, write_parquet, write_text
from biaslib.metrics.intervals import wilson_interval
from biaslib.prompts import SLOTS, prompt_table, resolve_language, supported_languages, translate
from biaslib.studies.multilingual.layout import MultilingualLayout

log = logging.getLogger(__name__)

STEPS: tuple[str, ...] = ("prompts", "generate", "dataset", "finetune", "generate_eval")
#: Generation sets: ``data`` (the dataset's images) and the two evaluation models.
GENERATIONS: tuple[str, ...] = ("data", "base", "finetuned")
DATASETS: tuple[str, ...] = ("full", "balanced")
GENDERS: tuple[str, ...] = ("man", "woman")
_GENDER_ALIASES = {"man": "man", "male": "man", "woman": "woman", "female": "woman"}
_CAPTIONS_RECORD = "multilingual_captions_rank{rank:02d}.json"
_MANIFEST = "manifest.json"
_FINETUNE_RECORD = "biaslib_multilingual.json"


# ---- languages and paths ------------------------------------------------------------------------------

def language_codes(languages: Sequence[str]) -> list[str]:
    """Codes of ``languages`` (codes or MAGBIG names, any case), distinct, at least one.

    An unknown language is one ``ValueError`` listing the supported ones.
    """
    codes = [resolve_language(lang) for lang in languages]
    if not codes or len(set(codes)) != len(codes):
        raise ValueError(f"give distinct languages, at least one (got {list(languages)})")
    return codes


def language_name(code: str) -> str:
    """MAGBIG-style name of a language code (``de`` → ``german``), the simulator's language key."""
    return supported_languages()[resolve_language(code)]


def image_language(params: Params, caption_language: str) -> str:
    """Code of the language whose generated images caption ``caption_language``'s prompts."""
    setting = params.multilingual.image_language
    return resolve_language(caption_language) if setting == "same" else resolve_language(setting)


def image_languages(params: Params) -> list[str]:
    """Codes of the languages the dataset's images are generated in (in ``languages`` order)."""
    codes = language_codes(params.multilingual.languages)
    return list(dict.fromkeys(image_language(params, code) for code in codes))


def generation_dir(params: Params, generation: str, language: str) -> Path:
    """Shards of one generation set in one language: ``<run>/generated/<generation>/<code>``."""
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation set {generation!r}; choose one of {', '.join(GENERATIONS)}")
    return MultilingualLayout(params).generation(generation, resolve_language(language))


def dataset_dir(params: Params, variant: str) -> Path:
    """A dataset variant's imagefolder root: ``<run>/datasets/<variant>`` (images in ``train/``)."""
    if variant not in DATASETS:
        raise ValueError(f"unknown dataset variant {variant!r}; choose one of {', '.join(DATASETS)}")
    return MultilingualLayout(params).dataset(variant)


def base_pipeline_dir(params: Params) -> Path:
    """The pipeline that is fine-tuned: ``multilingual.base_pipeline`` or the world's tiny pipeline."""
    return params.multilingual.base_pipeline or MultilingualLayout(params).tiny_pipeline


def check_params(params: Params) -> None:
    """Check the ``multilingual`` section before any work: languages, image language, evaluation models
    and the ``eval_generate`` keys; each problem is one error naming it."""
    ml = params.multilingual
    language_codes(ml.languages)
    if ml.image_language != "same":
        resolve_language(ml.image_language)
    bad = sorted(set(ml.eval_models) - {"base", "finetuned"})
    if bad:
        raise ValueError(f"multilingual.eval_models: unknown model(s) {bad}; choose among base, finetuned")
    if ml.eval_images_per_prompt < 1:
        raise ValueError(f"multilingual.eval_images_per_prompt must be ≥ 1, got {ml.eval_images_per_prompt}")
    for key in params.generate.language_shift:
        resolve_language(key)
    eval_generate_config(params, "model")


def eval_generate_config(params: Params, model: str | os.PathLike) -> GenerateConfig:
    """The ``generate`` section with ``multilingual.eval_generate`` applied and ``model`` set."""
    merged = {**dataclasses.asdict(params.generate), **params.multilingual.eval_generate, "model": str(model)}
    return build_config(GenerateConfig, merged, "multilingual.eval_generate")


def _digest(obj: Any) -> str:
    """16 hex digits of sha256 over ``obj`` as sorted JSON."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- step 1: prompts ----------------------------------------------------------------------------------

def training_prompts(params: Params) -> pd.DataFrame:
    """The template prompt table in every language of ``multilingual.languages`` (rows grouped by language)."""
    ml = params.multilingual
    return prompt_table("template", language_codes(ml.languages), subset=ml.subset or None)


def evaluation_prompts(params: Params) -> pd.DataFrame:
    """One row per (language, evaluation prompt): ``prompt_id``, ``language``, ``prompt``, ``english``
    (the English prompt of the same id, for the simulator's parser) and ``profession``.

    ``template``: the neutral prompts (one per ``neutral_id``); ``magbig``: MAGBIG's prompts (``eval_subset``
    keys ``name``/``kind``; default the direct prompts of the ``subset`` professions).
    """
    ml = params.multilingual
    codes = language_codes(ml.languages)
    subset = ml.eval_subset if ml.eval_subset is not None else ml.subset
    if ml.eval_prompt_set == "template":
        table = prompt_table("template", codes, subset=subset or None).drop_duplicates(["language", "neutral_id"])
        english = translate(table, "en")
        return pd.DataFrame({"prompt_id": table["neutral_id"], "language": table["language"],
                             "prompt": table["prompt_neutral"], "english": english["prompt_neutral"],
                             "profession": table["profession"]}).reset_index(drop=True)
    if ml.eval_subset is None:
        subset = {"kind": ["direct"], **({"name": ml.subset["profession"]} if "profession" in ml.subset else {})}
    table = prompt_table("magbig", codes, subset=subset)
    return pd.DataFrame({"prompt_id": table["prompt_id"], "language": table["language"], "prompt": table["prompt"],
                         "english": translate(table, "en")["prompt"], "profession": table["name"]})


def write_prompts(params: Params) -> dict[str, Path]:
    """Step ``prompts``: write the training and evaluation prompt tables (atomic; cheap, always rebuilt)."""
    check_params(params)
    layout = MultilingualLayout(params)
    write_parquet(layout.prompts, training_prompts(params))
    write_parquet(layout.eval_prompts, evaluation_prompts(params))
    return {"prompts": layout.prompts, "eval_prompts": layout.eval_prompts}


def read_prompts(params: Params, evaluation: bool = False) -> pd.DataFrame:
    """The prompt table written by :func:`write_prompts` (``evaluation``: the evaluation table)."""
    path = MultilingualLayout(params).eval_prompts if evaluation else MultilingualLayout(params).prompts
    if not path.is_file():
        raise DataLayoutError(f"no prompt table {path}: run the prompts step first (biaslib multilingual run "
                              "--step prompts)")
    return pd.read_parquet(path)


# ---- step 2 and 5: generation per language ------------------------------------------------------------

class EnglishParsingSimulator:
    """The world's simulator behind a multilingual text side (see the module docstring).

    ``english`` maps each prompt text the generator may receive to the English prompt of the same
    prompt id; the simulator parses that one and applies its ``language_shift`` of the call's language.
    Called like the simulator (prompts, ``seeds``, ``language``); ``config`` adds ``"parses": "english"``.
    """

    def __init__(self, simulator: Any, english: Mapping[str, str]):
        self.simulator = simulator
        self.english = dict(english)

    @property
    def config(self) -> dict[str, Any]:
        """The simulator's provenance plus how prompts are parsed."""
        return {**self.simulator.config, "parses": "english prompt of the same prompt id"}

    def __call__(self, prompt: str | Sequence[str], seeds: Sequence[int] | None = None,
                 language: str | Sequence[str] = "english", **kwargs: Any) -> Any:
        """Images of the English prompts matching ``prompt`` (one per prompt), drawn with ``language``'s shift."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        unknown = [p for p in prompts if p not in self.english]
        if unknown:
            raise BiaslibError(f"no English prompt known for {unknown[:3]}: the simulator parses English only")
        return self.simulator([self.english[p] for p in prompts], seeds=seeds, language=language, **kwargs)


def english_map(captions: pd.DataFrame) -> dict[str, str]:
    """Caption text → English text from a table with ``caption`` and ``english``; a text with two English
    readings is an error (the simulator could not tell them apart)."""
    pairs = captions[["caption", "english"]].drop_duplicates()
    clash = pairs["caption"][pairs["caption"].duplicated()]
    if len(clash):
        raise BiaslibError(f"{len(clash)} prompt text(s) translate two different English prompts, e.g. "
                           f"{clash.iloc[0]!r}; the simulator cannot parse them")
    return dict(zip(pairs["caption"], pairs["english"]))


def generation_captions(params: Params, generation: str, language: str) -> pd.DataFrame:
    """The captions of one generation set in one language: ``key``, ``caption``, ``language`` (name,
    the simulator's language key), ``english``, ``prompt_id``, ``profession``.

    ``data``: one image per training prompt id, captioned by the ``image_prompt`` column. ``base`` /
    ``finetuned``: ``eval_images_per_prompt`` images per evaluation prompt, keys ``<prompt_id>_<j>``.
    Keys, hence seeds, are equal across languages: each language's image of a prompt starts from the
    same noise, so the language is the only difference between them.
    """
    code = resolve_language(language)
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation set {generation!r}; choose one of {', '.join(GENERATIONS)}")
    if generation == "data":
        table = read_prompts(params)
        column = "prompt" if params.multilingual.image_prompt == "gendered" else "prompt_neutral"
        rows = table[table["language"] == code]
        if rows.empty:
            raise ValueError(f"language {code!r} is not among multilingual.languages "
                             f"{list(params.multilingual.languages)}")
        return pd.DataFrame({"key": rows["prompt_id"].to_numpy(), "caption": rows[column].to_numpy(),
                             "language": language_name(code), "english": translate(rows, "en")[column].to_numpy(),
                             "prompt_id": rows["prompt_id"].to_numpy(), "profession": rows["profession"].to_numpy()})
    table = read_prompts(params, evaluation=True)
    rows = table[table["language"] == code]
    if rows.empty:
        raise ValueError(f"language {code!r} is not among multilingual.languages {list(params.multilingual.languages)}")
    n = params.multilingual.eval_images_per_prompt
    rows = rows.loc[rows.index.repeat(n)]
    copies = [j for _ in range(len(rows) // n) for j in range(n)]
    return pd.DataFrame({"key": [f"{p}_{j}" for p, j in zip(rows["prompt_id"], copies)],
                         "caption": rows["prompt"].to_numpy(), "language": language_name(code),
                         "english": rows["english"].to_numpy(), "prompt_id": rows["prompt_id"].to_numpy(),
                         "profession": rows["profession"].to_numpy()})


def generation_config(params: Params, generation: str) -> GenerateConfig:
    """``data``: the ``generate`` section; ``base``/``finetuned``: :func:`eval_generate_config` with that model."""
    if generation == "data":
        return params.generate
    if generation == "base":
        return eval_generate_config(params, base_pipeline_dir(params))
    return eval_generate_config(params, MultilingualLayout(params).finetuned)


def _claim_captions(out: Path, captions: pd.DataFrame, overwrite: bool, rank: int) -> None:
    """Record the captions a shard folder is generated from (one record per rank, so ranks never race on
    it); refuse other captions unless ``overwrite``, which removes this rank's shards only."""
    digest = _digest(captions[["key", "caption", "language"]].to_dict("list"))
    path = out / _CAPTIONS_RECORD.format(rank=rank)
    record = _read_json(path)
    if record is not None and record.get("digest") != digest:
        if not overwrite:
            raise BiaslibError(f"{out} holds images of other prompts (caption digest {record.get('digest')}, now "
                               f"{digest}); rerun with overwrite (--overwrite) to replace them")
        for old in [*out.glob(f"{rank:02d}-*.tar"), *out.glob(f"{rank:02d}-*_stats.json")]:
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, {"digest": digest, "n": len(captions)})


def _load_generator(params: Params, generation: str, captions: pd.DataFrame, world: Any) -> Any:
    """The generator of a generation set: the simulator wrapped for English parsing, or a pipeline folder."""
    from biaslib.generate import load_pipeline

    config = generation_config(params, generation)
    if config.model != "simulator":
        model = Path(config.model)
        if not (model / "model_index.json").is_file():
            hint = ("run the finetune step first" if generation == "finetuned" else
                    "for the world's tiny pipeline run `biaslib world train-pipeline` first")
            raise DataLayoutError(f"no diffusers pipeline at {model} ({generation} model): {hint}")
        _use_local_gpu()
        return load_pipeline(config)
    from biaslib.world import World
    from biaslib.world.simulator import SimulatedGenerator

    shift = {language_name(k): v for k, v in config.language_shift.items()}
    simulator = SimulatedGenerator(world or World(params.world, params.seed), config.amplification, shift,
                                   config.output_size)
    return EnglishParsingSimulator(simulator, english_map(captions))


def _use_local_gpu() -> None:
    """Under ``torchrun``/``accelerate launch`` (``LOCAL_RANK`` set) make this process's GPU the current
    CUDA device, so that ``device: auto`` does not put every rank on GPU 0."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is None:
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(int(local_rank))


def generate_languages(params: Params, generation: str = "data", languages: Sequence[str] | None = None, *,
                       world: Any = None, overwrite: bool = False, max_items: int | None = None,
                       progress: bool = True) -> dict[str, Any]:
    """Generate one generation set in each of ``languages`` (default: all it needs) → ``{code: report}``.

    Languages whose folder already holds every image are skipped (report ``None``) without loading the
    model; the model is loaded once for the others. ``max_items`` stops each language after that many new
    images (resumable). Multi-process runs: every rank calls this; ``RANK``/``WORLD_SIZE`` split the ids.
    """
    from biaslib.generate import generate, rank_from_env, verify

    check_params(params)
    if generation not in GENERATIONS:
        raise ValueError(f"unknown generation set {generation!r}; choose one of {', '.join(GENERATIONS)}")
    default = image_languages(params) if generation == "data" else params.multilingual.languages
    codes = language_codes(languages if languages is not None else default)
    reports: dict[str, Any] = {}
    generator = None
    config = generation_config(params, generation)
    for code in codes:
        captions = generation_captions(params, generation, code)
        out = generation_dir(params, generation, code)
        _claim_captions(out, captions, overwrite, rank_from_env()[0])
        if not overwrite and out.is_dir() and verify(out, captions).ok:
            reports[code] = None
            continue
        if generator is None or config.model == "simulator":
            generator = _load_generator(params, generation, captions, world)
        reports[code] = generate(captions[["key", "caption", "language"]], out, config, pipeline=generator,
                                 overwrite=overwrite, max_items=max_items, progress=progress)
    return reports


def check_generated(params: Params, generation: str, language: str) -> Path:
    """The shard folder of a generation set in one language, after checking it holds every image once."""
    from biaslib.generate import verify

    out = generation_dir(params, generation, language)
    if not out.is_dir():
        raise DataLayoutError(f"no generated images in {out}: run `biaslib multilingual generate` first")
    check = verify(out, generation_captions(params, generation, language))
    if not check.ok:
        raise DataLayoutError(f"generation in {out} is incomplete ({check.summary()}): run "
                              "`biaslib multilingual generate` again (it resumes)")
    return out


def world_gender_shares(params: Params, generation: str, languages: Sequence[str] | None = None, *,
                        world: Any = None) -> pd.DataFrame:
    """Share of women per (language, prompted profession) in a generation set on the synthetic world.

    Labels are the simulator's ground truth for simulated images, else the world's attribute classifier
    (cached in ``<runs_dir>/cache``; :func:`biaslib.world_models.measure.generated_attributes`). Returns columns
    ``generation``, ``language`` (code), ``profession``, ``n``, ``share`` (p(woman)), ``ci_low``/``ci_high``
    (95% Wilson interval) and ``labels``.
    """
    from biaslib.world import World
    from biaslib.world_models.measure import generated_attributes

    world = world or World(params.world, params.seed)
    default = image_languages(params) if generation == "data" else params.multilingual.languages
    rows = []
    for code in language_codes(languages if languages is not None else default):
        attributes = generated_attributes(check_generated(params, generation, code), world,
                                          MultilingualLayout(params).cache)
        profession = generation_captions(params, generation, code).set_index("key")["profession"]
        attributes["profession"] = profession.loc[attributes["key"]].to_numpy()
        for name, group in attributes.groupby("profession", sort=False):
            k, n = int((group["gender"] == "woman").sum()), len(group)
            low, high = wilson_interval(k, n)
            rows.append({"generation": generation, "language": code, "profession": name, "n": n, "share": k / n,
                         "ci_low": low, "ci_high": high, "labels": group["labels"].iloc[0]})
    return pd.DataFrame(rows)


# ---- step 3: datasets ----------------------------------------------------------------------------------

def _gender_label_table(path: Path, several_languages: bool) -> dict[tuple[str, str], str]:
    """(image language code or "", key) → man/woman/other from a labels table (CSV or parquet)."""
    if not path.is_file():
        raise DataLayoutError(f"multilingual.gender_labels: no table {path} (CSV or parquet with columns key or "
                              "id, gender or outcome, and language when images come from several languages)")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                keep_default_na=False)
    key = "key" if "key" in frame.columns else "id"
    label = "gender" if "gender" in frame.columns else "outcome"
    needed = [key, label] + (["language"] if several_languages else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataLayoutError(f"{path} lacks column(s) {missing}; expected key (or id), gender (or outcome)"
                              + (" and language" if several_languages else ""))
    langs = frame["language"].map(resolve_language) if several_languages else pd.Series("", index=frame.index)
    labels = frame[label].astype(str).str.lower().map(_GENDER_ALIASES).fillna("other")
    return dict(zip(zip(langs, frame[key].astype(str)), labels))


def _gender_label(metadata: Mapping[str, Any], slot: str, table: dict[tuple[str, str], str] | None,
                  language: str, key: str) -> tuple[str, str]:
    """(label, source) of one image: the simulator's record, else the labels table, else the prompt's slot."""
    simulated = metadata.get("simulated")
    if isinstance(simulated, dict) and "gender" in simulated:
        return _GENDER_ALIASES.get(str(simulated["gender"]), "other"), "simulator"
    if table is not None:
        return table.get((language, key), table.get(("", key), "other")), "labels"
    return _GENDER_ALIASES.get(slot, "other"), "prompt"


def dataset_digest(params: Params) -> str:
    """Hash of everything the datasets depend on: prompts, dataset settings, source generation settings."""
    ml = params.multilingual
    labels = ml.gender_labels
    sources = {code: generation_config(params, "data").digest() for code in image_languages(params)}
    return _digest({"prompts": _digest(read_prompts(params).to_dict("list")), "caption": ml.caption,
                    "image_prompt": ml.image_prompt, "image_language": ml.image_language, "seed": params.seed,
                    "sources": sources, "format": 1,
                    "labels": hashlib.sha256(labels.read_bytes()).hexdigest() if labels and labels.is_file() else None})


def _write_full(params: Params, train: Path) -> list[dict[str, Any]]:
    """Write the full dataset's images into ``train`` and return its metadata records (in table order).

    Images are streamed from the shards; the caption languages that share an image language get hard
    links to one file (a copy where links are not possible).
    """
    from biaslib.data.cc3m import iter_cc3m

    ml = params.multilingual
    table = read_prompts(params)
    codes = language_codes(ml.languages)
    column = "prompt_neutral" if ml.caption == "neutral" else "prompt"
    sources = {code: image_language(params, code) for code in codes}
    several = len(set(sources.values())) > 1
    labels = _gender_label_table(ml.gender_labels, several) if ml.gender_labels else None
    found: dict[tuple[str, str], tuple[str, str, str]] = {}
    for source in dict.fromkeys(sources.values()):
        targets = [code for code in codes if sources[code] == source]
        slots = table[table["language"] == source].set_index("prompt_id")["gender"]
        for sample in iter_cc3m(check_generated(params, "data", source), decode=False):
            ext = sample.metadata.get("format", "jpg")
            label, origin = _gender_label(sample.metadata, slots.get(sample.key, ""), labels,
                                          source if several else "", sample.key)
            first = None
            for code in targets:
                name = f"{code}/{sample.key}.{ext}"
                (train / code).mkdir(parents=True, exist_ok=True)
                if first is None:
                    (train / name).write_bytes(sample.image)
                    first = train / name
                else:
                    _link_or_copy(first, train / name)
                found[(code, sample.key)] = (name, label, origin)
    records = []
    for row in table[table["language"].isin(codes)].to_dict("records"):
        name, label, origin = found[(row["language"], row["prompt_id"])]
        records.append({"file_name": name, "text": row[column], "language": row["language"],
                        "prompt_id": row["prompt_id"], "slots": {slot: row[slot] for slot in SLOTS},
                        "image_language": sources[row["language"]], "gender_label": label, "label_source": origin})
    return records


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (same file system), else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def balanced_records(records: Sequence[Mapping[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """The records with equal numbers of ``man`` and ``woman`` labels per (profession, language).

    In each group the larger gender is down-sampled to the smaller one's count, keeping the records whose
    seeded hash of ``prompt_id`` is smallest (reproducible, independent of order); other labels are dropped.
    Returns the kept records in their original order.
    """
    def rank(record: Mapping[str, Any]) -> str:
        return hashlib.blake2b(f"{seed}:{record['prompt_id']}".encode(), digest_size=8).hexdigest()

    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, record in enumerate(records):
        if record["gender_label"] in GENDERS:
            key = (record["slots"]["profession"], record["language"], record["gender_label"])
            groups.setdefault(key, []).append(i)
    keep: set[int] = set()
    for (profession, language, gender), members in groups.items():
        if gender != GENDERS[0]:
            continue
        other = groups.get((profession, language, GENDERS[1]), [])
        n = min(len(members), len(other))
        for side in (members, other):
            keep.update(sorted(side, key=lambda i: rank(records[i]))[:n])
    return [dict(records[i]) for i in sorted(keep)]


def _dataset_counts(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Images per (language, profession, gender label): a long table with column ``n``."""
    frame = pd.DataFrame({"language": [r["language"] for r in records],
                          "profession": [r["slots"]["profession"] for r in records],
                          "gender_label": [r["gender_label"] for r in records]})
    return frame.value_counts().rename("n").reset_index().sort_values(["language", "profession", "gender_label"],
                                                                       ignore_index=True)


def _manifest(params: Params, variant: str, records: Sequence[Mapping[str, Any]], digest: str) -> dict[str, Any]:
    """What a dataset variant holds and what made it."""
    counts = _dataset_counts(records)
    by_language = counts.groupby(["language", "gender_label"])["n"].sum()
    ml = params.multilingual
    return {"variant": variant, "digest": digest, "n": len(records), "biaslib_version": __version__,
            "caption": ml.caption, "image_prompt": ml.image_prompt, "image_language": ml.image_language,
            "label_sources": sorted({r["label_source"] for r in records}),
            "counts": {f"{lang}/{g}": int(n) for (lang, g), n in by_language.items()},
            "languages": language_codes(ml.languages)}


def _write_metadata(train: Path, records: Sequence[Mapping[str, Any]]) -> None:
    """``train/metadata.jsonl``, one JSON object per record (atomic)."""
    write_text(train / "metadata.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def collect_datasets(params: Params, *, overwrite: bool = False) -> dict[str, Path]:
    """Step ``dataset``: write the ``full`` and ``balanced`` imagefolders (see the module docstring).

    Each variant is built in a temporary folder and renamed into place with its ``manifest.json``, so an
    interrupted run leaves nothing that looks finished. Variants whose manifest digest matches are kept;
    a variant made from other prompts, images or settings is refused unless ``overwrite``.
    """
    check_params(params)
    digest = dataset_digest(params)
    roots = {variant: dataset_dir(params, variant) for variant in DATASETS}
    todo = []
    for variant, root in roots.items():
        manifest = _read_json(root / _MANIFEST)
        if manifest is not None and manifest.get("digest") == digest:
            continue
        if root.exists() and not overwrite:
            raise BiaslibError(f"{root} holds a dataset made with other prompts, images or settings (digest "
                               f"{manifest.get('digest') if manifest else 'none'}, now {digest}); rerun with "
                               "overwrite (--overwrite) to replace it")
        todo.append(variant)
    if not todo:
        return roots
    staging = MultilingualLayout(params).datasets / f".tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        full = staging / "full" / "train"
        records = _write_full(params, full)
        variants = {"full": records, "balanced": balanced_records(records, params.seed)}
        for variant, kept in variants.items():
            train = staging / variant / "train"
            if variant != "full":
                for record in kept:
                    (train / record["file_name"]).parent.mkdir(parents=True, exist_ok=True)
                    _link_or_copy(full / record["file_name"], train / record["file_name"])
            _write_metadata(train, kept)
            write_json(staging / variant / _MANIFEST, _manifest(params, variant, kept, digest))
        for variant in DATASETS[::-1]:  # full last: the balanced links need it until then
            if variant in todo:
                shutil.rmtree(roots[variant], ignore_errors=True)
                os.replace(staging / variant, roots[variant])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return roots


def read_dataset(params: Params, variant: str) -> pd.DataFrame:
    """The metadata of a dataset variant, one row per image (``slots`` expanded into columns)."""
    root = dataset_dir(params, variant)
    metadata = root / "train" / "metadata.jsonl"
    if not (root / _MANIFEST).is_file() or not metadata.is_file():
        raise DataLayoutError(f"no finished dataset in {root}: run the dataset step first")
    frame = pd.read_json(metadata, lines=True, dtype=False)
    return pd.concat([frame.drop(columns="slots"), pd.json_normalize(frame["slots"].tolist())], axis=1)


# ---- step 4: fine-tuning --------------------------------------------------------------------------------

def finetune_config(params: Params, *, progress: bool = True) -> Any:
    """The :class:`~biaslib.finetune.FinetuneConfig` of the study: ``multilingual.finetune`` into
    ``MultilingualLayout(params).finetuned``, resuming from the latest checkpoint there."""
    from biaslib.finetune import FinetuneConfig

    return FinetuneConfig(output_dir=MultilingualLayout(params).finetuned, resume_from_checkpoint="latest",
                          progress=progress,
                          **dataclasses.asdict(params.multilingual.finetune))


def _finetune_record(params: Params) -> dict[str, Any]:
    """What the fine-tuned pipeline depends on: base pipeline, dataset and settings."""
    dataset = _read_json(dataset_dir(params, params.multilingual.finetune_dataset) / _MANIFEST) or {}
    return {"base_pipeline": str(base_pipeline_dir(params)), "dataset": params.multilingual.finetune_dataset,
            "dataset_digest": dataset.get("digest"), "finetune": dataclasses.asdict(params.multilingual.finetune)}


def run_finetune(params: Params, *, overwrite: bool = False, stop_after_steps: int | None = None,
                 progress: bool = True) -> Any:
    """Step ``finetune``: fine-tune the base pipeline on the chosen dataset variant →
    ``MultilingualLayout(params).finetuned``.

    The dataset is read and validated first (a ``metadata.jsonl`` naming a missing image fails before any
    model is loaded). A finished run with the same base, dataset and settings is kept (returns ``None``);
    an unfinished one resumes from its latest checkpoint; one with other inputs is refused unless
    ``overwrite``. ``stop_after_steps`` interrupts the run after that many updates (tests). Returns the
    :class:`~biaslib.finetune.FinetuneResult` of the call.
    """
    from biaslib.finetune import FINETUNE_MARKER, finetune, load_finetune_dataset
    from biaslib.generate import load_pipeline, rank_from_env

    check_params(params)
    ml = params.multilingual
    root = dataset_dir(params, ml.finetune_dataset)
    if not (root / _MANIFEST).is_file():
        raise DataLayoutError(f"no finished dataset in {root}: run the dataset step first")
    config = finetune_config(params, progress=progress)
    dataset = load_finetune_dataset(root, resolution=config.resolution, center_crop=config.center_crop,
                                    random_flip=config.random_flip)
    out, wanted = MultilingualLayout(params).finetuned, _finetune_record(params)
    previous = _read_json(out / _FINETUNE_RECORD)
    if previous is not None and previous != wanted:
        if not overwrite:
            raise BiaslibError(f"{out} holds a fine-tuning run of another base pipeline, dataset or settings; "
                               "rerun with overwrite (--overwrite) to start over")
        if rank_from_env()[0] == 0:
            shutil.rmtree(out)
    elif previous is not None and (out / FINETUNE_MARKER).is_file():
        return None
    base = base_pipeline_dir(params)
    if not (base / "model_index.json").is_file():
        raise DataLayoutError(f"no base pipeline at {base} (multilingual.base_pipeline): for the world's tiny "
                              "pipeline run `biaslib world train-pipeline` first")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / _FINETUNE_RECORD, wanted)
    pipe = load_pipeline(GenerateConfig(model=str(base), dtype="fp32", device="cpu"))  # the accelerator places it
    return finetune(pipe, dataset, config, stop_after_steps=stop_after_steps)


# ---- the whole study ------------------------------------------------------------------------------------

def _step_generate_eval(params: Params, overwrite: bool, progress: bool) -> None:
    """Generation again: every evaluation model in every language."""
    for model in params.multilingual.eval_models:
        generate_languages(params, model, overwrite=overwrite, progress=progress)


def run_multilingual(params: Params, steps: Sequence[str] = STEPS, *, overwrite: bool = False,
                     progress: bool = True) -> dict[str, float]:
    """Run ``steps`` (in :data:`STEPS` order) of the multilingual study; returns wall seconds per step.

    Finished work is skipped, so a rerun after an interruption resumes; ``overwrite`` replaces outputs
    made with other settings instead of refusing them.
    """
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown multilingual step(s) {unknown}; steps: {', '.join(STEPS)}")
    check_params(params)
    runners = {
        "prompts": lambda: write_prompts(params),
        "generate": lambda: generate_languages(params, "data", overwrite=overwrite, progress=progress),
        "dataset": lambda: collect_datasets(params, overwrite=overwrite),
        "finetune": lambda: run_finetune(params, overwrite=overwrite, progress=progress),
        "generate_eval": lambda: _step_generate_eval(params, overwrite, progress),
    }
    seconds = {}
    for step in (s for s in STEPS if s in steps):
        start = time.perf_counter()
        log.info("%s: %s", params.experiment, step)
        runners[step]()
        seconds[step] = round(time.perf_counter() - start, 1)
    return seconds


__all__ = [
    "DATASETS",
    "GENERATIONS",
    "STEPS",
    "EnglishParsingSimulator",
    "balanced_records",
    "base_pipeline_dir",
    "check_generated",
    "check_params",
    "collect_datasets",
    "dataset_dir",
    "eval_generate_config",
    "evaluation_prompts",
    "finetune_config",
    "generate_languages",
    "generation_dir",
    "generation_captions",
    "generation_config",
    "image_languages",
    "language_codes",
    "language_name",
    "read_dataset",
    "read_prompts",
    "run_finetune",
    "world_gender_shares",
    "run_multilingual",
    "training_prompts",
    "write_prompts",
]
