"""Benchmark: a Stable-Diffusion-1.5-architecture pipeline through ``biaslib.generate`` on a GPU.

The pipeline has SD 1.5's architecture (UNet 860 M parameters, cross-attention 768, the KL VAE,
a CLIP ViT-L/14 text encoder of 12 layers, PNDM scheduler) with **random weights** built from its
configuration: nothing is downloaded, and the speed does not depend on the weights. It is saved
in fp16 with ``save_pretrained`` and loaded back by :func:`biaslib.generate.load_pipeline`, so the
measured path is the one a real SD-1.5 folder takes. 512 × 512, 50 steps, guidance 7.5, fp16,
PyTorch's SDPA attention. Variants, measured side by side in one run on the same prompts:

* ``loop``: batch size 1 (the original study generated prompt by prompt);
* ``batched``: batch size ``--batch``;
* ``compiled``: batch size ``--batch`` with ``generate.compile`` (``torch.compile`` of the UNet,
  ``mode="reduce-overhead"``: CUDA graphs), after one warm-up batch that pays the compilation.

It also reports the largest pixel difference (0–255) of each variant's images from the loop's
(per-id noise makes them the same images up to batch-dependent rounding). ``speedup`` = best of
batched and compiled images/s ÷ loop images/s.

Without a GPU, ``--quick`` runs the same code on the CPU with the UNet's and VAE's channels divided
by 10, at 128 × 128, 2 steps, two prompts and no compilation (a check that the path works, not a
speed figure).

    python bench/generate_sd15.py [--quick] [--n N] [--batch B]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import machine, print_result

from biaslib.config import GenerateConfig
from biaslib.generate import generate, load_generated_images, load_pipeline
from biaslib.world import World
from biaslib.world.tiny_pipeline import build_tokenizer

UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
            block_out_channels=(320, 640, 1280, 1280), attention_head_dim=8,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
           block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4)
TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)


def _narrow(config: dict, narrow: int) -> tuple[int, ...]:
    """Block widths divided by ``narrow``, rounded up to a multiple of 32 (the group-norm groups)."""
    return tuple(-(-c // narrow // 32) * 32 for c in config["block_out_channels"])


def save_sd15_architecture(folder: Path, dtype: torch.dtype, narrow: int = 1) -> int:
    """Write a random-weight SD-1.5-architecture ``StableDiffusionPipeline`` to ``folder``; returns the
    UNet's parameter count. ``narrow`` > 1 divides the UNet's and VAE's channel widths (the CPU check)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**UNET, "block_out_channels": _narrow(UNET, narrow)})
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**{**VAE, "block_out_channels": _narrow(VAE, narrow)}),
        text_encoder=CLIPTextModel(CLIPTextConfig(**TEXT)), tokenizer=build_tokenizer(),
        unet=unet, scheduler=PNDMScheduler(**SCHEDULER), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.to(dtype).save_pretrained(folder)
    return sum(p.numel() for p in unet.parameters())


def timed_generate(captions: pd.DataFrame, out: Path, config: GenerateConfig, pipe) -> float:
    """Images/s of one :func:`generate` call (CUDA synchronised before and after)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    generate(captions, out, config, pipeline=pipe, progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(captions) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts (CPU: 128 px, 2 steps, no compile)")
    parser.add_argument("--n", type=int, default=None, help="prompts per batched variant (default 32; quick 8)")
    parser.add_argument("--n-loop", type=int, default=None, help="prompts for the loop (default 8; quick 4)")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        raise SystemExit("bench/generate_sd15.py measures GPU speed: no CUDA device here (use --quick for a CPU check)")
    n = args.n or (8 if args.quick else 32)
    n_loop = args.n_loop or (4 if args.quick else 8)
    if not cuda:
        n, n_loop, args.batch = 2, 2, 2
    resolution, steps = (512, 50) if cuda else (128, 2)
    with tempfile.TemporaryDirectory(prefix="bench_sd15_") as tmp:
        folder = Path(tmp) / "sd15"
        start = time.perf_counter()
        unet_parameters = save_sd15_architecture(folder, torch.float16 if cuda else torch.float32, 1 if cuda else 10)
        build_seconds = time.perf_counter() - start
        base = GenerateConfig(model=str(folder), steps=steps, guidance=7.5, resolution=resolution, shard_size=10_000,
                              image_format="png", dtype="auto", device="auto")
        people = World(seed=0).people(n, stream="bench/generate_sd15")
        captions = pd.DataFrame({"key": [f"{i:09d}" for i in range(n)], "caption": people["caption"]})
        variants = {"loop": (replace(base, batch_size=1), captions.head(n_loop)),
                    "batched": (replace(base, batch_size=args.batch), captions)}
        if cuda:
            variants["compiled"] = (replace(base, batch_size=args.batch, compile=True), captions)
        speed, images, errors = {}, {}, {}
        for name, (config, table) in variants.items():
            try:
                pipe = load_pipeline(config)
                warm = table.head(config.batch_size).assign(key=lambda f: "warm" + f["key"])
                start = time.perf_counter()
                generate(warm, Path(tmp) / f"{name}_warmup", config, pipeline=pipe, progress=False)
                speed[f"{name}_warmup_seconds"] = time.perf_counter() - start
                speed[name] = timed_generate(table, Path(tmp) / name, config, pipe)
            except Exception as exc:  # noqa: BLE001 - torch.compile support varies with the stack: report it
                if name == "loop":
                    raise
                errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            finally:
                pipe = None
                torch.cuda.empty_cache()
            images[name] = load_generated_images(Path(tmp) / name, list(table["key"]))
        keys = list(captions["key"].head(n_loop))
        diff = {name: max(int(np.abs(np.asarray(images[name][k], dtype=int) - np.asarray(images["loop"][k], dtype=int))
                              .max()) for k in keys) for name in images if name != "loop"}
    rates = {k: v for k, v in speed.items() if not k.endswith("_seconds")}
    result = {
        "device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
        "resolution": resolution, "steps": steps, "dtype": "fp16" if cuda else "fp32", "batch": args.batch,
        "n": n, "n_loop": n_loop, "unet_parameters": unet_parameters, "build_seconds": round(build_seconds, 1),
        **machine(),
        **{f"{k}_images_per_s": round(v, 3) for k, v in rates.items()},
        **{k: round(v, 1) for k, v in speed.items() if k.endswith("_seconds")},
        **{f"max_pixel_diff_vs_loop_{k}": v for k, v in diff.items()}, **{f"{k}_error": v for k, v in errors.items()},
        "speedup_batched": round(rates["batched"] / rates["loop"], 2),
        "speedup": round(max(v for k, v in rates.items() if k != "loop") / rates["loop"], 2),
    }
    return print_result(result)


if __name__ == "__main__":
    main()
