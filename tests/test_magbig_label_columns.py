"""The MAGBIG kernels are label-neutral (issue 28): they read the two count columns they are told to
(``labels=(reference, counted)``, default ``("man", "woman")``), and the multilingual study scores skin on its own
``light``/``dark`` columns, never through ``man``/``woman``. The skin path is the gender path on other columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biaslib.metrics.magbig import (
    magbig_fairness,
    magbig_fairness_mc,
    mean_l1_difference,
    mean_l1_inference,
)
from biaslib.studies.multilingual.evaluation import counts_of, fairness_contrasts, fairness_table

GENERATIONS = ("base", "finetuned")
LANGUAGES = ("en", "de", "ja")
OCCUPATIONS = [f"job{i:02d}" for i in range(30)]
PROMPTS = 3
IMAGES_PER_PROMPT = 4
N_BOOT = 40


def synthetic_labels(seed: int = 0) -> pd.DataFrame:
    """:func:`~biaslib.studies.multilingual.evaluation.image_labels`-style rows: 2 generations × 3 languages ×
    30 occupations × 3 prompts × 4 images, each occupation with its own p(woman) and p(dark). Occupations 0–2 never
    show a face; 3–4 show faces whose skin is never read (zero skin faces, gender faces); in Japanese occupation 5
    has no face either (zero faces in one group only)."""
    rng = np.random.default_rng(seed)
    p_woman = rng.uniform(0.05, 0.95, len(OCCUPATIONS))
    p_dark = rng.uniform(0.05, 0.95, len(OCCUPATIONS))
    rows = []
    for generation in GENERATIONS:
        for language in LANGUAGES:
            for o, occupation in enumerate(OCCUPATIONS):
                faceless = o < 3 or (language == "ja" and o == 5)
                for prompt in range(PROMPTS):
                    for image in range(IMAGES_PER_PROMPT):
                        if faceless:
                            outcome = "no_face"
                        else:
                            outcome = rng.choice(["man", "woman", "multiple_faces", "other"],
                                                 p=[(1 - p_woman[o]) * 0.85, p_woman[o] * 0.85, 0.1, 0.05])
                        single = outcome in ("man", "woman", "other")
                        skin = (("dark" if rng.random() < p_dark[o] else "light") if single and o >= 5 else None)
                        rows.append({"generation": generation, "language": language,
                                     "key": f"{generation}-{language}-{o}-{prompt}-{image}",
                                     "prompt_id": f"{occupation}-p{prompt}", "occupation": occupation,
                                     "outcome": outcome, "skin": skin, "labels": "simulator"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    """Counts per prompt and per occupation of :func:`synthetic_labels`."""
    labels = synthetic_labels()
    return {"prompts": counts_of(labels, by_prompt=True), "occupations": counts_of(labels)}


def _skin_as_gender(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` with its gender columns dropped and its skin counts renamed into ``man``/``woman``."""
    return counts.drop(columns=["man", "woman"]).rename(columns={"light": "man", "dark": "woman"})


@pytest.mark.parametrize(("table", "resample"), [("occupations", "images"), ("prompts", "images"),
                                                  ("prompts", "prompts")])
def test_skin_fairness_is_gender_fairness_on_skin_columns(tables, table, resample):
    counts = tables[table]
    skin = fairness_table(counts, None, n_boot=N_BOOT, seed=3, attribute="skin", resample=resample)
    gender = fairness_table(_skin_as_gender(counts), None, n_boot=N_BOOT, seed=3, attribute="gender",
                            resample=resample)
    # the skin path has raw rows only; the share metric and the attribute are named for skin
    expected = (gender[gender["correction"] == "raw"].reset_index(drop=True)
                .assign(attribute="skin", metric=lambda f: f["metric"].replace({"share_woman": "share_dark"})))
    pd.testing.assert_frame_equal(skin, expected, check_exact=True)
    assert set(skin["metric"]) >= {"share_dark", "mean_l1", "exp_max_l1", "mean_l1_bc"}
    ja = skin[(skin["language"] == "ja") & (skin["metric"] == "mean_l1")]
    assert ja["excluded"].tolist() == ["job00,job01,job02,job03,job04,job05"] * 2
    # skin and gender counts differ, so the attributes' scores differ: nothing reads man/woman for skin
    real_gender = fairness_table(counts, None, n_boot=N_BOOT, seed=3, attribute="gender", resample=resample)
    raw = real_gender[real_gender["correction"] == "raw"].reset_index(drop=True)
    assert not np.allclose(raw["value"].to_numpy(dtype=float), skin["value"].to_numpy(dtype=float), equal_nan=True)


