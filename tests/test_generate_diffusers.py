"""Generation with real diffusers pipelines (tiny random-weight models built from configs, no download).

Per-id noise makes an image independent of its batch up to float rounding: the test bounds the
difference in 8-bit pixel levels between batch sizes 1 and 4 and between 1 and 2 processes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from biaslib.config import GenerateConfig
from biaslib.generate import generate, load_generated_images, load_pipeline, verify
from biaslib.world.tiny_pipeline import build_tiny_pipeline, build_tokenizer

#: Largest difference in pixel levels (0–255) allowed between batch sizes / process counts.
MAX_LEVELS = 3


def tiny_stable_diffusion() -> StableDiffusionPipeline:
    """A Stable-Diffusion-architecture pipeline with tiny random weights (like diffusers' dummy components)."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=16)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=16)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                        num_hidden_layers=2, vocab_size=49408, max_position_embeddings=77,
                                        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407))
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=build_tokenizer(), unet=unet,
                                   scheduler=PNDMScheduler(skip_prk_steps=True), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)


@pytest.fixture(scope="module")
def captions() -> pd.DataFrame:
    return pd.DataFrame({"key": [f"{i:04d}" for i in range(8)],
                         "caption": ["a nurse", "a photo of a pilot", "a female welder", "an elderly man at home",
                                     "a teacher", "a boy", "a red car", "a chef in a kitchen"]})


def _max_level_difference(a: dict, b: dict) -> int:
    assert a.keys() == b.keys()
    return max(int(np.abs(np.asarray(a[k], dtype=int) - np.asarray(b[k], dtype=int)).max()) for k in a)


@pytest.mark.parametrize("kind", ["stable_diffusion", "world_tiny"])
def test_per_id_images_do_not_depend_on_batch_or_processes(kind, captions, tmp_path):
    folder = tmp_path / kind
    (tiny_stable_diffusion() if kind == "stable_diffusion" else build_tiny_pipeline(seed=0)).save_pretrained(folder)
    config = GenerateConfig(model=str(folder), steps=4, guidance=3.0, resolution=32 if kind == "stable_diffusion"
                            else None, scheduler="DPMSolverMultistepScheduler", image_format="png", shard_size=3,
                            batch_size=1, device="cpu", seed=7)
    generate(captions, tmp_path / "b1", config, progress=False)
    generate(captions, tmp_path / "b4", replace(config, batch_size=4), progress=False)
    for rank in (0, 1):
        generate(captions, tmp_path / "p2", replace(config, batch_size=4), rank=rank, world_size=2, progress=False)
    keys = list(captions["key"])
    one, four, two = (load_generated_images(tmp_path / d, keys) for d in ("b1", "b4", "p2"))
    assert len(one) == len(keys)
    diff_batch, diff_proc = _max_level_difference(one, four), _max_level_difference(one, two)
    print(f"{kind}: max pixel-level difference batch 1 vs 4 = {diff_batch}, 1 vs 2 processes = {diff_proc}")
    assert diff_batch <= MAX_LEVELS and diff_proc <= MAX_LEVELS
    assert verify(tmp_path / "p2", captions).ok
    # a different id seed gives a different image: the noise really is per id
    other = load_generated_images(generate(captions.head(1), tmp_path / "s8", replace(config, seed=8),
                                           progress=False).out_dir, keys[:1])
    assert _max_level_difference(other, {keys[0]: one[keys[0]]}) > 20


def test_scheduler_swap_and_unknown_scheduler(tmp_path):
    folder = tmp_path / "sd"
    tiny_stable_diffusion().save_pretrained(folder)
    pipe = load_pipeline(GenerateConfig(model=str(folder), scheduler="DDIMScheduler", device="cpu"))
    assert type(pipe.scheduler).__name__ == "DDIMScheduler" and pipe.safety_checker is None
    with pytest.raises(Exception, match="unknown scheduler 'NoSuchScheduler'"):
        load_pipeline(GenerateConfig(model=str(folder), scheduler="NoSuchScheduler", device="cpu"))
