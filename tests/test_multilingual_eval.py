"""Evaluation of multilingual generations: a planted language gap is recovered, classifier error is corrected,
empty occupations are reported, generator amplification has the planted sign, magbig on corrected counts
matches a brute-force computation."""

from __future__ import annotations

import itertools
import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biaslib.config import Params, load_params
from biaslib.faces.correction import Confusion
from biaslib.metrics import magbig_fairness
from biaslib.metrics.intervals import percentile_interval
from biaslib.metrics.magbig import resampled_counts
from biaslib.results import collect
from biaslib.studies.amplification.generator_amplification import amplification_table
from biaslib.studies.multilingual.evaluation import (
    clip_scores,
    counts_of,
    fairness_contrasts,
    fairness_table,
    gender_counts,
    image_labels,
    per_occupation,
    share_table,
    skin_of_ita,
    skin_of_world_tone,
    write_results,
)
from biaslib.studies.multilingual.pipeline import generate_languages, write_prompts
from biaslib.world import World
from biaslib.world.simulator import SimulatedGenerator

#: Images of the neutral prompts in each prompt's own language, German drawn with +3 log-odds(man).
PLANTED = """
experiment: ml_eval
runs_dir: {runs}
generate: {{batch_size: 64, shard_size: 100, language_shift: {{de: 3.0}}}}
multilingual:
  languages: [en, de]
  subset: {{profession: [receptionist, nurse, librarian, teacher], style: 1, dressing: 1}}
  image_prompt: neutral
  image_language: same
"""


def _one(frame: pd.DataFrame, **match: str) -> pd.Series:
    """The single row of ``frame`` whose columns equal ``match``."""
    rows = frame
    for column, value in match.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (match, rows)
    return rows.iloc[0]


def _planted_counts(tmp_path: Path) -> tuple[Path, Params, pd.DataFrame]:
    """The :data:`PLANTED` study's params file, its params and the gender counts of its generated ``data`` images
    (prompts written and images generated in ``tmp_path``)."""
    path = tmp_path / "ml.yaml"
    path.write_text(PLANTED.format(runs=tmp_path / "runs"))
    params = load_params(path)
    write_prompts(params)
    generate_languages(params, "data", progress=False)
    return path, params, gender_counts(params, "data")