def test_skin_contrasts_are_gender_contrasts_on_skin_columns(tables):
    counts = tables["prompts"]
    for by, reference in (("language", "en"), ("generation", "base")):
        skin = fairness_contrasts(counts, None, by=by, reference=reference, n_boot=N_BOOT, seed=4, attribute="skin",
                                  resample="prompts")
        gender = fairness_contrasts(_skin_as_gender(counts), None, by=by, reference=reference, n_boot=N_BOOT, seed=4,
                                    attribute="gender", resample="prompts")
        expected = (gender[gender["correction"] == "raw"].reset_index(drop=True)
                    .assign(attribute="skin", metric=lambda f: f["metric"].replace({"share_woman": "share_dark"})))
        pd.testing.assert_frame_equal(skin, expected, check_exact=True)
        assert "mean_l1_bc" in set(skin["metric"])


def _skin_faces(tables: dict[str, pd.DataFrame], generation: str, language: str) -> pd.DataFrame:
    """``occupation``, ``light``, ``dark`` of one group's occupations, without any ``man``/``woman`` column."""
    table = tables["occupations"]
    group = table[(table["generation"] == generation) & (table["language"] == language)]
    return group[["occupation", "light", "dark"]].reset_index(drop=True)


def _renamed(faces: pd.DataFrame) -> pd.DataFrame:
    return faces.rename(columns={"light": "man", "dark": "woman"})


def test_kernels_read_the_named_columns(tables):
    faces, other = _skin_faces(tables, "base", "en"), _skin_faces(tables, "finetuned", "de")
    assert not {"man", "woman"} & set(faces.columns)
    skin = ("light", "dark")
    assert magbig_fairness(faces, occupations=5, images=6, labels=skin) == magbig_fairness(
        _renamed(faces), occupations=5, images=6)
    assert magbig_fairness_mc(faces, draws=200, occupations=5, images=6, seed=2, labels=skin) == magbig_fairness_mc(
        _renamed(faces), draws=200, occupations=5, images=6, seed=2)
    kept, kept_other = faces[faces["light"] + faces["dark"] > 0], other[other["light"] + other["dark"] > 0]
    assert mean_l1_inference(kept, n_boot=99, seed=1, labels=skin) == mean_l1_inference(_renamed(kept), n_boot=99,
                                                                                        seed=1)
    assert mean_l1_difference(kept, kept_other, labels=skin) == mean_l1_difference(_renamed(kept),
                                                                                  _renamed(kept_other))
    # p is the share of the first label: swapping the labels mirrors every share, the scores stay
    swapped = magbig_fairness(faces, occupations=5, images=6, labels=("dark", "light"))
    assert swapped["mean_l1"] == pytest.approx(magbig_fairness(faces, occupations=5, images=6, labels=skin)["mean_l1"])


def test_errors_name_the_missing_columns(tables):
    faces = _skin_faces(tables, "base", "en")
    with pytest.raises(ValueError, match=r"lacks columns \['man', 'woman'\]"):
        magbig_fairness(faces)
    with pytest.raises(ValueError, match=r"lacks columns \['dark'\]"):
        mean_l1_inference(faces.drop(columns=["dark"]), labels=("light", "dark"))
    bad = faces.assign(dark=faces["dark"].astype(float).where(faces.index != 6, -1.0))
    with pytest.raises(ValueError, match=r"light/dark counts must be finite and non-negative.*job06"):
        magbig_fairness(bad, labels=("light", "dark"))
    with pytest.raises(ValueError, match=r"needs whole face counts \(light and dark"):
        mean_l1_inference(faces.assign(dark=faces["dark"] + 0.5), labels=("light", "dark"))
