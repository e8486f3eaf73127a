"""Local files a user points a command at: a folder of images or webdataset shards, a table of texts."""

from __future__ import annotations

from pathlib import Path

from biaslib.errors import BiaslibError


def read_images(path: Path) -> tuple[list[str], list, list[str] | None]:
    """``(ids, PIL images, prompts or None)`` from an image folder or webdataset shards (prompts from
    the samples' ``.txt``)."""
    from PIL import Image

    from biaslib.data.cc3m import iter_cc3m

    source, ids = image_source(path)
    if isinstance(source, list):
        return ids, [Image.open(f).convert("RGB") for f in source], None
    samples = list(iter_cc3m(source))
    return [s.key for s in samples], [s.image for s in samples], [s.caption for s in samples]


#: Image file suffixes a folder is read for.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def image_source(path: Path) -> tuple[Path | list[Path], list[str] | None]:
    """``(source, ids)``: shards stay a path (folder of ``.tar``, one ``.tar`` or a brace pattern; ids =
    sample keys); a folder of image files becomes its sorted file list, ids = paths relative to it."""
    if path.is_dir() and not any(path.glob("*.tar")):
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BiaslibError(f"{path} holds neither webdataset shards (*.tar) nor images "
                               f"({', '.join(IMAGE_SUFFIXES)})")
        return files, [f.relative_to(path).as_posix() for f in files]
    return path, None


def read_text_table(path: Path) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` from a CSV or parquet table with columns ``id`` and ``text``."""
    import pandas as pd

    if not path.is_file():
        raise BiaslibError(f"no text table {path}: expected a CSV or parquet file with columns id, text")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"id", "text"} - set(frame.columns)
    if missing:
        raise BiaslibError(f"{path} lacks column(s) {sorted(missing)}; expected columns id, text")
    return frame["id"].astype(str).tolist(), frame["text"].astype(str).tolist()

