"""Template prompts and MAGBIG occupation prompt sets, with offline translations (formats.md C1–C3).

Two prompt sets, each a deterministic table whose ``prompt_id`` is a hash of the row's slot values
(not a row number), so ids survive additions to the vocabularies and are equal across languages:

* ``"template"``: ``<STYLE> photo of a <AGE> <GENDER> <PROFESSION> <DRESSING> <PLACE>`` over the full
  Cartesian product of the slot vocabularies (style outermost, place innermost), with a gendered
  ``prompt`` and a gender-neutral ``prompt_neutral`` built by leaving the gender slot out.
  ``neutral_id`` hashes the slots without gender: the male and female rows of one neutral prompt share it.
* ``"magbig"``: MAGBIG's ``direct`` (``A photo of the face of a <occupation>.``) and ``gender_neutral``
  (``A photo of the face of a person who <description> as a profession.``) prompts for its 151 occupations.

Every vocabulary, template and translation is package data under ``biaslib/prompt_data/``:
``vocabulary.json`` (slot values and languages), ``professions.csv`` (the template's professions, with
the original spelling), ``occupations_<lang>.csv`` (noun dictionary for every profession and MAGBIG
occupation), ``magbig_<lang>.csv`` (MAGBIG descriptions) and ``<lang>.json`` (sentence templates and
the small slots' words). :func:`translate` renders German, Chinese and Japanese from these files
offline; German nouns, articles and adjectives follow the gender slot in the genitive
(``Nahaufnahme einer jungen weiblichen Ärztin`` / ``eines jungen männlichen Arztes``; the neutral
prompt uses the generic masculine), and Chinese and Japanese put the modifiers before the noun with
no spaces. Given ``model_path``, :func:`translate` instead runs a local transformers seq2seq model
(an en→<language> model such as Opus-MT, already on disk); nothing is ever downloaded.

Fixed relative to mm-debias's template prompts (formats.md C3):

* Multi-word professions split into two rows are rejoined: ``opera`` + ``singer`` → ``opera singer``,
  ``chess`` + ``player`` → ``chess player``, ``handball`` + ``player`` → ``handball player``. This also
  removes the duplicated ``singer`` and ``player`` rows (144 duplicate prompts): 120 unique professions.
* Words that do not name a person: ``army`` → ``army officer``, ``police`` → ``police officer``,
  ``drawer`` (a piece of furniture) → ``drafter``.
* Gender-marked nouns that contradict the gender slot and make the neutral prompt gendered:
  ``delivery man`` → ``delivery person``, ``handyman`` → ``handyperson``.
* The neutral prompt drops the gender slot instead of deleting the string ``"male "`` (which turned
  ``female barber`` into ``febarber``).
* The article agrees with the next word: ``an adult``, ``an elderly`` (the original wrote ``a adult``);
  MAGBIG's English rule missed ``u`` (``a underwriter``), here ``an underwriter``.
* Gendered and neutral translations are built from the same slot translations, so they differ only in
  the gender slot and the words that agree with it (mm-debias translated each column separately), and
  Chinese/Japanese MAGBIG sentences all end with "。" (MAGBIG's Chinese file ends 26 of 151 that way).

``professions.csv`` keeps each profession's original spelling in its ``original`` column.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from biaslib.articles import agree_articles
from biaslib.errors import DataLayoutError
from biaslib.io import write_csv, write_parquet

SLOTS: tuple[str, ...] = ("style", "age", "gender", "profession", "dressing", "place")
#: The kinds of MAGBIG occupation prompts (the names :func:`biaslib.data.load_magbig_prompts` uses).
MAGBIG_KINDS: tuple[str, ...] = ("direct", "gender_neutral")
PROMPT_SETS: tuple[str, ...] = ("template", "magbig")
TEMPLATE_COLUMNS: tuple[str, ...] = ("prompt_id", "neutral_id", "language", *SLOTS, "prompt", "prompt_neutral",
                                     "translator")
MAGBIG_COLUMNS: tuple[str, ...] = ("prompt_id", "language", "kind", "name", "prompt", "translator")
#: ``translator`` value of rows rendered from the shipped dictionaries.
DICTIONARY = "dictionary"

UNKNOWN_LANGUAGE = "unknown prompt language {language!r}; supported: {supported}"
NO_MODEL = ("seq2seq translation model folder not found or incomplete: {path} (expected a local "
            "save_pretrained folder with config.json, weights and tokenizer files; biaslib never downloads models)")

_SEQ2SEQ_MAX_NEW_TOKENS = 128


# ---- package data ---------------------------------------------------------------------------------

def _data_text(name: str) -> str:
    """Text of ``biaslib/prompt_data/<name>``."""
    return (resources.files("biaslib") / "prompt_data" / name).read_text(encoding="utf-8")


def _data_rows(name: str) -> list[dict[str, str]]:
    """Rows of the package CSV ``name`` as dicts (every value a string)."""
    return list(csv.DictReader(_data_text(name).splitlines()))


@cache
def _vocabulary_file() -> dict[str, Any]:
    """``vocabulary.json``: the small slots' values and the supported language codes."""
    return json.loads(_data_text("vocabulary.json"))