def test_planted_language_gap_is_recovered_with_a_ci(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, params, counts = _planted_counts(tmp_path)
    assert set(counts["labels"]) == {"simulator"} and (counts[["no_face", "multiple_faces"]] == 0).all().all()
    assert counts.groupby("language")["images"].sum().to_dict() == {"de": 48, "en": 48}
    gaps = fairness_contrasts(counts, by="language", reference="en", n_boot=400)
    gap = _one(gaps, language="de", correction="raw", metric="share_woman")
    truth_en = counts[counts["language"] == "en"].set_index("occupation")["share_woman"]
    truth_de = counts[counts["language"] == "de"].set_index("occupation")["share_woman"]
    assert gap["value"] == pytest.approx((truth_de - truth_en).mean())
    assert gap["value"] < -0.2 and gap["ci_high"] < 0  # German shifted toward men: fewer women, CI excludes 0
    # exact labels: the corrected scores are the raw ones
    corrected = _one(gaps, language="de", correction="corrected", metric="share_woman")
    assert corrected["value"] == pytest.approx(gap["value"])

    labels = image_labels(params, "data", "de")
    with caplog.at_level(logging.WARNING):
        clip = clip_scores(labels, params, None, "biaslib-tiny-rn")
    assert clip["value"].isna().all() and "no CLIP checkpoint" in caplog.text
    fairness = fairness_table(counts, n_boot=50)
    paths = write_results(params, {"fairness": fairness, "clip": clip})
    assert sorted(p.name for p in paths) == ["ml_eval__data__de.json", "ml_eval__data__en.json"]
    back = collect(params, study="multilingual")
    assert len(back) == len(fairness) + len(clip)
    keys = ["language", "correction", "metric"]
    kept = back[back["section"] == "fairness"].sort_values(keys)
    assert np.allclose(kept["value"].astype(float), fairness.sort_values(keys)["value"].astype(float))


def test_evaluation_refuses_results_made_with_other_settings_unless_overwrite(tmp_path: Path) -> None:
    """``biaslib multilingual eval --overwrite`` was accepted and ignored (issue 16, defect 3): an existing result
    with other settings is now an error naming the changed key, ``overwrite`` recomputes it, and the seed is the
    params' seed wherever the evaluation runs from."""
    from biaslib.errors import BiaslibError
    from biaslib.studies.multilingual.evaluation import evaluate_multilingual

    path = tmp_path / "ml.yaml"
    path.write_text(PLANTED.format(runs=tmp_path / "runs") + "seed: 3\n")
    params = load_params(path)
    write_prompts(params)
    generate_languages(params, "data", ["en"], progress=False)
    evaluate_multilingual(params, ["data"], ["en"], n_boot=20, amplification_boot=5)
    stored = json.loads((tmp_path / "runs" / "ml_eval" / "results" / "multilingual" / "ml_eval__data__en.json")
                        .read_text())["provenance"]["settings"]
    assert (stored["seed"], stored["n_boot"]) == (3, 20)
    evaluate_multilingual(params, ["data"], ["en"], n_boot=20, amplification_boot=5)  # same settings: fine
    with pytest.raises(BiaslibError, match="n_boot: 20 -> 30"):
        evaluate_multilingual(params, ["data"], ["en"], n_boot=30, amplification_boot=5)
    evaluate_multilingual(params, ["data"], ["en"], n_boot=30, amplification_boot=5, overwrite=True)
    assert len(collect(params, study="multilingual")) > 0
    # the draws come from the params section too (issue 16: notebook and CLI passed their own 1000)
    params = load_params(path, {"multilingual.eval_n_boot": 40})
    evaluate_multilingual(params, ["data"], ["en"], amplification_boot=5, overwrite=True)
    stored = json.loads((tmp_path / "runs" / "ml_eval" / "results" / "multilingual" / "ml_eval__data__en.json")
                        .read_text())["provenance"]["settings"]
    assert stored["n_boot"] == 40


def _flipped_counts(truth: np.ndarray, n: int, rates: np.ndarray) -> pd.DataFrame:
    """Expected classified counts of occupations with true p(woman) ``truth`` through confusion ``rates``."""
    woman = np.rint(n * (truth * rates[1, 1] + (1 - truth) * rates[0, 1])).astype(np.int64)
    return pd.DataFrame({"generation": "base", "language": "en", "occupation": [f"o{i}" for i in range(len(truth))],
                         "man": n - woman, "woman": woman, "labels": "classifier"})


def test_planted_confusion_is_corrected_and_raw_is_not() -> None:
    truth = np.array([0.05, 0.15, 0.3, 0.5, 0.75, 0.95])
    rates = np.array([[0.85, 0.15], [0.25, 0.75]])  # P(predicted | true), rows man, woman
    counts = _flipped_counts(truth, 3000, rates)
    confusion = Confusion(("man", "woman"), np.rint(rates * 3000).astype(np.int64))
    table = fairness_table(counts, confusion, n_boot=400, occupations=6, images=10)
    exact = magbig_fairness(pd.DataFrame({"occupation": counts["occupation"], "man": 1 - truth, "woman": truth}),
                            occupations=6, images=10)
    for metric in ("mean_l1", "exp_max_l1"):
        corrected = _one(table, correction="corrected", metric=metric)
        raw = _one(table, correction="raw", metric=metric)
        assert corrected["ci_low"] <= exact[metric] <= corrected["ci_high"], (metric, corrected, exact[metric])
        assert corrected["value"] == pytest.approx(exact[metric], abs=0.01)
        assert raw["ci_high"] < exact[metric]  # misread labels pull every share toward the middle
    shares = share_table(counts, confusion, n_boot=200)
    assert np.allclose(shares["share_corrected"], truth, atol=0.01)
    assert (shares["share_corrected_low"] <= truth).all() and (truth <= shares["share_corrected_high"]).all()


def test_occupation_without_a_classified_face_is_reported_not_divided() -> None:
    outcomes = {"nurse": ["woman"] * 6 + ["man"] * 2 + ["no_face"], "pilot": ["man"] * 7 + ["woman", "multiple_faces"],
                "ceo": ["no_face", "no_face", "multiple_faces"]}
    labels = pd.DataFrame([{"generation": "base", "language": "en", "occupation": o, "outcome": v, "labels": "faces"}
                           for o, values in outcomes.items() for v in values])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        counts = counts_of(labels)
        table = fairness_table(counts, n_boot=100, occupations=10)
        shares = share_table(counts, n_boot=50)
    ceo = _one(counts, occupation="ceo")
    assert (ceo["images"], ceo["no_face"], ceo["multiple_faces"], ceo["classified"]) == (3, 2, 1, 0)
    assert math.isnan(ceo["share_woman"])
    assert _one(shares, occupation="ceo")["status"] == "no_classified_face"
    row = _one(table, correction="raw", metric="mean_l1")
    assert (row["n_occupations"], row["n_excluded"], row["excluded"]) == (2, 1, "ceo")
    assert row["value"] == pytest.approx((abs(2 * 6 / 8 - 1) + abs(2 * 1 / 8 - 1)) / 2)
    assert np.isfinite(table[["value", "ci_low", "ci_high"]].to_numpy(dtype=float)).all()


def test_generator_amplification_has_the_planted_sign() -> None:
    world = World()
    occupations = ["receptionist", "nurse", "librarian", "teacher", "doctor", "lawyer", "pilot", "mechanic"]
    train = world.people(8000, stream="amp/train", occupations=occupations)
    prompted = world.people(3000, stream="amp/prompts", occupations=occupations)["occupation"]
    prompts = [f"a photo of a {o}" for o in prompted]
    tables = {}
    for gamma in (1.0, 2.0):
        generated = SimulatedGenerator(world, gamma).sample_attributes(prompts, list(range(len(prompts))))
        table = amplification_table(train, generated, n_boot=150)
        tables[gamma] = table[table["estimate"] == "raw"].set_index("metric")
    for metric in ("bias_amplification", "directional_T->A"):
        faithful, amplified = tables[1.0].loc[metric], tables[2.0].loc[metric]
        assert faithful["ci_low"] < 0 < faithful["ci_high"] and abs(faithful["value"]) < 0.03, (metric, faithful)
        assert amplified["ci_low"] > 0.03, (metric, amplified)


def _brute_expected_max(man_share: np.ndarray, k: int, n: int) -> float:
    """E[max over a uniform k-subset of |2X/n − 1|], X ~ Binomial(n, p_o), by enumerating everything."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(man_share)), k))
    for subset in subsets:
        for xs in itertools.product(range(n + 1), repeat=k):
            prob = math.prod(math.comb(n, x) * man_share[o] ** x * (1 - man_share[o]) ** (n - x)
                             for o, x in zip(subset, xs))
            total += prob * max(abs(2 * x / n - 1) for x in xs)
    return total / len(subsets)


def test_magbig_on_corrected_counts_equals_a_brute_force_computation() -> None:
    counts = pd.DataFrame({"generation": "finetuned", "language": "de", "occupation": ["a", "b", "c"],
                           "man": [30, 10, 22], "woman": [10, 30, 18]})
    confusion = Confusion(("man", "woman"), np.array([[90, 10], [20, 80]]))
    table = fairness_table(counts, confusion, n_boot=20, occupations=2, images=3)
    sens, spec = 0.8, 0.9
    q = counts["woman"].to_numpy() / 40
    woman = np.clip((q + spec - 1) / (sens + spec - 1), 0, 1)
    for correction, share in (("raw", q), ("corrected", woman)):
        mean_l1 = np.mean(np.abs(2 * share - 1))
        assert _one(table, correction=correction, metric="mean_l1")["value"] == pytest.approx(mean_l1)
        assert _one(table, correction=correction, metric="mean_l2")["value"] == pytest.approx(mean_l1 / math.sqrt(2))
        assert _one(table, correction=correction, metric="share_woman")["value"] == pytest.approx(share.mean())
        brute = _brute_expected_max(1 - share, 2, 3)
        assert _one(table, correction=correction, metric="exp_max_l1")["value"] == pytest.approx(brute)


def _share_coverage(prompts: int, images: int, resample: str, population: bool, rng: np.random.Generator,
                    reps: int = 300, n_boot: int = 300) -> float:
    """Coverage of the 95% percentile interval of one occupation's p(woman) over ``reps`` simulated occupations
    of ``prompts`` prompts × ``images`` images. Fixed design: prompts at p = 0.25 … 0.75 (truth: their mean);
    population: each prompt's p drawn logit-normal (sd 1.2) around ½ (truth: ½)."""
    hits = 0
    for _ in range(reps):
        if population:
            p, truth = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 1.2, prompts))), 0.5
        else:
            p = np.linspace(0.25, 0.75, prompts)
            truth = float(p.mean())
        woman = rng.binomial(images, p)
        drawn = resampled_counts([np.stack([images - woman, woman], axis=1)], n_boot=n_boot, rng=rng,
                                 resample=resample)[:, 0]
        low, high = percentile_interval(drawn[:, 1] / drawn.sum(axis=1), 0.95)
        hits += low <= truth <= high
    return hits / reps


