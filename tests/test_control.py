"""The amplification study's paired controls (biaslib.studies.amplification.control and .control_report,
`biaslib amplification control`):
design checks that refuse a control that cannot answer, the declaration recorded before the study runs, the
analysis on planted replicate values, and a tiny control end to end through the CLI (per-replicate generated data,
one shared warm start, the clean plant)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from biaslib import cli
from biaslib.config import load_params
from biaslib.studies.amplification.control import (
    ControlDesignError,
    ControlResults,
    check_design,
    control_findings,
    control_table,
    declare,
    load_control,
    pair_values,
)
from biaslib.studies.amplification.results import Measure

#: A control at its smallest: 3 replicate pairs (the two-sided sign-flip test can reach 0.25, so α = 0.3).
CONTROL = """
generate: {{shard_size: 300, batch_size: 50, per_replicate: true}}
mix: {{ratios: ["100"]}}
train: {{epochs: 1, batch_size: 100, warmup: 2, workers: 1, precision: fp32, replicates: 3, warm_start_epochs: 1}}
export: {{cc3m_samples: 600, cc3m_shard_size: 300, phase_val: 60, coco_images: 40, coco_captions_per_image: 2,
          fairface_train: 10, fairface_val: 80, geode_per_object_region: 1, workers: 1, fairface_occupations: false}}
eval: {{evaluations: [association], n_boot: 50, association_ks: [20]}}
control:
  pairs: {{planted: [planted, faithful], aa: [faithful_b, faithful]}}
  positive: [planted]
  negative: [aa]
  primary: {{measure: "fairface:gender:cosine_vs_data", ratio: "100", alpha: 0.3}}
  secondary: [fairface:gender:text_vs_data]
  q_level: 0.3
variants:
  faithful: {{}}
  planted: {{generate.amplification: 8.0, generate.amplified: [gender]}}
  faithful_b: {{generate.seed: 1000}}