@cache
def _language(code: str) -> dict[str, Any]:
    """``<code>.json``: sentence templates, noun-form columns, articles and slot words of a language."""
    return json.loads(_data_text(f"{code}.json"))


@cache
def _nouns(code: str) -> dict[str, dict[str, str]]:
    """Occupation key → noun forms in language ``code`` (``occupations_<code>.csv``)."""
    return {row["key"]: row for row in _data_rows(f"occupations_{code}.csv")}


@cache
def _descriptions(code: str) -> dict[str, str]:
    """MAGBIG occupation → description in language ``code`` (``magbig_<code>.csv``), in MAGBIG order."""
    return {row["name"]: row["description"] for row in _data_rows(f"magbig_{code}.csv")}


def supported_languages() -> dict[str, str]:
    """Language code → MAGBIG-style language name, e.g. ``{"en": "english", "de": "german", ...}``."""
    return {code: _language(code)["name"] for code in _vocabulary_file()["languages"]}


def resolve_language(language: str) -> str:
    """The code of ``language``, given as a code (``"de"``) or a MAGBIG name (``"german"``), any case."""
    wanted = language.strip().lower()
    for code, name in supported_languages().items():
        if wanted in (code, name):
            return code
    supported = ", ".join(f"{code} ({name})" for code, name in supported_languages().items())
    raise ValueError(UNKNOWN_LANGUAGE.format(language=language, supported=supported))


def vocabulary(slot: str) -> list[str]:
    """The English values of a template slot, in template order (``profession``: the 120 fixed ones)."""
    if slot == "profession":
        return [row["profession"] for row in _data_rows("professions.csv")]
    if slot not in SLOTS:
        raise ValueError(f"unknown template slot {slot!r}; slots: {', '.join(SLOTS)}")
    return list(_vocabulary_file()["slots"][slot])


def magbig_occupations() -> list[str]:
    """The 151 MAGBIG occupation keys, in MAGBIG's row order."""
    return list(_descriptions("en"))


# ---- choosing subsets -----------------------------------------------------------------------------

def _choose(name: str, spec: int | Sequence[str] | None, ordered: list[str], allowed: Sequence[str]) -> list[str]:
    """Resolve one subset entry: ``None`` = all of ``ordered``, ``n`` = its first n, a list = those values.

    Listed values must be in ``allowed`` and distinct; they keep the given order.
    """
    if spec is None:
        return ordered
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec <= len(ordered):
            raise ValueError(f"subset {name!r}: {spec} is out of range 1..{len(ordered)}")
        return ordered[:spec]
    values, known = ([spec] if isinstance(spec, str) else list(spec)), set(allowed)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"subset {name!r}: unknown value(s) {unknown}; known: {', '.join(allowed)}")
    if not values or len(set(values)) != len(values):
        raise ValueError(f"subset {name!r}: give distinct values, at least one (got {values})")
    return values