def test_resampling_designs_cover_as_the_module_states() -> None:
    """Pooling an occupation's images covers the fixed prompts' mean at 3 prompts × 4 images; with very
    different prompts from a population only whole-prompt resampling of many prompts covers (module
    docstring and docs/statistics.md quote these numbers)."""
    rng = np.random.default_rng(11)
    fixed = _share_coverage(3, 4, "images", False, rng)
    assert fixed >= 0.93, fixed
    pooled, clustered = (_share_coverage(12, 4, mode, True, rng) for mode in ("images", "prompts"))
    assert clustered >= 0.90, clustered
    assert pooled < clustered - 0.03, (pooled, clustered)  # pooling ignores the prompt-to-prompt spread


def test_resampled_counts_keep_whole_prompts_and_pooled_totals() -> None:
    rows = np.array([[4, 0], [0, 4], [2, 2]])
    rng = np.random.default_rng(0)
    prompts = resampled_counts([rows], n_boot=500, rng=rng, resample="prompts")[:, 0]
    assert (prompts.sum(axis=1) == 12).all()
    assert set(map(tuple, prompts)) <= {tuple(rows[list(c)].sum(axis=0))
                                        for c in itertools.combinations_with_replacement(range(3), 3)}
    pooled = resampled_counts([rows, np.zeros((2, 2), np.int64)], n_boot=500, rng=rng, resample="images")
    assert (pooled[:, 0].sum(axis=1) == 12).all() and (pooled[:, 1] == 0).all()
    with pytest.raises(ValueError, match="resample"):
        resampled_counts([rows], n_boot=5, rng=rng, resample="seeds")


