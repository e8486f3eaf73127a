"""Findings of the multilingual evaluation are computed from its tables: a planted fine-tuning effect is called
beyond chance and an absent one is not, q-values are Benjamini–Hochberg over every test (brute force), the
false-finding rate of a study where everything is fair is measured by simulation, and the findings read back
from written result JSONs are the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biaslib.cli import main
from biaslib.config import load_params
from biaslib.metrics.magbig import mean_l1_difference, mean_l1_inference
from biaslib.results import collect
from biaslib.studies.multilingual.evaluation import fairness_contrasts, fairness_table, write_results
from biaslib.studies.multilingual.findings import findings_of_results, multilingual_findings, multilingual_tests

OCCUPATIONS = [f"occupation_{i}" for i in range(10)]


def _counts(shares: dict[tuple[str, str], float], faces: int = 36, rng: np.random.Generator | None = None
            ) -> pd.DataFrame:
    """Counts per (generation, language, occupation) with p(woman) = ``shares[(generation, language)]``: the
    expected counts (rounded) without ``rng``, binomial draws with it."""
    rows = []
    for (generation, language), p in shares.items():
        for occupation in OCCUPATIONS:
            woman = int(rng.binomial(faces, p)) if rng is not None else round(faces * p)
            rows.append({"generation": generation, "language": language, "occupation": occupation,
                         "images": faces, "man": faces - woman, "woman": woman, "no_face": 0, "multiple_faces": 0,
                         "other": 0, "classified": faces, "light": 0, "dark": 0, "labels": "simulator"})
    return pd.DataFrame(rows)


def _tests(counts: pd.DataFrame, n_boot: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    tables = {"fairness": fairness_table(counts, n_boot=n_boot),
              "finetune_change": fairness_contrasts(counts, by="generation", reference="base", n_boot=n_boot),
              "language_gaps": fairness_contrasts(counts, by="language", reference="en", n_boot=n_boot)}
    return tables, multilingual_tests(tables["fairness"], tables["finetune_change"], tables["language_gaps"])


def _row(tests: pd.DataFrame, **match: str) -> pd.Series:
    rows = tests
    for column, value in match.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, (match, rows)
    return rows.iloc[0]


def _brute_force_bh(p: np.ndarray) -> np.ndarray:
    """q_i = min over every p_j ≥ p_i of m · p_j / rank_j (ranks 1…m ascending, ties ranked by position)."""
    m = len(p)
    rank = np.empty(m, dtype=int)
    rank[np.argsort(p, kind="stable")] = np.arange(1, m + 1)
    return np.array([min(min(m * p[j] / rank[j] for j in range(m) if rank[j] >= rank[i]), 1.0) for i in range(m)])


def test_planted_finetuning_effect_is_beyond_chance_and_absent_ones_are_not() -> None:
    # English: base strongly unfair (p(woman) 0.1 everywhere), fine-tuned fair; German fair before and after
    counts = _counts({("base", "en"): 0.1, ("base", "de"): 0.5, ("finetuned", "en"): 0.5, ("finetuned", "de"): 0.5})
    _, tests = _tests(counts, n_boot=400)
    assert len(tests) == 4 + 2 + 2  # four groups tested for fairness, two fine-tuning changes, two language gaps
    assert _row(tests, test="fair", generation="base", language="en")["beyond_chance"]
    for generation, language in (("base", "de"), ("finetuned", "en"), ("finetuned", "de")):
        assert not _row(tests, test="fair", generation=generation, language=language)["beyond_chance"]
    change = _row(tests, test="finetune", language="en")
    assert change["beyond_chance"] and change["value"] < -0.6
    assert not _row(tests, test="finetune", language="de")["beyond_chance"]
    gap = _row(tests, test="language", generation="base", language="de")
    assert gap["beyond_chance"] and gap["value"] < -0.6  # German less unfair than English before fine-tuning
    assert not _row(tests, test="language", generation="finetuned", language="de")["beyond_chance"]
    p = tests["p_value"].to_numpy(dtype=float)
    assert np.allclose(tests["q_value"], _brute_force_bh(p))
    assert (tests["beyond_chance"] == (tests["q_value"] < 0.05)).all()

    sentences = multilingual_findings(tests)
    assert any(s.startswith("gender · en: fine-tuning") and "less unfair, beyond chance" in s for s in sentences)
    assert any(s.startswith("gender · de: fine-tuning") and "within chance" in s for s in sentences)
    assert sentences[-1].startswith(f"{int(tests['beyond_chance'].sum())} of 8 tests are beyond chance")


def _null_tables(rng: np.random.Generator, groups: list[tuple[str, str]], n_boot: int
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The ``mean_l1_bc`` rows that :func:`fairness_table` and :func:`fairness_contrasts` write (the same metric
    calls: :func:`mean_l1_inference`, :func:`mean_l1_difference`) for fair groups, without the other scores."""
    faces = {g: _counts({g: 0.5}, rng=rng)[["occupation", "man", "woman"]] for g in groups}
    fairness = []
    for (generation, language), table in faces.items():
        result = mean_l1_inference(table, n_boot=n_boot, seed=1)
        fairness.append({"attribute": "gender", "generation": generation, "language": language, "correction": "raw",
                         "metric": "mean_l1_bc", "value": result.value, "ci_low": result.ci_low,
                         "ci_high": result.ci_high, "floor": result.floor_mean_l1, "p_fair": result.p_value})

    def contrasts(pairs: list[tuple[tuple[str, str], tuple[str, str], str]]) -> pd.DataFrame:
        rows = []
        for group, other, reference in pairs:
            result = mean_l1_difference(faces[group], faces[other])
            rows.append({"attribute": "gender", "generation": group[0], "language": group[1], "reference": reference,
                         "correction": "raw", "metric": "mean_l1_bc", "value": result.value,
                         "ci_low": result.ci_low, "ci_high": result.ci_high, "p_value": result.p_value})
        return pd.DataFrame(rows)

    finetune = contrasts([((g, code), ("base", code), "base") for g, code in groups if g != "base"])
    languages = contrasts([((g, code), (g, "en"), "en") for g, code in groups if code != "en"])
    return pd.DataFrame(fairness), finetune, languages


