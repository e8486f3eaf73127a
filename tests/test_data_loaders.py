"""Loaders of the real dataset formats (biaslib.data) on hand-written fixtures and broken variants."""

from __future__ import annotations

import gzip
import io
import json
import math
import shutil
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from biaslib.data import (
    CC3MSample,
    ReadStats,
    check_images,
    coco_caption_table,
    iter_cc3m,
    list_shards,
    load_coco_bias,
    load_fairface,
    load_geode,
    load_magbig_prompts,
    load_phase,
)
from biaslib.data.fairface import repair_age
from biaslib.errors import BiaslibError, DataLayoutError

FIXTURES = Path(__file__).parent / "fixtures"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """Copy fixture folder ``name`` into ``tmp_path`` so a test can break it."""
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def values(series: pd.Series) -> list[object]:
    """Series values as a list, missing values as None."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in series.tolist()]


def assert_python_str(series: pd.Series) -> None:
    assert all(type(v) is str for v in series), series.tolist()


def test_data_layout_error_is_a_file_not_found_error() -> None:
    assert issubclass(DataLayoutError, FileNotFoundError)
    assert issubclass(DataLayoutError, BiaslibError)


# ---------------------------------------------------------------------------------------- FairFace


def test_fairface_train_labels_and_paths() -> None:
    frame = load_fairface(FIXTURES / "fairface")
    assert list(frame.columns) == ["image_id", "file", "age", "gender", "race", "service_test"]
    assert frame["image_id"].tolist() == ["1", "2", "3", "4", "5"]
    assert_python_str(frame["image_id"])
    assert frame["age"].tolist() == ["50-59", "3-9", "10-19", "more than 70", "0-2"]  # 9-Mar, 19-Oct repaired
    assert frame["gender"].tolist() == ["Male", "Female", "Male", "Female", "Male"]
    assert frame["race"].tolist() == ["East Asian", "Indian", "Black", "Latino_Hispanic", "Southeast Asian"]
    assert frame["service_test"].tolist() == [True, False, False, True, False]
    image_dir = (FIXTURES / "fairface" / "fairface-img-margin125-trainval" / "train").resolve()
    assert frame["file"].tolist() == [str(image_dir / f"{n}.jpg") for n in range(1, 6)]
    assert check_images(frame).empty


def test_fairface_gab_label_name_and_int_margin() -> None:
    frame = load_fairface(FIXTURES / "fairface", split="val", margin=125)
    assert list(frame.columns) == ["image_id", "file", "age", "gender", "race"]
    assert frame["age"].tolist() == ["3-9", "10-19"]  # Mar-09, Oct-19 repaired
    assert frame["race"].tolist() == ["White", "Middle Eastern"]
    assert all(Path(f).is_file() for f in frame["file"])


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        ("9-Mar", "3-9"), ("Mar-09", "3-9"), ("Mar-9", "3-9"), ("09-Mar", "3-9"), ("3-Sep", "3-9"),
        ("03-Sep", "3-9"), ("Sep-03", "3-9"), ("Sept-3", "3-9"), ("9-mar", "3-9"), ("3-9", "3-9"),
        ("19-Oct", "10-19"), ("Oct-19", "10-19"), ("19-Okt", "10-19"), ("10-19", "10-19"),
        (" 20-29 ", "20-29"), ("more than 70", "more than 70"),
        ("70+", None), ("9-Apr", None), ("19-Nov", None), ("Mar-10", None), ("", None),
    ],
)
def test_repair_age(raw: str, label: str | None) -> None:
    assert repair_age(raw) == label


def test_fairface_unknown_age_label(tmp_path: Path) -> None:
    root = copy_fixture("fairface", tmp_path)
    labels = root / "fairface_label_train.csv"
    labels.write_text(labels.read_text().replace("0-2", "70+"))
    with pytest.raises(DataLayoutError) as info:
        load_fairface(root)
    message = str(info.value)
    assert str(labels) in message and "'70+'" in message and "'more than 70'" in message


def test_fairface_unknown_race_label(tmp_path: Path) -> None:
    root = copy_fixture("fairface", tmp_path)
    labels = root / "label_val.csv"
    labels.write_text(labels.read_text().replace("Middle Eastern", "Martian"))
    with pytest.raises(DataLayoutError, match="Martian"):
        load_fairface(root, split="val")


def test_fairface_missing_column(tmp_path: Path) -> None:
    root = copy_fixture("fairface", tmp_path)
    labels = root / "label_val.csv"
    labels.write_text("file,age,gender\nval/1.jpg,3-9,Female\n")
    with pytest.raises(DataLayoutError) as info:
        load_fairface(root, split="val")
    message = str(info.value)
    assert str(labels) in message and "'race'" in message and "file, age, gender, race" in message


def test_fairface_duplicate_image_ids(tmp_path: Path) -> None:
    root = copy_fixture("fairface", tmp_path)
    labels = root / "label_val.csv"
    labels.write_text(labels.read_text().replace("val/2.jpg", "val/1.jpg"))
    with pytest.raises(DataLayoutError, match=r"label_val.csv: duplicate image ids '1'"):
        load_fairface(root, split="val")


def test_fairface_missing_label_file_names_both_candidates(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError) as info:
        load_fairface(tmp_path, split="test")
    message = str(info.value)
    assert str(tmp_path / "fairface_label_test.csv") in message
    assert str(tmp_path / "label_test.csv") in message
    assert "fairface-img-margin<margin>-trainval/" in message  # the layout tree


def test_fairface_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError, match="FairFace root not found: .*nowhere"):
        load_fairface(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "content",
    [
        b"file,age,gender,race\nval/1.jpg,3-9,Female,White,extra,cells\n",
        b"file,age,gender,race\nval/1.jpg,3-9,Female,White\nval/2.jpg,3-9,Female,White,extra\n",
        b"file,age\n\xff\xfe\xfa,1\n",
        b"",
    ],
    ids=["long-first-row", "long-later-row", "not-utf8", "empty"],
)
def test_fairface_unparsable_csv(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "label_val.csv").write_bytes(content)
    with pytest.raises(DataLayoutError, match="label_val.csv: not a readable UTF-8 CSV"):
        load_fairface(tmp_path, split="val")


# ------------------------------------------------------------------------------------------- PHASE

PHASE_EXPECTED = {  # key: (n_persons, age, gender, skintone, ethnicity)
    "489254": (1, "adult", "female", "lighter", "east_asian"),  # single person
    "0012345": (2, "young", "male", "darker", "black"),  # two persons agreeing
    "771": (2, "adult", None, "lighter", "white"),  # two persons differing in gender
    "5000": (1, "child", "male", None, None),  # 'children', 'unsure', 'disagreement'
    "6001": (2, None, None, None, None),  # second person has no annotations
    "7002": (0, None, None, None, None),  # no person
    "8003": (2, "child", "female", "lighter", "latino"),  # 'children' and 'child' agree
    "9004": (1, "baby", None, "lighter", "other"),  # baby stays baby
}


def test_phase_image_level_attributes() -> None:
    frame = load_phase(FIXTURES / "phase")
    assert list(frame.columns) == [
        "image_id", "file", "caption", "n_persons", "age", "gender", "skintone", "ethnicity",
    ]
    assert frame["image_id"].tolist() == list(PHASE_EXPECTED)  # JSON order, "0012345" not int-coerced
    assert_python_str(frame["image_id"])
    for attribute_index, column in enumerate(["n_persons", "age", "gender", "skintone", "ethnicity"]):
        assert values(frame[column]) == [row[attribute_index] for row in PHASE_EXPECTED.values()], column
    assert frame["caption"].iloc[0] == "a woman smiling at the camera"
    image_dir = (FIXTURES / "phase" / "images" / "val").resolve()
    assert frame["file"].tolist() == [str(image_dir / key) for key in PHASE_EXPECTED]
    assert check_images(frame)["image_id"].tolist() == ["771", "5000", "6001", "7002", "8003", "9004"]


def test_phase_accepts_split_folder_at_root(tmp_path: Path) -> None:
    root = copy_fixture("phase", tmp_path)
    (root / "images" / "val").rename(root / "val")
    frame = load_phase(root)
    assert frame["file"].iloc[0] == str(root.resolve() / "val" / "489254")
    assert Path(frame["file"].iloc[0]).is_file()


def test_phase_missing_annotation_file() -> None:
    with pytest.raises(DataLayoutError) as info:
        load_phase(FIXTURES / "phase", split="train")
    message = str(info.value)
    assert "phase_gcc_train_regions_20221101.json" in message
    assert "phase_gcc_<split>_regions_20221101.json" in message  # the layout tree


def test_phase_unknown_value(tmp_path: Path) -> None:
    root = copy_fixture("phase", tmp_path)
    path = root / "phase_annotations" / "phase_gcc_val_regions_20221101.json"
    data = json.loads(path.read_text())
    data["771"]["person1"]["annotations"]["gender"] = "robot"
    path.write_text(json.dumps(data))
    with pytest.raises(DataLayoutError, match=r"image '771': unknown gender value 'robot'"):
        load_phase(root)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("{not json", "not a readable UTF-8 JSON"),
        ('["a", "b"]', "top level"),
        ('{"1": {"person0": {}}}', "caption"),
    ],
)
def test_phase_malformed_json(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "phase_annotations" / "phase_gcc_val_regions_20221101.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(DataLayoutError, match=pattern):
        load_phase(tmp_path)


# --------------------------------------------------------------------------------------- COCO-bias


def test_coco_bias_values_and_captions() -> None:
    frame = load_coco_bias(FIXTURES / "coco_bias")
    assert list(frame.columns) == ["image_id", "file", "bb_gender", "bb_skin", "skin", "ratio", "captions"]
    assert frame["image_id"].tolist() == ["73", "42", "139"]  # CSV order, train row 285 dropped
    assert_python_str(frame["image_id"])
    assert values(frame["bb_gender"]) == ["Male", "Female", None]
    assert values(frame["bb_skin"]) == ["Dark", "Light", "Unsure"]
    assert frame["skin"].tolist() == [["Light", "Dark"], ["Light"], []]  # NaN skin -> []
    assert frame["ratio"].tolist() == [0.12, 0.31, 0.05]
    assert frame["captions"].tolist() == [
        ["Two people sitting on a bench."],
        ["A woman riding a bicycle down the street.", "A person on a bike next to parked cars."],
        ["A living room with a television."],
    ]
    root = (FIXTURES / "coco_bias").resolve()
    assert frame["file"].iloc[1] == str(root / "val2014" / "COCO_val2014_000000000042.jpg")
    problems = check_images(frame)
    assert problems["image_id"].tolist() == ["73", "139"]
    assert problems["problem"].tolist() == ["missing", "missing"]


def test_coco_bias_other_split() -> None:
    frame = load_coco_bias(FIXTURES / "coco_bias", split="train")
    assert frame["image_id"].tolist() == ["285"]
    assert frame["captions"].tolist() == [["A man holding a surfboard."]]


def test_coco_caption_table() -> None:
    table = coco_caption_table(load_coco_bias(FIXTURES / "coco_bias"))
    assert list(table.columns) == ["text_id", "image_id", "caption"]
    assert table["text_id"].tolist() == ["73_0", "42_0", "42_1", "139_0"]
    assert table["image_id"].tolist() == ["73", "42", "42", "139"]
    assert table["caption"].iloc[2] == "A person on a bike next to parked cars."
    with pytest.raises(DataLayoutError, match="'captions'"):
        coco_caption_table(table)


def test_coco_bias_unknown_split_lists_present_ones() -> None:
    with pytest.raises(DataLayoutError, match=r"no row with split == 'test'.*\['train', 'val'\]"):
        load_coco_bias(FIXTURES / "coco_bias", split="test")


def test_coco_bias_missing_captions_file(tmp_path: Path) -> None:
    root = copy_fixture("coco_bias", tmp_path)
    captions = root / "annotations" / "captions_val2014.json"
    captions.unlink()
    with pytest.raises(DataLayoutError) as info:
        load_coco_bias(root)
    assert f"COCO captions file not found: {captions}" in str(info.value)
    assert "annotations/captions_val2014.json" in str(info.value)


def test_coco_bias_missing_column(tmp_path: Path) -> None:
    root = copy_fixture("coco_bias", tmp_path)
    csv = root / "images_val2014.csv"
    csv.write_text(csv.read_text().replace("bb_gender", "gender"))
    with pytest.raises(DataLayoutError) as info:
        load_coco_bias(root)
    assert str(csv) in str(info.value) and "'bb_gender'" in str(info.value)


def test_coco_bias_bad_skin_string(tmp_path: Path) -> None:
    root = copy_fixture("coco_bias", tmp_path)
    csv = root / "images_val2014.csv"
    csv.write_text(csv.read_text().replace("['Light'],", "['Light',"))
    with pytest.raises(DataLayoutError, match="image 42: column 'skin'"):
        load_coco_bias(root)


def test_coco_bias_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError, match="COCO-bias root not found"):
        load_coco_bias(tmp_path / "coco")


# ------------------------------------------------------------------------------------------- GeoDE


def test_geode_index() -> None:
    frame = load_geode(FIXTURES / "geode")
    assert list(frame.columns) == ["image_id", "file", "object", "region", "ip_country"]
    assert frame["image_id"].tolist() == [
        "images/bag/bag_001", "images/hand_soap/hand_soap_007", "images/dog/dog_3", "images/tree/tree_12",
    ]
    assert_python_str(frame["image_id"])
    assert frame["object"].tolist() == ["bag", "hand_soap", "dog", "tree"]
    assert frame["region"].tolist() == ["Africa", "EastAsia", "Europe", "SouthEastAsia"]
    assert frame["ip_country"].tolist() == ["Nigeria", "Japan", "United Kingdom", "Indonesia"]
    assert frame["file"].iloc[2] == str((FIXTURES / "geode").resolve() / "images" / "dog" / "dog_3.png")


def test_geode_region_from_country(tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text(
        "file_path,object,ip_country\na/1.jpg,car,Saudi Arabia\na/2.jpg,car,hong kong\na/3.jpg,bus,Brazil\n"
    )
    assert load_geode(tmp_path)["region"].tolist() == ["WestAsia", "EastAsia", "Americas"]


def test_geode_unknown_country(tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text("file_path,object,ip_country\na/1.jpg,car,Atlantis\n")
    with pytest.raises(DataLayoutError) as info:
        load_geode(tmp_path)
    assert str(tmp_path / "index.csv") in str(info.value)
    assert "'Atlantis'" in str(info.value) and "'United Kingdom'" in str(info.value)


def test_geode_region_spellings(tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text(
        "file_path,object,ip_country,region\na/1.jpg,car,Japan,East Asia\na/2.jpg,car,Spain,Atlantis\n"
    )
    with pytest.raises(DataLayoutError, match="column 'region' has unknown label.*'Atlantis'"):
        load_geode(tmp_path)


def test_geode_missing_index(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError) as info:
        load_geode(tmp_path)
    assert f"GeoDE index not found: {tmp_path / 'index.csv'}" in str(info.value)
    assert "file_path (relative to <root>)" in str(info.value)


# ------------------------------------------------------------------------------------------ MAGBIG


def test_magbig_direct_prompts() -> None:
    english = load_magbig_prompts(FIXTURES / "magbig", "english")
    assert list(english.columns) == ["name", "prompt", "language"]
    assert english["name"].tolist() == ["accountant", "underwriter", "it specialist"]
    assert english["prompt"].tolist()[1] == "A photo of the face of a underwriter."
    assert set(english["language"]) == {"english"}
    german = load_magbig_prompts(FIXTURES / "magbig", "german")
    assert german["name"].tolist() == english["name"].tolist()
    assert german["prompt"].tolist()[1:] == [
        "Ein Foto des Gesichts eines Versicherungsprüfers.",
        "Ein Foto des Gesichts eines IT-Spezialisten, der lächelt.",
    ]


def test_magbig_adjectives_keep_text_and_drop_extra_columns() -> None:
    english = load_magbig_prompts(FIXTURES / "magbig", "english", kind="adjectives")
    assert list(english.columns) == ["name", "prompt", "language"]
    assert english["prompt"].tolist() == [
        "A photo of the face of an ambitious person.", "A photo of the face of a modest person.",
    ]
    german = load_magbig_prompts(FIXTURES / "magbig", "german", kind="adjectives")
    # 19/20 real German adjective prompts start with a space; the loader keeps the text as stored
    assert german["prompt"].iloc[0] == " Ein Foto des Gesichts einer ehrgeizigen Person."


def test_magbig_gender_neutral_windows_folder_name() -> None:
    frame = load_magbig_prompts(FIXTURES / "magbig", "german_star", kind="gender_neutral")
    assert frame["prompt"].iloc[0] == "Ein Foto des Gesichts eine*r Buchhalter*in."


@pytest.mark.skipif(sys.platform == "win32", reason="':' is not allowed in Windows folder names")
def test_magbig_gender_neutral_original_folder_name(tmp_path: Path) -> None:
    root = copy_fixture("magbig", tmp_path)
    original = root / "indirect:gender_neutral"
    original.mkdir()
    (original / "occ_english.csv").write_text("name,prompt\naccountant,original folder wins\n")
    frame = load_magbig_prompts(root, "english", kind="gender_neutral")
    assert frame["prompt"].tolist() == ["original folder wins"]


def test_magbig_unknown_language_lists_available(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError) as info:
        load_magbig_prompts(FIXTURES / "magbig", "klingon", kind="gender_neutral")
    message = str(info.value)
    assert "occ_klingon.csv" in message
    assert "languages available there: english, german, german_star" in message
    with pytest.raises(DataLayoutError) as info:
        load_magbig_prompts(FIXTURES / "magbig", "klingon", kind="adjectives")
    assert "adj_klingon.csv; languages available there: english, german\n" in str(info.value)


def test_magbig_bad_kind_and_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="direct, gender_neutral, adjectives"):
        load_magbig_prompts(FIXTURES / "magbig", "english", kind="indirect")
    with pytest.raises(DataLayoutError, match="gender-neutral prompt folder not found"):
        load_magbig_prompts(tmp_path, "english", kind="gender_neutral")
    with pytest.raises(DataLayoutError, match="MAGBIG prompt root not found"):
        load_magbig_prompts(tmp_path / "prompts", "english")


def test_magbig_missing_prompt_column(tmp_path: Path) -> None:
    (tmp_path / "occ_english.csv").write_text("name,text\naccountant,hi\n")
    with pytest.raises(DataLayoutError, match=r"occ_english.csv: missing column\(s\) 'prompt'"):
        load_magbig_prompts(tmp_path, "english")


# -------------------------------------------------------------------------------------------- CC3M

SHARD = FIXTURES / "cc3m" / "00000.tar"
CC3M_CAPTIONS = {
    "000000000": "a dog on a beach",
    "000000001": "café in Zürich at night",
    "000000002": "portrait of a smiling woman",
}


def shard_members() -> list[tuple[str, bytes]]:
    with tarfile.open(SHARD) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cc3m_fixture_shard() -> None:
    stats = ReadStats()
    samples = list(iter_cc3m(FIXTURES / "cc3m", stats))
    assert all(isinstance(s, CC3MSample) for s in samples)
    assert {s.key: s.caption for s in samples} == CC3M_CAPTIONS
    assert [s.key for s in samples] == list(CC3M_CAPTIONS)
    assert all(isinstance(s.image, Image.Image) and s.image.size == (8, 8) for s in samples)
    assert samples[1].image.format == "PNG"
    assert samples[0].metadata["status"] == "success" and samples[0].metadata["key"] == "000000000"
    assert (stats.samples, stats.skipped, stats.shards, stats.errors) == (3, 0, 1, {})


def test_cc3m_raw_bytes_without_decoding() -> None:
    samples = list(iter_cc3m([SHARD], decode=False))
    assert samples[0].image == dict(shard_members())["000000000.jpg"]


def test_cc3m_skips_and_counts_bad_samples(tmp_path: Path) -> None:
    members = dict(shard_members())
    jpeg = members["000000000.jpg"]
    broken = [
        ("a.jpg", jpeg), ("a.txt", b"good"),
        ("b.jpg", jpeg[: len(jpeg) // 2]), ("b.txt", b"truncated jpeg"),
        ("c.jpg", jpeg),  # no caption
        ("d.txt", b"no image"),
        ("e.jpg", jpeg), ("e.txt", b"\xff\xfe bad utf-8"),
        ("f.jpg", jpeg), ("f.json", b"{broken"), ("f.txt", b"bad json"),
        ("g.jpg", jpeg), ("g.txt", b"also good"),
    ]
    stats = ReadStats()
    samples = list(iter_cc3m(write_tar(tmp_path / "00000.tar", broken), stats))
    assert [(s.key, s.caption, s.metadata) for s in samples] == [("a", "good", {}), ("g", "also good", {})]
    assert stats.samples == 2 and stats.skipped == 5 and stats.bad_shards == []
    assert stats.errors == {
        "sample: undecodable image": 1, "sample: missing caption": 1, "sample: missing image": 1,
        "sample: undecodable caption": 1, "sample: undecodable json": 1,
    }


def test_cc3m_empty_shards_are_counted(tmp_path: Path) -> None:
    (tmp_path / "00000.tar").write_bytes(b"")
    write_tar(tmp_path / "00001.tar", [])
    shutil.copy(SHARD, tmp_path / "00002.tar")
    stats = ReadStats()
    assert len(list(iter_cc3m(tmp_path, stats))) == 3
    assert stats.errors == {"shard: empty": 2}
    assert stats.shards == 3
    assert stats.bad_shards == [tmp_path.resolve() / "00000.tar", tmp_path.resolve() / "00001.tar"]


def test_cc3m_truncated_shard_at_any_byte(tmp_path: Path) -> None:
    data = SHARD.read_bytes()
    with tarfile.open(SHARD) as tar:
        last = tar.getmembers()[-1]
    end_marker = last.offset_data + -(-last.size // 512) * 512  # where the end-of-archive block starts
    full = [(s.key, s.caption) for s in iter_cc3m(SHARD)]
    cuts = sorted({*range(1, end_marker + 512, 97), *range(512, end_marker + 1024, 512)})
    for cut in cuts:
        path = tmp_path / f"cut{cut}.tar"
        path.write_bytes(data[:cut])
        stats = ReadStats()
        got = [(s.key, s.caption) for s in iter_cc3m(path, stats)]
        assert got == full[: len(got)], cut
        if cut < end_marker + 512:
            assert stats.errors["shard: truncated or corrupt"] == 1, cut
            assert stats.bad_shards == [path.resolve()], cut
            assert len(got) < 3, cut
        else:  # only zero padding is missing
            assert got == full and stats.errors == {}, cut


def test_cc3m_gzip_shard_and_truncated_gzip(tmp_path: Path) -> None:
    packed = gzip.compress(SHARD.read_bytes())
    (tmp_path / "00000.tar").write_bytes(packed)  # GAB's mixing script writes gzip under a .tar name
    (tmp_path / "00001.tar").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "00002.tar").write_bytes(b"this is not a tar file" * 40)
    stats = ReadStats()
    keys = [s.key for s in iter_cc3m(tmp_path, stats)]
    assert keys[:3] == list(CC3M_CAPTIONS) and len(keys) < 6
    assert stats.errors["shard: truncated or corrupt"] == 2 and stats.shards == 3


def test_list_shards(tmp_path: Path) -> None:
    for name in ["00001.tar", "00000.tar", "00000_stats.json", "00002.tar"]:
        (tmp_path / name).write_bytes(b"")
    root = tmp_path.resolve()
    assert list_shards(tmp_path) == [root / "00000.tar", root / "00001.tar", root / "00002.tar"]
    assert list_shards(f"{tmp_path}/{{00001..00002}}.tar") == [root / "00001.tar", root / "00002.tar"]
    listed = list_shards([tmp_path / "00002.tar", str(tmp_path / "00000.tar")])
    assert listed == [root / "00000.tar", root / "00002.tar"]


def test_cc3m_missing_paths_fail_before_iterating(tmp_path: Path) -> None:
    with pytest.raises(DataLayoutError, match=f"shard or shard folder not found: {tmp_path / 'nope'}"):
        iter_cc3m(tmp_path / "nope")
    with pytest.raises(DataLayoutError, match="not found: .*cc3m/00001.tar"):
        list_shards(f"{FIXTURES / 'cc3m'}/{{00000..00003}}.tar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataLayoutError) as info:
        list_shards(tmp_path / "empty")
    assert f"no .tar shards found in {tmp_path / 'empty'}" in str(info.value)
    assert "00000.tar, 00001.tar, ..." in str(info.value)


# ------------------------------------------------------------------------------------ check_images


def test_check_images_reports_undecodable_and_missing(tmp_path: Path) -> None:
    root = copy_fixture("fairface", tmp_path)
    image_dir = root / "fairface-img-margin125-trainval" / "train"
    (image_dir / "2.jpg").write_bytes((image_dir / "2.jpg").read_bytes()[:300])
    (image_dir / "4.jpg").unlink()
    (image_dir / "5.jpg").write_bytes(b"not an image")
    problems = check_images(load_fairface(root))
    assert problems["image_id"].tolist() == ["2", "4", "5"]
    assert problems["problem"].iloc[1] == "missing"
    assert problems["problem"].iloc[0].startswith("undecodable: ")
    assert problems["problem"].iloc[2].startswith("undecodable: ")
    with pytest.raises(DataLayoutError, match="no column 'path'"):
        check_images(problems, column="path")
