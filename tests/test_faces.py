"""biaslib.faces: detectors, classifiers, skin tone, per-image analysis and per-occupation counts."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage import data

from biaslib.faces import (
    CHARDON_CATEGORIES,
    HEAD_LAYOUT,
    MONK_ITA,
    ClipZeroShotClassifier,
    FairFaceClassifier,
    OnnxAgeGenderClassifier,
    analyse_images,
    chardon_category,
    create_detector,
    face_chips,
    face_counts,
    fairface_model,
    image_outcomes,
    load_fairface_weights,
    magbig_counts_text,
    monk_bin,
    preprocess,
    read_magbig_counts,
    save_fairface_weights,
    skin_tone,
    train_fairface,
    write_magbig_counts,
)
from biaslib.faces.skin import MONK_HEX
from biaslib.world.export import export_fairface

#: Eileen Collins's face in skimage's astronaut photo (x0, y0, x1, y1), by eye.
ASTRONAUT_FACE = (175, 65, 270, 170)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


@pytest.fixture(scope="module")
def noise(astronaut) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, astronaut.shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def onnx_gender() -> OnnxAgeGenderClassifier:
    return OnnxAgeGenderClassifier(("gender", "age"))


def iou(a, b) -> float:
    wx = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    wy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = wx * wy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ---- detectors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["haar", "hog", "mtcnn"])
def test_detector_finds_the_astronaut_face_and_nothing_in_noise(name, astronaut, noise):
    boxes = create_detector(name).detect([astronaut, Image.fromarray(noise)])
    assert boxes[0].shape[1] == 5 and boxes[0].dtype == np.float32
    assert iou(boxes[0][0], ASTRONAUT_FACE) > 0.5, boxes[0]
    assert np.all(np.diff(boxes[0][:, 4]) <= 0)  # best first
    assert boxes[1].shape == (0, 5)


def test_none_detector_is_the_whole_image(astronaut):
    (box,) = create_detector("none").detect([astronaut])
    np.testing.assert_array_equal(box, [[0, 0, 512, 512, 1]])


def test_mtcnn_batch_equals_one_at_a_time(astronaut, noise):
    detector = create_detector("mtcnn")
    small = astronaut[::2, ::2].copy()
    together = detector.detect([astronaut, noise, small, astronaut])
    alone = [detector.detect([im])[0] for im in (astronaut, noise, small, astronaut)]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert iou(together[2][0], np.array(ASTRONAUT_FACE) / 2) > 0.5


def test_unknown_detector_names_the_choices():
    with pytest.raises(ValueError, match="haar"):
        create_detector("retina")


def test_face_chips_have_fairface_margin(astronaut):
    chips = face_chips(astronaut, np.array([[100, 100, 200, 200, 1.0], [-50, -50, 50, 50, 1.0]]))
    assert chips.shape == (2, 300, 300, 3) and chips.dtype == np.uint8
    # box side 100 with padding 0.25 → a 150 px square from 75 to 225, resized to 300 (2×)
    np.testing.assert_allclose(chips[0, 50:250:40, 50:250:40].astype(int),
                               astronaut[100:200:20, 100:200:20].astype(int), atol=40)
    assert chips[1, :40, :40].max() == 0  # outside the image is black


# ---- classifiers --------------------------------------------------------------------------------

def test_onnx_classifier_reads_the_astronaut_as_a_woman(astronaut, noise, onnx_gender):
    frame = analyse_images([astronaut, noise], "mtcnn", onnx_gender, batch_size=2)
    assert frame["outcome"].tolist() == ["woman", "no_face"]
    assert frame.loc[0, "gender"] == "female" and frame.loc[0, "gender_p"] > 0.8
    assert 15 < frame.loc[0, "age_years"] < 60 and frame.loc[0, "age"] in HEAD_LAYOUT["age"][1]
    assert np.isnan(frame.loc[1, "gender_p"])


def test_fairface_head_layout_matches_the_reference():
    assert HEAD_LAYOUT["race"] == (slice(0, 7), ("White", "Black", "Latino_Hispanic", "East Asian",
                                                 "Southeast Asian", "Indian", "Middle Eastern"))
    assert HEAD_LAYOUT["gender"] == (slice(7, 9), ("Male", "Female"))
    assert HEAD_LAYOUT["age"] == (slice(9, 18), ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59",
                                                 "60-69", "70+"))
    from torchvision.models import resnet34

    model, reference = fairface_model(), resnet34(weights=None)
    assert (model.fc.in_features, model.fc.out_features) == (512, 18)
    ours = {k: v.shape for k, v in model.state_dict().items() if not k.startswith("fc.")}
    assert ours == {k: v.shape for k, v in reference.state_dict().items() if not k.startswith("fc.")}


def test_fairface_preprocessing_matches_torchvision(astronaut):
    from torchvision import transforms

    chip = astronaut[40:340, 80:380]
    reference = transforms.Compose([
        transforms.Resize((224, 224)), transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])(Image.fromarray(chip))
    ours = preprocess([chip])
    assert ours.shape == (1, 3, 224, 224)
    assert float((ours[0] - reference).abs().max()) < 0.03


def test_fairface_trains_on_world_export_and_round_trips(tmp_path, astronaut):
    from biaslib.world import World

    export_fairface(World(seed=0), tmp_path / "ff", n_train=48, n_val=16, margins=("025",))
    model, report = train_fairface(tmp_path / "ff", epochs=3, image_size=32, batch_size=16, seed=0)
    assert report.n_train == 48 and len(report.losses) == 3 and report.losses[-1] < report.losses[0]
    assert set(report.accuracy) == {"race", "gender", "age"}

    path = save_fairface_weights(model, tmp_path / "fairface.safetensors")
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dataparallel.pt")
    for weights in (path, tmp_path / "dataparallel.pt"):
        classifier = FairFaceClassifier(weights, image_size=32)
        frame = classifier.predict([astronaut, astronaut], [np.array([ASTRONAUT_FACE]), np.zeros((0, 5))])
        assert frame[["image", "face"]].values.tolist() == [[0, 0]]
        assert frame.loc[0, "gender"] in ("Male", "Female") and frame.loc[0, "race"] in HEAD_LAYOUT["race"][1]
        assert 0 < frame.loc[0, "age_p"] <= 1
    bad = tmp_path / "bad.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(Exception, match="18 outputs"):
        load_fairface_weights(bad)


def test_clip_zero_shot_with_a_local_model(astronaut):
    from biaslib.models import load_clip

    clip = load_clip(None, "biaslib-tiny-rn", device="cpu", precision="fp32")
    faces = [np.array([ASTRONAUT_FACE]), np.array([ASTRONAUT_FACE, (0, 0, 100, 100)])]
    plain = ClipZeroShotClassifier(clip, batch_size=2).predict([astronaut, astronaut], faces)
    assert plain["gender"].isin(["man", "woman"]).all() and len(plain) == 3
    assert ((plain["gender_p"] >= 0.5) & (plain["gender_p"] <= 1)).all()
    unsure = ClipZeroShotClassifier(clip, unsure_margin=1.0).predict([astronaut], faces[:1])
    assert unsure["gender"].tolist() == ["unsure"]  # a margin of 1 makes every face unsure


# ---- skin tone ----------------------------------------------------------------------------------

def test_monk_swatches_fall_in_their_own_bins():
    assert np.all(np.diff(MONK_ITA) < 0)
    swatches = [np.full((40, 40, 3), [int(h[i:i + 2], 16) for i in (0, 2, 4)], np.uint8) for h in MONK_HEX]
    frame = skin_tone(swatches, [np.array([[0, 0, 40, 40]])] * 10)
    assert frame["monk"].tolist() == list(range(1, 11))
    assert monk_bin(np.array([np.nan, 90.0, -90.0])).tolist() == [0, 1, 10]
    assert (MONK_ITA[:4] > 57.5).all()  # Monk 1-4 are all "very light" in Chardon's terms


def test_chardon_categories_follow_their_published_edges():
    ita = np.array([60.0, 55.0, 41.5, 41.0, 30.0, 10.0, 0.0, -30.0, -45.0, np.nan])
    assert chardon_category(ita).tolist() == ["very light", "light", "light", "intermediate", "intermediate",
                                              "brown", "brown", "dark", "dark", None]
    assert list(CHARDON_CATEGORIES) == ["very light", "light", "intermediate", "tan", "brown", "dark"]
    assert chardon_category(np.array([20.0]))[0] == "tan"


def test_ita_orders_the_world_skin_tones():
    from biaslib.world import World

    world = World(seed=0)
    people = world.people(120, stream="faces-skin")
    people = people[people["style"] == "photo"]
    faces = [world.render(r, crop="face025", size=64) for r in people.to_dict("records")]
    head = np.array([[64 / 6, 64 / 6, 64 * 5 / 6, 64 * 5 / 6]])  # face025: the head is the middle 2/3
    frame = skin_tone(faces, [head] * len(faces))
    means = frame.groupby(people["skin_tone"].to_numpy())["ita"].mean()
    assert means.is_monotonic_decreasing and len(means) >= 5


# ---- analysis and counts ------------------------------------------------------------------------

def test_no_face_and_several_faces_are_counted_not_fatal(astronaut, noise, onnx_gender, capsys):
    pair = np.hstack([astronaut, astronaut])
    images = [astronaut, noise, pair, astronaut[::2, ::2].copy()]
    frame = analyse_images(images, "haar", onnx_gender, batch_size=3, skin=True, progress=True)
    progress = capsys.readouterr().err  # the bar counts images, not batches
    assert "faces: 100%" in progress and "4/4" in progress
    assert frame["n_faces"].tolist() == [1, 0, 2, 1]
    assert frame["outcome"].tolist() == ["woman", "no_face", "multiple_faces", "woman"]
    assert frame["monk"].iloc[[0, 3]].between(1, 10).all() and frame["ita"].iloc[[1, 2]].isna().all()
    empty = analyse_images([], "haar", onnx_gender)
    assert len(empty) == 0 and {"n_faces", "gender", "outcome"} <= set(empty.columns)
    frame["occupation"] = ["nurse", "pilot", "pilot", "nurse"]
    counts = face_counts(frame, groups=["ceo", "nurse", "pilot"])
    assert counts["occupation"].tolist() == ["ceo", "nurse", "pilot"]
    assert counts[["images", "man", "woman", "no_face", "multiple_faces", "classified"]].values.tolist() == [
        [0, 0, 0, 0, 0, 0], [2, 0, 2, 0, 0, 2], [2, 0, 0, 1, 1, 0]]
    assert counts["share_woman"].isna().tolist() == [True, False, True]


def test_outcomes_and_counts_per_language(tmp_path):
    outcome = image_outcomes([1, 1, 1, 0, 3, 1], ["Male", "female", "unsure", None, "Male", np.nan])
    assert outcome.tolist() == ["man", "woman", "other", "no_face", "multiple_faces", "other"]
    frame = pd.DataFrame({"language": ["en", "en", "de", "de", "de", "en"],
                          "occupation": ["nurse", "nurse", "nurse", "pilot", "pilot", "pilot"], "outcome": outcome})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero anywhere
        counts = face_counts(frame, by=("language", "occupation"))
    assert counts[["language", "occupation", "man", "woman", "other", "no_face", "multiple_faces"]].values.tolist() == [
        ["en", "nurse", 1, 1, 0, 0, 0], ["de", "nurse", 0, 0, 1, 0, 0], ["de", "pilot", 0, 0, 0, 1, 1],
        ["en", "pilot", 0, 0, 1, 0, 0]]
    assert counts["share_woman"].iloc[0] == 0.5 and counts["share_woman"].iloc[1:].isna().all()
    with pytest.raises(ValueError, match="unknown outcomes"):
        face_counts(frame.assign(outcome="cat"), by=("language",))

    english = counts[counts["language"] == "en"]
    assert magbig_counts_text(english) == "nurse\nman: 1, woman: 1\npilot\nman: 0, woman: 0\n"
    write_magbig_counts(tmp_path / "en.txt", english)
    back = read_magbig_counts(tmp_path / "en.txt")
    assert back.values.tolist() == [["nurse", 1, 1], ["pilot", 0, 0]]
    (tmp_path / "bad.txt").write_text("nurse\npilot\nman: 1, woman: 2\n")
    with pytest.raises(ValueError, match="nurse"):
        read_magbig_counts(tmp_path / "bad.txt")
