"""``biaslib faces …``: face detection and perceived-attribute classification."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.cli.arguments import (
    Registered,
)
from biaslib.data.local_files import read_images


def cmd_faces_analyse(args: argparse.Namespace) -> int:
    """Detect faces, classify the single-face images and write one row per image (CSV or parquet)."""
    from biaslib.faces import analyse_images, classifier_from_files
    from biaslib.io import write_csv, write_parquet

    ids, images, prompts = read_images(args.images)
    classifier = classifier_from_files(args.classifier, args.weights, args.clip_model)
    frame = analyse_images(images, args.detector, classifier, batch_size=args.batch_size, skin=args.skin,
                           progress=True)
    frame.insert(0, "id", ids)
    if prompts is not None:
        frame.insert(1, "prompt", prompts)
    (write_parquet if args.out.suffix == ".parquet" else write_csv)(args.out, frame)
    if "outcome" in frame:
        counts = {str(k): int(v) for k, v in frame["outcome"].value_counts().items()}
    else:
        counts = {"with_faces": int((frame["n_faces"] > 0).sum())}
    print(json.dumps({"out": str(args.out), "images": len(frame), **counts}))
    return 0


def _face_detectors() -> list[str]:
    from biaslib.faces import list_detectors

    return list_detectors()


def _face_classifiers() -> list[str]:
    from biaslib.faces import list_classifiers

    return ["none", *list_classifiers()]


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib faces …``: face detection and perceived-attribute classification."""
    facesp = steps.add_parser("faces", help="face detection and perceived-attribute classification")
    face_actions = facesp.add_subparsers(dest="action", required=True)
    analyse = face_actions.add_parser("analyse", help="one row per image: faces found, attributes of single faces")
    analyse.add_argument("--images", type=Path, required=True, help="image folder, .tar shard, shard folder or pattern")
    analyse.add_argument("--out", type=Path, required=True, help="output table (.csv or .parquet)")
    analyse.add_argument("--detector", default="mtcnn", choices=Registered(_face_detectors), metavar="NAME",
                         help="face detector: %(choices)s (default %(default)s)")
    analyse.add_argument("--classifier", default="onnx", choices=Registered(_face_classifiers), metavar="NAME",
                         help="perceived-attribute classifier: %(choices)s (default %(default)s)")
    analyse.add_argument("--weights", type=Path, default=None, help="FairFace weights or CLIP checkpoint (local)")
    analyse.add_argument("--clip-model", default="biaslib-tiny-rn", help="open_clip model name of --weights")
    analyse.add_argument("--skin", action="store_true", help="add ITA skin tone and its Monk-style bin")
    analyse.add_argument("--batch-size", type=int, default=32)
    analyse.set_defaults(func=cmd_faces_analyse)
