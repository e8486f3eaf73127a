"""open_clip text tower → transformers CLIPTextModel, and the tiny pipeline built on it."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch

from biaslib.errors import BiaslibError
from biaslib.models import register_model_configs
from biaslib.text_encoder import UnsupportedTextTowerError, open_clip_text_encoder
from biaslib.world import World
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline, build_tiny_pipeline
from biaslib.world_models.tiny_pipeline_training import (
    FROZEN_TEXT_RECIPE,
    resolve_text_encoder_checkpoint,
    train_world_pipeline,
)

CAPTIONS = ["a photo of a nurse", "a man who is a pilot, standing in a city street", ""]


@pytest.fixture(scope="module")
def clip_model() -> torch.nn.Module:
    """The world's tiny CLIP with random weights (distinct values in every tensor)."""
    register_model_configs()
    torch.manual_seed(0)
    model = open_clip.create_model("biaslib-tiny-rn")
    with torch.no_grad():  # biases and LayerNorm affine start at 0/1: randomise so a swapped tensor shows
        for name, p in model.named_parameters():
            if name.endswith(("bias", "ln_1.weight", "ln_2.weight", "ln_final.weight")):
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def reference_hidden_states(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """open_clip's own computation, written out: ln_final(transformer(tokens + positions)) → (B, n, d)."""
    x = model.token_embedding(ids) + model.positional_embedding
    return model.ln_final(model.transformer(x, attn_mask=model.attn_mask))


def test_hidden_states_and_pooled_output_equal_open_clip(clip_model) -> None:
    encoder = open_clip_text_encoder(clip_model)
    ids = open_clip.get_tokenizer("biaslib-tiny-rn")(CAPTIONS)  # (3, 32), padded with 0 after <|endoftext|>
    with torch.no_grad():
        expected = reference_hidden_states(clip_model, ids)
        out = encoder(ids)
        # open_clip's text feature = the end-of-text token's state, projected
        pooled = expected[torch.arange(len(ids)), ids.argmax(-1)] @ clip_model.text_projection
        features = clip_model.encode_text(ids)
    assert out.last_hidden_state.shape == (3, 32, 128)
    torch.testing.assert_close(out.last_hidden_state, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.pooler_output @ clip_model.text_projection, features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled, features, atol=1e-5, rtol=1e-5)
    assert encoder.config.max_position_embeddings == 32 and encoder.config.hidden_act == "gelu"


def test_towers_that_do_not_map_are_refused(clip_model) -> None:
    with pytest.raises(UnsupportedTextTowerError, match="no standard open_clip text tower"):
        open_clip_text_encoder(torch.nn.Linear(2, 2))
    original = clip_model.text_pool_type
    clip_model.text_pool_type = "last"
    try:
        with pytest.raises(UnsupportedTextTowerError, match="causal text towers"):
            open_clip_text_encoder(clip_model)
    finally:
        clip_model.text_pool_type = original


def test_pipeline_on_a_converted_encoder_round_trips(clip_model, tmp_path: Path) -> None:
    encoder = open_clip_text_encoder(clip_model)
    pipe = build_tiny_pipeline(0, 16, text_encoder=encoder)
    assert pipe.unet.config.cross_attention_dim == 128 and pipe.tokenizer.model_max_length == 32
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = WorldDiffusionPipeline.from_pretrained(tmp_path / "pipe")
    ids = loaded.tokenizer(["a photo of a nurse"], padding="max_length", max_length=32, return_tensors="pt").input_ids
    with torch.no_grad():
        torch.testing.assert_close(loaded.text_encoder(ids).last_hidden_state, encoder(ids).last_hidden_state)
    images = [p("a photo of a nurse", num_inference_steps=2, output_type="np",
                generator=[torch.Generator().manual_seed(1)]).images for p in (pipe, loaded)]
    assert (images[0] == images[1]).all()


def test_train_world_pipeline_keeps_a_given_text_encoder_frozen(clip_model, tmp_path: Path) -> None:
    checkpoint = tmp_path / "clip" / "checkpoints" / "epoch_3.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in clip_model.state_dict().items()}}, checkpoint)
    torch.save({"epoch": 1, "state_dict": {}}, checkpoint.with_name("epoch_1.pt"))
    assert resolve_text_encoder_checkpoint(tmp_path / "clip") == checkpoint  # a run folder → its newest epoch
    with pytest.raises(BiaslibError, match="no open_clip checkpoint"):
        resolve_text_encoder_checkpoint(tmp_path / "missing")

    kwargs = dict(minutes=0.02, n_images=64, sample_size=16, max_steps=3, progress=False)
    out = train_world_pipeline(World(seed=0), tmp_path / "tiny", text_encoder=tmp_path / "clip", **kwargs)
    info = json.loads((out / "biaslib_train.json").read_text())
    assert info["params"]["recipe"] == FROZEN_TEXT_RECIPE and info["global_step"] == 3
    assert info["text_encoder_source"]["checkpoint"] == str(checkpoint)
    trained = WorldDiffusionPipeline.from_pretrained(out).text_encoder.state_dict()
    expected = open_clip_text_encoder(clip_model).state_dict()
    assert trained.keys() == expected.keys()
    assert all(torch.equal(trained[k], expected[k]) for k in expected)  # frozen: the CLIP's weights, unchanged
    with pytest.raises(BiaslibError, match="other params"):  # another encoder is another pipeline
        train_world_pipeline(World(seed=0), out, **kwargs)
