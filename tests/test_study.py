"""The amplification study end to end on a small world: export → generate → mix → train → eval → collect,
run through the CLI with a params file that has variants; a rerun redoes nothing."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_STUDY

from biaslib import cli
from biaslib.config import load_params
from biaslib.results import collect
from biaslib.studies.amplification.report import ratio_trends

VARIANTS = """variants:
  g1: {generate.amplification: 1.0}
  g3: {generate.amplification: 3.0}
"""


@pytest.fixture(scope="module")
def study(module_tmp):
    root = module_tmp
    path = root / "study.yaml"
    path.write_text(TINY_STUDY.format(experiment="s", runs=root / "runs") + VARIANTS)
    return path


def test_one_variant_end_to_end_then_nothing_is_redone(study, capsys):
    assert cli.main(["amplification", "run", "--params", str(study), "--variant", "g3"]) == 0
    seconds = json.loads(capsys.readouterr().out)
    assert list(seconds) == ["s_g3"] and list(seconds["s_g3"]) == ["export", "generate", "mix", "train", "eval"]
    params = load_params(study, variant="g3")
    results = collect(params, study="amplification")
    assert sorted(results["ratio"].unique()) == ["000", "100"]
    assert set(results["evaluation"]) == {"retrieval", "markedness", "geode"}
    assert (results.groupby(["ratio", "evaluation"]).size() > 0).all()
    manifest = json.loads((params.run_dir / "mixes" / "default" / "mix_100" / "manifest.json").read_text())
    assert manifest["counts"]["generated"] == 600
    trends = ratio_trends(results)
    assert len(trends) > 0 and set(trends["ratio_first"]) == {0.0} and set(trends["ratio_last"]) == {1.0}
    stamps = {p: p.stat().st_mtime_ns for p in params.run_dir.rglob("*") if p.is_file()}
    assert cli.main(["amplification", "run", "--params", str(study), "--variant", "g3"]) == 0
    again = json.loads(capsys.readouterr().out)["s_g3"]
    # nothing was redone: every file is untouched (the rerun's seconds are reported, never compared: they
    # depend on the machine's load)
    assert {p: p.stat().st_mtime_ns for p in params.run_dir.rglob("*") if p.is_file()} == stamps
    assert list(again) == list(seconds["s_g3"])


def test_steps_run_for_every_variant_and_bad_names_are_one_error(study, capsys):
    assert cli.main(["amplification", "run", "--params", str(study), "--step", "export"]) == 0
    assert list(json.loads(capsys.readouterr().out)) == ["s_g1", "s_g3"]
    assert (load_params(study, variant="g1").run_dir / "data" / "export_manifest.json").is_file()
    assert cli.main(["amplification", "run", "--params", str(study), "--variant", "g2"]) == 2
    assert "no variant 'g2'; its variants: g1, g3" in capsys.readouterr().err
    assert cli.main(["amplification", "run", "--params", str(study), "--step", "plot"]) == 2
    assert "unknown study step(s) ['plot']" in capsys.readouterr().err
