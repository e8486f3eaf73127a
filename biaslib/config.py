"""Typed parameters: ``params/*.yaml`` → frozen dataclasses, with one clear error per bad key.

A params file has one section per pipeline step. Unknown keys are errors (a typo must not silently
fall back to a default); values are converted to the annotated type, and a value that does not fit
names its dotted key.

One rule for relative paths, so that a notebook runs the same from JupyterLab (kernel in ``notebooks/``), from
papermill in any folder and from the command line: **a relative path names a place in a project, and resolves
against that project's folder** — the folder that holds ``params/``. Inside a params or models file (path values,
``extends``, a models file's ``runs:``) that is the file's :func:`project_folder` (the repository root for a file in
``params/``); a notebook's path parameters resolve against the repository root (:func:`repo_path`). Only paths
typed on the command line keep the shell's meaning (relative to the current folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from biaslib.errors import BiaslibError
from biaslib.ratios import RatioCode, written_ratio
from biaslib.study_registry import declared_studies, study_sections


class ParamsError(BiaslibError, ValueError):
    """A params file has an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class CaptionConfig:
    """Probabilities that a world caption mentions each attribute."""

    p_gender: float = 0.35
    p_age: float = 0.25
    p_occupation: float = 0.6
    p_place: float = 0.5
    p_race: float = 0.05
    p_style: float = 0.8


@dataclass(frozen=True)
class WorldConfig:
    """The synthetic world (see ``biaslib/world/README.md``)."""

    image_size: int = 64
    bias_strength: float = 1.0
    p_no_occupation: float = 0.15
    p_object: float = 0.2
    jpeg_quality: int = 95
    captions: CaptionConfig = field(default_factory=CaptionConfig)


@dataclass(frozen=True)
class ExportConfig:
    """Sizes of the datasets ``biaslib world export`` writes (in the real datasets' formats).

    ``fairface_occupations``: FairFace people keep their occupation's outfit and headwear (True, the exports
    the committed world study used) or are drawn as occupation ``none`` in casual clothes (False: faces without
    occupation cues, like real FairFace; what the ``association`` evaluation needs, bench/RESULTS.md).
    """

    cc3m_samples: int = 20000
    cc3m_shard_size: int = 2000
    phase_val: int = 1000
    coco_images: int = 1000
    coco_captions_per_image: int = 5
    fairface_train: int = 4000
    fairface_val: int = 1000
    geode_per_object_region: int = 20
    magbig_languages: tuple[str, ...] = ("english",)
    workers: int = 2
    fairface_occupations: bool = True


ImageFormat = Literal["jpg", "webp", "png"]
#: The simulator's draws an amplifying generator tempers by default: all (biaslib.world.simulator.AMPLIFIABLE).
AMPLIFIED_DEFAULT: tuple[str, ...] = ("gender", "age_level", "race", "region")


