"""Loaders and validators for the on-disk formats of the real datasets (reference/formats.md).

Every loader returns a pandas DataFrame keyed by a canonical string ``image_id`` and raises
:class:`biaslib.errors.DataLayoutError` (naming the path or column and the expected layout) when the
data is missing or malformed.
"""

from biaslib.data._common import check_images
from biaslib.data.cc3m import CC3MSample, ReadStats, iter_cc3m, list_shards
from biaslib.data.coco_bias import coco_caption_table, load_coco_bias
from biaslib.data.fairface import load_fairface
from biaslib.data.geode import load_geode
from biaslib.data.magbig import load_magbig_prompts
from biaslib.data.phase import load_phase

__all__ = [
    "CC3MSample",
    "ReadStats",
    "check_images",
    "coco_caption_table",
    "iter_cc3m",
    "list_shards",
    "load_coco_bias",
    "load_fairface",
    "load_geode",
    "load_magbig_prompts",
    "load_phase",
]
