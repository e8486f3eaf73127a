"""The evaluation registry (issue 28): an evaluation is one module, found by name without importing it, and a new one
added from outside the repository runs through `bench run`, the leaderboard and `results collect` with no file of
biaslib changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biaslib.config import EvalConfig, Params
from biaslib.data import load_fairface
from biaslib.evaluations import (
    BUILTIN,
    Evaluation,
    Measure,
    get_evaluation,
    leaderboard_measures,
    list_evaluations,
    register_evaluation,
    unregister_evaluation,
)
from biaslib.evaluations.rows import mean_rows
from biaslib.features import FeatureStore

REPO = Path(__file__).resolve().parent.parent

#: A toy evaluation as a user would write it in a module of their own: the cosine of each FairFace face to one prompt
#: (its own option), per gender, with the gap the leaderboard ranks.
TOY = '''
"""Toy evaluation: each face's cosine to one prompt, per gender."""
from biaslib.evaluations import Evaluation, Measure, register_evaluation
from biaslib.evaluations.rows import mean_rows
from biaslib.features import FeatureStore


def run(ctx, tables):
    faces = tables["fairface"]
    cfg = ctx.cfg
    image = ctx.image_features(f"fairface-{cfg.fairface_split}-m{cfg.fairface_margin}-images", faces["image_id"],
                               faces["file"])
    prompt = ctx.option("prompt")
    text = ctx.text_features("toy-prompt", [prompt], [prompt])
    return mean_rows("fairface", "gender", "toy_cosine", image @ text[0], faces["gender"].to_numpy(dtype=object), cfg)


register_evaluation(Evaluation(
    "toy", "each face's cosine to one prompt, per gender", ("fairface",), run,
    settings=("fairface_split", "fairface_margin"), options={"prompt": "a photo of a person"},
    measures=(Measure("toy", "gap", r"toy_cosine", "toy cosine", "lower |gap|"),)))