@dataclass(frozen=True)
class GenerateConfig:
    """Parameters of a generation run (``generate`` section of the params YAML).

    ``model`` is ``"simulator"`` or a local diffusers pipeline folder; ``amplification`` (γ) and ``amplified``
    (which of the simulator's draws γ tempers: :data:`biaslib.world.simulator.AMPLIFIABLE`, all by default;
    ``[gender]`` plants a sharper gender given the occupation and draws the rest as the faithful simulator does)
    and ``language_shift`` are the simulator's. ``per_replicate``: each training replicate (``train.replicates``)
    gets its own generated images (:meth:`Params.for_replicate`: seed ``seed + r``), so that what differs between
    replicates includes the generator's draw, not only the training seed. ``steps``/``guidance``/
    ``scheduler``/``resolution``/``negative_prompt`` go to the pipeline (``None`` keeps the
    pipeline's default). ``dtype`` ``auto`` means fp16 on CUDA and fp32 on CPU; ``bf16`` on CPU uses
    autocast. ``output_size`` resizes images before encoding (``None`` keeps them).
    """

    model: str = "simulator"
    amplification: float = 1.0
    amplified: tuple[Literal["gender", "age_level", "race", "region"], ...] = AMPLIFIED_DEFAULT
    language_shift: dict[str, float] = field(default_factory=dict)
    scheduler: str | None = None
    steps: int = 50
    guidance: float = 7.5
    resolution: int | None = None
    negative_prompt: str | None = None
    batch_size: int = 8
    image_format: ImageFormat = "jpg"
    quality: int = 95
    output_size: int | None = None
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    device: str = "auto"
    compile: bool = False
    safety_checker: bool = False
    shard_size: int = 1000
    seed: int = 0
    per_replicate: bool = False

    def digest(self) -> str:
        """Hash of everything that changes the images (not batch size, device or compile; ``amplified`` only when
        it is not the default, so runs generated before it existed keep their digest)."""
        keep = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("batch_size", "device", "compile")}
        if self.amplified == AMPLIFIED_DEFAULT:
            del keep["amplified"]
        del keep["per_replicate"]  # which folder a run goes to, not what is in it (the seed says that)
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MixConfig:
    """Nested ratio mixing (``mix`` section): which ratios, the selection seed, the generation run.

    Ratios are codes ``"000"`` … ``"100"`` (percent), read by :func:`biaslib.ratios.written_ratio`: ``0.2``,
    ``20`` and ``"020"`` all mean 20%, and the ambiguous ``1`` is refused. ``allow_skipped_real``: how many unusable
    real samples (truncated shard, missing image or caption, broken JSON) a mix may leave out; more is an
    error before anything is written.
    """

    ratios: tuple[RatioCode, ...] = (RatioCode("000"), RatioCode("020"), RatioCode("040"), RatioCode("060"),
                                     RatioCode("080"), RatioCode("100"))
    seed: int = 0
    generated: str = "default"
    allow_shortfall: bool = False
    allow_skipped_real: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """CLIP training per mixing ratio with open_clip's own trainer (``train`` section).

    ``model`` is an open_clip model name (``RN50``) or one of biaslib's registered configs
    (``biaslib-tiny-rn``). ``gpus`` > 1 runs ``torchrun --nproc_per_node gpus``; ``batch_size`` is
    per GPU; ``train_num_samples`` ``None`` takes the mix manifest's count. ``extra_args`` are passed
    to ``open_clip_train.main`` unchanged. ``replicates``: CLIPs trained per ratio, replicate r with seed
    ``seed + r`` (replicate 0 is the run of a single-replicate study; training noise is measured between them;
    with ``generate.per_replicate`` each replicate also has its own generated data). ``warm_start_epochs``: 0 trains
    every run from scratch; N > 0 first trains one CLIP for N epochs on the real web data (the captions' shards,
    i.e. ratio 0) with these settings and seed, once per data and settings, and starts every run from it
    (``--pretrained``; ``epochs`` more): runs that differ only in a treatment then share everything learnt from
    the real data, which makes paired comparisons of them tighter. ``probe_ratios``: ratios (codes) at which one
    more CLIP is trained on replicate 0's data with the next seed (replicate ``replicates``, seed
    ``seed + replicates``) and evaluated: with one replicate per ratio, it measures how far another training run
    moves each value, which the per-ratio figures and findings state (their bands cover evaluation sampling only).
    """

    model: str = "biaslib-tiny-rn"
    epochs: int = 4
    batch_size: int = 256
    lr: float = 1e-3
    wd: float = 0.1
    warmup: int = 20
    precision: str = "fp32"
    workers: int = 1
    gpus: int = 0
    train_num_samples: int | None = None
    save_frequency: int = 1
    seed: int = 0
    extra_args: tuple[str, ...] = ()
    replicates: int = 1
    warm_start_epochs: int = 0
    probe_ratios: tuple[RatioCode, ...] = ()


