"""biaslib.features: batch-size invariance, unit rows, id alignment, inputs, store round trip, bad checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from biaslib.errors import BiaslibError, DataLayoutError
from biaslib.features import (
    Features,
    FeatureStore,
    extract_image_features,
    extract_text_features,
    split_preprocess,
    zero_shot_accuracy,
    zero_shot_classifier,
)
from biaslib.models import CheckpointError, UnknownModelError, load_clip
from biaslib.world.export import export_cc3m

N_IMAGES = 70  # one full batch of 64 plus a remainder


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip():
    torch.manual_seed(0)
    return load_clip(None, "biaslib-tiny-rn", device="cpu")


@pytest.fixture(scope="module")
def people(world):
    frame = world.people(N_IMAGES, stream="test/features")
    return frame, world.render_many(frame.to_dict("records"))


@pytest.fixture(scope="module")
def checkpoint(clip, tmp_path_factory):
    """An open_clip-style training checkpoint of the random model."""
    path = tmp_path_factory.mktemp("ckpt") / "epoch_1.pt"
    torch.save({"epoch": 1, "name": "t", "state_dict": {f"module.{k}": v for k, v in clip[0].state_dict().items()}},
               path)
    return path


def test_image_features_do_not_depend_on_batch_size(clip, people):
    model, preprocess, _ = clip
    _, images = people
    one = extract_image_features(model, preprocess, images, batch_size=1, precision="fp32")
    many = extract_image_features(model, preprocess, images, batch_size=64, precision="fp32")
    assert one.ids == many.ids == [str(i) for i in range(N_IMAGES)]
    assert one.vectors.shape == (N_IMAGES, 128) and one.vectors.dtype == np.float32
    np.testing.assert_allclose(one.vectors, many.vectors, atol=1e-5, rtol=0)


def test_split_preprocess_equals_the_per_image_transform(clip, people):
    """The open_clip transform split into PIL steps + a batched ToTensor/Normalize gives the same input
    tensors bit for bit, also for images that need resizing, and the same features as the whole transform."""
    model, preprocess, _ = clip
    split = split_preprocess(preprocess)
    assert split is not None
    images = people[1][:6] + [people[1][6].resize((97, 80)), people[1][7].convert("L")]
    batch = split.finish(torch.from_numpy(np.stack([split.to_uint8(im) for im in images])))
    assert torch.equal(batch, torch.stack([preprocess(im) for im in images]))
    whole = lambda image: preprocess(image)  # noqa: E731 — not a Compose: runs per image, unsplit
    assert split_preprocess(whole) is None
    fast = extract_image_features(model, preprocess, images, batch_size=4, precision="fp32")
    slow = extract_image_features(model, whole, images, batch_size=4, precision="fp32")
    np.testing.assert_array_equal(fast.vectors, slow.vectors)


def test_text_features_do_not_depend_on_batch_size(clip, people):
    model, _, tokenizer = clip
    captions = list(people[0]["caption"])
    ids = [f"c{i}" for i in range(len(captions))]
    one = extract_text_features(model, tokenizer, captions, ids, batch_size=1, precision="fp32")
    many = extract_text_features(model, tokenizer, captions, ids, batch_size=64, precision="fp32")
    assert one.ids == many.ids == ids
    np.testing.assert_allclose(one.vectors, many.vectors, atol=1e-5, rtol=0)


def test_progress_bars_name_what_they_embed_and_vanish_when_done(clip, people, capsys):
    """Issue 29: a benchmark in a notebook piled up 32 finished bars labelled only "images:" / "texts:"; a bar now
    names its model and dataset (the evaluation context passes them) and is gone when done."""
    from biaslib.features import _progress

    model, _, tokenizer = clip
    extract_text_features(model, tokenizer, list(people[0]["caption"])[:4], progress=True,
                          label="world-020: phase texts")
    assert "world-020: phase texts" in capsys.readouterr().err
    bar = _progress(range(3), True, "world-020: phase images")
    assert bar.desc == "world-020: phase images" and bar.leave is False
    bar.close()


def test_every_row_is_unit_norm(clip, people):
    model, preprocess, tokenizer = clip
    image = extract_image_features(model, preprocess, people[1], batch_size=32).vectors
    text = extract_text_features(model, tokenizer, list(people[0]["caption"])).vectors
    for vectors in (image, text):
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_ids_follow_their_inputs_when_shuffled(clip, people):
    model, preprocess, _ = clip
    _, images = people
    ids = [f"img{i:03d}" for i in range(N_IMAGES)]
    perm = np.random.default_rng(0).permutation(N_IMAGES)
    base = extract_image_features(model, preprocess, images, ids, batch_size=16, precision="fp32")
    shuffled = extract_image_features(model, preprocess, [images[i] for i in perm], [ids[i] for i in perm],
                                      batch_size=16, precision="fp32")
    assert shuffled.ids == [ids[i] for i in perm]
    np.testing.assert_allclose(shuffled.vectors, base.vectors[perm], atol=1e-5, rtol=0)


@pytest.mark.parametrize("encode_in", ["main", "workers"])
def test_files_decoded_in_workers_match_one_image_at_a_time(clip, people, tmp_path, encode_in):
    """Workers decoding for the model in this process, or decoding and encoding their own batches
    (8, 8 and a remainder of 4 over two workers): the rows and ids of a one-image-per-batch run."""
    model, preprocess, _ = clip
    paths = []
    for i, image in enumerate(people[1][:20]):
        paths.append(tmp_path / f"{i}.jpg")
        image.save(paths[-1], quality=95)
    ids = [f"p{i}" for i in range(20)][::-1]
    one = extract_image_features(model, preprocess, paths, ids, batch_size=1, workers=0, precision="fp32")
    workers = extract_image_features(model, preprocess, paths, ids, batch_size=8, workers=2, precision="fp32",
                                     encode_in=encode_in)
    assert workers.ids == one.ids == ids
    np.testing.assert_allclose(workers.vectors, one.vectors, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(workers.vectors, axis=1), 1.0, atol=1e-6)


def test_encoding_in_workers_is_the_cpu_default_and_refuses_what_it_cannot_do(clip, people, tmp_path):
    from biaslib.features import _encode_in_workers

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert _encode_in_workers("auto", cpu, 2) and not _encode_in_workers("auto", cpu, 1)
    assert not _encode_in_workers("auto", cuda, 4) and _encode_in_workers("workers", cpu, 1)
    assert not _encode_in_workers("main", cpu, 4)
    with pytest.raises(ValueError, match="needs a CPU model"):
        _encode_in_workers("workers", cuda, 2)
    with pytest.raises(ValueError, match="workers >= 1"):
        _encode_in_workers("workers", cpu, 0)
    with pytest.raises(ValueError, match="encode_in must be"):
        _encode_in_workers("gpu", cpu, 2)
    model, preprocess, _ = clip
    people[1][0].save(tmp_path / "ok.jpg")
    with pytest.raises(DataLayoutError, match="missing.jpg"):  # raised in a worker, re-raised here
        extract_image_features(model, preprocess, [tmp_path / "ok.jpg", tmp_path / "missing.jpg"], batch_size=1,
                               workers=2, encode_in="workers")


def test_auto_keeps_workers_for_a_long_list_of_a_cheap_model_only(clip, people, one_thread):
    """RN50 with the default 2 encoding workers ran at 0.55× the one-image loop on 2 cores: decoding workers took
    cores from a model that dominates the work (issue 27, item 10). The choice is measured per model (RN50: ≈ 10×
    the threshold on one thread; the tiny CLIP: ≈ 1/4 of it) and changes no value."""
    from biaslib.features import (
        WORKERS_MIN_IMAGES,
        _BatchEncoder,
        fold_batchnorm,
        model_dominates,
        split_preprocess,
        workers_pay_off,
    )

    def encoder(model: torch.nn.Module, preprocess) -> _BatchEncoder:
        return _BatchEncoder(fold_batchnorm(model.eval()), split_preprocess(preprocess), "fp32",
                             torch.contiguous_format)

    tiny, tiny_preprocess, _ = clip
    assert not model_dominates(encoder(tiny, tiny_preprocess), tiny_preprocess)
    # 500 files of the tiny CLIP: 2 workers 1,685 images/s, one process 2,432 (their start-up does not pay off)
    tiny_encoder = encoder(tiny, tiny_preprocess)
    assert not workers_pay_off([Path("x.jpg")] * (WORKERS_MIN_IMAGES - 1), tiny_encoder, tiny_preprocess)
    assert workers_pay_off([Path("x.jpg")] * WORKERS_MIN_IMAGES, tiny_encoder, tiny_preprocess)
    assert workers_pay_off(Path("shards"), tiny_encoder, tiny_preprocess)
    torch.manual_seed(0)
    rn50, rn50_preprocess, _ = load_clip(None, "RN50", device="cpu")
    assert model_dominates(encoder(rn50, rn50_preprocess), rn50_preprocess)
    assert not workers_pay_off([Path("x.jpg")] * WORKERS_MIN_IMAGES, encoder(rn50, rn50_preprocess), rn50_preprocess)
    images = people[1][:3]
    auto = extract_image_features(rn50, rn50_preprocess, images, batch_size=2, workers=2, precision="fp32")
    main = extract_image_features(rn50, rn50_preprocess, images, batch_size=2, workers=0, precision="fp32")
    np.testing.assert_allclose(auto.vectors, main.vectors, atol=1e-5)


def test_webdataset_shards_give_keys_as_ids(clip, world, tmp_path):
    from biaslib.data.cc3m import iter_cc3m

    model, preprocess, _ = clip
    export_cc3m(world, tmp_path, 30, shard_size=10)
    samples = list(iter_cc3m(tmp_path))
    expected = extract_image_features(model, preprocess, [s.image for s in samples], [s.key for s in samples],
                                      precision="fp32")
    order = {key: i for i, key in enumerate(expected.ids)}
    for encode_in in ("main", "workers"):  # 3 shards of 10 over 2 workers, batches of 4
        got = extract_image_features(model, preprocess, tmp_path, batch_size=4, workers=2, precision="fp32",
                                     encode_in=encode_in)
        assert sorted(got.ids) == sorted(expected.ids) and len(got.ids) == 30
        np.testing.assert_allclose(got.vectors, expected.vectors[[order[k] for k in got.ids]], atol=1e-5, rtol=0)


def test_bad_ids_and_missing_inputs_are_refused(clip, people, tmp_path):
    model, preprocess, _ = clip
    images = people[1][:3]
    with pytest.raises(ValueError, match="2 ids for 3 inputs"):
        extract_image_features(model, preprocess, images, ["a", "b"])
    with pytest.raises(ValueError, match="not unique"):
        extract_image_features(model, preprocess, images, ["a", "a", "b"])
    with pytest.raises(DataLayoutError, match="missing.jpg"):
        extract_image_features(model, preprocess, [tmp_path / "missing.jpg"])
    with pytest.raises(DataLayoutError, match="no-shards"):
        extract_image_features(model, preprocess, tmp_path / "no-shards")


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_store_round_trip_is_memory_mapped(tmp_path, dtype):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"k{i}" for i in range(50)]
    store = FeatureStore(tmp_path)
    path = store.save("tiny-rn_world_020", "phase_val", Features(ids, vectors), dtype=dtype)
    assert path.name == "tiny-rn_world_020__phase_val.npy"
    loaded = store.load("tiny-rn_world_020", "phase_val")
    assert isinstance(loaded.vectors, np.memmap) and not loaded.vectors.flags.writeable
    assert loaded.ids == ids and loaded.vectors.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loaded.vectors, vectors, atol=1e-3 if dtype == "float16" else 0)
    assert store.entries()[["model", "dataset", "n", "dim"]].values.tolist() == [
        ["tiny-rn_world_020", "phase_val", 50, 16]]
    assert not list(tmp_path.glob(".*tmp*"))


def test_store_refuses_unsafe_names_and_missing_pairs(tmp_path):
    store = FeatureStore(tmp_path)
    with pytest.raises(ValueError, match="file-name part"):
        store.paths("a__b", "c")
    with pytest.raises(ValueError, match="file-name part"):
        store.paths("a", "../c")
    with pytest.raises(DataLayoutError, match="no features"):
        store.load("a", "b")


def test_checkpoint_round_trip(clip, people, checkpoint):
    model, preprocess, _ = clip
    reloaded, preprocess2, _ = load_clip(checkpoint, "biaslib-tiny-rn", device="cpu")
    images = people[1][:8]
    np.testing.assert_allclose(extract_image_features(reloaded, preprocess2, images, precision="fp32").vectors,
                               extract_image_features(model, preprocess, images, precision="fp32").vectors,
                               atol=1e-6, rtol=0)


def test_corrupt_checkpoint_names_the_file(checkpoint, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:100_000])
    not_torch = tmp_path / "notes.pt"
    not_torch.write_text("hello")
    for path in (truncated, not_torch, tmp_path / "absent.pt"):
        with pytest.raises(BiaslibError, match=path.name) as info:
            load_clip(path, "biaslib-tiny-rn", device="cpu")
        assert isinstance(info.value, CheckpointError)


def test_checkpoint_needing_pickle_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Features(["a"], np.zeros(1))}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_clip(path, "biaslib-tiny-rn", device="cpu")


def test_checkpoint_of_another_model_is_refused(checkpoint):
    with pytest.raises(CheckpointError, match="does not fit model 'biaslib-tiny-vit'"):
        load_clip(checkpoint, "biaslib-tiny-vit", device="cpu")


def test_unknown_model_lists_the_configs():
    with pytest.raises(UnknownModelError, match="biaslib-tiny-rn") as info:
        load_clip(None, "biaslib-tiny-rm", device="cpu")
    assert "did you mean biaslib-tiny-rn" in str(info.value) and "open_clip.list_models()" in str(info.value)
    assert len(str(info.value)) <= 200  # it listed every open_clip config on one 2,809-character line


def test_zero_shot_classifier_and_accuracy(clip, people):
    model, preprocess, tokenizer = clip
    weights = zero_shot_classifier(model, tokenizer, ["nurse", "pilot", "baker"], ("a {}.", "a photo of a {}."))
    assert weights.shape == (3, 128)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0, atol=1e-5)
    frame, images = people
    keep = [i for i, o in enumerate(frame["occupation"]) if o != "none"]
    labels = [frame["occupation"].iloc[i] for i in keep]
    classes = sorted(set(labels))
    accuracy = zero_shot_accuracy(model, tokenizer, preprocess, [images[i] for i in keep], labels, classes)
    assert 0.0 <= accuracy <= 1.0
    with pytest.raises(ValueError, match="not among the class names"):
        zero_shot_accuracy(model, tokenizer, preprocess, images[:1], ["astronaut"], classes)


def test_auto_precision_follows_native_bf16(monkeypatch):
    """``auto``: fp16 on CUDA; on the CPU bf16 exactly when it is native, else fp32; others unchanged."""
    import biaslib.features as features

    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr("biaslib.hardware.native_bf16", lambda native=native: native)
        assert features.resolve_precision("auto", "cpu") == expected
        assert features.resolve_precision("auto", torch.device("cuda")) == "fp16"
        assert features.resolve_precision("fp32", "cpu") == "fp32"
        assert features.resolve_precision("bf16", "cuda") == "bf16"



def test_batchnorm_folding_computes_the_same_tower_on_a_copy():
    from biaslib.features import fold_batchnorm

    model = load_clip(None, "biaslib-tiny-rn", device="cpu")[0]
    with torch.no_grad():  # BatchNorms with non-trivial statistics, so a wrong fold would show
        for module in model.visual.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(model)
    norms = lambda m: [x for x in m.visual.modules() if isinstance(x, torch.nn.BatchNorm2d)]  # noqa: E731
    assert norms(model) and not norms(folded)  # the copy is folded, the caller's model keeps its layers
    assert folded.transformer is model.transformer
    x = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        np.testing.assert_allclose(folded.encode_image(x).numpy(), model.encode_image(x).numpy(), atol=1e-5, rtol=1e-5)
    vit = load_clip(None, "biaslib-tiny-vit", device="cpu")[0]
    assert fold_batchnorm(vit) is vit  # no BatchNorm: nothing to fold


@pytest.mark.parametrize("arch", ["biaslib-tiny-rn", "RN50", "ViT-B-32"])
def test_text_features_from_the_pooled_prefix_equal_the_full_context(arch, one_thread):
    """Encoding only the positions up to the last end-of-text token (causal mask, argmax pooling) gives the
    full context's features (1e-5) and leaves the model as it was; a model whose tower is not open_clip's CLIP
    text tower is encoded whole."""
    import open_clip

    from biaslib.features import pooled_length
    from biaslib.models import HFCLIP

    torch.manual_seed(0)
    model, _, tokenizer = load_clip(None, arch, device="cpu")
    texts = ["a nurse", "a photo of a firefighter standing next to a red truck in the street at night", "x"]
    tokens = tokenizer(texts)
    assert pooled_length(model, tokens) == int(tokens.argmax(dim=-1).max()) + 1 < tokens.shape[1]
    with torch.inference_mode():
        full = torch.nn.functional.normalize(model.encode_text(tokens), dim=-1).numpy()
    trimmed = extract_text_features(model, tokenizer, texts, precision="fp32").vectors
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    assert model.positional_embedding.shape[0] == model.attn_mask.shape[0] == tokens.shape[1]
    assert isinstance(model.positional_embedding, torch.nn.Parameter)
    assert pooled_length(HFCLIP(torch.nn.Linear(1, 1)), tokens) is None
    assert pooled_length(model, open_clip.get_tokenizer(arch)(["word " * 100])) is None  # no shorter prefix