def _check_subset_keys(subset: Mapping[str, Any], keys: Sequence[str], prompt_set: str) -> None:
    """Refuse subset keys that do not name a slot of ``prompt_set``."""
    bad = sorted(set(subset) - set(keys))
    if bad:
        raise ValueError(f"unknown {prompt_set} subset key(s) {bad}; keys: {', '.join(keys)}")


def _prompt_id(fields: Mapping[str, str]) -> str:
    """Stable id of a prompt: 16 hex digits of sha256 over its slot values (JSON, sorted keys)."""
    blob = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


# ---- English tables -------------------------------------------------------------------------------

def template_table(subset: Mapping[str, int | Sequence[str]] | None = None) -> pd.DataFrame:
    """The English template prompts: one row per combination of slot values.

    Parameters
    ----------
    subset
        Optional slot → choice, for a smaller table: an int keeps the first n values of the slot's
        vocabulary, a list keeps those values in that order. ``profession`` also accepts any MAGBIG
        occupation (every occupation has translations), e.g. the synthetic world's occupations.

    Returns
    -------
    DataFrame with columns :data:`TEMPLATE_COLUMNS`, rows in slot order (style outermost).
    """
    subset = dict(subset or {})
    _check_subset_keys(subset, SLOTS, "template")
    chosen = []
    for slot in SLOTS:
        allowed = list(_nouns("en")) if slot == "profession" else vocabulary(slot)
        chosen.append(_choose(slot, subset.get(slot), vocabulary(slot), allowed))
    frame = pd.DataFrame(list(itertools.product(*chosen)), columns=list(SLOTS))
    records = frame.to_dict("records")
    frame.insert(0, "prompt_id", [_prompt_id({"set": "template", **r}) for r in records])
    frame.insert(1, "neutral_id", [
        _prompt_id({"set": "template", **{k: v for k, v in r.items() if k != "gender"}}) for r in records])
    frame.insert(2, "language", "en")
    return _render_template(frame, "en")


def magbig_table(subset: Mapping[str, int | Sequence[str]] | None = None) -> pd.DataFrame:
    """The English MAGBIG occupation prompts, one row per (kind, occupation), kinds :data:`MAGBIG_KINDS`.

    ``subset`` may hold ``"name"`` (an int = the first n occupations in MAGBIG order, or a list of
    occupations) and ``"kind"`` (a list of kinds). Columns: :data:`MAGBIG_COLUMNS`.
    """
    subset = dict(subset or {})
    _check_subset_keys(subset, ("kind", "name"), "magbig")
    kinds = _choose("kind", subset.get("kind"), list(MAGBIG_KINDS), MAGBIG_KINDS)
    names = _choose("name", subset.get("name"), magbig_occupations(), magbig_occupations())
    frame = pd.DataFrame(list(itertools.product(kinds, names)), columns=["kind", "name"])
    frame.insert(0, "prompt_id", [_prompt_id({"set": "magbig", "kind": k, "name": n})
                                  for k, n in zip(frame["kind"], frame["name"])])
    frame.insert(1, "language", "en")
    return _render_magbig(frame, "en")


# ---- dictionary rendering -------------------------------------------------------------------------

def _word(code: str, slot: str, value: str) -> str:
    """The word(s) of language ``code`` for a small slot's English ``value``."""
    words = _language(code)["slots"][slot]
    if value not in words:
        raise ValueError(f"{code}.json has no {slot} word for {value!r}; known: {', '.join(words)}")
    return words[value]


