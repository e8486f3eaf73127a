"""Params loading (typed, strict) and the CLI's world commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biaslib import cli
from biaslib.config import REPO_ROOT, ParamsError, load_params


def test_default_params_load_typed():
    p = load_params()
    assert p.world.image_size == 64 and isinstance(p.world.bias_strength, float)
    assert p.export.magbig_languages == ("english",)
    assert p.run_dir == REPO_ROOT / "runs" / "world_default"
    assert len(p.digest(["seed", "world"])) == 12


def test_overrides_and_digest_change():
    base = load_params()
    p = load_params(overrides={"world.bias_strength": 0, "export.cc3m_samples": 10})
    assert p.world.bias_strength == 0.0 and p.export.cc3m_samples == 10
    assert p.digest(["world"]) != base.digest(["world"]) and p.digest(["export"]) != base.digest(["export"])


@pytest.mark.parametrize("text, message", [
    ("world:\n  bias_strenght: 1\n", "unknown key world.bias_strenght; allowed keys here: image_size"),
    ("world:\n  image_size: big\n", "world.image_size: expected int, got 'big'"),
    ("export:\n  cc3m_samples: 1.5\n", "export.cc3m_samples: expected an integer"),
    ("world: 3\n", "world: expected a mapping"),
])
def test_bad_params_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_params(path)


def test_missing_params_file(tmp_path):
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")


def test_cli_world_export_and_error(tmp_path, capsys):
    out = tmp_path / "data"
    code = cli.main(["world", "export", "--out", str(out), "--set", "export.cc3m_samples=30",
                     "--set", "export.cc3m_shard_size=10", "--set", "export.phase_val=5",
                     "--set", "export.coco_images=5",
                     "--set", "export.fairface_train=5", "--set", "export.fairface_val=5",
                     "--set", "export.geode_per_object_region=1", "--set", "export.workers=1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert Path(summary["datasets"]["cc3m"]).joinpath("00002.tar").is_file()
    assert cli.main(["world", "export", "--out", str(out), "--set", "world.nope=1"]) == 2
    assert "unknown key world.nope" in capsys.readouterr().err


def test_cli_tables(capsys):
    assert cli.main(["world", "tables", "--set", "world.bias_strength=0"]) == 0
    text = capsys.readouterr().out
    assert "p(gender | occupation), bias_strength=0.0" in text and "nurse" in text


def test_variants_name_the_experiment_and_apply_their_keys(tmp_path):
    from biaslib.config import variant_params

    path = tmp_path / "study.yaml"
    path.write_text("experiment: s\nvariants:\n  g1: {generate.amplification: 1.0}\n"
                    "  g2: {generate.amplification: 2.0, export.cc3m_samples: 500}\n")
    g2 = load_params(path, variant="g2")
    assert g2.experiment == "s_g2" and g2.generate.amplification == 2.0 and g2.export.cc3m_samples == 500
    assert load_params(path, {"generate.amplification": 3}, variant="g2").generate.amplification == 3.0
    assert [p.experiment for p in variant_params(path)] == ["s_g1", "s_g2"]
    assert [p.experiment for p in variant_params()] == ["world_default"]
    with pytest.raises(ParamsError, match="no variant 'g3'; its variants: g1, g2"):
        load_params(path, variant="g3")
    path.write_text("variants:\n  bad: {generate.amplificaton: 2}\n")
    with pytest.raises(ParamsError, match="generate.amplificaton"):
        load_params(path, variant="bad")


def test_extends_merges_section_by_section_and_names_bad_files(tmp_path):
    (tmp_path / "base.yaml").write_text("experiment: base\nworld:\n  image_size: 32\n  captions: {p_age: 0.5}\n"
                                        "train: {epochs: 3}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nworld:\n  captions: {p_race: 0.2}\n")
    child, base = load_params(tmp_path / "child.yaml"), load_params(tmp_path / "base.yaml")
    assert child.experiment == "base" and child.world.image_size == 32 and child.train.epochs == 3
    assert child.world.captions.p_age == 0.5 and child.world.captions.p_race == 0.2  # nested sections merge
    assert base.world.captions.p_race != 0.2
    (tmp_path / "loop.yaml").write_text("extends: loop2.yaml\n")
    (tmp_path / "loop2.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ParamsError, match="circle"):
        load_params(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ParamsError, match="missing.yaml"):
        load_params(tmp_path / "orphan.yaml")


def test_one_rule_for_relative_paths_whatever_the_working_folder(tmp_path, monkeypatch):
    """Issue 29: a relative path names a place in a project and resolves against the project's folder, from any
    working folder (JupyterLab runs a kernel in notebooks/). In a params or models file, that is the folder above
    params/ (or the file's own folder elsewhere), for every path value, ``extends`` and a models file's ``runs:``;
    a notebook's path parameters resolve against the repository root. Before, a models file's ``runs:`` was read
    from the working folder, and ``extends`` from the file's own folder."""
    from biaslib.config import project_folder, repo_path
    from biaslib.models import read_models_file

    project = tmp_path / "project"
    (project / "params").mkdir(parents=True)
    (project / "params" / "base.yaml").write_text("experiment: base\nruns_dir: runs\neval: {data_root: data}\n")
    (project / "params" / "child.yaml").write_text("extends: params/base.yaml\nworld: {image_size: 32}\n")
    (project / "params" / "models.yaml").write_text(
        "models:\n  study: {runs: params/child.yaml}\n  local: {arch: RN50, weights: weights/rn50.pt}\n")
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")  # where JupyterLab starts a kernel
    assert project_folder(project / "params" / "models.yaml") == project == project_folder("../params/child.yaml")
    child = load_params(project / "params" / "child.yaml")
    assert child.experiment == "base" and child.world.image_size == 32
    assert child.runs_dir == project / "runs" and child.eval.data_root == project / "data"
    specs = {spec.name: spec for spec in read_models_file("../params/models.yaml")}
    assert specs["study"].params == project / "params" / "child.yaml"
    assert specs["local"].weights == project / "weights" / "rn50.pt"
    assert repo_path("params/default.yaml") == REPO_ROOT / "params" / "default.yaml"
    assert repo_path(tmp_path) == tmp_path and repo_path(None) is None
    # a file written for the old rule (extends beside it) is told what to write instead
    (project / "params" / "old.yaml").write_text("extends: base.yaml\n")
    with pytest.raises(ParamsError, match="write extends: params/base.yaml"):
        load_params(project / "params" / "old.yaml")


def test_world_study_gamma1_is_the_default_experiment():
    """The study's γ = 1 variant reuses the demo's runs, so its params must equal params/default.yaml."""
    import dataclasses

    from biaslib.config import variant_params

    study = variant_params(REPO_ROOT / "params" / "world_study.yaml")
    assert [p.experiment for p in study] == ["world_default", "world_gamma2", "world_diffusion"]
    assert dataclasses.replace(study[0], variants={}) == load_params()
    assert study[1].generate.amplification == 2.0 and study[2].generate.model.endswith("tiny_pipeline_clip")


def test_cli_version_and_refused_arguments(capsys):
    """``--version`` prints the version; the ambiguous ``--ratio 1``, a negative ``--max-items`` and
    ``--minutes -1`` are usage errors (exit 2) naming the fix, before any work."""
    from biaslib import __version__

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"biaslib {__version__}"
    for argv, message in ((["train", "command", "--ratio", "1"], "001 for 1 %"),
                          (["generate", "run", "--max-items", "-5"], "must be above 0"),
                          (["world", "train-pipeline", "--minutes", "-1"], "must be above 0")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err, argv
    parsed = cli.build_parser().parse_args(["train", "command", "--ratio", "0.2", "--ratio", "100"])
    assert parsed.ratio == ["020", "100"]
    assert cli.build_parser().parse_args(["world", "train-pipeline", "--max-steps", "600"]).max_steps == 600


def test_numpy_only_modules_stay_light_and_every_import_is_in_an_extra():
    """``import biaslib.faces`` loaded cv2, torch and skimage, so the numpy-only correction code pulled all
    three into the multilingual evaluation, and the face packages were in no extra (issue 16, defect 5)."""
    import subprocess
    import sys

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    code = ("import sys, biaslib.faces.correction, biaslib.faces.counts, biaslib.studies.multilingual.evaluation; "
            "print(sorted(m for m in ('cv2', 'torch', 'skimage', 'dlib', 'onnxruntime') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=REPO_ROOT).stdout.strip()
    assert loaded == "[]", loaded
    import biaslib.faces

    assert callable(biaslib.faces.skin_tone) and set(biaslib.faces.__all__) <= set(dir(biaslib.faces))
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    faces = {name.split("<")[0].split("=")[0] for name in extras["faces"]}
    assert {"opencv-python-headless", "scikit-image", "dlib-bin", "onnxruntime", "torch"} <= faces


def test_cli_errors_are_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    """YAML syntax errors, ``--set seed.x=1``, a file where a folder belongs, Ctrl-C and a closed pipe ended
    in tracebacks (issue 16, defect 14): one line naming the file or key, and a conventional exit code."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: x\nseed: [1,\n")
    assert cli.main(["world", "tables", "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("biaslib: error:") and str(bad) in err and "line 3" in err and "\n" not in err
    assert cli.main(["world", "tables", "--set", "seed.x=1"]) == 2
    assert "cannot set seed.x: seed is a value" in capsys.readouterr().err
    assert cli.main(["world", "export", "--out", str(bad), "--set", "export.cc3m_samples=4"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.world, "cmd_world_tables", interrupted)
    assert cli.main(["world", "tables"]) == 130 and "interrupted" in capsys.readouterr().err


def test_an_unwritable_output_is_refused_before_any_work(tmp_path):
    from biaslib.errors import BiaslibError
    from biaslib.io import check_writable

    (tmp_path / "file").write_text("")
    with pytest.raises(BiaslibError, match=r"cannot write to .*file/results"):
        check_writable(tmp_path / "file" / "results")
    assert check_writable(tmp_path / "new" / "results").is_dir()


def test_out_of_range_values_and_unknown_table_formats_are_refused(tmp_path, capsys):
    """``bias_strength=-3`` was accepted and ``results collect --out x.xlsx`` wrote CSV text (issue 16,
    defect 15)."""
    with pytest.raises(ParamsError, match=r"world.bias_strength = -3.*must be ≥ 0"):
        load_params(None, {"world.bias_strength": -3})
    with pytest.raises(ParamsError, match=r"world.p_object = 1.5.*in \[0.0, 1.0\]"):
        load_params(None, {"world.p_object": 1.5})
    assert cli.main(["results", "collect", "--root", str(tmp_path), "--out", str(tmp_path / "x.xlsx")]) == 2
    assert ".csv or .parquet" in capsys.readouterr().err and not (tmp_path / "x.xlsx").exists()


def test_a_study_digest_covers_its_own_section_and_the_shared_ones_it_reads_and_nothing_else():
    """Issue 28: one digest of the whole params made every new amplification field a DIGEST_NEUTRAL entry, or
    multilingual results were refused. Each study's digest now covers what it declares: a setting of another study,
    or an analysis-only section, leaves it alone; one it reads changes it."""
    from biaslib.study_registry import study_digest

    base = load_params()
    def digests(**overrides):
        params = load_params(None, overrides)
        return {s: study_digest(params, s) for s in ("amplification", "multilingual", "benchmark")}
    before = digests()
    assert len(set(before.values())) == 3
    every = {"amplification", "multilingual", "benchmark"}
    for key, value, moved in [
            ("train.replicates", 3, {"amplification"}), ("mix.ratios", ["000", "100"], {"amplification"}),
            ("generate.per_replicate", True, {"amplification", "multilingual"}),
            ("eval.association_ks", [10], {"amplification", "benchmark"}),
            ("multilingual.eval_n_boot", 500, {"multilingual"}), ("control.primary.alpha", 0.05, set()),
            ("analysis.q_level", 0.1, set()), ("world.bias_strength", 2.0, every), ("seed", 3, every),
            ("experiment", "elsewhere", set()), ("runs_dir", "/tmp/other_runs", set())]:
        after = digests(**{key: value})
        assert {s for s in before if after[s] != before[s]} == moved, key
    assert study_digest(base, "multilingual") == base.digest(["seed", "world", "generate", "multilingual"])
    with pytest.raises(ParamsError, match="train.replicates"):
        load_params(None, {"train.replicates": 0})
    with pytest.raises(ParamsError, match="multilingual.eval_n_boot"):
        load_params(None, {"multilingual.eval_n_boot": 0})


def test_a_digest_is_the_same_wherever_the_checkout_lies(tmp_path):
    """The whole-params digest hashed absolute paths (runs_dir, data roots): the same params file in a clone at
    another path (e.g. /work/demo1 and /work/main) gave another digest, so its multilingual results were refused
    as computed with other settings. Paths under the params' root now hash relative to it."""
    import shutil

    from biaslib.study_registry import study_digest

    for name in ("default.yaml", "multilingual.yaml"):
        here = load_params(REPO_ROOT / "params" / name, {"eval.data_root": "runs/elsewhere"})
        (tmp_path / "params").mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / "params" / name, tmp_path / "params" / name)
        there = load_params(tmp_path / "params" / name, {"eval.data_root": "runs/elsewhere"})
        assert there.runs_dir != here.runs_dir and there.eval.data_root != here.eval.data_root
        for study in ("amplification", "multilingual", "benchmark"):
            assert study_digest(there, study) == study_digest(here, study), (name, study)
    outside = load_params(None, {"eval.data_root": str(tmp_path / "data")})
    assert study_digest(outside, "amplification") != study_digest(load_params(), "amplification")


def test_params_ratios_follow_the_cli_rule_and_yaml_reads_codes_as_written(tmp_path):
    """``--set 'mix.ratios=[0, 0.5, 1]'`` wrote mix_000, mix_050 and mix_001 (1 %) without a word, and an unquoted
    ``[000, 050, 100]`` in a params file was read as [0, 40, 100] (YAML 1.1 octal): the ambiguous 1 is refused
    as on the command line, every spelling becomes its code, and ``050`` is read as written (issue 27, item 5)."""
    with pytest.raises(ParamsError, match=r"mix\.ratios\[2\]: the ratio 1 is ambiguous"):
        load_params(overrides={"mix.ratios": [0, 0.5, 1]})
    with pytest.raises(ParamsError, match=r"control\.primary\.ratio: the ratio 1 is ambiguous"):
        load_params(overrides={"control.primary.ratio": "1"})
    p = load_params(overrides={"mix.ratios": [0, 0.5, 1.0, "020", 60], "train.probe_ratios": [0.4]})
    assert p.mix.ratios == ("000", "050", "100", "020", "060") and p.train.probe_ratios == ("040",)
    path = tmp_path / "unquoted.yaml"
    path.write_text("extends: " + str(REPO_ROOT / "params" / "default.yaml") + "\nmix:\n  ratios: [000, 050, 100]\n"
                    "train:\n  epochs: 02\nmultilingual:\n  languages: [en, no]\n")
    p = load_params(path)
    assert p.mix.ratios == ("000", "050", "100") and p.train.epochs == 2
    assert p.multilingual.languages == ("en", "no")  # YAML 1.1 read Norwegian as false
    spelled = load_params(overrides={"mix.ratios": [0, 0.2, 0.4, 0.6, 0.8, 1.0]})
    assert load_params().digest(["mix"]) == spelled.digest(["mix"])


def test_console_help_and_warnings_are_quiet_and_complete(capsys):
    """Top-level --help showed RST backticks and listed finetune before generate, ``eval``'s help named 3 of the 7
    evaluations, and each warning printed its source line every time (issue 27, item 11)."""
    import warnings

    from biaslib.evaluations import BUILTIN

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    assert "``" not in text and all(name in " ".join(text.split()) for name in BUILTIN)
    steps = text.split("positional arguments:")[1].split("options:")[0]
    order = [line.split()[0] for line in steps.splitlines()[2:] if line.startswith("    ") and line.split()
             and not line.startswith("     " * 4)]
    assert order.index("generate") < order.index("mix") < order.index("train") < order.index("eval")
    assert order.index("prompts") < order.index("finetune")
    with cli._warnings_once_per_kind():
        for _ in range(3):
            warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=1)
        warnings.warn("another kind", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert err.count("biaslib: warning: RuntimeWarning: Mean of empty slice") == 1
    assert "biaslib: warning: UserWarning: another kind" in err and "warnings.warn" not in err


def test_a_hf_folder_with_missing_weights_is_one_warning_line(tmp_path, caplog, capsys):
    """transformers printed a load-report table (134 lines for a non-CLIP folder) and a progress bar on every load."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import load_file, save_file

    from biaslib.models import load_hf_clip

    config = transformers.CLIPConfig(
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "vocab_size": 100, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 16}, projection_dim=8)
    transformers.CLIPModel(config).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights.pop("logit_scale")
    weights["extra.weight"] = torch.zeros(3)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    capsys.readouterr()
    with caplog.at_level("WARNING", logger="biaslib.models"):
        load_hf_clip(tmp_path, device="cpu")
    out = capsys.readouterr()
    assert "LOAD REPORT" not in out.out + out.err and "Loading weights" not in out.err
    lines = [r.getMessage() for r in caplog.records if r.name == "biaslib.models"]
    assert len(lines) == 1 and "1 weight(s) missing from the checkpoint" in lines[0] and "logit_scale" in lines[0]


def test_renamed_commands_keep_their_old_names_for_a_release_with_a_note(capsys):
    """`biaslib bench` (the bias benchmark, not the speed benchmarks of bench/) is `biaslib benchmark`, `biaslib study`
    (the amplification study only) is `biaslib amplification`: the old names still run the same command and say so
    on stderr (issue 28); the new names say nothing."""
    for old, new in (("bench", "benchmark"), ("study", "amplification")):
        with pytest.raises(SystemExit):
            cli.main([new, "--help"])
        assert f"usage: biaslib {new}" in capsys.readouterr().out
        with pytest.raises(SystemExit):
            cli.main([old, "--help"])
        assert f"usage: biaslib {new}" in capsys.readouterr().out  # the old name is the same command
    assert cli.main(["amplification", "power", "--design", "paper.yaml"]) == 2
    assert "is now" not in capsys.readouterr().err
    assert cli.main(["study", "power", "--design", "paper.yaml"]) == 2  # the same command (here: no results)
    err = capsys.readouterr().err
    assert "`biaslib study` is now `biaslib amplification`" in err and "biaslib: error:" in err


def test_python_m_biaslib_cli_is_the_command():
    """``python -m biaslib.cli`` runs the same command as the ``biaslib`` script (the CLI is a package with a
    ``__main__``); importing that module runs nothing."""
    import importlib
    import subprocess
    import sys

    from biaslib import __version__

    importlib.import_module("biaslib.cli.__main__")
    done = subprocess.run([sys.executable, "-m", "biaslib.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"biaslib {__version__}"
