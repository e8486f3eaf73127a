"""Generation: per-id determinism, resume, rank split, verification, and the simulated generator's statistics."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biaslib.config import GenerateConfig
from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.generate import check_captions, generate, id_seed, load_pipeline, read_captions, verify
from biaslib.world import World
from biaslib.world.attributes import occupations
from biaslib.world.distribution import gender_table
from biaslib.world.simulator import SimulatedGenerator, parse_prompt

CONFIG = GenerateConfig(model="simulator", batch_size=4, shard_size=10, seed=3)


@pytest.fixture(scope="module")
def captions() -> pd.DataFrame:
    people = World(seed=0).people(37, stream="gen-test")
    return pd.DataFrame({"key": [f"{i:09d}" for i in range(len(people))], "caption": people["caption"]})


def _samples(out: Path) -> dict[str, bytes]:
    """key → image bytes over all finished shards."""
    found: dict[str, bytes] = {}
    for tar_path in sorted(out.glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".jpg"):
                    key = m.name[:-4]
                    assert key not in found, f"{key} twice"
                    found[key] = tar.extractfile(m).read()
    return found


def _run(captions, out, config=CONFIG, **kwargs):
    return generate(captions, out, config, world=World(seed=0), progress=False, **kwargs)


def test_same_image_across_batch_sizes_and_processes(captions, tmp_path):
    _run(captions, tmp_path / "b1", replace(CONFIG, batch_size=1))
    _run(captions, tmp_path / "b4", CONFIG)
    for rank in (0, 1):
        _run(captions, tmp_path / "p2", rank=rank, world_size=2)
    one, four, two = _samples(tmp_path / "b1"), _samples(tmp_path / "b4"), _samples(tmp_path / "p2")
    assert len(one) == len(captions)
    assert one == four == two
    assert sorted(p.stem for p in (tmp_path / "p2").glob("*.tar")) == ["00-00000", "00-00001", "01-00000", "01-00001"]
    assert verify(tmp_path / "p2", captions).ok


def test_resume_after_stop_yields_exactly_the_uninterrupted_samples(captions, tmp_path):
    full = _run(captions, tmp_path / "full")
    assert full.images == len(captions)
    first = _run(captions, tmp_path / "resumed", max_items=14)
    assert first.stopped_early and first.shards_done == ["00-00000"]
    # exactly max_items images, and the report says which were kept (issue 16, defect 15: "--max-items 60
    # reports 66 images and keeps 50")
    assert (first.images, first.kept, first.discarded) == (14, 10, 4)
    # the interrupted shard left nothing that looks finished
    partial = verify(tmp_path / "resumed", captions)
    assert not partial.ok and len(partial.missing) == len(captions) - 10 and not partial.unfinished_shards
    # a signal in the middle of a batch loop: the shard in flight is discarded
    def interrupt(done):
        if done >= 6:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _run(captions, tmp_path / "resumed", on_batch=interrupt)
    assert not list((tmp_path / "resumed").glob(".*tmp*"))
    second = _run(captions, tmp_path / "resumed")
    assert second.shards_skipped == ["00-00000"] and second.images == len(captions) - 10
    assert _samples(tmp_path / "resumed") == _samples(tmp_path / "full")
    assert verify(tmp_path / "resumed", captions).ok


def test_stats_file_marks_a_shard_finished(captions, tmp_path):
    _run(captions, tmp_path / "g")
    (tmp_path / "g" / "00-00001_stats.json").unlink()
    check = verify(tmp_path / "g", captions)
    assert not check.ok and check.unfinished_shards == ["00-00001"]
    _run(captions, tmp_path / "g")  # rebuilt
    assert verify(tmp_path / "g", captions).ok


def test_corrupt_output_shard_fails_verification(captions, tmp_path):
    _run(captions, tmp_path / "g")
    shard = tmp_path / "g" / "00-00002.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    check = verify(tmp_path / "g", captions)
    assert not check.ok and check.corrupt_shards == ["00-00002"]


def test_other_settings_are_refused(captions, tmp_path):
    _run(captions, tmp_path / "g", max_items=4)
    with pytest.raises(BiaslibError, match="other settings"):
        _run(captions, tmp_path / "g", replace(CONFIG, amplification=2.0))
    _run(captions, tmp_path / "g", replace(CONFIG, batch_size=2))  # batch size does not change images


def test_caption_table_errors(tmp_path):
    with pytest.raises(BiaslibError, match="duplicate id"):
        check_captions(pd.DataFrame({"key": ["1", "2", "1"], "caption": ["a", "b", "c"]}))
    with pytest.raises(DataLayoutError, match="lacks column"):
        check_captions(pd.DataFrame({"id": ["1"], "text": ["a"]}))
    checked = check_captions(pd.DataFrame({"key": [1, 2, 3], "caption": ["a nurse", "  ", None]}))
    assert list(checked.table["key"]) == ["1"] and checked.skipped_empty == ["2", "3"]
    with pytest.raises(DataLayoutError, match="caption table not found"):
        read_captions(tmp_path / "nope.parquet")
    (tmp_path / "prompts.txt").write_text("17#a dog on a beach # at noon\n18#a nurse\n")
    table = read_captions(tmp_path / "prompts.txt")
    assert table.to_dict("list") == {"key": ["17", "18"], "caption": ["a dog on a beach # at noon", "a nurse"]}


def test_missing_pipeline_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataLayoutError, match="no diffusers pipeline at .*model_index.json"):
        load_pipeline(replace(CONFIG, model=str(tmp_path / "sd15")))


def test_id_seed_is_a_keyed_hash():
    assert id_seed(0, "17") == id_seed(0, "17") != id_seed(1, "17") != id_seed(0, "18")
    assert 0 <= id_seed(123, "000000001") < 2**63


def test_cli_multi_process_run_and_verify(captions, tmp_path):
    """Two real processes with RANK/WORLD_SIZE (as torchrun or accelerate set them) cover every id once."""
    table = tmp_path / "captions.csv"
    captions.to_csv(table, index=False)
    out = tmp_path / "g"
    common = ["--captions", str(table), "--out", str(out), "--set", "generate.shard_size=10",
              "--set", "generate.batch_size=4", "--set", "generate.seed=3"]
    procs = [subprocess.Popen([sys.executable, "-m", "biaslib.cli", "generate", "run", *common],
                              env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"}, stdout=subprocess.PIPE)
             for r in (0, 1)]
    assert all(p.wait(timeout=600) == 0 for p in procs)  # a hang guard, far above the ≈ 7 s it takes
    done = subprocess.run([sys.executable, "-m", "biaslib.cli", "generate", "verify", *common],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("OK: 37 images")
    _run(captions, tmp_path / "single")
    assert _samples(out) == _samples(tmp_path / "single")


# ---- the simulated generator ------------------------------------------------------------------

def test_parse_prompt_reads_world_captions():
    assert parse_prompt("a female security guard standing outdoors") == {
        "occupation": "security guard", "gender": "woman", "place": "outdoors"}
    assert parse_prompt("a photo of a woman")["gender"] == "woman"
    assert parse_prompt("illustration of an elderly man") == {
        "gender": "man", "age_level": "senior", "style": "painting"}
    people = World(seed=0).people(400, stream="parse")
    for row in people.to_dict("records"):
        parsed = parse_prompt(row["caption"])
        for column in ("occupation", "gender", "age_level", "place", "style"):
            if column in parsed:
                assert parsed[column] == row[column], (row["caption"], column)


def _woman_share(gen: SimulatedGenerator, occupation: str, n: int, language: str = "english") -> float:
    attrs = gen.sample_attributes([f"a photo of a {occupation}"] * n, [id_seed(9, str(i)) for i in range(n)],
                                  [language] * n)
    assert (attrs["occupation"] == occupation).all()
    return float((attrs["gender"] == "woman").mean())


def test_simulator_faithful_at_gamma_1_and_sharper_at_gamma_2():
    world = World(seed=0)
    n = 3000
    faithful, amplified = SimulatedGenerator(world, 1.0), SimulatedGenerator(world, 2.0)
    table = gender_table(world.config.bias_strength)["woman"]
    z1 = []
    for occ in ("nurse", "ceo", "teacher", "pilot", "cook"):
        p = table[occ]
        share1 = _woman_share(faithful, occ, n)
        z1.append((share1 - p) / np.sqrt(p * (1 - p) / n))
        share2 = _woman_share(amplified, occ, n)
        p2 = p**2 / (p**2 + (1 - p) ** 2)
        assert abs(share2 - p2) < 4 * np.sqrt(p2 * (1 - p2) / n)
        # sharper: further from ½ than the faithful generator, beyond sampling error
        assert abs(share2 - 0.5) - abs(share1 - 0.5) > 3 * np.sqrt(0.5 / n)
    assert stats.chi2.sf(float(np.sum(np.square(z1))), df=len(z1)) > 1e-3


def test_simulator_unstated_occupation_follows_bayes():
    """'a photo of a woman': the drawn occupation is p(o | woman) ∝ p(o) p(woman | o)."""
    world = World(seed=0)
    gen = SimulatedGenerator(world, 1.0)
    n = 6000
    attrs = gen.sample_attributes(["a photo of a woman"] * n, [id_seed(1, str(i)) for i in range(n)])
    assert (attrs["gender"] == "woman").all()
    nurse_or_mechanic = attrs["occupation"].value_counts()
    assert nurse_or_mechanic.get("nurse", 0) > 10 * nurse_or_mechanic.get("mechanic", 0)


def test_language_shift_moves_the_gender_share():
    gen = SimulatedGenerator(World(seed=0), 1.0, language_shift={"german": 1.5})
    n = 3000
    en, de = _woman_share(gen, "teacher", n, "english"), _woman_share(gen, "teacher", n, "german")
    p = gender_table(1.0).loc["teacher", "woman"]
    logit = np.log(p / (1 - p)) - 1.5
    expected = 1 / (1 + np.exp(-logit))
    assert abs(de - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    assert en - de > 0.2


def test_simulator_needs_seeds():
    gen = SimulatedGenerator(World(seed=0))
    with pytest.raises(ValueError, match="one torch.Generator per prompt"):
        gen(["a nurse"])
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        gen.sample_attributes(["a", "b"], [1])
    img = gen(["a nurse"], seeds=[5]).images[0]
    assert img.size == (64, 64)
    again = gen(["a nurse"], seeds=[5]).images[0]
    assert hashlib.sha256(img.tobytes()).digest() == hashlib.sha256(again.tobytes()).digest()


def test_all_occupations_parse():
    for occ in occupations():
        assert parse_prompt(f"A photo of the face of a {occ}.")["occupation"] == occ


def test_simulator_renders_objects_with_web_region_mix():
    from biaslib.world.distribution import REGIONS, WEB_REGION_WEIGHTS

    world = World(seed=0)
    n = 4000
    seeds = [id_seed(2, str(i)) for i in range(n)]
    one = SimulatedGenerator(world, 1.0).sample_attributes(["a car on the street"] * n, seeds)
    assert (one["kind"] == "object").all() and (one["object"] == "car").all() and one["gender"].isna().all()
    observed = one["region"].value_counts().reindex(list(REGIONS), fill_value=0).to_numpy()
    assert stats.chisquare(observed, np.array(WEB_REGION_WEIGHTS) * n).pvalue > 1e-3
    two = SimulatedGenerator(world, 2.0).sample_attributes(["a car on the street"] * n, seeds)
    assert (two["region"] == "Europe").mean() > (one["region"] == "Europe").mean() + 0.05
    stated = SimulatedGenerator(world).sample_attributes(["a red car in africa"], [1])
    assert stated.loc[0, "region"] == "Africa"
    images = SimulatedGenerator(world)(["a boat", "a person with a bag"], seeds=[1, 2])
    assert list(images.attributes["kind"]) == ["object", "person"]


def test_failed_start_leaves_no_claim(captions, tmp_path):
    """A bad model path wrote generate_config.json and the corrected run was refused (issue 16, defect 11)."""
    with pytest.raises(DataLayoutError):
        _run(captions, tmp_path / "g", replace(CONFIG, model=str(tmp_path / "no-such-pipeline")))
    assert not (tmp_path / "g" / "generate_config.json").exists()
    _run(captions, tmp_path / "g")
    assert verify(tmp_path / "g", captions).ok


def test_a_damaged_finished_shard_is_rebuilt(captions, tmp_path):
    """``verify`` flagged a truncated finished shard but ``run`` skipped it forever (issue 16, defect 12)."""
    _run(captions, tmp_path / "g")
    before = _samples(tmp_path / "g")
    shard = tmp_path / "g" / "00-00002.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert not verify(tmp_path / "g", captions).ok
    report = _run(captions, tmp_path / "g")
    assert report.shards_done == ["00-00002"] and verify(tmp_path / "g", captions).ok
    assert _samples(tmp_path / "g") == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_finished_shard_corrupt_at_its_recorded_size_is_rebuilt_byte_identical(captions, tmp_path, overwrite):
    """4 KB zeroed mid-shard keeps the size its stats recorded, so ``run`` (even with ``--overwrite``) skipped it
    while ``verify`` failed it (issue 27, item 3): its sha256 is checked, and stats written before sha256s were
    recorded get a structural check."""
    import json

    _run(captions, tmp_path / "g")
    shard = tmp_path / "g" / "00-00001.tar"
    intact = shard.read_bytes()
    damaged = bytearray(intact)
    damaged[len(damaged) // 2:len(damaged) // 2 + 4096] = bytes(4096)
    shard.write_bytes(bytes(damaged))
    assert not verify(tmp_path / "g", captions).ok
    report = _run(captions, tmp_path / "g", overwrite=overwrite)
    assert report.shards_done == ["00-00001"] and shard.read_bytes() == intact
    stats_path = tmp_path / "g" / "00-00001_stats.json"
    stats = json.loads(stats_path.read_text())
    stats_path.write_text(json.dumps({k: v for k, v in stats.items() if k != "sha256"}))  # an older run's stats
    shard.write_bytes(bytes(damaged))
    assert _run(captions, tmp_path / "g").shards_done == ["00-00001"] and shard.read_bytes() == intact
    assert verify(tmp_path / "g", captions).ok


def test_locks_refuse_a_second_run_and_killed_runs_leave_nothing_behind(captions, tmp_path):
    """Two runs on one output both generated everything, and temp files of killed runs stayed forever
    (issue 16, defect 13): a live lock is refused naming its holder, a stale one (its PID is gone) is taken
    over, stale temporaries are removed."""
    import json
    import socket

    out = tmp_path / "g"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (out / ".00-00001.tar.tmp" f"{dead}").write_bytes(b"half a shard")
    lock = out / ".generate-rank00.lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started_utc": "earlier"}))
    with pytest.raises(BiaslibError, match=rf"in use by another run .*pid {os.getppid()}"):
        _run(captions, out)
    lock.write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(), "started_utc": "earlier"}))
    _run(captions, out)
    assert verify(out, captions).ok and not lock.exists()
    assert not list(out.glob(".*.tmp*"))


def test_every_rank_refuses_a_folder_of_other_settings(captions, tmp_path):
    """Only rank 0 checked the folder's settings; the other ranks wrote shards of new settings into the old
    folder (issue 16, defect 2). With overwrite a rank replaces only its own shards."""
    for rank in (0, 1):
        _run(captions, tmp_path / "g", rank=rank, world_size=2)
    other = replace(CONFIG, amplification=2.0)
    with pytest.raises(BiaslibError, match="other settings"):
        _run(captions, tmp_path / "g", other, rank=1, world_size=2)
    _run(captions, tmp_path / "g", other, rank=1, world_size=2, overwrite=True)
    digests = {p.name: json_digest(p) for p in (tmp_path / "g").glob("*_stats.json")}
    assert {n for n, d in digests.items() if d == other.digest()} == {"01-00000_stats.json", "01-00001_stats.json"}
    assert {n for n, d in digests.items() if d == CONFIG.digest()} == {"00-00000_stats.json", "00-00001_stats.json"}


def json_digest(path: Path) -> str:
    """The ``config_digest`` of a shard's stats file."""
    import json

    return json.loads(path.read_text())["config_digest"]