def test_a_study_where_everything_is_fair_rarely_reports_a_finding() -> None:
    """Complete null (every occupation fair in every language, before and after; 36 faces per occupation): the
    share of simulated studies with any finding beyond chance among their 6 + 3 + 4 tests is measured; BH keeps
    it near α = 0.05 (without it, testing each at 0.05 gives several times more)."""
    rng = np.random.default_rng(11)
    groups = [(g, code) for g in ("base", "finetuned") for code in ("en", "de", "ja")]
    studies, with_finding, uncorrected = 200, 0, 0
    for _ in range(studies):
        tests = multilingual_tests(*_null_tables(rng, groups, n_boot=1000))
        assert len(tests) == 6 + 3 + 4
        with_finding += bool(tests["beyond_chance"].any())
        uncorrected += bool((tests["p_value"] < 0.05).any())
    print(f"any finding: {with_finding}/{studies} with BH, {uncorrected}/{studies} at p < 0.05 each")
    assert with_finding / studies <= 0.09, with_finding  # α = 0.05; 200 studies: Monte Carlo sd 0.015
    assert uncorrected > 2 * with_finding  # the family is large enough that multiplicity control matters


def test_findings_read_back_from_written_results_are_the_same(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "ml.yaml"
    path.write_text(f"experiment: ml_findings\nruns_dir: {tmp_path / 'runs'}\n")
    params = load_params(path)
    counts = _counts({("base", "en"): 0.2, ("base", "ja"): 0.1, ("finetuned", "en"): 0.45, ("finetuned", "ja"): 0.5})
    tables, tests = _tests(counts, n_boot=200)
    write_results(params, tables)
    back, sentences = findings_of_results(collect(params, study="multilingual"))
    key = ["test", "attribute", "generation", "language", "reference"]
    back = back.sort_values(key).reset_index(drop=True)
    tests = tests.sort_values(key).reset_index(drop=True)
    assert np.allclose(back["q_value"], tests["q_value"]) and np.allclose(back["value"], tests["value"])
    assert sorted(sentences) == sorted(multilingual_findings(tests))
    # the command prints the same sentences; without results it names the folder (exit 2)
    assert main(["multilingual", "findings", "--params", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == sentences
    path.write_text(f"experiment: no_results\nruns_dir: {tmp_path / 'runs'}\n")
    assert main(["multilingual", "findings", "--params", str(path)]) == 2
    assert "no multilingual results under" in capsys.readouterr().err
