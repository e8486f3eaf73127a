"""The study's dose-response answer (biaslib.studies.amplification.dose_response, `biaslib amplification power`,
replicate-aware figures), on a planted results table: two experiments × ratios {0, ½, 1} × 3 replicates, the
association endpoint rising with the ratio in one experiment only."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from biaslib.config import Params, TrainConfig
from biaslib.studies.amplification.results import StudyResults

matplotlib.use("Agg")

RATIOS = (0.0, 0.5, 1.0)
SLOPE = 0.2


def _row(experiment: str, ratio: float, replicate: int, evaluation: str, dataset: str, attribute: str, group: str,
         kind: str, metric: str, value: float, half: float = 0.01, p_value: float = np.nan,
         null_gap: float = np.nan) -> dict:
    return {"experiment": experiment, "ratio": ratio, "ratio_fraction": ratio, "replicate": replicate,
            "evaluation": evaluation, "dataset": dataset, "attribute": attribute, "group": group, "kind": kind,
            "metric": metric, "value": value, "ci_low": value - half, "ci_high": value + half, "p_value": p_value,
            "null_gap": null_gap}


def _rows(experiment: str, slope: float, rng: np.random.Generator) -> list[dict]:
    rows = []
    for ratio in RATIOS:
        for replicate in range(3):
            model = (experiment, ratio, replicate)
            noise = rng.normal(0, 0.02, size=6)
            rows += [_row(*model, "association", "fairface", "gender", "all", "overall", "retrieval_vs_data@100",
                          0.05 + slope * ratio + noise[0]),
                     _row(*model, "association", "fairface", "race", "all", "overall", "max_skew@100_dataset",
                          0.3 + noise[1]),
                     _row(*model, "association", "fairface", "gender", "nurse", "group", "retrieval_vs_data@100", 0.1),
                     _row(*model, "retrieval", "phase", "all", "all", "overall", "R@1", 0.4 + noise[2]),
                     _row(*model, "geode", "geode", "all", "all", "overall", "accuracy", 0.6 + noise[3]),
                     _row(*model, "retrieval", "phase", "gender", "max-min", "gap", "R@1", 0.1 + noise[4],
                          p_value=0.3, null_gap=0.05),
                     _row(*model, "retrieval", "phase", "gender", "woman", "group", "R@1", 0.4 + noise[5])]
    return rows


@pytest.fixture
def study() -> StudyResults:
    rng = np.random.default_rng(0)
    results = pd.DataFrame(_rows("amplifying", SLOPE, rng) + _rows("faithful", 0.0, rng))
    base = Params(experiment="planted", train=TrainConfig(replicates=3))
    params = [Params(experiment=name) for name in ("amplifying", "faithful")]
    return StudyResults(base, params, results, results[results["kind"] == "group"], [])


def test_headline_measures_choose_one_value_per_model_and_measure(study):
    from biaslib.studies.amplification.dose_response import headline_measures

    measures = headline_measures(study)
    counts = measures.groupby(["experiment", "measure"]).size()
    assert (counts == 9).all(), counts  # 3 ratios × 3 replicates, nothing duplicated, no per-query rows
    assert set(measures["measure"]) == {"association · gender · retrieval_vs_data@100",
                                        "association · race · max_skew@100_dataset", "phase · R@1", "geode · accuracy",
                                        "phase · gender · R@1 · gap"}
    assert list(dict.fromkeys(measures["family"])) == ["association", "overall", "gap"]


def test_trend_table_calls_the_planted_slope_and_nothing_else(study):
    from biaslib.studies.amplification.dose_response import trend_findings, trend_table

    table = trend_table(study, n_boot=500, n_perm=2000)
    assert len(table) == 10 and table["replicated"].all()
    endpoint = table[table["measure"] == "association · gender · retrieval_vs_data@100"].set_index("experiment")
    assert endpoint.loc["amplifying", "called"] and not endpoint.loc["faithful", "called"]
    assert endpoint.loc["amplifying", "ci_low"] < SLOPE < endpoint.loc["amplifying", "ci_high"]
    assert endpoint.loc["faithful", "ci_low"] < 0 < endpoint.loc["faithful", "ci_high"]
    assert table["called"].sum() == 1
    assert list(table["family"].drop_duplicates()) == ["association", "overall", "gap"]
    lines = trend_findings(table)
    assert any(line.startswith("amplifying · association · gender · retrieval_vs_data@100: slope +0.2")
               and line.endswith("a trend beyond training and evaluation noise") for line in lines)
    assert ("amplifying: 1 of 5 measures of the declared family trend with the ratio (q < the level over the family, "
            "replicated; 0 more reported with p only)") in lines
    assert any(line.startswith("faithful: 0 of 5 measures of the declared family") for line in lines)


def test_a_declared_family_is_the_only_one_tested_and_called(study):
    """``analysis.trend_family`` names the measures tested together: the others keep their p-value, get no q and are
    never called; the planted endpoint is still called (q over 2 rows, not 10)."""
    import dataclasses

    from biaslib.studies.amplification.dose_response import trend_findings, trend_table
    from biaslib.studies.amplification.params import AnalysisConfig

    family = AnalysisConfig(trend_family=("fairface:gender:retrieval_vs_data@100",))
    declared = dataclasses.replace(study, base=study.base.with_section("analysis", family))
    table = trend_table(declared, n_boot=200, n_perm=2000)
    tested = table[table["q_value"].notna()]
    assert set(tested["measure"]) == {"association · gender · retrieval_vs_data@100"} and len(tested) == 2
    assert table["p_value"].notna().all() and table["called"].sum() == 1
    lines = trend_findings(table)
    assert any(line.startswith("amplifying · phase · R@1:") and line.endswith("reported, not called") for line in lines)
    assert any(line.startswith("amplifying: 1 of 1 measures of the declared family") for line in lines)


def test_design_table_detectable_slopes_match_the_pooled_variance_by_hand(study):
    from scipy.stats import chi2, t

    from biaslib.studies.amplification.dose_response import design_table, headline_measures

    table = design_table(study, {"own": (3, RATIOS), "paper R=5": (5, (0, 0.2, 0.4, 0.6, 0.8, 1.0))})
    measures = headline_measures(study)
    part = measures[(measures["experiment"] == "faithful") & (measures["measure"] == "phase · R@1")]
    pooled = sum(((g - g.mean()) ** 2).sum() for _, g in part.groupby("ratio_fraction")["value"]) / 6
    row = table[(table["experiment"] == "faithful") & (table["measure"] == "phase · R@1")].iloc[0]
    assert row["model_sd"] == pytest.approx(np.sqrt(pooled))
    upper = pooled * 6 / chi2.ppf(0.2, 6)  # the pooled variance's 80% upper bound, 6 degrees of freedom
    for label, replicates, ratios in (("own", 3, RATIOS), ("paper R=5", 5, (0, 0.2, 0.4, 0.6, 0.8, 1.0))):
        x = np.array(ratios)
        df = replicates * len(x) - 2
        expected = (t.ppf(0.975, df) + t.ppf(0.8, df)) * np.sqrt(upper / (replicates * ((x - x.mean()) ** 2).sum()))
        assert row[f"detectable {label}"] == pytest.approx(expected)
    se2 = (0.01 / 1.959964) ** 2  # every planted interval is ±0.01
    assert row["training_share"] == pytest.approx(max(pooled - se2, 0) / pooled)


def test_markdown_table_formats_values_p_values_and_flags():
    from biaslib.studies.amplification.dose_response import markdown_table

    frame = pd.DataFrame({"measure": ["a"], "slope": [0.12345], "p_value": [0.0004], "q_value": [np.nan],
                          "called": [True]})
    assert markdown_table(frame, list(frame.columns)).splitlines() == [
        "| measure | slope | p_value | q_value | called |", "| --- | --- | --- | --- | --- |",
        "| a | 0.123 | < 0.001 | n/a | yes |"]


def test_replicate_means_give_the_t_interval_of_the_replicates():
    from scipy.stats import t

    from biaslib.figures import replicate_means

    lines = pd.DataFrame({"x": [1.0, 0.0, 0.0, 0.0], "v": [5.0, 1.0, 2.0, 4.0], "ci_low": [4.0, 0, 1, 3],
                          "ci_high": [6.0, 2, 3, 5]})
    out = replicate_means(lines, "x", "v")
    assert list(out["x"]) == [0.0, 1.0]
    low, high = t.interval(0.95, 2, loc=7 / 3, scale=np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    assert out.iloc[0][["v", "ci_low", "ci_high"]].tolist() == pytest.approx([7 / 3, low, high])
    assert out.iloc[1][["v", "ci_low", "ci_high"]].tolist() == [5.0, 4.0, 6.0]  # one model: its own interval
    single = lines.iloc[:2]
    assert replicate_means(single, "x", "v").equals(single.sort_values("x"))


def test_dose_response_figures_show_each_replicate(study):
    import matplotlib.pyplot as plt

    from biaslib.studies.amplification.figures import dose_response_figures

    drawn = dose_response_figures(study)
    assert set(drawn) == {"planted_trends", "planted_association_replicates"}
    panels = [ax for ax in drawn["planted_association_replicates"].axes if ax.get_visible()]
    assert len(panels) == 2
    points = [c for c in panels[0].collections if c.get_offsets().shape[0] == 9]
    assert len(points) == 2  # one scatter of 9 trained models per experiment
    assert any("t-interval of that mean" in text.get_text() for text in drawn["planted_association_replicates"].texts)
    legend = [t.get_text() for t in drawn["planted_trends"].axes[0].get_legend().get_texts()]
    assert legend == ["amplifying (called)", "amplifying", "faithful"]  # no "called" entry without a called trend
    for fig in drawn.values():
        plt.close(fig)


def test_study_power_command_prints_and_writes_the_tables(study, monkeypatch, tmp_path, capsys):
    from biaslib import cli
    from biaslib.studies.amplification import results as study_results

    monkeypatch.setattr(study_results, "load_study", lambda *args, **kwargs: study)
    out = tmp_path / "power.md"
    assert cli.main(["amplification", "power", "--design", "5:params/paper.yaml", "--design", "4:0,1", "--out",
                     str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed
    header = printed.splitlines()[0]
    assert header.endswith("| detectable this study R=3 | detectable paper R=5 | detectable R=4 × 0,1 |")
    assert "- amplifying: 1 of 5 measures of the declared family trend with the ratio" in printed
    assert cli.main(["amplification", "power", "--design", "paper.yaml"]) != 0
    assert "--design 'paper.yaml': expected R:PARAMS_FILE or R:RATIO" in capsys.readouterr().err


def test_design_table_without_replicates_has_no_detectable_slope_and_no_error(study):
    """One model per ratio measures no variance: every design column is NaN (even a design too small to fit a
    slope, which raises as soon as a variance is measured)."""
    from biaslib.studies.amplification.dose_response import design_table

    single = study.results[study.results["replicate"] == 0]
    one = StudyResults(study.base, study.params, single, single[single["kind"] == "group"], [])
    table = design_table(one, {"tiny": (1, (0.0, 1.0))})
    assert table["detectable tiny"].isna().all() and table["model_sd"].isna().all()
    assert not table["replicated"].any() and table["slope"].notna().all()
    with pytest.raises(ValueError, match="at least two distinct ratios and three models"):
        design_table(study, {"tiny": (1, (0.0, 1.0))})


def test_a_slope_whose_interval_and_p_value_disagree_says_why():
    from biaslib.studies.amplification.dose_response import trend_findings

    base = {"experiment": "e", "measure": "geode · accuracy", "slope": 0.2, "models": 9, "min_replicates": 3,
            "replicated": True, "called": False, "q_value": 0.2}
    table = pd.DataFrame([{**base, "ci_low": 0.01, "ci_high": 0.4, "p_value": 0.13},
                          {**base, "ci_low": -0.1, "ci_high": 0.5, "p_value": 0.3},
                          {**base, "ci_low": -0.01, "ci_high": 0.4, "p_value": 0.02}])
    lines = trend_findings(table)
    assert "leaves 0 out while p is ≥ 0.05" in lines[0] and "different methods" in lines[0]
    assert "different methods" not in lines[1]
    assert "holds 0 while p is < 0.05" in lines[2]
