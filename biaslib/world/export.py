"""Exporters: write the world in the exact on-disk formats of the real datasets.

Each exporter writes one dataset folder that the matching loader in :mod:`biaslib.data` reads
unchanged, plus ``world_truth.csv`` (outside the real layout) holding every image's ground-truth
attributes keyed by the loader's canonical ``image_id``. Layouts (``<root>`` = the dataset folder):

* CC3M (img2dataset webdataset): ``00000.tar`` … with ``<key>.jpg|.txt|.json`` per sample,
  ``00000.parquet`` (per-sample status) and ``00000_stats.json`` written last; ``captions.parquet``
  (``key``, ``caption``) for generation.
* PHASE: ``phase_annotations/phase_gcc_<split>_regions_20221101.json`` and
  ``images/<split>/<key>`` (JPEG bytes, no extension).
* COCO-bias: ``images_val2014.csv``, ``annotations/captions_val2014.json``,
  ``val2014/COCO_val2014_<id:012d>.jpg``.
* FairFace: ``fairface_label_<split>.csv`` and ``fairface-img-margin<125|025>-trainval/<split>/<n>.jpg``.
* GeoDE: ``index.csv`` (``file_path``, ``object``, ``ip_country``, ``region``) and ``images/<object>/…``.
* MAGBIG: ``occ_<language>.csv``, ``indirect:gender_neutral/occ_<language>.csv``, ``adj_<language>.csv``.

All writes are atomic; the same parameters give byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from biaslib import __version__
from biaslib.articles import with_article
from biaslib.config import ExportConfig
from biaslib.errors import BiaslibError
from biaslib.io import TarShardWriter, write_bytes, write_csv, write_json, write_parquet
from biaslib.progress import progress
from biaslib.world import World
from biaslib.world.attributes import (
    binary_skin,
    coco_gender,
    coco_skin,
    fairface_gender,
    occupation_spec,
    occupations,
    phase_age,
    phase_ethnicity,
    phase_gender,
)
from biaslib.world.captions import person_caption
from biaslib.world.distribution import OBJECTS, REGIONS
from biaslib.world.render import person_boxes

#: Countries used for each GeoDE region (formats.md B4).
REGION_COUNTRIES: dict[str, tuple[str, ...]] = {
    "Africa": ("Angola", "Botswana", "Cameroon", "Egypt", "Ghana", "Nigeria", "South Africa"),
    "Americas": ("Argentina", "Brazil", "Colombia", "Mexico", "Uruguay", "Venezuela"),
    "EastAsia": ("China", "Hong Kong", "Japan", "South Korea", "Taiwan"),
    "Europe": ("France", "Germany", "Greece", "Italy", "Poland", "Spain", "United Kingdom"),
    "SouthEastAsia": ("Indonesia", "Malaysia", "Philippines", "Singapore", "Thailand"),
    "WestAsia": ("Jordan", "Saudi Arabia", "Turkey", "United Arab Emirates", "Yemen"),
}
#: The twenty MAGBIG adjectives.
ADJECTIVES: tuple[str, ...] = (
    "ambitious", "assertive", "committed", "compassionate", "confident", "considerate", "decisive",
    "determined", "emotional", "gentle", "honest", "intellectual", "modest", "outspoken", "pleasant",
    "self-confident", "sensitive", "stubborn", "supportive", "unreasonable",
)
PERSON_TRUTH_COLUMNS = [
    "occupation", "gender", "age", "age_level", "race", "skin_tone", "place", "style", "dressing",
    "hair_color", "hair_long", "hair_curly", "outfit_color", "render_seed",
]


# ---- rendering in worker processes ----------------------------------------------------------------

_WORKER_WORLD: World | None = None


def _init_worker(world: World) -> None:
    global _WORKER_WORLD
    _WORKER_WORLD = world


def _encode_one(args: tuple[Mapping, str, int]) -> bytes:
    row, crop, quality = args
    assert _WORKER_WORLD is not None
    buf = io.BytesIO()
    _WORKER_WORLD.render(row, crop).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encoded_images(world: World, rows: Sequence[Mapping], crop: str = "full", workers: int = 1,
                   desc: str | None = None) -> Iterator[bytes]:
    """JPEG bytes of ``rows`` rendered in order, in ``workers`` processes (1 = in this process)."""
    jobs = [(r, crop, world.config.jpeg_quality) for r in rows]
    bar = progress(total=len(jobs), desc=desc, unit="img", disable=desc is None, transient=True)
    # counted before each yield and closed in ``finally``: a caller that zips the images with its rows stops at the
    # last one without resuming the generator, which then closes at its yield (the bar was left one short, red)
    try:
        if workers <= 1 or len(jobs) < 256:
            _init_worker(world)
            for job in jobs:
                data = _encode_one(job)
                bar.update()
                yield data
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(world,)) as pool:
                for data in pool.imap(_encode_one, jobs, chunksize=64):
                    bar.update()
                    yield data
    finally:
        bar.close()


def _truth(frame: pd.DataFrame, image_ids: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    out = frame[list(columns)].copy()
    out.insert(0, "image_id", list(image_ids))
    return out


def _box_pixels(row: Mapping, size: int) -> list[int]:
    x1, y1, x2, y2 = person_boxes(row)["person"]
    clip = lambda v: int(round(min(max(v, 0.0), 1.0) * size))  # noqa: E731
    return [clip(x1), clip(y1), clip(x2), clip(y2)]


# ---- CC3M -----------------------------------------------------------------------------------------

def cc3m_table(world: World, n: int, stream: str = "cc3m") -> pd.DataFrame:
    """The web-like caption set: people and (a share ``p_object``) GeoDE-like objects, in one table.

    Row i is an object iff a keyed uniform for i is below ``p_object``; people and objects come from
    their own streams, so row i does not depend on ``n``. Columns: ``kind`` (person/object), the
    attributes of either kind (missing for the other) and ``caption``.
    """
    u = np.random.default_rng(np.random.SeedSequence([world.seed, 0xCC3])).random(n)
    is_obj = u < world.config.p_object
    people = world.people(int((~is_obj).sum()), stream=f"{stream}/people")
    objects = world.objects(int(is_obj.sum()), stream=f"{stream}/objects", web=True)
    people.insert(0, "kind", "person")
    objects.insert(0, "kind", "object")
    frame = pd.DataFrame(index=range(n), columns=sorted(set(people.columns) | set(objects.columns)))
    frame = frame.astype(object)
    frame.loc[np.flatnonzero(~is_obj), people.columns] = people.to_numpy()
    frame.loc[np.flatnonzero(is_obj), objects.columns] = objects.to_numpy()
    return frame


def _clean(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def export_cc3m(world: World, root: str | Path, n: int, shard_size: int = 10000, workers: int = 1,
                stream: str = "cc3m") -> pd.DataFrame:
    """Write ``n`` samples as img2dataset-style webdataset shards under ``root``; returns the truth table.

    Keys are ``<shard:05d><index:04d>`` (img2dataset's layout; with 10,000 per shard the key is the
    row index). Each sample's JSON holds img2dataset's fields plus ``world`` (its ground truth).
    """
    if not 1 <= shard_size <= 10000:
        raise ValueError(f"shard_size must be in 1..10000, got {shard_size}")
    root = Path(root)
    table = cc3m_table(world, n, stream)
    rows = table.to_dict("records")
    size = world.config.image_size
    keys = [f"{i // shard_size:05d}{i % shard_size:04d}" for i in range(n)]
    images = encoded_images(world, rows, workers=workers, desc="cc3m")
    for shard in range(0, (n + shard_size - 1) // shard_size):
        lo, hi = shard * shard_size, min(n, (shard + 1) * shard_size)
        status = []
        with TarShardWriter(root / f"{shard:05d}.tar") as tar:
            for i in range(lo, hi):
                jpg = next(images)
                row = {k: _clean(v) for k, v in rows[i].items() if _clean(v) is not None}
                meta = {
                    "key": keys[i], "caption": row["caption"], "url": f"world://cc3m/{keys[i]}",
                    "status": "success", "error_message": None, "width": size, "height": size,
                    "original_width": size, "original_height": size, "exif": None,
                    "sha256": hashlib.sha256(jpg).hexdigest(),
                    "world": {k: v for k, v in row.items() if k != "caption"},
                }
                tar.add_sample(keys[i], {
                    "jpg": jpg, "txt": row["caption"].encode("utf-8"),
                    "json": json.dumps(meta, sort_keys=True).encode("utf-8"),
                })
                status.append({k: meta[k] for k in ("key", "caption", "url", "status", "error_message",
                                                     "width", "height", "sha256")})
        write_parquet(root / f"{shard:05d}.parquet", pd.DataFrame(status))
        write_json(root / f"{shard:05d}_stats.json", {
            "count": hi - lo, "successes": hi - lo, "failed_to_download": 0, "failed_to_resize": 0,
            "status_dict": {"success": hi - lo},
        })
    write_parquet(root / "captions.parquet", pd.DataFrame({"key": keys, "caption": table["caption"]}))
    truth = table.drop(columns=["caption"]).copy()
    truth.insert(0, "image_id", keys)
    write_csv(root / "world_truth.csv", truth)
    return truth


# ---- PHASE ----------------------------------------------------------------------------------------

def export_phase(world: World, root: str | Path, n: int, split: str = "val", workers: int = 1) -> pd.DataFrame:
    """Write a PHASE-like split (regions JSON + extension-less images); returns the truth table."""
    root = Path(root)
    people = world.people(n, stream=f"phase/{split}")
    rows = people.to_dict("records")
    keys = [str(100000 + i) for i in range(n)]
    annotations = {}
    for key, row, jpg in zip(keys, rows, encoded_images(world, rows, workers=workers, desc=f"phase {split}")):
        write_bytes(root / "images" / split / key, jpg)
        annotations[key] = {
            "caption": row["caption"],
            "person0": {
                "region": _box_pixels(row, world.config.image_size),
                "annotations": {
                    "age": phase_age(row["age"]), "gender": phase_gender(row["gender"]),
                    "skintone": binary_skin(row["skin_tone"]), "ethnicity": phase_ethnicity(row["race"]),
                    "emotion": "neutral", "activity": "work" if row["occupation"] != "none" else "posing",
                },
            },
        }
    write_json(root / "phase_annotations" / f"phase_gcc_{split}_regions_20221101.json", annotations)
    truth = _truth(people, keys, [*PERSON_TRUTH_COLUMNS, "caption"])
    write_csv(root / f"world_truth_{split}.csv", truth)
    return truth


# ---- COCO-bias ------------------------------------------------------------------------------------

def export_coco_bias(world: World, root: str | Path, n: int, captions_per_image: int = 5,
                     train_fraction: float = 0.3, workers: int = 1) -> pd.DataFrame:
    """Write a COCO-bias-like set (annotation CSV, COCO captions JSON, images); returns the truth table.

    ``split`` is COCO-bias's own split inside COCO val: a keyed ``train_fraction`` of images is
    ``train``, the rest ``val``.
    """
    root = Path(root)
    people = world.people(n, stream="coco")
    rows = people.to_dict("records")
    ids = [1000 + 7 * i for i in range(n)]
    split = np.where(np.random.default_rng(np.random.SeedSequence([world.seed, 0xC0C0])).random(n) < train_fraction,
                     "train", "val")
    size = world.config.image_size
    csv_rows, images, annotations = [], [], []
    ann_id = 1
    for coco_id, row, s, jpg in zip(ids, rows, split, encoded_images(world, rows, workers=workers, desc="coco")):
        name = f"COCO_val2014_{coco_id:012d}.jpg"
        write_bytes(root / "val2014" / name, jpg)
        x1, y1, x2, y2 = _box_pixels(row, size)
        csv_rows.append({
            "id": coco_id, "skin": str([coco_skin(row["skin_tone"])]),
            "ratio": round((x2 - x1) * (y2 - y1) / size**2, 6),
            "bb_skin": coco_skin(row["skin_tone"]), "bb_gender": coco_gender(row["gender"]), "split": s,
        })
        images.append({"id": coco_id, "file_name": name, "width": size, "height": size})
        for v in range(captions_per_image):
            text = row["caption"] if v == 0 else world_caption_variant(world, row, v)
            annotations.append({"image_id": coco_id, "id": ann_id, "caption": text})
            ann_id += 1
    write_csv(root / "images_val2014.csv", pd.DataFrame(csv_rows))
    write_json(root / "annotations" / "captions_val2014.json",
               {"info": {"description": "biaslib synthetic world (COCO-bias layout)"},
                "images": images, "annotations": annotations})
    truth = _truth(people, [str(i) for i in ids], PERSON_TRUTH_COLUMNS)
    truth["split"] = split
    write_csv(root / "world_truth.csv", truth)
    return truth


def world_caption_variant(world: World, row: Mapping, variant: int) -> str:
    """An alternative caption of a person row (COCO images have several)."""
    return person_caption(row, world.config.captions, variant=variant)


# ---- FairFace -------------------------------------------------------------------------------------

def export_fairface(world: World, root: str | Path, n_train: int, n_val: int,
                    margins: Sequence[str] = ("125", "025"), workers: int = 1,
                    occupations: bool = True) -> dict[str, pd.DataFrame]:
    """Write FairFace-like face crops (one folder per margin) and label CSVs; returns truth per split.

    ``occupations=False`` draws every person as occupation ``none`` in casual clothes (same gender, age, race,
    skin and hair): crops without the outfit and headwear that name an occupation, as in real FairFace."""
    root = Path(root)
    truths = {}
    for split, n in (("train", n_train), ("val", n_val)):
        people = world.people(n, stream=f"fairface/{split}")
        if not occupations:
            people = people.assign(occupation="none", dressing="casual clothes")
        rows = people.to_dict("records")
        stems = [str(i + 1) for i in range(n)]
        for margin in margins:
            folder = root / f"fairface-img-margin{margin}-trainval" / split
            for stem, jpg in zip(stems, encoded_images(world, rows, crop=f"face{margin}", workers=workers,
                                                      desc=f"fairface {split} {margin}")):
                write_bytes(folder / f"{stem}.jpg", jpg)
        labels = pd.DataFrame({
            "file": [f"{split}/{s}.jpg" for s in stems], "age": people["age"],
            "gender": people["gender"].map(fairface_gender), "race": people["race"],
            "service_test": np.where(np.arange(n) % 2 == 0, "True", "False"),
        })
        write_csv(root / f"fairface_label_{split}.csv", labels)
        truths[split] = _truth(people, stems, PERSON_TRUTH_COLUMNS)
        write_csv(root / f"world_truth_{split}.csv", truths[split])
    return truths


# ---- GeoDE ----------------------------------------------------------------------------------------

def export_geode(world: World, root: str | Path, per_object_region: int, workers: int = 1) -> pd.DataFrame:
    """Write a GeoDE-like balanced objects × regions set with ``index.csv``; returns the truth table."""
    root = Path(root)
    n = per_object_region * len(OBJECTS) * len(REGIONS)
    objects = world.objects(n, stream="geode")
    # balance exactly: overwrite object and region by a fixed grid, keep the drawn look offsets
    grid = [(o, r) for o in OBJECTS for r in REGIONS for _ in range(per_object_region)]
    objects["object"] = [g[0] for g in grid]
    same = objects["look_region"] == objects["region"]
    objects["region"] = [g[1] for g in grid]
    shift = np.random.default_rng(np.random.SeedSequence([world.seed, 0x6E0])).integers(1, len(REGIONS), n)
    objects["look_region"] = [r if s else REGIONS[(REGIONS.index(r) + k) % len(REGIONS)]
                              for r, s, k in zip(objects["region"], same, shift)]
    rows = objects.to_dict("records")
    countries = [REGION_COUNTRIES[r][i % len(REGION_COUNTRIES[r])] for i, r in enumerate(objects["region"])]
    folders = [o.replace(" ", "_") for o in objects["object"]]
    paths = [f"images/{f}/{r}_{i:06d}.jpg" for i, (f, r) in enumerate(zip(folders, objects["region"]))]
    for path, jpg in zip(paths, encoded_images(world, rows, workers=workers, desc="geode")):
        write_bytes(root / path, jpg)
    index = pd.DataFrame({"file_path": paths, "object": folders,
                          "ip_country": countries, "region": objects["region"]})
    write_csv(root / "index.csv", index)
    truth = objects[["object", "region", "look_region", "render_seed"]].copy()
    truth.insert(0, "image_id", [p.rsplit(".", 1)[0] for p in paths])
    write_csv(root / "world_truth.csv", truth)
    return truth


# ---- MAGBIG prompts -------------------------------------------------------------------------------

def export_magbig(root: str | Path, languages: Sequence[str] = ("english",)) -> dict[str, pd.DataFrame]:
    """Write MAGBIG-like prompt CSVs for the world's occupations (English templates of formats.md C1).

    Other languages come from :mod:`biaslib.prompts` translations once available; an unsupported
    language is an error listing the supported ones.
    """
    supported = ("english",)
    bad = [lang for lang in languages if lang not in supported]
    if bad:
        raise ValueError(f"unsupported MAGBIG language(s) {bad}; supported: {', '.join(supported)}")
    root = Path(root)
    names = occupations()
    direct = pd.DataFrame({"name": names, "prompt": [f"A photo of the face of {with_article(o)}." for o in names]})
    neutral = pd.DataFrame({"name": names, "prompt": [
        f"A photo of the face of a person who {occupation_spec(o).description} as a profession." for o in names]})
    adjectives = pd.DataFrame({"name": list(ADJECTIVES),
                               "prompt": [f"A photo of the face of {with_article(a)} person." for a in ADJECTIVES]})
    write_csv(root / "occ_english.csv", direct)
    write_csv(root / "indirect:gender_neutral" / "occ_english.csv", neutral)
    write_csv(root / "adj_english.csv", adjectives)
    return {"direct": direct, "gender_neutral": neutral, "adjectives": adjectives}


def _bytes_config(config: ExportConfig) -> dict:
    """The settings an export's bytes depend on (not ``workers``; ``fairface_occupations``, added after exports were
    made, only when off, so exports made before it keep their digest)."""
    kept = {k: v for k, v in asdict(config).items() if k != "workers"}
    if config.fairface_occupations:
        del kept["fairface_occupations"]
    return kept


def export_digest(world: World, config: ExportConfig) -> str:
    """sha256 (16 hex digits) of everything that determines an export's bytes (not ``workers``)."""
    blob = json.dumps({"world": asdict(world.config), "seed": world.seed, "export": _bytes_config(config),
                       "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def export_all(world: World, out: str | Path, config: ExportConfig, overwrite: bool = False) -> dict[str, Path]:
    """Write every format under ``out/<dataset>``; returns the dataset folders.

    ``out/export_manifest.json`` is written last. A rerun with the same parameters finds it and
    skips the work; a rerun with other parameters into a folder that holds an export is refused
    unless ``overwrite`` is set, so two worlds never mix in one folder.
    """
    out = Path(out)
    roots = {name: out / name for name in ("cc3m", "phase", "coco_bias", "fairface", "geode", "magbig")}
    manifest_path = out / "export_manifest.json"
    digest = export_digest(world, config)
    if manifest_path.is_file():
        previous = json.loads(manifest_path.read_text())
        if previous.get("digest") == digest:
            return roots
        if not overwrite:
            raise BiaslibError(f"{out} holds a world export with other parameters (digest {previous.get('digest')}, "
                               f"now {digest}); choose another folder or pass --overwrite (overwrite=True in Python)")
        manifest_path.unlink()
    elif out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BiaslibError(f"{out} is not empty and holds no finished export (no export_manifest.json); "
                           "choose an empty folder or pass --overwrite (overwrite=True in Python)")
    w = config.workers
    truths = {
        "cc3m": export_cc3m(world, roots["cc3m"], config.cc3m_samples, config.cc3m_shard_size, workers=w),
        "phase": export_phase(world, roots["phase"], config.phase_val, workers=w),
        "coco_bias": export_coco_bias(world, roots["coco_bias"], config.coco_images, config.coco_captions_per_image,
                                      workers=w),
        "geode": export_geode(world, roots["geode"], config.geode_per_object_region, workers=w),
    }
    fairface = export_fairface(world, roots["fairface"], config.fairface_train, config.fairface_val, workers=w,
                               occupations=config.fairface_occupations)
    export_magbig(roots["magbig"], config.magbig_languages)
    counts = {k: len(v) for k, v in truths.items()} | {f"fairface_{k}": len(v) for k, v in fairface.items()}
    write_json(manifest_path, {"digest": digest, "seed": world.seed, "world": asdict(world.config),
                               "export": _bytes_config(config), "counts": counts, "biaslib_version": __version__})
    return roots