'''


def _plugin(site: Path) -> None:
    """The toy module and a dist-info declaring it under the ``biaslib.evaluations`` entry-point group, in ``site``
    (a folder on PYTHONPATH): what ``pip install`` of a package with that entry point leaves."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "toy_evaluation.py").write_text(textwrap.dedent(TOY))
    info = site / "toy_evaluation-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-evaluation\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[biaslib.evaluations]\ntoy = toy_evaluation\n")


def _cli(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "biaslib.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def _tracked_changes() -> str | None:
    """``git status --porcelain`` of the repository (None outside a git checkout)."""
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                          text=True)
    return done.stdout if done.returncode == 0 else None


def test_a_toy_evaluation_from_outside_runs_through_bench_the_leaderboard_and_collect(exported, tmp_path):
    """The toy module lives in the test's folder and is declared by an entry point only: `bench run --evaluation
    toy` computes it (its option from ``eval.options``), the leaderboard ranks its measure, `results collect` reads
    it, and its gap equals the brute-force gap of the faces' cosines recomputed from the stored features."""
    before = _tracked_changes()
    site = tmp_path / "site"
    _plugin(site)
    models = tmp_path / "models.yaml"
    models.write_text("models:\n  vit: {arch: biaslib-tiny-vit, pretrained: none}\n"
                      "  rn: {arch: biaslib-tiny-rn, pretrained: none}\n")
    params = tmp_path / "toy.yaml"
    params.write_text(f"experiment: toy\nruns_dir: {tmp_path / 'runs'}\neval:\n"
                      f"  data_root: {exported['phase'].parent}\n  n_boot: 50\n  n_perm: 50\n  threads: 1\n"
                      "  min_group_size: 5\n  evaluations: [toy]\n"
                      "  options: {toy: {prompt: a photo of a face}}\n")
    helped = _cli(["eval", "run", "--help"], site, tmp_path)
    assert helped.returncode == 0 and "toy" in helped.stdout
    ran = _cli(["benchmark", "run", "--params", str(params), "--models", str(models)], site, tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    results = json.loads(ran.stdout)["results"]
    assert sorted(Path(p).name for p in results) == ["toy__rn__toy.json", "toy__vit__toy.json"], results
    record = json.loads(Path(results[0]).read_text())
    assert record["evaluation"] == "toy" and record["provenance"]["settings"]["options"] == {
        "prompt": "a photo of a face"}

    board_csv = tmp_path / "board.csv"
    board = _cli(["benchmark", "leaderboard", "--params", str(params), "--out", str(board_csv)], site, tmp_path)
    assert board.returncode == 0, board.stderr[-2000:]
    ranked = pd.read_csv(board_csv)
    assert set(ranked["evaluation"]) == {"toy"} and set(ranked["model"]) == {"vit", "rn"}
    assert set(ranked["metric"]) == {"toy_cosine"} and set(ranked["better"]) == {"lower |gap|"}

    rows_csv = tmp_path / "rows.csv"
    collected = _cli(["results", "collect", "--params", str(params), "--study", "benchmark", "--out", str(rows_csv)],
                     site, tmp_path)
    assert collected.returncode == 0, collected.stderr[-2000:]
    frame = pd.read_csv(rows_csv)
    gap = frame[(frame["model"] == "vit") & (frame["kind"] == "gap")].iloc[0]

    # brute force: the stored face features and the prompt's, by gender

    store = FeatureStore(tmp_path / "runs" / "toy" / "features")
    features = {dataset: store.load(model, dataset) for model, dataset in
                store.entries()[["model", "dataset"]].itertuples(index=False) if model.startswith("vit")}
    faces = next(f for name, f in features.items() if name.startswith("fairface"))
    prompt = features["toy-prompt"].vectors[0]
    table = load_fairface(exported["fairface"], "val", "125")
    cosine = pd.Series(np.asarray(faces.vectors, dtype=np.float64) @ prompt, index=faces.ids)
    means = cosine.loc[table["image_id"].astype(str)].groupby(table["gender"].to_numpy()).mean()
    assert gap["value"] == pytest.approx(means.max() - means.min(), abs=1e-5)
    assert _tracked_changes() == before  # nothing of biaslib changed


def test_names_are_listed_without_importing_and_an_evaluation_is_imported_on_first_use():
    """Listing the evaluations (the CLI's help and choices) imports none of their modules; asking for one imports
    it."""
    probe = ("import sys; from biaslib.evaluations import list_evaluations, get_evaluation; "
             "names = list_evaluations(); loaded = [n for n in names if f'biaslib.evaluations.{n}' in sys.modules]; "
             "get_evaluation('geode'); print(names, loaded, 'biaslib.evaluations.geode' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{list(BUILTIN)} [] True"


def test_registration_refuses_clashes_and_bad_declarations_and_options_are_checked(exported, tmp_path):
    assert list_evaluations()[:len(BUILTIN)] == list(BUILTIN)
    assert [m.evaluation for m in leaderboard_measures()][:2] == ["retrieval", "retrieval"]
    with pytest.raises(ValueError, match="already registered"):
        register_evaluation(Evaluation("geode", "x", ("geode",), lambda ctx, tables: []))
    with pytest.raises(ValueError, match="lower-case"):
        Evaluation("Bad Name", "x", (), lambda ctx, tables: [])
    with pytest.raises(ValueError, match="measures must rank its own rows"):
        Evaluation("mine", "x", (), lambda ctx, tables: [], measures=(Measure("geode", "gap", "a", "a", "lower"),))
    with pytest.raises(ValueError, match="unknown evaluation 'nope'.*retrieval"):
        get_evaluation("nope")

    def run(ctx, tables):
        faces = tables["fairface"]
        values = np.full(len(faces), float(ctx.option("level")))
        return mean_rows("fairface", "all", "level", values, np.full(len(faces), "all", dtype=object), ctx.cfg)

    register_evaluation(Evaluation("level", "a constant", ("fairface",), run, options={"level": 0.25}))
    try:
        from biaslib.evaluate import evaluate_targets
        from biaslib.models import model_spec
        from biaslib.studies.benchmark.leaderboard import model_target, resolve_models

        config = EvalConfig(data_root=exported["phase"].parent, n_boot=20, n_perm=20, threads=1)
        params = Params(experiment="lvl", runs_dir=tmp_path, eval=config)
        target = model_target(params, resolve_models([model_spec("rn", {"arch": "biaslib-tiny-rn",
                                                                         "pretrained": "none"})])[0])
        with pytest.raises(ValueError, match=r"eval.options.level: unknown key\(s\) levle \(it has level\)"):
            evaluate_targets(Params(experiment="lvl", runs_dir=tmp_path, eval=EvalConfig(
                data_root=config.data_root, options={"level": {"levle": 1}})), [target], ["level"], progress=False)
        with pytest.raises(ValueError, match="eval.options: no evaluation named nothing"):
            evaluate_targets(Params(experiment="lvl", runs_dir=tmp_path, eval=EvalConfig(
                data_root=config.data_root, options={"nothing": {}})), [target], ["level"], progress=False)
        (path,) = evaluate_targets(params, [target], ["level"], progress=False)
        rows = json.loads(path.read_text())["rows"]
        assert rows[0]["metric"] == "level" and rows[0]["value"] == pytest.approx(0.25)
    finally:
        unregister_evaluation("level")
    assert "level" not in list_evaluations()
