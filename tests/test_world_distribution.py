"""The world's joint distribution: bias_strength semantics, tabled skews, determinism (statistical tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biaslib.world.attributes import AGE_BIN_LEVEL, RACES, occupations
from biaslib.world.distribution import gender_table, race_table, sample_objects, sample_people, skin_given_race

N = 60_000


def _woman_share(frame: pd.DataFrame) -> pd.DataFrame:
    counts = pd.crosstab(frame["occupation"], frame["gender"])
    return counts.assign(n=counts.sum(axis=1))


def test_no_bias_gives_half_women_everywhere():
    """bias_strength 0: women's share per occupation is ½ within sampling error (chi-square, 41 cells)."""
    counts = _woman_share(sample_people(N, seed=3, bias_strength=0.0))
    z = (counts["woman"] - counts["n"] / 2) / np.sqrt(counts["n"] / 4)
    chi2 = float((z**2).sum())
    assert stats.chi2.sf(chi2, df=len(z)) > 1e-3, chi2


def test_default_shows_the_tabled_skew():
    """bias_strength 1: shares fit the table (goodness of fit) and reject ½ overwhelmingly."""
    counts = _woman_share(sample_people(N, seed=4, bias_strength=1.0))
    p = gender_table(1.0).loc[counts.index, "woman"]
    z_table = (counts["woman"] - counts["n"] * p) / np.sqrt(counts["n"] * p * (1 - p))
    assert stats.chi2.sf(float((z_table**2).sum()), df=len(z_table)) > 1e-3
    z_half = (counts["woman"] - counts["n"] / 2) / np.sqrt(counts["n"] / 4)
    assert stats.chi2.sf(float((z_half**2).sum()), df=len(z_half)) < 1e-50
    # the direction of the stereotype, tested per occupation with a binomial test
    for occ, more_women in (("nurse", True), ("mechanic", False), ("ceo", False), ("receptionist", True)):
        res = stats.binomtest(int(counts.loc[occ, "woman"]), int(counts.loc[occ, "n"]), 0.5,
                              alternative="greater" if more_women else "less")
        assert res.pvalue < 1e-6, occ


def test_stronger_bias_sharpens():
    p1, p2 = gender_table(1.0)["woman"], gender_table(2.0)["woman"]
    skewed = (p1 - 0.5).abs() > 0.01
    assert ((p2 - 0.5).abs()[skewed] > (p1 - 0.5).abs()[skewed]).all()
    assert np.allclose(gender_table(0.0)["woman"], 0.5)


def test_race_skew_follows_occupation_and_vanishes_without_bias():
    t0, t1 = race_table(0.0), race_table(1.0)
    assert np.allclose(t0.to_numpy(), t0.iloc[0].to_numpy()[None, :])
    assert t1.loc["ceo", "White"] > t0.loc["ceo", "White"] and t1.loc["janitor", "Black"] > t0.loc["janitor", "Black"]
    frame = sample_people(N, seed=5)
    obs = pd.crosstab(frame["occupation"], frame["race"]).reindex(columns=list(RACES), fill_value=0)
    for occ in ("ceo", "janitor"):
        exp = t1.loc[occ].to_numpy() * obs.loc[occ].sum()
        assert stats.chisquare(obs.loc[occ].to_numpy(), exp).pvalue > 1e-3


def test_skin_follows_race():
    frame = sample_people(N, seed=6)
    table = skin_given_race()
    for race in ("White", "Black"):
        sub = frame.loc[frame["race"] == race, "skin_tone"]
        obs = sub.value_counts().reindex(table.columns, fill_value=0).to_numpy()
        exp = table.loc[race].to_numpy() * len(sub)
        keep = exp > 5
        obs_k, exp_k = obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()
        assert stats.chisquare(obs_k, exp_k).pvalue > 1e-3


def test_age_bins_match_levels_and_children_have_no_occupation():
    frame = sample_people(20_000, seed=7)
    assert (frame["age"].map(AGE_BIN_LEVEL) == frame["age_level"]).all()
    assert set(frame.loc[frame["age_level"] == "child", "occupation"]) == {"none"}
    assert set(frame["occupation"]) == set(occupations(include_none=True))


def test_prefix_stable_and_seeded():
    a = sample_people(500, seed=1)
    b = sample_people(2000, seed=1).iloc[:500]
    pd.testing.assert_frame_equal(a, b)
    assert not sample_people(500, seed=2).equals(a)
    assert not sample_people(500, seed=1, stream="other").equals(a)
    pd.testing.assert_frame_equal(sample_objects(300, seed=1), sample_objects(300, seed=1))


def test_restricting_occupations():
    frame = sample_people(1000, occupations=["nurse", "pilot"])
    assert set(frame["occupation"]) == {"nurse", "pilot"}
    with pytest.raises(KeyError, match="unknown occupations"):
        sample_people(10, occupations=["astronaut"])
