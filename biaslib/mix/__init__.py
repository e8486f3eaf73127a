"""Nested ratio mixing of real and generated CC3M shards, with a manifest and a verifier.

At ratio r the mixed dataset keeps every usable real sample (N of them); a seeded subset of
``round(r·N)`` keys uses the generated image instead of the real one (design.md, "Pipeline
semantics" → Mixing). Unlike the original study's script (formats.md A3) nothing is dropped: keys
without a generated image stay real, every sample keeps its caption and all its JSON fields plus
``"source"``, the generated image keeps its own extension (no PNG bytes under a ``.jpg`` name), the
choice is a keyed hash (so the set at 0.2 ⊂ the set at 0.4 ⊂ …, reproducibly), the count is exact
and a manifest records what was done.

Layouts (``<code>`` is the ratio code of :mod:`biaslib.ratios`, e.g. ``020``)::

    <real_root>/               img2dataset webdataset shards: 00000.tar … (<key>.jpg|.txt|.json)
    <generated_root>/          biaslib.generate output (GENERATED_LAYOUT below)
    <out_root>/mix_<code>/
      00000.tar …              one shard per real shard, same name, same sample order
      00000_stats.json …       per shard: counts per source, inputs, sha256; written after the tar
      manifest.json            written last (see :func:`mix`)

Shards are read through a memory map and parsed header by header (:func:`scan_tar`): no image is
decoded and member bytes are copied as they are. Every file is written atomically
(:class:`~biaslib.io.TarShardWriter`, :func:`~biaslib.io.write_json`).

Modules: ``tar`` (tar parsing), ``generated_index`` (which key has a usable generated image, where),
``selection`` (which keys use it at a ratio), ``real`` (the real shards, corrupt samples skipped and
counted), ``mixing`` (:func:`mix`: claim, shards, manifest), ``verification`` (:func:`verify`).
"""

from biaslib.mix.generated_index import GENERATED_LAYOUT, GeneratedEntry, GeneratedIndex, index_generated
from biaslib.mix.mixing import MANIFEST_FORMAT, mix, mix_run
from biaslib.mix.selection import SELECTION_RULE, ShortfallError, select_generated, selection_hash, target_count
from biaslib.mix.tar import TarMember, TarScan, image_format, scan_tar, split_member_name
from biaslib.mix.verification import VerifyReport, verify

__all__ = [
    "GENERATED_LAYOUT",
    "MANIFEST_FORMAT",
    "SELECTION_RULE",
    "GeneratedEntry",
    "GeneratedIndex",
    "ShortfallError",
    "TarMember",
    "TarScan",
    "VerifyReport",
    "image_format",
    "index_generated",
    "mix",
    "mix_run",
    "scan_tar",
    "select_generated",
    "selection_hash",
    "split_member_name",
    "target_count",
    "verify",
]
