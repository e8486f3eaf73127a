"""Benchmark: faces/s of each face detector and classifier, batched vs one image at a time.

Images: 256 × 256 crops of scikit-image's astronaut photo around the face, with seeded random
shifts, zooms and mirror flips (one face each). Detectors ``none``, ``haar``, ``hog``, ``mtcnn``
run on 32 images per call (MTCNN stacks equal-size images into one batch) and on one image per
call; classifiers ``onnx`` (gender), ``fairface`` (ResNet-34 at 224 px, random weights: speed only)
and ``clip`` (biaslib's tiny RN config, random weights) classify the MTCNN boxes with
``batch_size`` 32 and 1. The main pipeline, MTCNN + ONNX gender through
:func:`biaslib.faces.analyse_images`, gives ``speedup`` = batched / one-at-a-time faces/s.
Each rate is the best of two timed runs after a warm-up. Torch and onnxruntime use their default
threads (set ``OMP_NUM_THREADS`` to pin torch's).

Usage: ``python bench/faces.py [--quick]``; the last line is ``RESULT {json}``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from _common import machine, print_result
from PIL import Image
from skimage import data

from biaslib.faces import analyse_images, create_classifier, create_detector, detect_faces, list_detectors

FACE = (175, 65, 270, 170)  # the astronaut's face box in the 512 × 512 photo


def make_images(n: int, size: int, seed: int) -> list[np.ndarray]:
    """``n`` ``(size, size, 3)`` crops around the face: random zoom (face 25–45 % of the side), shift, flip."""
    photo = data.astronaut()
    rng = np.random.default_rng(seed)
    cx, cy, side = (FACE[0] + FACE[2]) / 2, (FACE[1] + FACE[3]) / 2, FACE[2] - FACE[0]
    out = []
    for _ in range(n):
        crop = side / rng.uniform(0.25, 0.45)
        x0 = np.clip(cx - crop / 2 + rng.uniform(-0.15, 0.15) * crop, 0, 512 - crop)
        y0 = np.clip(cy - crop / 2 + rng.uniform(-0.15, 0.15) * crop, 0, 512 - crop)
        image = Image.fromarray(photo).resize((size, size), Image.Resampling.BILINEAR,
                                              box=(x0, y0, x0 + crop, y0 + crop))
        out.append(np.asarray(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else image))
    return out


def faces_per_s(run: Callable[[], object], n_faces: int, repeats: int = 2) -> float:
    """Faces per second of the fastest of ``repeats`` calls of ``run``, after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n_faces / best


def bench_detectors(images: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Batched and one-at-a-time faces/s of every detector (one face per image)."""
    out = {}
    for name in list_detectors():
        detector = create_detector(name)
        batched = faces_per_s(lambda d=detector: detect_faces(images, d, batch_size=32), len(images))
        single = faces_per_s(lambda d=detector: [d.detect([im]) for im in images], len(images))
        out[name] = {"batched": round(batched, 1), "single": round(single, 1)}
    return out


def classifiers() -> dict[str, Callable[[int], object]]:
    """Name → factory taking ``batch_size``."""
    from biaslib.faces import fairface_model
    from biaslib.models import load_clip

    clip = load_clip(None, "biaslib-tiny-rn", device="cpu", precision="fp32")
    model = fairface_model()
    return {
        "onnx": lambda b: create_classifier("onnx", ("gender",), batch_size=b),
        "fairface": lambda b: create_classifier("fairface", model, batch_size=b),
        "clip": lambda b: create_classifier("clip", clip, batch_size=b),
    }


def bench_classifiers(images: list[np.ndarray], boxes: list[np.ndarray], names: list[str]) -> dict[str, dict]:
    """Batched (32) and one-at-a-time faces/s of each classifier on given boxes."""
    n_faces = sum(len(b) for b in boxes)
    out = {}
    for name, factory in classifiers().items():
        if name not in names:
            continue
        batched, single = factory(32), factory(1)
        out[name] = {
            "batched": round(faces_per_s(lambda c=batched: c.predict(images, boxes), n_faces), 1),
            "single": round(faces_per_s(lambda c=single: [c.predict([im], [b]) for im, b in zip(images, boxes)],
                                        n_faces), 1),
        }
    return out


def bench_main(images: list[np.ndarray]) -> dict[str, float]:
    """MTCNN + ONNX gender end to end: batch 32 vs one image (and one face) at a time."""
    detector = create_detector("mtcnn")
    batched_cls = create_classifier("onnx", ("gender",), batch_size=32)
    single_cls = create_classifier("onnx", ("gender",), batch_size=1)
    frame = analyse_images(images, detector, batched_cls, batch_size=32)
    found = int((frame["n_faces"] == 1).sum())
    batched = faces_per_s(lambda: analyse_images(images, detector, batched_cls, batch_size=32), len(images))
    single = faces_per_s(lambda: analyse_images(images, detector, single_cls, batch_size=1), len(images))
    return {"batched": round(batched, 1), "single": round(single, 1), "single_face_images": found,
            "read_as_woman": int((frame["outcome"] == "woman").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 images, FairFace on 8 (≤ 60 s)")
    parser.add_argument("--n", type=int, default=None, help="images (default 16 quick, 96 full)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    args = parser.parse_args()
    n = args.n or (16 if args.quick else 96)
    images = make_images(n, args.size, seed=0)
    start = time.perf_counter()
    detectors = bench_detectors(images)
    boxes = [b[:1] for b in create_detector("mtcnn").detect(images)]
    cls = bench_classifiers(images, boxes, ["onnx", "clip"])
    heavy = n // 2 if args.quick else n
    cls.update(bench_classifiers(images[:heavy], boxes[:heavy], ["fairface"]))
    pipeline = bench_main(images)
    for kind, table in (("detector", detectors), ("classifier", cls)):
        for name, v in table.items():
            print(f"{kind:10s} {name:9s} batched {v['batched']:8.1f} faces/s   one at a time {v['single']:8.1f}")
    print(f"main      mtcnn+onnx batched {pipeline['batched']:8.1f} faces/s   one at a time {pipeline['single']:8.1f}")
    result = {
        "n_images": n, "image_size": args.size, **machine(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "detectors": detectors, "classifiers": cls,
        "main": "mtcnn+onnx", "main_faces_per_s": pipeline, "seconds": round(time.perf_counter() - start, 1),
        "speedup": round(pipeline["batched"] / pipeline["single"], 2),
    }
    print_result(result)


if __name__ == "__main__":
    main()