def _noun(code: str, key: str, form: str) -> tuple[str, str]:
    """(noun, article) of occupation ``key`` in language ``code``; ``form`` is male, female or neutral.

    The article (German only) follows the grammatical gender of the chosen noun form.
    """
    nouns, lang = _nouns(code), _language(code)
    if key not in nouns:
        raise ValueError(f"occupations_{code}.csv has no occupation {key!r}")
    row = nouns[key]
    article = lang["articles"][row[lang["genus"][form]]] if "articles" in lang else ""
    return row[lang["nouns"][form]], article


def _sentence(code: str, template: str, **words: str) -> str:
    """Fill the language's ``template`` with ``words``; English articles agree with the next word
    (:func:`biaslib.articles.agree_articles`: ``an adult``, ``a university``)."""
    lang = _language(code)
    text = lang["templates"][template].format(**words)
    return agree_articles(text) if lang["a_an"] else text


def _render_template(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    """Template rows rendered in language ``code`` from their slot values."""
    gendered, neutral = [], []
    for row in frame[list(SLOTS)].itertuples(index=False):
        words = {slot: _word(code, slot, getattr(row, slot)) for slot in SLOTS if slot != "profession"}
        noun, article = _noun(code, row.profession, row.gender)
        gendered.append(_sentence(code, "template", profession=noun, article=article, **words))
        noun, article = _noun(code, row.profession, "neutral")
        neutral.append(_sentence(code, "template_neutral", profession=noun, article=article, **words))
    out = frame.assign(language=code, prompt=gendered, prompt_neutral=neutral, translator=DICTIONARY)
    return out[list(TEMPLATE_COLUMNS)]


def _render_magbig(frame: pd.DataFrame, code: str) -> pd.DataFrame:
    """MAGBIG rows rendered in language ``code`` (direct: generic noun form; neutral: description)."""
    descriptions = _descriptions(code)
    prompts = []
    for kind, name in zip(frame["kind"], frame["name"]):
        if kind == "direct":
            noun, article = _noun(code, name, "neutral")
            prompts.append(_sentence(code, "direct", occupation=noun, article=article))
        else:
            prompts.append(_sentence(code, "gender_neutral", description=descriptions[name]))
    out = frame.assign(language=code, prompt=prompts, translator=DICTIONARY)
    return out[list(MAGBIG_COLUMNS)]


# ---- translation ----------------------------------------------------------------------------------

def _prompt_set_of(table: pd.DataFrame) -> str:
    """``"template"`` or ``"magbig"``, from the table's columns."""
    for name, columns in (("template", TEMPLATE_COLUMNS), ("magbig", MAGBIG_COLUMNS)):
        if set(columns) <= set(table.columns):
            return name
    raise ValueError("not a prompt table: expected the columns of template_table() or magbig_table() "
                     f"({', '.join(TEMPLATE_COLUMNS)} or {', '.join(MAGBIG_COLUMNS)})")


def _seq2seq(texts: list[str], model_path: str | Path, batch_size: int, device: str) -> list[str]:
    """Greedy translations of ``texts`` by the local transformers seq2seq model in ``model_path``.

    transformers and torch are imported here: they are optional dependencies (extra ``gen``).
    """
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise DataLayoutError(NO_MODEL.format(path=path))
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(str(path), local_files_only=True).to(device).eval()
    out: list[str] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True).to(device)
            ids = model.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=_SEQ2SEQ_MAX_NEW_TOKENS)
            out.extend(t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True))
    return out


def _translate_with_model(table: pd.DataFrame, code: str, model_path: str | Path, prompt_columns: Sequence[str],
                          batch_size: int, device: str) -> pd.DataFrame:
    """Replace ``prompt_columns`` by model translations; each distinct English text is translated once."""
    if code == "en" or set(table["language"]) != {"en"}:
        raise ValueError("seq2seq translation goes from English to another language: give an English prompt "
                         f"table and a target language other than en (got {sorted(set(table['language']))} → {code})")
    texts = sorted({t for column in prompt_columns for t in table[column]})
    translated = dict(zip(texts, _seq2seq(texts, model_path, batch_size, device)))
    out = table.assign(language=code, translator=f"seq2seq:{Path(model_path).name}")
    for column in prompt_columns:
        out[column] = out[column].map(translated)
    return out