"""


def _control_file(tmp_path, name: str = "c", extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"experiment: {name}\nruns_dir: {tmp_path / 'runs'}\n" + CONTROL.format() + extra)
    return str(path)


def test_measures_are_parsed_and_bad_ones_named():
    assert Measure.parse("fairface:gender:cosine_vs_data") == Measure("fairface", "gender", "cosine_vs_data")
    assert Measure.parse("phase:gender:R@1:gap").label == "phase · gender · R@1 · gap"
    with pytest.raises(ValueError, match="dataset:attribute:metric"):
        Measure.parse("cosine_vs_data")
    with pytest.raises(ValueError, match="kind one of"):
        Measure.parse("phase:gender:R@1:group")


@pytest.mark.parametrize(("change", "message"), [
    ("generate.per_replicate=false", "generate.per_replicate is false"),
    ("train.replicates=2", "smallest p the two-sided sign-flip test can give is 0.5"),
    ("control.q_level=0.2", "control.secondary: no finding can be called"),
    ("control.primary.ratio=050", "is not one of mix.ratios"),
    ("control.pairs.aa=[faithful_b, nobody]", "two of the variants faithful, planted, faithful_b"),
    ("control.positive=[planted, missing]", "'missing' is not one of the pairs"),
    ("control.secondary=[fairface:gender:cosine_vs_data]", "names the primary one"),
])
def test_a_design_that_cannot_answer_is_refused_before_any_work(tmp_path, change, message):
    path = _control_file(tmp_path)
    key, _, value = change.partition("=")
    import yaml

    with pytest.raises(ControlDesignError, match=message):
        check_design(path, {key: yaml.safe_load(value)})
    assert not (tmp_path / "runs").exists()


def test_arms_that_differ_outside_their_generator_are_not_a_pair(tmp_path):
    path = _control_file(tmp_path, extra="")
    text = open(path).read().replace("faithful_b: {generate.seed: 1000}",
                                     "faithful_b: {generate.seed: 1000, train.lr: 0.01}")
    open(path, "w").write(text)
    with pytest.raises(ControlDesignError, match="faithful_b and faithful differ outside the generate section"):
        check_design(path)


def test_the_declaration_is_recorded_once_and_a_changed_test_is_refused(tmp_path):
    path = _control_file(tmp_path)
    record = declare(path)
    first = json.loads(record.read_text())
    assert first["declared"]["control"]["primary"]["measure"] == "fairface:gender:cosine_vs_data"
    assert set(first["declared"]["arms"]) == {"faithful", "planted", "faithful_b"}
    assert declare(path) == record and json.loads(record.read_text()) == first  # the same: unchanged
    with pytest.raises(ControlDesignError, match="not pre-specified"):
        declare(path, {"control.primary.measure": "fairface:gender:retrieval_vs_data@20"})
    with pytest.raises(ControlDesignError, match="differs from the one declared"):
        load_control(path, {"control.secondary": ["fairface:gender:retrieval_vs_data@20"]})


def _planted_control(tmp_path, effect: float, pairs: int = 10, seed: int = 0) -> ControlResults:
    """Replicate values of a planted pair (treatment = reference + effect + small noise, arms correlated) and an
    A/A pair (independent noise), for the analysis alone."""
    rng = np.random.default_rng(seed)
    base = load_params(_control_file(tmp_path), {"train.replicates": pairs})
    reference = 0.07 + 0.01 * rng.standard_normal(pairs)
    rows = []
    for pair, treatment in (("planted", reference + effect + 0.002 * rng.standard_normal(pairs)),
                            ("aa", reference + 0.004 * rng.standard_normal(pairs))):
        for family, measure in (("primary", "fairface · gender · cosine_vs_data"),
                                ("secondary", "fairface · gender · text_vs_data")):
            rows.append(pd.DataFrame({"replicate": range(pairs), "treatment": treatment, "reference": reference,
                                      "half_width": 0.01, "difference": treatment - reference, "pair": pair,
                                      "measure": measure, "family": family}))
    return ControlResults(None, base, {}, pd.DataFrame(), pd.concat(rows, ignore_index=True))


def test_the_analysis_calls_a_planted_pair_and_not_an_a_a_pair(tmp_path):
    control = _planted_control(tmp_path, effect=0.008)
    table = control_table(control)
    primary = table[table["family"] == "primary"].set_index("pair")
    assert primary.loc["planted", "called"] and not primary.loc["aa", "called"]
    assert primary.loc["planted", "p_value"] == pytest.approx(2 / 1024)  # every pair the planted way
    assert primary.loc["planted", "ci_low"] < 0.008 < primary.loc["planted", "ci_high"]
    assert primary.loc["planted", "rho"] > 0.9 and primary.loc["planted", "threshold"] == 0.3
    secondary = table[table["family"] == "secondary"]
    assert secondary["q_value"].notna().all() and (secondary["q_value"] == secondary["p_value"]).all()  # family of 1
    lines = control_findings(table, control.spec)
    assert any(line.startswith("planted (planted − faithful), primary fairface · gender · cosine_vs_data")
               and "called at α = 0.3 — as a control must" for line in lines)
    assert "The control passes: 1 of 1 planted pair(s) called, 0 of 1 A/A pair(s) called." in lines
    failing = control_table(_planted_control(tmp_path, effect=0.0, seed=3))
    assert "The control FAILS" in " ".join(control_findings(failing, control.spec))


def test_a_missing_replicate_is_named_not_skipped():
    results = pd.DataFrame({"experiment": ["t", "r", "t"], "ratio": ["100"] * 3, "replicate": [0, 0, 1],
                            "dataset": "fairface", "attribute": "gender", "metric": "cosine_vs_data",
                            "kind": "overall", "value": [0.1, 0.2, 0.3], "ci_low": 0.0, "ci_high": 0.4})
    with pytest.raises(Exception, match="r replicate 1: 0 value"):
        pair_values(results, "t", "r", Measure.parse("fairface:gender:cosine_vs_data"), "100", 2)
    values = pair_values(results[results["replicate"] == 0], "t", "r", Measure.parse("fairface:gender:cosine_vs_data"),
                         "100", 1)
    assert values["difference"].tolist() == pytest.approx([-0.1]) and values["half_width"].tolist() == [0.2]


@pytest.fixture(scope="module")
def tiny_control(module_tmp):
    """The tiny control through the CLI: study run (declaration, export, per-replicate generation, mixing, one warm
    start, 3 arms × 3 fine-tunes, association) then study control."""
    import matplotlib

    path = _control_file(module_tmp, "tc")
    assert cli.main(["amplification", "run", "--params", path]) == 0
    with matplotlib.rc_context():  # the report sets the figure style: keep it inside this fixture
        assert cli.main(["amplification", "control", "--params", path, "--figures-dir", str(module_tmp / "figures"),
                         "--design", "5", "--out", str(module_tmp / "report.md")]) == 0
    return path


def test_tiny_control_end_to_end(tiny_control, module_tmp, capsys):
    from biaslib.data.generated import read_generated
    from biaslib.io import file_sha256
    from biaslib.layout import RunLayout
    from biaslib.studies.amplification.control import arms

    by_name = arms(tiny_control)
    warm = list((module_tmp / "runs" / "cache" / "warm_start").glob("warm_start_*/checkpoints/epoch_1.pt"))
    assert len(warm) == 1  # trained once, shared by the three arms
    for name, params in by_name.items():
        for replicate in range(3):
            run = RunLayout(params).clip / (f"tc_{name}_100" + (f"_r{replicate}" if replicate else ""))
            record = json.loads((run / "biaslib_run.json").read_text())
            assert record["init"] == file_sha256(warm[0]) and record["seed"] == replicate
    # replicate r of every arm has its own generation (seed generate.seed + r); the planted arm differs from the
    # faithful one only in gender (and the hair that goes with it), the A/A arm everywhere
    faithful, planted, other = (read_generated(RunLayout(by_name[n].for_replicate(1)).generated()).set_index("key")
                                .sort_index() for n in ("faithful", "planted", "faithful_b"))
    assert (faithful["seed"] == planted["seed"]).all() and (faithful["seed"] != other["seed"]).all()
    simulated = [c for c in faithful.columns if c.startswith("sim_")]

    def differ(a: pd.DataFrame, b: pd.DataFrame) -> set[str]:
        return {c for c in simulated if (a[c].astype(object).fillna("-").astype(str)
                                         != b[c].astype(object).fillna("-").astype(str)).any()}

    assert differ(faithful, planted) == {"sim_gender", "sim_hair_long"}
    assert {"sim_race", "sim_occupation", "sim_gender"} <= differ(faithful, other)
    assert (RunLayout(by_name["faithful"]).root / "generated" / "default_r2").is_dir()
    report = (module_tmp / "report.md").read_text()
    assert report.startswith("# tc: positive and negative controls")
    assert "planted (planted − faithful), primary fairface · gender · cosine_vs_data" in report
    assert "detectable R=5" in report and "Generator planted: gender × occupation BiasAmp" in report
    for name in ("paired_differences", "arms", "generator_amplification"):
        assert (module_tmp / "figures" / f"tc_{name}.png").is_file()
    record = json.loads((module_tmp / "runs" / "tc" / "control_report.json").read_text())
    assert len(record["table"]) == 4 and len(record["values"]) == 2 * 2 * 3
    capsys.readouterr()


STRONG_PLANT = """
experiment: strong
runs_dir: {runs}
world: {{p_no_occupation: 0.05, captions: {{p_gender: 0.1, p_occupation: 0.9}}}}
export: {{cc3m_samples: 3000, cc3m_shard_size: 1000, phase_val: 60, coco_images: 40, coco_captions_per_image: 2,
          fairface_train: 10, fairface_val: 600, geode_per_object_region: 1, workers: 1, fairface_occupations: false}}
