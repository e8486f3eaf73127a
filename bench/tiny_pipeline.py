"""Benchmark: the world's tiny text-to-image pipeline — training speed and whether its samples show what was asked.

Trains :func:`biaslib.world_models.tiny_pipeline_training.train_world_pipeline` (12 CPU minutes, cached in
``runs/cache/tiny_pipeline``), trains the world's attribute classifier on renders degraded like the
generator's output (64→32 box, →64 bilinear, plus the classifier's blur/colour augmentation), then:

(a) occupation accuracy: ≥ 20 samples of "a photo of a <occupation>" for 20 occupations (DPMSolver,
    20 steps, guidance 3, per-image seeds), upsampled 32→64 bilinear and classified; chance is 1/41
    (40 occupations + none); ``speedup`` = accuracy / chance;
(b) the classifier on samples whose prompt states the attribute ("a photo of a woman", "… an elderly
    man", "… a black woman"): gender, age level and binarised skin tone accuracy.

    python bench/tiny_pipeline.py [--quick] [--minutes M] [--out DIR]

``--quick`` (≤ 60 s): a few seconds of training on 256 images in a temporary folder, few samples.

Training speed on a shared CPU: ``train_minutes`` is the wall time of the training loop summed over
resumed calls (other jobs included); ``train_images_per_s`` comes from the median update time, which
such jobs barely move; ``calibration_images_per_s`` is the speed that fixed the step budget. Two
PyTorch processes with 2 threads each on 2 cores slow each other down ~15× (OpenMP threads wait
for descheduled peers); ``OMP_NUM_THREADS=1`` keeps ~60% of the unloaded speed in that case.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, print_result
from PIL import Image

from biaslib.world import World
from biaslib.world.attributes import occupations
from biaslib.world.tiny_pipeline import WorldDiffusionPipeline
from biaslib.world_models.classifier import HEADS, images_to_tensor, labels_to_tensor, train_attribute_classifier
from biaslib.world_models.fidelity import occupation_fidelity, sample_images, stated_attribute_accuracy
from biaslib.world_models.tiny_pipeline_training import train_world_pipeline


def upsample(images: list[Image.Image], size: int = 64) -> list[Image.Image]:
    """Bilinear resize to ``size``×``size`` (the generator's 32×32 output → the classifier's 64×64)."""
    return [im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR) for im in images]


def degraded_renders(world: World, n: int, stream: str, low: int = 32) -> tuple[torch.Tensor, dict]:
    """``n`` world renders box-downsampled to ``low`` and upsampled back: images (n, 3, 64, 64), labels."""
    people = world.people(n, stream=stream)
    images = [world.render(row).resize((low, low), Image.Resampling.BOX) for row in people.to_dict("records")]
    return images_to_tensor(upsample(images, world.config.image_size)), labels_to_tensor(people, HEADS)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny step budget, few images, no caching (≤ 60 s)")
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget (full run)")
    parser.add_argument("--out", default="runs/cache/tiny_pipeline", help="pipeline cache folder (full run)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="fixed step budget instead of calibrating the minutes (for a busy shared CPU)")
    parser.add_argument("--text-encoder", default=None,
                        help="open_clip checkpoint or run folder whose text tower becomes the frozen text encoder "
                             "(e.g. runs/world_default/clip/world_default_000)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    world = World(seed=0)
    occs = occupations()
    if args.quick:
        minutes, n_images, n_cls, cls_epochs, per_occ, per_stated = 0.12, 256, 1500, 3, 3, 1
        chosen = occs[::10]
        scratch = tempfile.TemporaryDirectory(prefix="bench_tiny_pipeline_")
        out = Path(scratch.name) / "tiny_pipeline"
    else:
        scratch = None
        minutes, n_images, n_cls, cls_epochs, per_occ, per_stated = args.minutes, 24000, 12000, 4, 24, 16
        chosen = occs[::2]
        out = Path(args.out)

    start = time.perf_counter()
    cached = (out / "biaslib_train.json").is_file()
    train_world_pipeline(world, out, minutes=minutes, n_images=n_images, seed=0, max_steps=args.max_steps,
                         text_encoder=args.text_encoder, **({"calibration_steps": 4} if args.quick else {}))
    train_info = json.loads((out / "biaslib_train.json").read_text())
    train_wall = time.perf_counter() - start
    pipe = WorldDiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)

    x_train, y_train = degraded_renders(world, n_cls, "tiny_pipeline/classifier")
    x_val, y_val = degraded_renders(world, max(300, n_cls // 6), "tiny_pipeline/classifier_val")
    classifier, report = train_attribute_classifier(x_train, y_train, x_val, y_val, max_epochs=cls_epochs)

    start_sampling = time.perf_counter()
    sample_images(pipe, ["a photo of a nurse"] * 32, seed=0, batch_size=32)
    images_per_s = 32 / (time.perf_counter() - start_sampling)
    fidelity = occupation_fidelity(pipe, classifier, chosen, per_occ, seed=1000)
    occupation_accuracy = float(fidelity["correct"].mean())
    per_occupation = fidelity.groupby("prompted")["correct"].mean().round(3).to_dict()
    stated = stated_attribute_accuracy(pipe, classifier, per_stated, seed=5000)["accuracy"].round(3).to_dict()
    chance = 1 / len(HEADS["occupation"])
    result = {
        "quick": args.quick, **machine(), "cached": cached, "train_minutes": round(train_info["train_seconds"] / 60, 2),
        "train_images_per_s": round(train_info["images_per_s_median_step"], 1),
        "train_images_per_s_wall": round(train_info["images_per_s"], 1), "max_steps": train_info["max_steps"],
        "train_minutes_at_median_rate": round(train_info["max_steps"] * train_info["median_step_seconds"] / 60, 2),
        "calibration_images_per_s": round(train_info["calibration"]["images_per_s"], 1)
        if train_info["calibration"] else None, "fixed_max_steps": args.max_steps,
        "resumed_from": train_info["resumed_from"],
        "train_images": n_images, "final_loss": train_info["final_loss"],
        "train_wall_s_this_run": round(train_wall, 1),
        "classifier_val_accuracy_degraded_renders": {k: round(v, 3) for k, v in report.accuracy.items()},
        "sampling_images_per_s_batch32": round(images_per_s, 2),
        "occupations": len(chosen), "images_per_occupation": per_occ,
        "occupation_accuracy": round(occupation_accuracy, 3), "chance": round(chance, 4),
        "speedup": round(occupation_accuracy / chance, 2), "per_occupation_accuracy": per_occupation,
        "gender_accuracy_on_stated": stated["gender"], "age_accuracy_on_stated": stated["age_level"],
        "skin_accuracy_on_stated": stated["skin"], "images_per_stated_prompt": per_stated,
        "total_s": round(time.perf_counter() - start, 1),
    }
    print_result(result, hide=("per_occupation_accuracy",))
    if scratch is not None:
        scratch.cleanup()
    return result


if __name__ == "__main__":
    main()