#: The concept queries of Berg et al. 2022 ("A prompt array keeps the bias away", MaxSkew over FairFace): five
#: pairs of opposites, each in "a photo of a {} person".
CONCEPTS: tuple[str, ...] = ("good", "evil", "smart", "dumb", "attractive", "unattractive", "lawful", "criminal",
                             "friendly", "unfriendly")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluations of the trained CLIPs (``eval`` section; :mod:`biaslib.evaluate`).

    ``evaluations`` picks among the registered evaluations (:func:`biaslib.evaluations.list_evaluations`):
    ``retrieval`` (PHASE and COCO-bias text→image R@k per group),
    ``markedness`` (FairFace self-similarity and person preference), ``geode`` (zero-shot
    accuracy per region) and ``association`` (occupation queries over FairFace faces: MaxSkew@k and NDKL for
    gender, race and age, and the top-k share of women against the data's p(woman | occupation); opt-in).
    ``association_ks``: its cut-offs (capped at the number of faces); ``association_occupations``: its
    queries (empty: the world's occupations); ``association_shares``: a CSV ``occupation,share_woman`` of the
    training data (None: the world's table at the params' bias strength). ``zero_shot`` (FairFace classified
    zero-shot by gender, race in 7 and 4 classes and age: accuracy per group, CLIP paper §7.1 Tables 3–5) and ``harms``
    (FairFace classified among the 14 race × gender labels and crime-related and non-human labels, and again with
    "child" added: the share of each group's faces given a harmful label, §7.1 Tables 6 and 7) are opt-in;
    ``fairface_labels`` is their label file (None: ``biaslib/prompt_data/fairface_labels.json``, the paper's sets;
    the same keys to substitute one's own). ``concepts`` (opt-in) scores the concept queries of Berg et al. 2022
    (``concepts`` in ``concept_template``; default the five opposite pairs of :data:`CONCEPTS`) like
    ``association``'s occupations: MaxSkew@k and NDKL@k for gender, race and age against the uniform and the
    dataset distribution, for each of ``concept_ks`` (capped at the number of faces). Dataset folders default to
    ``<data_root>/<name>`` with ``data_root`` ``None`` meaning ``<run_dir>/data`` (where ``biaslib world
    export`` writes). ``intersections``
    name FairFace attribute combinations joined by ``_`` (``race_gender``). ``n_boot``, ``ci`` and
    ``seed`` set the bootstrap, ``n_perm`` the permutations of every gap test; groups with fewer than
    ``min_group_size`` items are reported but left out of gaps; ``batch_size``, ``workers``, ``threads``
    (``None``: the cores the workers leave), ``precision``, ``device`` and ``chunk_size`` (captions scored
    per retrieval step) only change speed and memory (fp16/bf16 change the last digits). ``options``: the settings
    an added evaluation declares for itself, ``{evaluation: {key: value}}`` (its declared defaults otherwise;
    :attr:`biaslib.evaluations.Evaluation.options`).
    """

    evaluations: tuple[str, ...] = ("retrieval", "markedness", "geode")
    data_root: Path | None = None
    phase_root: Path | None = None
    coco_bias_root: Path | None = None
    fairface_root: Path | None = None
    geode_root: Path | None = None
    phase_split: str = "val"
    coco_bias_split: str = "val"
    fairface_split: str = "val"
    fairface_margin: str = "125"
    intersections: tuple[str, ...] = ("race_gender",)
    association_ks: tuple[int, ...] = (100,)
    association_occupations: tuple[str, ...] = ()
    association_shares: Path | None = None
    fairface_labels: Path | None = None
    concepts: tuple[str, ...] = CONCEPTS
    concept_template: str = "a photo of a {} person"
    concept_ks: tuple[int, ...] = (100, 1000)
    geode_templates: tuple[str, ...] = ("a photo of a {}.",)
    ks: tuple[int, ...] = (1, 5, 10)
    n_boot: int = 1000
    n_perm: int = 2000
    min_group_size: int = 20
    ci: float = 0.95
    seed: int = 0
    self_similarity_ci: Literal["u_statistic", "bootstrap"] = "u_statistic"
    batch_size: int = 256
    workers: int = 0
    threads: int | None = None
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    device: str = "auto"
    chunk_size: int = 1024
    feature_dtype: Literal["float32", "float16"] = "float32"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FinetuneParams:
    """Fine-tuning settings of a text-to-image pipeline (:mod:`biaslib.finetune`), as a study's params section nests
    them.

    The fields of :class:`biaslib.finetune.FinetuneConfig` that a params file may set (``FinetuneConfig``
    extends this class with the ones only code sets); the defaults are the paper settings (formats.md C3):
    resolution 256, center crop, random flip, batch 16 × gradient accumulation 2, 5 epochs, learning rate 5e-6
    with a polynomial schedule and no warm-up, fp16, TF32, gradient checkpointing. Steps count optimizer updates.
    """

    resolution: int = 256
    center_crop: bool = True
    random_flip: bool = True
    train_batch_size: int = 16
    gradient_accumulation_steps: int = 2
    num_train_epochs: int = 5
    max_train_steps: int | None = None
    learning_rate: float = 5e-6
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine", "polynomial"] = "polynomial"
    lr_power: float = 1.0
    lr_warmup_steps: int = 0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "fp16"
    allow_tf32: bool = True
    gradient_checkpointing: bool = True
    use_ema: bool = False
    caption_dropout: float = 0.0
    train_text_encoder: bool = False
    checkpointing_steps: int = 500
    checkpoints_total_limit: int | None = None
    dataloader_num_workers: int = 0
    seed: int = 0


#: The folder relative paths of a params file resolve against when the file is not in a ``params/`` folder's parent.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: The keys of :class:`Params` that are not a section: what the run is called and where it goes.
RUN_KEYS = ("experiment", "runs_dir", "variants")


def _study_section_defaults() -> dict[str, Any]:
    """Every study's own params sections at their defaults (:func:`biaslib.study_registry.study_sections`)."""
    return {name: cls() for name, cls in study_sections().items()}


def _portable(value: Any, root: Path) -> Any:
    """``value`` (a :func:`dataclasses.asdict` tree) with every path under ``root`` written relative to it, so that
    a digest is the same wherever the checkout lies."""
    if isinstance(value, Path):
        return value.relative_to(root).as_posix() if value.is_relative_to(root) else str(value)
    if isinstance(value, dict):
        return {k: _portable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v, root) for v in value]
    return value


@dataclass(frozen=True)
class Params:
    """All parameters of one experiment: the run's name and place, the shared sections the pipeline steps read
    (``world`` … ``eval``) and, in ``sections``, each study's own sections (``params.<section>`` reads one; a
    study declares them, :mod:`biaslib.study_registry`). ``root``: the folder the file's relative paths were
    resolved against (the repository root for a file in ``params/``)."""

    experiment: str = "world_default"
    seed: int = 0
    runs_dir: Path = Path("runs")
    world: WorldConfig = field(default_factory=WorldConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    mix: MixConfig = field(default_factory=MixConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    #: Named variants of the experiment, each a mapping of dotted keys to values applied on top of the
    #: file (``{"gamma2": {"generate.amplification": 2.0}}``); :func:`load_params` with ``variant=NAME``
    #: gives the experiment ``<experiment>_<NAME>``. Empty for a single experiment.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=_study_section_defaults)
    root: Path = field(default=REPO_ROOT, compare=False, repr=False)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"Params has no field or study section {name!r}")

    def with_section(self, name: str, value: Any) -> Params:
        """These params with study section ``name`` replaced by ``value``."""
        if name not in self.sections:
            raise ValueError(f"no study section {name!r}; the sections: {', '.join(self.sections)}")
        return dataclasses.replace(self, sections={**self.sections, name: value})

    @property
    def run_dir(self) -> Path:
        """Folder of this experiment's outputs: ``<runs_dir>/<experiment>``."""
        return self.runs_dir / self.experiment
    def data_replicates(self) -> range:
        """The replicates that have data of their own: every training replicate with ``generate.per_replicate``,
        else only replicate 0 (all replicates train on its data)."""
        return range(self.train.replicates if self.generate.per_replicate else 1)

    def for_replicate(self, replicate: int) -> Params:
        """The params of replicate ``replicate``'s data: with ``generate.per_replicate`` the generation seed
        ``generate.seed + replicate`` and the generation run (and its mixes) ``<mix.generated>_r<replicate>``;
        replicate 0, every replicate without ``per_replicate`` and the probe replicate (``train.probe_ratios``:
        replicate ``train.replicates``, another training seed on replicate 0's data) are these params unchanged."""
        probe = 1 if self.train.probe_ratios else 0
        if not 0 <= replicate < self.train.replicates + probe:
            raise ValueError(f"replicate {replicate} is outside 0 … {self.train.replicates + probe - 1} "
                             "(train.replicates, plus one with train.probe_ratios)")
        if replicate == 0 or replicate >= self.train.replicates or not self.generate.per_replicate:
            return self
        return dataclasses.replace(
            self, generate=dataclasses.replace(self.generate, seed=self.generate.seed + replicate),
            mix=dataclasses.replace(self.mix, generated=f"{self.mix.generated}_r{replicate}"))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (paths as strings) in the shape of a params file (study sections at the top level),
        for provenance records."""
        plain = dataclasses.asdict(self)
        del plain["root"]
        sections = plain.pop("sections")
        return json.loads(json.dumps({**plain, **sections}, default=str))

    def digest(self, keys: Iterable[str]) -> str:
        """Short sha256 of the values of ``keys`` (top-level keys of :meth:`to_dict`: ``seed``, sections), paths
        under :attr:`root` written relative to it (the same digest wherever the checkout lies). What a study's
        results depend on is its :func:`~biaslib.study_registry.study_digest`."""
        plain = dataclasses.asdict(self)
        del plain["root"]
        sections = plain.pop("sections")
        plain = {**plain, **sections}
        unknown = sorted(set(keys) - set(plain))
        if unknown:
            raise ValueError(f"no params key(s) {', '.join(unknown)}; the keys: {', '.join(plain)}")
        chosen = _portable({key: plain[key] for key in keys}, self.root)
        return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:12]


class ParamsLoader(yaml.SafeLoader):
    """YAML as params and models files mean it: YAML 1.2's plain scalars where 1.1 surprises. ``020`` is the
    string ``"020"`` (a ratio code; as an integer field, 20), not the octal 16, and only ``true``/``false`` are
    booleans (``no``, the Norwegian language code, stays a string)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


ParamsLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))
ParamsLoader.yaml_implicit_resolvers["0"].insert(0, ("tag:yaml.org,2002:str", re.compile(r"^0[0-9]+$")))


def read_yaml(text: str) -> Any:
    """The value of a params or models file's YAML text, read by :class:`ParamsLoader`."""
    return yaml.load(text, Loader=ParamsLoader)  # noqa: S506 - a SafeLoader subclass


def _convert(value: Any, tp: Any, key: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    if tp is RatioCode:
        try:
            return RatioCode(written_ratio(value))
        except ValueError as err:
            raise ParamsError(f"{key}: {err}") from None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key, base)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: expected a list, got {value!r}")
        (inner, _ellipsis) = typing.get_args(tp)
        return tuple(_convert(v, inner, f"{key}[{i}]", base) for i, v in enumerate(value))
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{key}: expected one of {', '.join(map(str, allowed))}, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{key}: expected a mapping, got {value!r}")
        _, value_type = typing.get_args(tp)
        return {str(k): _convert(v, value_type, f"{key}.{k}", base) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(value, args[0], key, base)
    if tp is Path:
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else (base / path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp in (int, float, str):
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ParamsError(f"{key}: expected an integer, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise ParamsError(f"{key}: expected {tp.__name__}, got {value!r}") from None
    return value


def _build(cls: type, data: dict[str, Any], prefix: str, base: Path) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ParamsError(f"unknown key {where}{unknown[0]}; allowed keys here: {', '.join(names)}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k, base) for k, v in data.items()}
    return cls(**kwargs)


def project_folder(path: str | Path) -> Path:
    """The folder a params or models file's relative paths resolve against: the folder above ``params/`` for a file
    in a ``params`` folder (``params/default.yaml`` → the repository root), else the file's own folder."""
    folder = Path(path).expanduser().resolve().parent
    return folder.parent if folder.name == "params" else folder


def repo_path(path: str | Path | None) -> Path | None:
    """A notebook's path parameter as a path: relative → under the repository root (:data:`REPO_ROOT`), whatever
    the working folder; absolute (``~`` expanded) → itself; None → None."""
    if path is None:
        return None
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _read_params_file(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a params YAML, with ``extends: <file>`` (relative to the file's :func:`project_folder`, as
    its other paths) resolved: the named
    file's mapping with this file's sections merged on top, key by key (a nested mapping merges, any other
    value replaces). Raises :class:`ParamsError` naming the file for a missing file, invalid YAML, a
    non-mapping or an ``extends`` cycle."""
    if not path.is_file():
        raise ParamsError(f"params file not found: {path} (expected a YAML file like params/default.yaml)")
    if path.resolve() in chain:
        raise ParamsError(f"{path}: 'extends' runs in a circle: {' → '.join(str(p) for p in (*chain, path))}")
    try:
        data = read_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParamsError(f"{path} is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must hold a mapping of sections (experiment:, world:, …), got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ParamsError(f"{path}: extends must name one params file, got {parent!r}")
    named = Path(parent).expanduser()
    named = named if named.is_absolute() else project_folder(path) / named
    if not named.is_file() and (path.parent / parent).is_file() and not Path(parent).is_absolute():
        raise ParamsError(f"{path}: extends: {parent} is read from the project folder {project_folder(path)} (as every "
                          f"relative path of a params file); write extends: "
                          f"{os.path.relpath((path.parent / parent).resolve(), project_folder(path))}")
    return _merged(_read_params_file(named, (*chain, path.resolve())), data)


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``top`` on top: nested mappings merge key by key, any other value of ``top`` replaces."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_params(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                variant: str | None = None) -> Params:
    """Load a params YAML (default ``params/default.yaml``; ``extends: other.yaml`` starts from another
    file, see :func:`_read_params_file`) into :class:`Params`.

    ``overrides`` maps dotted keys to values (``{"world.bias_strength": 0}``) applied on top of the
    file; they are checked like file keys. ``variant`` applies the file's ``variants[variant]``
    mapping first (``overrides`` still win) and names the experiment ``<experiment>_<variant>``
    unless the variant sets ``experiment`` itself (to reuse another experiment's runs).
    """
    path = Path(path) if path is not None else REPO_ROOT / "params" / "default.yaml"
    data = _read_params_file(path)
    if variant is not None:
        known = data.get("variants") or {}
        if variant not in known:
            raise ParamsError(f"{path} has no variant {variant!r}; its variants: {', '.join(known) or 'none'}")
        overrides = {"experiment": f"{data.get('experiment', Params.experiment)}_{variant}", **known[variant],
                     **(overrides or {})}
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for depth, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ParamsError(f"cannot set {dotted}: {'.'.join(parents[:depth + 1])} is a value "
                                  f"({node!r}), not a section")
        node[leaf] = value
    base = project_folder(path)
    owned = study_sections()
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(Params)} - set(owned) - {"sections", "root"})
    if unknown:
        names = [f.name for f in dataclasses.fields(Params) if f.name not in ("sections", "root")] + list(owned)
        raise ParamsError(f"unknown key {unknown[0]}; allowed keys here: {', '.join(names)}")
    sections = {name: _build(cls, _section_mapping(data.pop(name, None), name), name, base)
                for name, cls in owned.items()}
    params = dataclasses.replace(_build(Params, data, "", base), sections=sections, root=base)
    for name, mapping in params.variants.items():
        if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
            raise ParamsError(f"variants.{name}: expected a mapping of dotted keys to values, got {mapping!r}")
    check_ranges(params, RANGES, path)
    for study in declared_studies().values():
        if study.check_params is not None:
            study.check_params(params, path)
    return params


def _section_mapping(value: Any, name: str) -> dict[str, Any]:
    """A study section's mapping from a params file (absent or empty: its defaults)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ParamsError(f"{name}: expected a mapping, got {value!r}")
    return value


#: Dotted keys of the shared sections with the closed range their value must lie in (None: unbounded on that side);
#: a study checks its own sections (:attr:`~biaslib.study_registry.StudyDeclaration.check_params`).
RANGES: dict[str, tuple[float | None, float | None]] = {
    "world.bias_strength": (0.0, None), "world.p_no_occupation": (0.0, 1.0), "world.p_object": (0.0, 1.0),
    "world.image_size": (8, None), "world.jpeg_quality": (1, 100), "generate.batch_size": (1, None),
    "generate.shard_size": (1, None), "generate.amplification": (0.0, None), "train.epochs": (1, None),
    "train.replicates": (1, None), "train.batch_size": (1, None), "train.warm_start_epochs": (0, None),
    "eval.n_boot": (1, None), "eval.n_perm": (1, None),
    "eval.min_group_size": (1, None), "mix.allow_skipped_real": (0, None),
}


def check_ranges(params: Params, ranges: dict[str, tuple[float | None, float | None]], path: Path) -> None:
    """Refuse values outside ``ranges`` (dotted key → closed range, e.g. ``world.bias_strength: -3``), naming the
    key and the file."""
    for dotted, (low, high) in ranges.items():
        value: Any = params
        for part in dotted.split("."):
            value = getattr(value, part, None)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"≥ {low}" if high is None else f"in [{low}, {high}]"
            raise ParamsError(f"{dotted} = {value!r} ({path}): must be {bounds}")


def build_config(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """The params dataclass ``cls`` from a plain mapping, checked like a params file section named ``prefix``
    (unknown keys and misfit values are :class:`ParamsError`; relative paths resolve against the repository)."""
    return _build(cls, data, prefix, REPO_ROOT)


def variant_params(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> list[Params]:
    """One :class:`Params` per variant of the file (in file order), or the file's own when it has none."""
    params = load_params(path, overrides)
    if not params.variants:
        return [params]
    return [load_params(path, overrides, variant=name) for name in params.variants]