def translate(table: pd.DataFrame, language: str, model_path: str | Path | None = None, *,
              batch_size: int = 16, device: str = "cpu") -> pd.DataFrame:
    """Translate a prompt table (from :func:`template_table` or :func:`magbig_table`) into ``language``.

    Parameters
    ----------
    table
        A template or MAGBIG prompt table; ids and slot columns are kept, so rows match across languages.
    language
        A code or MAGBIG name from :func:`supported_languages` (``"de"``/``"german"``, ``"zh"``, ``"ja"``,
        ``"en"``); anything else is a ``ValueError`` listing them.
    model_path
        ``None`` (default): render from the shipped dictionaries and templates, offline and exact.
        A folder: translate the English sentences with the local transformers seq2seq model saved
        there (an en→``language`` model; greedy decoding, ``batch_size`` sentences at a time on
        ``device``). A missing folder is a :class:`~biaslib.errors.DataLayoutError`; nothing is downloaded.

    Returns
    -------
    A new table with ``language`` set, the prompt column(s) translated and ``translator`` recording
    ``"dictionary"`` or ``"seq2seq:<model folder name>"``.
    """
    code = resolve_language(language)
    prompt_set = _prompt_set_of(table)
    if model_path is not None:
        columns = ("prompt", "prompt_neutral") if prompt_set == "template" else ("prompt",)
        return _translate_with_model(table, code, model_path, columns, batch_size, device)
    if prompt_set == "template":
        return _render_template(table, code)
    return _render_magbig(table, code)


# ---- tables for the CLI ---------------------------------------------------------------------------

def prompt_table(prompt_set: Literal["template", "magbig"] = "template", languages: Sequence[str] = ("en",), *,
                 subset: Mapping[str, int | Sequence[str]] | None = None,
                 model_paths: Mapping[str, str | Path] | None = None) -> pd.DataFrame:
    """One long table of ``prompt_set`` in every language of ``languages`` (rows grouped by language).

    ``subset`` is passed to :func:`template_table` or :func:`magbig_table`; ``model_paths`` maps a
    language to a local seq2seq model folder (languages not in it use the dictionaries).
    """
    if prompt_set not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {prompt_set!r}; choose one of {', '.join(PROMPT_SETS)}")
    codes = [resolve_language(lang) for lang in languages]
    if not codes or len(set(codes)) != len(codes):
        raise ValueError(f"give distinct languages, at least one (got {list(languages)})")
    models = {resolve_language(lang): path for lang, path in (model_paths or {}).items()}
    extra = sorted(set(models) - set(codes))
    if extra:
        raise ValueError(f"model_paths names language(s) {extra} that are not among languages {codes}")
    english = template_table(subset) if prompt_set == "template" else magbig_table(subset)
    return pd.concat([translate(english, code, models.get(code)) for code in codes], ignore_index=True)


def write_prompt_table(out_path: str | Path, languages: Sequence[str] = ("en", "de", "zh", "ja"), *,
                       prompt_set: Literal["template", "magbig"] = "template",
                       subset: Mapping[str, int | Sequence[str]] | None = None,
                       model_paths: Mapping[str, str | Path] | None = None) -> pd.DataFrame:
    """Build :func:`prompt_table` and write it atomically to ``out_path`` (``.csv`` or ``.parquet``).

    Returns the table written. The suffix is checked before any work.
    """
    out_path = Path(out_path)
    writers = {".csv": write_csv, ".parquet": write_parquet}
    if out_path.suffix not in writers:
        raise ValueError(f"prompt table path must end in .csv or .parquet: {out_path}")
    table = prompt_table(prompt_set, languages, subset=subset, model_paths=model_paths)
    writers[out_path.suffix](out_path, table)
    return table
