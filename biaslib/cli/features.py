"""``biaslib features …``: image and text embeddings of any open_clip checkpoint into a feature store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from biaslib.data.local_files import image_source, read_text_table
from biaslib.errors import BiaslibError


def cmd_features_extract(args: argparse.Namespace) -> int:
    """Embed images (a folder, a file list, or webdataset shards) and/or texts with an open_clip checkpoint
    and store them (one ``.npy`` + ids per model × dataset) in a FeatureStore folder."""
    from biaslib.features import FeatureStore, extract_image_features, extract_text_features
    from biaslib.models import load_clip

    model, preprocess, tokenizer = load_clip(args.checkpoint, args.model, device=args.device)
    store = FeatureStore(args.store)
    written = {}
    if args.images is not None:
        source, ids = image_source(args.images)
        features = extract_image_features(model, preprocess, source, ids, batch_size=args.batch_size,
                                          workers=args.workers, precision=args.precision,
                                          encode_in=args.encode_in, progress=True)
        written["images"] = str(store.save(args.name, f"{args.dataset}_images", features))
    if args.texts is not None:
        ids, texts = read_text_table(args.texts)
        features = extract_text_features(model, tokenizer, texts, ids, batch_size=args.batch_size,
                                         precision=args.precision)
        written["texts"] = str(store.save(args.name, f"{args.dataset}_texts", features))
    if not written:
        raise BiaslibError("nothing to embed: give --images and/or --texts")
    print(json.dumps(written))
    return 0


def add_commands(steps: argparse._SubParsersAction) -> None:
    """``biaslib features …``: batched CLIP embeddings into a feature store."""
    feats = steps.add_parser("features", help="batched CLIP embeddings into a feature store")
    feat_actions = feats.add_subparsers(dest="action", required=True)
    extract = feat_actions.add_parser("extract", help="embed images and/or texts with an open_clip checkpoint")
    extract.add_argument("--checkpoint", type=Path, required=True, help="open_clip checkpoint (.pt or .safetensors)")
    extract.add_argument("--model", default="biaslib-tiny-rn", help="open_clip model name of the checkpoint")
    extract.add_argument("--images", type=Path, default=None, help="image folder, .tar shard, shard folder or pattern")
    extract.add_argument("--texts", type=Path, default=None, help="CSV/parquet table with columns id, text")
    extract.add_argument("--store", type=Path, required=True, help="feature store folder")
    extract.add_argument("--name", required=True, help="model name in the store, e.g. world_default_020")
    extract.add_argument("--dataset", required=True, help="dataset name in the store, e.g. phase")
    extract.add_argument("--batch-size", type=int, default=256)
    extract.add_argument("--workers", type=int, default=1, help="image decoding processes")
    extract.add_argument("--encode-in", default="auto", choices=["auto", "main", "workers"],
                         help="where the image tower runs: this process, or (CPU) each worker on its own "
                              "batches; auto = workers on a CPU with --workers >= 2 where they pay off (shards "
                              "or >= 2,048 images, a model that does not dominate decoding)")
    extract.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    extract.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    extract.set_defaults(func=cmd_features_extract)
