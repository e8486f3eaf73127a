"""The world's biased joint distribution and the sampler that draws people and objects from it.

Conditionals are tabled per occupation in ``occupations.csv`` (p(woman | o), p(age level | o), a skin
skew) and per race in :mod:`biaslib.world.attributes` (skin | race, hair | race). ``bias_strength``
``s`` tempers the occupational conditionals:

* gender and age level: ``p_s(a | o) ∝ p(a | o) ** s`` over the tabled support (``s = 0`` uniform,
  ``s = 1`` as tabled, ``s > 1`` sharper);
* race: ``p_s(race | o) ∝ base(race) · exp(s · 1.2 · skew_o · (μ_race − 3) / 1.5)``, so ``s = 0``
  gives every occupation the population's race mix.

Sampling is vectorised and deterministic: row ``i`` of a stream uses row ``i`` of a fixed
``(n, K)`` matrix of uniforms, so the first ``n`` people of a stream are the same whatever ``n``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from biaslib.world.attributes import (
    AGE_BIN_LEVEL,
    AGE_BIN_WEIGHTS,
    AGE_BINS,
    AGE_LEVELS,
    DRESSING_WEIGHTS,
    DRESSINGS,
    GENDERS,
    HAIR_COLORS,
    NO_OCCUPATION,
    PLACES,
    RACE_BASE,
    RACE_CURLY,
    RACE_HAIR,
    RACE_SKIN_MEAN,
    RACES,
    SKIN_SD,
    SKIN_TONES,
    STYLE_WEIGHTS,
    STYLES,
    occupation_table,
)

#: GeoDE's six regions, conventional order.
REGIONS: tuple[str, ...] = ("Africa", "Americas", "EastAsia", "Europe", "SouthEastAsia", "WestAsia")
#: How often each region appears in the world's web-like (CC3M) data: the geographic skew.
WEB_REGION_WEIGHTS: tuple[float, ...] = (0.07, 0.30, 0.12, 0.35, 0.08, 0.08)
#: GeoDE-like object classes the world draws (GeoDE spellings).
OBJECTS: tuple[str, ...] = ("house", "car", "chair", "bag", "hat", "stove", "boat", "bicycle")

_N_UNIFORMS = 16


def stream_seed(seed: int, stream: str) -> np.random.SeedSequence:
    """A seed sequence for ``(seed, stream)``: independent streams from one global seed."""
    digest = hashlib.sha256(stream.encode()).digest()
    return np.random.SeedSequence([int(seed), int.from_bytes(digest[:8], "little")])


def _uniforms(seed: int, stream: str, n: int) -> np.ndarray:
    """``(n, K)`` uniforms; row i does not depend on n."""
    return np.random.default_rng(stream_seed(seed, stream)).random((n, _N_UNIFORMS))


def _categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: ``u`` (n,) uniforms, ``probs`` (n, k) rows summing to 1 → indices (n,)."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    return (u[:, None] >= cdf).sum(axis=1)


def _temper(p: np.ndarray, strength: float) -> np.ndarray:
    """Rows of ``p`` raised to ``strength`` over their support and renormalised."""
    support = p > 0
    out = np.where(support, np.power(np.where(support, p, 1.0), strength), 0.0)
    return out / out.sum(axis=1, keepdims=True)


def gender_table(bias_strength: float = 1.0) -> pd.DataFrame:
    """p(gender | occupation) after tempering: index occupation, columns ``woman``, ``man``."""
    specs = occupation_table()
    p = np.array([[s.p_woman, 1 - s.p_woman] for s in specs])
    return pd.DataFrame(_temper(p, bias_strength), index=[s.occupation for s in specs], columns=list(GENDERS))


def age_level_table(bias_strength: float = 1.0) -> pd.DataFrame:
    """p(age level | occupation) after tempering: index occupation, columns :data:`AGE_LEVELS`."""
    specs = occupation_table()
    p = np.array([s.age_weights for s in specs], dtype=float)
    p /= p.sum(axis=1, keepdims=True)
    return pd.DataFrame(_temper(p, bias_strength), index=[s.occupation for s in specs], columns=list(AGE_LEVELS))


def race_table(bias_strength: float = 1.0) -> pd.DataFrame:
    """p(race | occupation): index occupation, columns :data:`RACES`."""
    specs = occupation_table()
    base = np.array([RACE_BASE[r] for r in RACES])
    darkness = (np.array([RACE_SKIN_MEAN[r] for r in RACES]) - 3.0) / 1.5
    skew = np.array([s.darker_skew for s in specs])
    logits = np.log(base)[None, :] + bias_strength * 1.2 * skew[:, None] * darkness[None, :]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return pd.DataFrame(p / p.sum(axis=1, keepdims=True), index=[s.occupation for s in specs], columns=list(RACES))


def skin_given_race() -> pd.DataFrame:
    """p(skin tone level | race): index race, columns 1…6 (a discretised normal per race)."""
    levels = np.array(SKIN_TONES, dtype=float)
    rows = []
    for race in RACES:
        w = np.exp(-((levels - RACE_SKIN_MEAN[race]) ** 2) / (2 * SKIN_SD**2))
        rows.append(w / w.sum())
    return pd.DataFrame(rows, index=list(RACES), columns=list(SKIN_TONES))


def occupation_weights(p_no_occupation: float) -> np.ndarray:
    """Marginal over the occupation table: uniform over occupations, ``p_no_occupation`` for ``none``."""
    names = [s.occupation for s in occupation_table()]
    w = np.full(len(names), (1.0 - p_no_occupation) / (len(names) - 1))
    w[names.index(NO_OCCUPATION)] = p_no_occupation
    return w


def sample_people(
    n: int,
    *,
    seed: int = 0,
    stream: str = "people",
    bias_strength: float = 1.0,
    p_no_occupation: float = 0.15,
    occupations: list[str] | None = None,
) -> pd.DataFrame:
    """Draw ``n`` people from the world's joint distribution.

    Parameters
    ----------
    n : number of people.
    seed, stream : the global seed and the name of this draw (different datasets use different
        streams, so their people are independent).
    bias_strength : temper of the occupational conditionals (module docstring).
    p_no_occupation : share of people without an occupation (the only role that includes children).
    occupations : restrict the draw to these occupations (uniform over them); ``None`` = all.

    Returns
    -------
    DataFrame with one row per person: ``person_id`` (0…n−1), ``occupation``, ``gender``, ``age``
    (FairFace bin), ``age_level``, ``race``, ``skin_tone`` (1…6), ``hair_color``, ``hair_curly``,
    ``hair_long``, ``place``, ``style``, ``dressing``, ``outfit_color``, ``render_seed`` (uint32).
    """
    names = occupations_index()
    u = _uniforms(seed, stream, n)
    if occupations is None:
        occ_w = occupation_weights(p_no_occupation)
    else:
        unknown = sorted(set(occupations) - set(names))
        if unknown:
            raise KeyError(f"unknown occupations {unknown}; known: {', '.join(names)}")
        occ_w = np.array([1.0 if nm in occupations else 0.0 for nm in names])
        occ_w /= occ_w.sum()
    return people_from_uniforms(u, np.broadcast_to(occ_w, (n, len(names))), conditional_tables(bias_strength))


def occupations_index() -> list[str]:
    """Occupation names in table order (the index used by the conditional tables)."""
    return [s.occupation for s in occupation_table()]


def conditional_tables(bias_strength: float = 1.0) -> dict[str, np.ndarray]:
    """The occupational conditionals as arrays ``(n_occupations, n_values)``: gender, age_level, race."""
    return {
        "gender": gender_table(bias_strength).to_numpy(),
        "age_level": age_level_table(bias_strength).to_numpy(),
        "race": race_table(bias_strength).to_numpy(),
    }


#: Attributes that :func:`people_from_uniforms` can fix per row, and their vocabularies.
FIXABLE: dict[str, tuple] = {
    "gender": GENDERS, "age_level": AGE_LEVELS, "race": RACES, "place": PLACES, "style": STYLES,
}


def _shifted_gender(gender_p: np.ndarray, man_logit_shift: np.ndarray | None) -> np.ndarray:
    """``(n, 2)`` p(woman), p(man) per person with log-odds(man) shifted by ``man_logit_shift`` (n,) if given."""
    if man_logit_shift is None:
        return gender_p
    logit = np.log(np.clip(gender_p[:, 1], 1e-12, 1)) - np.log(np.clip(gender_p[:, 0], 1e-12, 1)) + man_logit_shift
    p_man = 1.0 / (1.0 + np.exp(-logit))
    return np.stack([1 - p_man, p_man], axis=1)


def _age_bins(u: np.ndarray, level: np.ndarray) -> np.ndarray:
    """FairFace age bin per person (object array), drawn from uniforms ``u`` (n,) within each person's age level
    (index into :data:`AGE_LEVELS`) by :data:`AGE_BIN_WEIGHTS`."""
    age = np.empty(len(level), dtype=object)
    for li, lvl in enumerate(AGE_LEVELS):
        bins = [b for b in AGE_BINS if AGE_BIN_LEVEL[b] == lvl]
        rows = level == li
        w = np.array([AGE_BIN_WEIGHTS[b] for b in bins])
        probs = np.broadcast_to(w / w.sum(), (rows.sum(), len(bins)))
        age[rows] = np.array(bins, dtype=object)[_categorical(u[rows], probs)]
    return age


def _place_probs(workplace: np.ndarray) -> np.ndarray:
    """``(n, len(PLACES))`` place distribution per person: 0.7 at the occupation's workplace (0.9 when that is
    home), 0.2 at home, the rest spread evenly."""
    n = len(workplace)
    place_p = np.full((n, len(PLACES)), 0.1 / (len(PLACES) - 2))
    home = PLACES.index("home")
    place_p[:, home] = 0.2
    place_p[np.arange(n), workplace] = np.where(workplace == home, 0.9, 0.7)
    return place_p / place_p.sum(axis=1, keepdims=True)


def people_from_uniforms(
    u: np.ndarray,
    occupation_probs: np.ndarray,
    tables: dict[str, np.ndarray],
    fixed: dict[str, np.ndarray] | None = None,
    man_logit_shift: np.ndarray | None = None,
) -> pd.DataFrame:
    """Draw people from uniforms: the core of :func:`sample_people` and of the simulated generator.

    Parameters
    ----------
    u : ``(n, K)`` uniforms in [0, 1); column j drives one decision, so row i fixes person i.
    occupation_probs : ``(n, n_occupations)`` row-wise distributions over :func:`occupations_index`.
    tables : ``(n_occupations, n_values)`` conditionals for ``gender``, ``age_level``, ``race``
        (see :func:`conditional_tables`).
    fixed : optional column → ``(n,)`` int index into :data:`FIXABLE`'s vocabulary, ``-1`` = draw.
    man_logit_shift : optional ``(n,)`` shift of log-odds(man) applied before drawing gender.

    Returns
    -------
    The people table of :func:`sample_people`.
    """
    n = u.shape[0]
    fixed = fixed or {}
    specs = occupation_table()
    names = [s.occupation for s in specs]

    def choose(column: str, drawn: np.ndarray) -> np.ndarray:
        if column not in fixed:
            return drawn
        return np.where(fixed[column] >= 0, fixed[column], drawn)

    occ = _categorical(u[:, 0], occupation_probs)
    gender = choose("gender", _categorical(u[:, 1], _shifted_gender(tables["gender"][occ], man_logit_shift)))
    level = choose("age_level", _categorical(u[:, 2], tables["age_level"][occ]))
    age = _age_bins(u[:, 3], level)

    race = choose("race", _categorical(u[:, 4], tables["race"][occ]))
    skin = np.array(SKIN_TONES)[_categorical(u[:, 5], skin_given_race().to_numpy()[race])]
    hair_p = np.array([RACE_HAIR[r] for r in RACES])
    hair = _categorical(u[:, 6], hair_p[race])
    curly = u[:, 7] < np.array([RACE_CURLY[r] for r in RACES])[race]
    is_woman = gender == 0
    is_child = level == 0
    p_long = np.where(is_woman, np.where(is_child, 0.7, 0.85), 0.05)
    hair_long = u[:, 8] < p_long

    workplace = np.array([PLACES.index(s.workplace) for s in specs])[occ]
    place = choose("place", _categorical(u[:, 9], _place_probs(workplace)))
    style = choose("style", _categorical(u[:, 10], np.broadcast_to(np.array(STYLE_WEIGHTS), (n, len(STYLES)))))
    dressing = _categorical(u[:, 11], np.broadcast_to(np.array(DRESSING_WEIGHTS), (n, len(DRESSINGS))))
    color_first = u[:, 12] < 0.7
    colors = np.array([s.colors for s in specs], dtype=object)[occ]
    outfit = np.where(color_first, colors[:, 0], colors[:, 1])
    render_seed = (u[:, 13] * 2**32).astype(np.uint32)

    return pd.DataFrame({
        "person_id": np.arange(n),
        "occupation": np.array(names, dtype=object)[occ],
        "gender": np.array(GENDERS, dtype=object)[gender],
        "age": age,
        "age_level": np.array(AGE_LEVELS, dtype=object)[level],
        "race": np.array(RACES, dtype=object)[race],
        "skin_tone": skin.astype(int),
        "hair_color": np.array(HAIR_COLORS, dtype=object)[hair],
        "hair_curly": curly,
        "hair_long": hair_long,
        "place": np.array(PLACES, dtype=object)[place],
        "style": np.array(STYLES, dtype=object)[style],
        "dressing": np.array(DRESSINGS, dtype=object)[dressing],
        "outfit_color": outfit,
        "render_seed": render_seed,
    })


def sample_objects(
    n: int,
    *,
    seed: int = 0,
    stream: str = "objects",
    region_weights: tuple[float, ...] | None = None,
    typical_look: float = 0.75,
) -> pd.DataFrame:
    """Draw ``n`` GeoDE-like objects.

    Each object has a ``region`` and a ``look_region``: with probability ``typical_look`` it looks
    like its own region's variant, otherwise like another region's (so looks overlap).
    ``region_weights`` defaults to uniform (GeoDE is balanced); web data uses
    :data:`WEB_REGION_WEIGHTS`.

    Returns a DataFrame: ``object_id``, ``object``, ``region``, ``look_region``, ``render_seed``.
    """
    u = _uniforms(seed, stream, n)
    k = len(REGIONS)
    rw = np.full(k, 1.0 / k) if region_weights is None else np.asarray(region_weights, float) / np.sum(region_weights)
    obj = (u[:, 0] * len(OBJECTS)).astype(int)
    region = _categorical(u[:, 1], np.broadcast_to(rw, (n, k)))
    other = (region + 1 + (u[:, 3] * (k - 1)).astype(int)) % k
    look = np.where(u[:, 2] < typical_look, region, other)
    return pd.DataFrame({
        "object_id": np.arange(n),
        "object": np.array(OBJECTS, dtype=object)[obj],
        "region": np.array(REGIONS, dtype=object)[region],
        "look_region": np.array(REGIONS, dtype=object)[look],
        "render_seed": (u[:, 4] * 2**32).astype(np.uint32),
    })