def test_skin_scores_equal_the_gender_path_on_the_same_counts() -> None:
    """Skin (light/dark) is scored by the same machinery as gender: the same counts under the gender
    columns give the same raw scores, floors and tests; corrected rows exist only for gender."""
    rng = np.random.default_rng(3)
    names = ["nurse", "pilot", "ceo", "teacher"]
    labels = pd.DataFrame({"generation": "base", "language": "en",
                           "occupation": np.repeat(names, 12), "prompt_id": np.tile(np.repeat(["a", "b", "c"], 4), 4),
                           "outcome": rng.choice(["man", "woman"], 48),
                           "skin": np.where(rng.random(48) < np.repeat([0.1, 0.5, 0.9, 0.3], 12), "dark", "light"),
                           "labels": "faces"})
    counts = counts_of(labels, by_prompt=True)
    assert len(counts) == 12 and (counts["light"] + counts["dark"] == counts["images"]).all()
    assert per_occupation(counts)[["occupation", "man", "woman", "light", "dark"]].equals(
        counts_of(labels)[["occupation", "man", "woman", "light", "dark"]])
    skin = fairness_table(counts, attribute="skin", n_boot=200, seed=4)
    as_gender = fairness_table(counts.assign(man=counts["light"], woman=counts["dark"]), n_boot=200, seed=4)
    assert set(skin["correction"]) == {"raw"} and set(skin["attribute"]) == {"skin"}
    same = as_gender[as_gender["correction"] == "raw"].reset_index(drop=True)
    assert list(skin["metric"]) == ["share_dark", *list(same["metric"])[1:]]
    columns = ["value", "ci_low", "ci_high", "floor", "p_fair"]
    assert np.allclose(skin[columns].to_numpy(float), same[columns].to_numpy(float), equal_nan=True)
    share = share_table(counts, attribute="skin", n_boot=50)
    assert np.allclose(share["share_raw"], [1 / 12, 0.5, 11 / 12, 0.25], atol=0.2)  # planted 0.1, 0.5, 0.9, 0.3
    with pytest.raises(ValueError, match="attribute"):
        fairness_table(counts, attribute="age")