generate: {{shard_size: 1000, batch_size: 200, per_replicate: true}}
mix: {{ratios: ["100"]}}
train: {{epochs: 1, warm_start_epochs: 3, batch_size: 128, warmup: 10, workers: 0, precision: fp32, replicates: 6}}
eval: {{evaluations: [association], n_boot: 200}}
control:
  pairs: {{planted: [planted, faithful]}}
  positive: [planted]
  primary: {{measure: "fairface:gender:cosine_vs_data", ratio: "100", alternative: greater, alpha: 0.05}}
variants:
  faithful: {{}}
  planted: {{generate.amplification: 16.0, generate.amplified: [gender]}}
"""


@pytest.mark.slow
def test_a_strong_plant_is_detected_by_the_declared_primary_test(tmp_path):
    """Issue 25, the slow tier (≈ 5 minutes): a generator whose people almost always have their occupation's majority
    gender (γ = 16 on gender alone) against the faithful one, 6 replicate pairs of tiny CLIPs fine-tuned from one
    warm start on 3,000 all-generated samples: the declared one-sided primary test calls the plant (p = 1/64 when
    every pair goes the planted way) and the paired effect's interval lies above 0."""
    path = tmp_path / "strong.yaml"
    path.write_text(STRONG_PLANT.format(runs=tmp_path / "runs"))
    assert cli.main(["amplification", "run", "--params", str(path)]) == 0
    control = load_control(path)
    primary = control_table(control).set_index("family").loc["primary"]
    assert primary["called"] and primary["p_value"] < 0.05, primary.to_dict()
    assert primary["ci_low"] > 0 and primary["rho"] > 0
