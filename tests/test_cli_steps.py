"""CLI wiring of the pipeline steps (each calls the library; the library is tested in depth elsewhere)."""

from __future__ import annotations

import json

from biaslib import cli
from biaslib.world import World
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline, build_tiny_pipeline, write_world_imagefolder


def test_finetune_cli_runs_and_rejects_unknown_options(tmp_path, capsys):
    build_tiny_pipeline(seed=0, sample_size=16).save_pretrained(tmp_path / "pipe")
    write_world_imagefolder(World(seed=0), tmp_path / "data", n_images=8, sample_size=16)
    args = ["finetune", "run", "--pipeline", str(tmp_path / "pipe"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "out")]
    assert cli.main([*args, "--opt", "learning_rat=1"]) == 2
    assert "unknown fine-tuning option learning_rat" in capsys.readouterr().err
    opts = ["resolution=16", "train_batch_size=4", "gradient_accumulation_steps=1", "max_train_steps=2",
            "mixed_precision=no", "gradient_checkpointing=false", "learning_rate=1e-4", "progress=false"]
    assert cli.main([*args, *[x for o in opts for x in ("--opt", o)]]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["global_step"] == 2
    pipe = WorldDiffusionPipeline.from_pretrained(tmp_path / "out")
    assert pipe.unet.config.sample_size == 16
    from biaslib.io import run_lock

    with run_lock(tmp_path / "out", "finetune-rank0"):  # another fine-tuning into the same folder (issue 27, item 4)
        assert cli.main([*args, *[x for o in opts for x in ("--opt", o)]]) == 2
        assert "in use by another run" in capsys.readouterr().err


def test_mix_cli_round_trip(tmp_path, capsys):
    run = ["--set", f"runs_dir={tmp_path}", "--set", "export.cc3m_samples=40", "--set", "export.cc3m_shard_size=20",
           "--set", "export.phase_val=2", "--set", "export.coco_images=2", "--set", "export.fairface_train=2",
           "--set", "export.fairface_val=2", "--set", "export.geode_per_object_region=1", "--set", "export.workers=1",
           "--set", "generate.shard_size=20", "--set", "mix.generated=renamed"]
    # generate run without --name writes the run that mix reads (mix.generated; issue 16, defect 1)
    assert cli.main(["world", "export", *run]) == 0
    assert cli.main(["generate", "run", *run]) == 0
    assert (tmp_path / "world_default" / "generated" / "renamed").is_dir()
    assert cli.main(["mix", "run", *run, "--ratio", "0.5", "--ratio", "100"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines() if x.startswith('{"ratio"')]
    assert [(x["ratio"], x["counts"]["generated"]) for x in lines] == [("050", 20), ("100", 40)]
    assert cli.main(["mix", "verify", *run, "--ratio", "050", "--ratio", "1.0"]) == 0
    assert "mix_050: OK" in capsys.readouterr().out


def test_faces_cli_counts_the_astronaut_and_an_empty_image(tmp_path, capsys):
    import numpy as np
    import pandas as pd
    from PIL import Image
    from skimage import data

    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(np.full((128, 128, 3), 127, np.uint8)).save(folder / "grey.png")
    out = tmp_path / "faces.csv"
    assert cli.main(["faces", "analyse", "--images", str(folder), "--out", str(out), "--detector", "haar"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["images"] == 2
    table = pd.read_csv(out).set_index("id")
    assert table.loc["astronaut.png", "outcome"] == "woman" and table.loc["grey.png", "outcome"] == "no_face"
    assert cli.main(["faces", "analyse", "--images", str(folder), "--out", str(out), "--classifier", "fairface"]) == 2
    assert "fairface needs weights" in (err := capsys.readouterr().err) and "--weights" in err


def test_train_never_answers_from_old_data_and_every_step_has_one_writer(tmp_path, capsys):
    """``generate run --set generate.amplification=3 --overwrite`` then ``mix run`` rebuilt ``mix_100``, yet ``train
    run`` returned the old checkpoint (rc 0, 0 s) and ``eval run`` the old result; pointing ``mix.generated`` at
    another generation run did the same (issue 27, item 1). The run record holds the data's fingerprint."""
    run = ["--set", f"runs_dir={tmp_path}", "--set", "export.cc3m_samples=40", "--set", "export.cc3m_shard_size=20",
           "--set", "export.phase_val=2", "--set", "export.coco_images=2", "--set", "export.fairface_train=2",
           "--set", "export.fairface_val=2", "--set", "export.geode_per_object_region=1", "--set", "export.workers=1",
           "--set", "generate.shard_size=20", "--set", "train.epochs=1", "--set", "train.batch_size=20",
           "--set", "train.workers=0", "--set", "train.precision=fp32", "--set", "train.probe_ratios=[]"]
    assert cli.main(["world", "export", *run]) == 0
    assert cli.main(["generate", "run", *run]) == 0
    assert cli.main(["mix", "run", *run, "--ratio", "100"]) == 0
    assert cli.main(["train", "run", *run, "--ratio", "100"]) == 0
    checkpoint = tmp_path / "world_default" / "clip" / "world_default_100" / "checkpoints" / "epoch_1.pt"
    first = checkpoint.read_bytes()
    capsys.readouterr()
    amplified = [*run, "--set", "generate.amplification=3"]
    assert cli.main(["generate", "run", *amplified, "--overwrite"]) == 0
    assert cli.main(["mix", "run", *amplified, "--ratio", "100"]) == 0
    assert cli.main(["train", "run", *amplified, "--ratio", "100"]) == 2
    err = capsys.readouterr().err
    assert "trained with other settings (data:" in err and "--overwrite" in err
    assert checkpoint.read_bytes() == first
    same = [*run, "--set", "mix.generated=same"]  # another generation run, its own mixes, the same run name
    assert cli.main(["generate", "run", *same]) == 0 and cli.main(["mix", "run", *same, "--ratio", "100"]) == 0
    assert cli.main(["train", "run", *same, "--ratio", "100"]) == 0  # byte-identical images: the same data
    assert checkpoint.read_bytes() == first
    other = [*run, "--set", "mix.generated=other", "--set", "generate.amplification=2"]
    assert cli.main(["generate", "run", *other]) == 0 and cli.main(["mix", "run", *other, "--ratio", "100"]) == 0
    assert cli.main(["train", "run", *other, "--ratio", "100"]) == 2
    assert "trained with other settings (data:" in capsys.readouterr().err
    assert cli.main(["train", "run", *amplified, "--ratio", "100", "--overwrite"]) == 0
    assert checkpoint.read_bytes() != first
    assert cli.main(["train", "run", *amplified, "--ratio", "100"]) == 0  # the same data again: skipped
    # one writer per output (issue 27, item 4): while another process holds a run's lock, every writing step is
    # refused naming the holder; the lock is the one a second `train run`, `mix run` or `eval run` takes
    from biaslib.io import run_lock

    clip, mixes = tmp_path / "world_default" / "clip", tmp_path / "world_default" / "mixes" / "default"
    with run_lock(clip, "train-world_default_100"):
        assert cli.main(["train", "run", *amplified, "--ratio", "100"]) == 2
        assert "in use by another run" in capsys.readouterr().err
    with run_lock(mixes, "mix-100"):
        assert cli.main(["mix", "run", *amplified, "--ratio", "100", "--overwrite"]) == 2
        assert "in use by another run" in capsys.readouterr().err
    results = tmp_path / "world_default" / "results"
    with run_lock(results, "eval-world_default__100__retrieval"):
        assert cli.main(["eval", "run", *amplified, "--ratio", "100", "--evaluation", "retrieval"]) == 2
        assert "in use by another run" in capsys.readouterr().err
    assert not list(results.glob("*.json"))