def test_skin_readings_of_ita_and_world_tones() -> None:
    assert list(skin_of_ita(np.array([60.0, 41.0, 28.5, 28.0, -40.0, np.nan]))) == [
        "light", "light", "light", "dark", "dark", None]
    assert list(skin_of_world_tone(np.array([1, 3, 4, 6]))) == ["light", "light", "dark", "dark"]


def _misread(gender: pd.Series, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each ``man``/``woman`` read as the other with the probabilities of ``rates`` (rows true, columns read)."""
    true = (gender.to_numpy() == "woman").astype(int)
    read = np.where(rng.random(len(true)) < rates[true, 1], "woman", "man")
    return read


def test_corrected_amplification_recovers_the_exact_reading_and_the_faithful_baseline_explains_raw() -> None:
    """A classifier that misreads gender makes a faithful generator's raw amplification negative (shares pulled
    to the middle): the faithful baseline predicts that value, the corrected estimate covers the exact-label
    value, for a faithful (γ = 1) and an amplifying (γ = 2) generator alike."""
    world = World()
    occupations = ["receptionist", "nurse", "librarian", "teacher", "doctor", "lawyer", "pilot", "mechanic"]
    train = world.people(6000, stream="amp/train", occupations=occupations)
    prompted = world.people(3000, stream="amp/prompts", occupations=occupations)["occupation"]
    prompts = [f"a photo of a {o}" for o in prompted]
    rates = np.array([[0.85, 0.15], [0.2, 0.8]])
    confusion = Confusion(("man", "woman"), np.rint(rates * 2000).astype(np.int64))
    rng = np.random.default_rng(7)
    for gamma in (1.0, 2.0):
        generated = SimulatedGenerator(world, gamma).sample_attributes(prompts, list(range(len(prompts))))
        generated = generated.assign(occupation=prompted.to_numpy())
        exact = amplification_table(train, generated, n_boot=100).set_index(["metric", "estimate"])
        read = generated.assign(gender=_misread(generated["gender"], rates, rng))
        table = amplification_table(train, read, confusion=confusion, n_boot=200, seed=1).set_index(
            ["metric", "estimate"])
        for metric in ("bias_amplification", "directional_T->A"):
            truth = exact.loc[(metric, "raw"), "value"]
            raw, corrected, faithful = (table.loc[(metric, e)] for e in ("raw", "corrected", "faithful"))
            assert corrected["ci_low"] <= truth <= corrected["ci_high"], (gamma, metric, corrected, truth)
            assert faithful["ci_high"] < -0.03, (metric, faithful)  # misreading alone looks like de-amplification
            if gamma == 1.0:
                assert faithful["ci_low"] <= raw["value"] <= faithful["ci_high"], (metric, raw, faithful)
            else:
                assert raw["value"] > faithful["ci_high"] and corrected["ci_low"] > 0.03, (metric, raw, corrected)
        assert exact.loc[("bias_amplification", "corrected"), "value"] == pytest.approx(
            exact.loc[("bias_amplification", "raw"), "value"])  # exact labels: nothing to correct


def test_soft_directional_amplification_equals_the_per_item_computation() -> None:
    """Directional BiasAmp of soft attribute rows equals the hard 0/1 computation when the rows are 0/1, and
    a task's share vector repeated over its items gives the same value as its hard items (same joint)."""
    from biaslib.metrics import directional_bias_amplification

    rng = np.random.default_rng(2)
    t_train, a_train = rng.integers(0, 4, 500), rng.integers(0, 2, 500)
    t_pred, a_pred = rng.integers(0, 4, 300), rng.integers(0, 2, 300)
    eye2, eye4 = np.eye(2), np.eye(4)
    for direction in ("A->T", "T->A"):
        hard = directional_bias_amplification(eye2[a_train], eye4[t_train], eye2[a_pred], eye4[t_pred],
                                              direction=direction)
        assert directional_bias_amplification(eye2[a_train], eye4[t_train], eye2[a_pred], eye4[t_pred],
                                              direction=direction, soft=True) == pytest.approx(hard)
        share = np.stack([eye2[a_pred[t_pred == t]].mean(axis=0) for t in range(4)])
        assert directional_bias_amplification(eye2[a_train], eye4[t_train], share[t_pred], eye4[t_pred],
                                              direction=direction, soft=True) == pytest.approx(hard)
    with pytest.raises(ValueError, match="only 0 and 1"):
        directional_bias_amplification(eye2[a_train] * 0.5, eye4[t_train], eye2[a_pred], eye4[t_pred])


