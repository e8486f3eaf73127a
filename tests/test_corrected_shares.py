"""Classifier-error-corrected shares: confusion matrix, Rogan–Gladen / matrix inversion, bootstrap CIs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from biaslib.faces import Confusion, corrected_shares, estimate_confusion, gender_from_prompt, invert_shares

#: Planted classifier error: P(read as man | woman) and P(read as woman | man).
WOMAN_TO_MAN, MAN_TO_WOMAN = 0.20, 0.08


def read_with_error(true_woman: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply the planted flips to true labels (True = woman) → predicted label strings."""
    flip = rng.random(len(true_woman)) < np.where(true_woman, WOMAN_TO_MAN, MAN_TO_WOMAN)
    return np.where(true_woman ^ flip, "woman", "man")


def test_corrected_shares_recover_planted_truth_where_raw_shares_do_not():
    rng = np.random.default_rng(7)
    calibration_true = np.repeat([True, False], 400)  # e.g. generated images whose prompt states the gender
    confusion = estimate_confusion(np.where(calibration_true, "woman", "man"),
                                   read_with_error(calibration_true, rng))
    # raw share = 0.08 + 0.72 p is unbiased only near p = 0.29; the occupations lie away from there
    true_share = np.concatenate([np.linspace(0.02, 0.10, 8), np.linspace(0.55, 0.98, 32)])
    rows = []
    for i, p in enumerate(true_share):
        predicted = read_with_error(rng.random(300) < p, rng)
        rows.append({"occupation": f"job{i}", "man": int((predicted == "man").sum()),
                     "woman": int((predicted == "woman").sum())})
    out = corrected_shares(pd.DataFrame(rows), confusion, n_boot=2000, seed=0)

    corrected_covers = (out["share_corrected_low"] <= true_share) & (true_share <= out["share_corrected_high"])
    raw_covers = (out["share_raw_low"] <= true_share) & (true_share <= out["share_raw_high"])
    assert corrected_covers.mean() >= 0.9, out.loc[~corrected_covers]
    assert raw_covers.mean() <= 0.1
    # the calibration's own uncertainty is in the interval: 100× the calibration faces narrows it
    precise = corrected_shares(pd.DataFrame(rows), Confusion(confusion.labels, confusion.counts * 100), n_boot=2000)
    interior = (out["share_corrected_low"] > 0) & (out["share_corrected_high"] < 1)
    width = (out["share_corrected_high"] - out["share_corrected_low"])[interior]
    assert interior.sum() >= 20
    assert (width > (precise["share_corrected_high"] - precise["share_corrected_low"])[interior]).all()
    assert np.abs(out["share_corrected"] - true_share).mean() < 0.5 * np.abs(out["share_raw"] - true_share).mean()
    assert (out["status"] == "ok").all() and out.attrs["label"] == "woman"


def test_rogan_gladen_is_the_two_label_matrix_inversion():
    rates = np.array([[0.9, 0.1], [0.25, 0.75]])  # true man: 90% right; true woman: 75% right
    q_woman = 0.4
    rogan_gladen = (q_woman + 0.9 - 1) / (0.75 + 0.9 - 1)
    np.testing.assert_allclose(invert_shares(np.array([1 - q_woman, q_woman]), rates)[1], rogan_gladen)
    np.testing.assert_allclose(np.linalg.solve(rates.T, [1 - q_woman, q_woman])[1], rogan_gladen)


def test_three_label_inversion_is_exact_and_clipped():
    rates = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.05, 0.15, 0.8]])
    truth = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(invert_shares(rates.T @ truth, rates), truth)
    clipped = invert_shares(np.array([1.0, 0.0, 0.0]), rates)  # outside what the classifier can produce
    assert (clipped >= 0).all() and np.isclose(clipped.sum(), 1)
    counts = pd.DataFrame({"a": [50], "b": [30], "c": [20]})
    confusion = Confusion(("a", "b", "c"), (rates * 200).astype(np.int64))
    out = corrected_shares(counts, confusion, label="b", n_boot=200)
    assert out.loc[0, "share_corrected_low"] <= out.loc[0, "share_corrected"] <= out.loc[0, "share_corrected_high"]


def test_group_without_classified_face_is_reported_not_divided_by_zero():
    confusion = Confusion(("man", "woman"), np.array([[90, 10], [20, 80]]))
    counts = pd.DataFrame({"occupation": ["nurse", "ceo"], "man": [3, 0], "woman": [12, 0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = corrected_shares(counts, confusion, n_boot=100)
    assert out["status"].tolist() == ["ok", "no_classified_face"]
    assert out.loc[1, ["share_raw", "share_corrected", "share_corrected_low", "share_raw_high"]].isna().all()
    assert out.loc[1, "classified"] == 0 and 0 <= out.loc[0, "share_corrected"] <= 1


def test_uninformative_classifier_is_flagged():
    coin = Confusion(("man", "woman"), np.array([[50, 50], [60, 40]]))  # sens + spec − 1 < 0
    out = corrected_shares(pd.DataFrame({"man": [5], "woman": [5]}), coin, n_boot=50)
    assert out.loc[0, "status"] == "uninformative_classifier" and np.isnan(out.loc[0, "share_corrected"])


def test_confusion_estimation_skips_unknown_labels_and_needs_every_label():
    confusion = estimate_confusion(["man", "man", "woman", "woman", None, "woman"],
                                   ["man", "woman", "woman", "unsure", "man", "woman"])
    assert confusion.counts.tolist() == [[1, 1], [0, 2]]
    np.testing.assert_allclose(confusion.rates, [[0.5, 0.5], [0.0, 1.0]])
    assert confusion.frame().loc["woman", "woman"] == 2
    with pytest.raises(ValueError, match="woman"):
        estimate_confusion(["man", "man"], ["man", "woman"])
    with pytest.raises(ValueError, match="label columns"):
        corrected_shares(pd.DataFrame({"male": [1]}), confusion)


def test_gender_stated_by_a_prompt():
    assert gender_from_prompt("A photo of the face of a female nurse") == "woman"
    assert gender_from_prompt("close-up photo of a elderly male baker at work") == "man"
    assert gender_from_prompt("a photo of a man and a woman") is None
    assert gender_from_prompt("A photo of the face of a nurse.") is None
