"""A run folder written before issue 28 (biaslib 41a043a and eff9329, 2026-12-06: one ``Params`` with every study's
section, one digest of the whole params file, the studies' paths in the core layout) resumes unchanged.

``tests/fixtures/run_layout_2026_12`` holds what those versions wrote: a tiny world export, a generation run and
three mixes (``params/layout_2026_12.yaml``, by 41a043a), an amplification result and a multilingual result (by
eff9329 for the committed demo, in /work/demo1). Trained checkpoints (≈ 100 MB each) are left out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from biaslib import cli
from biaslib.config import REPO_ROOT, load_params
from biaslib.errors import BiaslibError
from biaslib.results import collect
from biaslib.studies.multilingual.evaluation import check_results, eval_settings, result_path
from biaslib.studies.multilingual.legacy_digest import legacy_digest

FIXTURE = Path(__file__).parent / "fixtures" / "run_layout_2026_12"
#: Where the multilingual result of the fixture was written, and the params file it was written with.
WRITTEN_IN = "/work/demo1"


def _sha256s(folder: Path, pattern: str) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob(pattern))}


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A copy of the fixture at another path than the one it was written at (a moved run folder, as in a clone)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "old"))


def test_generation_and_mixing_of_an_old_run_resume_with_nothing_to_redo(old_run, capsys):
    """Its generation run is found finished and its mixes the same (their shards byte for byte), although the run
    folder moved: the mixes recorded absolute roots, which are the same folders moved with the run."""
    params_file = str(old_run / "params" / "layout_2026_12.yaml")
    run = old_run / "runs" / "layout_2026_12"
    shards = _sha256s(run, "*.tar")
    assert len(shards) == 2 + 2 + 3 * 2  # the captions', the generation's, three mixes'
    assert cli.main(["generate", "run", "--params", params_file]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert done["images"] == 0 and done["shards_skipped"] == 2
    assert cli.main(["mix", "run", "--params", params_file]) == 0
    assert cli.main(["mix", "verify", "--params", params_file]) == 0
    assert cli.main(["generate", "verify", "--params", params_file]) == 0
    assert _sha256s(run, "*.tar") == shards


def test_a_moved_mix_whose_inputs_changed_is_rebuilt_not_kept(old_run):
    """The move is recognised by path only together with each shard's inputs: a real shard changed after the move
    makes its mix shards rebuilt (and different), not kept."""
    params_file = str(old_run / "params" / "layout_2026_12.yaml")
    run = old_run / "runs" / "layout_2026_12"
    before = _sha256s(run / "mixes", "*.tar")
    assert cli.main(["world", "export", "--params", params_file, "--overwrite", "--set", "world.bias_strength=3"]) == 0
    assert cli.main(["mix", "run", "--params", params_file]) == 0
    after = _sha256s(run / "mixes", "*.tar")
    assert after["default/mix_000/00000.tar"] != before["default/mix_000/00000.tar"]


def test_results_of_the_old_layout_are_read_as_before(old_run):
    amplification = collect(old_run / "runs", study="amplification")
    assert set(amplification["experiment"]) == {"world_default"} and set(amplification["evaluation"]) == {"geode"}
    assert set(amplification["ratio"]) == {"000"} and amplification["value"].notna().any()
    multilingual = collect(old_run / "runs", study="multilingual")
    assert set(multilingual["language"]) == {"en"} and "fairness" in set(multilingual["section"])


def test_the_legacy_digest_is_the_one_the_old_code_recorded():
    """The frozen rule reproduces the digest the old code wrote into the fixture's multilingual result, for its
    params file at the place it was written (paths were hashed absolute then), and the whole-params digests the
    old code (eff9329 in /work/demo1) gave two other params files there."""
    recorded = json.loads(next(FIXTURE.rglob("multilingual_world__base__en.json")).read_text())
    there = {"runs_dir": f"{WRITTEN_IN}/runs"}
    params = load_params(REPO_ROOT / "params" / "multilingual.yaml",
                         {**there, "multilingual.clip_params": f"{WRITTEN_IN}/params/default.yaml"})
    assert legacy_digest(params) == recorded["provenance"]["settings"]["params_digest"] == "40af6f058163"
    assert legacy_digest(load_params(REPO_ROOT / "params" / "default.yaml", there)) == "96e2aba86c37"
    assert legacy_digest(load_params(REPO_ROOT / "params" / "world_study.yaml", there)) == "95a219e52dd3"
    # a field of the multilingual section changes it; one added since, at its default, would not
    changed = load_params(REPO_ROOT / "params" / "multilingual.yaml",
                          {**there, "multilingual.clip_params": f"{WRITTEN_IN}/params/default.yaml",
                           "multilingual.eval_n_boot": 500})
    assert legacy_digest(changed) != legacy_digest(params)


def test_a_multilingual_result_with_the_whole_params_digest_stays_current(old_run):
    """An evaluation rerun checks the existing results first: one recorded with the whole-params digest of these
    params is current (nothing to recompute); with another setting of the study it is refused, naming the key."""
    params = load_params(REPO_ROOT / "params" / "multilingual.yaml", {"runs_dir": str(old_run / "runs")})
    path = result_path(params, "base", "en")
    record = json.loads(path.read_text())
    recorded = record["provenance"]["settings"]
    # the result as written by the old code with these params (at this place: its digest hashed absolute paths)
    record["provenance"]["settings"] = {**recorded, "params_digest": legacy_digest(params)}
    path.write_text(json.dumps(record))
    clip = tuple(recorded["clip"])
    settings = eval_settings(params, n_boot=recorded["n_boot"], seed=recorded["seed"], clip=clip)
    assert settings["params_digest"] != legacy_digest(params)  # the study's own digest now
    check_results(params, ["base"], ["en"], settings)
    other = load_params(REPO_ROOT / "params" / "multilingual.yaml",
                        {"runs_dir": str(old_run / "runs"), "multilingual.eval_resample": "prompts"})
    with pytest.raises(BiaslibError, match="resample"):
        check_results(other, ["base"], ["en"], eval_settings(other, n_boot=1000, seed=0, clip=clip))