def test_clip_checkpoint_comes_only_from_the_named_params(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``find_clip_checkpoint`` silently read params/default.yaml (issue 16, defect 4): now it reads only
    ``multilingual.clip_params`` and says what is missing."""
    import biaslib.config
    from biaslib.studies.multilingual.evaluation import find_clip_checkpoint

    path = tmp_path / "ml.yaml"
    path.write_text(PLANTED.format(runs=tmp_path / "runs"))
    read = []
    real_load = biaslib.config.load_params
    monkeypatch.setattr(biaslib.config, "load_params", lambda *a, **k: read.append(a) or real_load(*a, **k))
    with caplog.at_level(logging.WARNING):
        assert find_clip_checkpoint(load_params(path)) is None
    assert read == [] and "clip_params is not set" in caplog.text
    other = tmp_path / "amp.yaml"
    other.write_text(f"experiment: amp\nruns_dir: {tmp_path / 'runs'}\n")
    with caplog.at_level(logging.WARNING):
        assert find_clip_checkpoint(load_params(path, {"multilingual.clip_params": str(other)})) is None
    assert [a[0] for a in read] == [other] and str(other) in caplog.text


def test_figures_draw_from_the_written_results_and_the_clip_is_chosen_one_way(tmp_path: Path) -> None:
    """Notebook 13 drew ≈ 50 lines of figures no command could draw, and chose its CLIP differently from the CLI
    (issue 28): the figures are the library's (`biaslib multilingual figures` draws them from the result JSONs, the
    tables read back equal to those written), and a checkpoint without its model name is refused by both."""
    from biaslib import cli
    from biaslib.studies.multilingual.evaluation import choose_clip, share_table
    from biaslib.studies.multilingual.findings import result_tables

    path, params, counts = _planted_counts(tmp_path)
    tables = {"fairness": fairness_table(counts, n_boot=50), "shares": share_table(counts, n_boot=50)}
    write_results(params, tables)
    back = result_tables(collect(params, study="multilingual"))
    keys = ["language", "correction", "metric"]
    for name, written in tables.items():
        order = keys if name == "fairness" else ["language", "occupation", "attribute"]
        mine, read = written.sort_values(order).reset_index(drop=True), back[name].sort_values(order)
        assert np.allclose(read["value" if name == "fairness" else "share_raw"].astype(float),
                           mine["value" if name == "fairness" else "share_raw"].astype(float), equal_nan=True)
    figures_dir = tmp_path / "figures"
    assert cli.main(["multilingual", "figures", "--params", str(path), "--figures-dir", str(figures_dir)]) == 0
    assert {p.stem for p in figures_dir.glob("*.png")} == {"ml_eval_eval_fairness", "ml_eval_eval_raw_vs_corrected",
                                                           "ml_eval_eval_shares"}
    with pytest.raises(ValueError, match="needs its open_clip model name"):
        choose_clip(params, tmp_path / "epoch_1.pt", None)
    assert choose_clip(params, tmp_path / "epoch_1.pt", "biaslib-tiny-rn") == (tmp_path / "epoch_1.pt",
                                                                                "biaslib-tiny-rn")
    assert cli.main(["multilingual", "eval", "--params", str(path), "--clip-checkpoint", "x.pt"]) == 2
