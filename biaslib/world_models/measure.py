"""Attributes of generated world images and their comparison with the real (training) data.

For the simulated generator the drawn attributes are recorded with every image (exact ground truth).
For a learned generator (the tiny diffusion pipeline, or any other) they are read from pixels by the
world's attribute classifier, whose own accuracy is known (:func:`~biaslib.world_models.classifier.world_classifier`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from biaslib.data.generated import load_generated_images, read_generated
from biaslib.metrics.estimate import Estimate
from biaslib.metrics.intervals import percentile_interval
from biaslib.metrics.magbig import mean_l1_difference, parity_l1
from biaslib.world import World
from biaslib.world_models.classifier import HEADS, classify_images, world_classifier

ATTRIBUTES = tuple(HEADS)


def generated_attributes(out_dir: str | Path, world: World, cache_dir: str | Path) -> pd.DataFrame:
    """One row per generated image: ``key``, ``prompt`` and the attributes of :data:`ATTRIBUTES`.

    Column ``labels`` says where they come from: ``simulator`` (ground truth) or ``classifier``.
    """
    records = read_generated(out_dir)
    if "sim_gender" in records.columns:
        frame = records[["key", "prompt"]].copy()
        for column in ATTRIBUTES:
            frame[column] = records[f"sim_{column}"]
        frame["labels"] = "simulator"
        return frame
    images = load_generated_images(out_dir, list(records["key"]))
    native = min(min(im.size) for im in images.values()) if images else world.config.image_size
    through = native if native < world.config.image_size else None
    model, _ = world_classifier(world, cache_dir, through_resolution=through)
    keys = list(records["key"])
    labels = classify_images(model, [images[k] for k in keys], world.config.image_size)
    frame = pd.concat([records[["key", "prompt"]].reset_index(drop=True), labels[list(ATTRIBUTES)]], axis=1)
    frame["labels"] = "classifier"
    return frame


def share_table(frames: Mapping[str, pd.DataFrame], column: str = "gender", value: str = "woman",
                by: str = "occupation") -> pd.DataFrame:
    """Tidy shares of ``column == value`` per ``by`` group for several sources.

    Returns columns ``by``, ``source``, ``share``, ``n``.
    """
    parts = []
    for source, frame in frames.items():
        grouped = frame.groupby(by)[column]
        parts.append(pd.DataFrame({by: grouped.size().index, "source": source,
                                   "share": grouped.apply(lambda s: float((s == value).mean())).values,
                                   "n": grouped.size().values}))
    return pd.concat(parts, ignore_index=True)


def mix_attributes(mix_dir: str | Path, generated: pd.DataFrame) -> pd.DataFrame:
    """Attributes of every person sample of a mixed dataset, from the source it shows.

    Real samples carry their world ground truth in the JSON (``world``); generated samples take the
    row of ``generated`` (from :func:`generated_attributes`) with the same key. Returns ``key``,
    ``source`` and :data:`ATTRIBUTES`; object samples are left out.
    """
    from biaslib.data.cc3m import iter_cc3m

    by_key = generated.set_index("key")
    rows = []
    for sample in iter_cc3m(mix_dir, decode=False):
        meta = sample.metadata
        truth = meta.get("world", {})
        if truth.get("kind") != "person":
            continue
        if meta.get("source") == "generated":
            values = by_key.loc[sample.key, list(ATTRIBUTES)].to_dict()
        else:
            values = {a: truth[a] for a in ATTRIBUTES}
        rows.append({"key": sample.key, "source": meta.get("source", "real"), **values})
    return pd.DataFrame(rows)


def skew_by_ratio(frames: Mapping[str, pd.DataFrame], column: str = "gender", value: str = "woman",
                  by: str = "occupation", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean over ``by`` groups of MAGBIG's L1 of the split, 2|share(column == value) − ½|
    (:func:`~biaslib.metrics.magbig.parity_l1`: 0 = 50/50 in every group, 1 = one value only), per mix (frames
    keyed by ratio code); the scale of the multilingual study's fairness scores.

    The 95% interval resamples the samples within each group (a binomial draw of each group's count,
    which is what resampling its members gives). Returns ``ratio`` (fraction), ``skew``, ``ci_low``,
    ``ci_high`` and ``generated_share`` (share of generated samples).
    """
    rng = np.random.default_rng(seed)
    out = []
    for code, frame in sorted(frames.items()):
        people = frame[frame[by] != "none"]
        grouped = people.groupby(by)[column]
        n = grouped.size().to_numpy()
        k = grouped.apply(lambda s: int((s == value).sum())).to_numpy()
        boot = rng.binomial(n[None, :], (k / n)[None, :], size=(n_boot, len(n))) / n[None, :]
        skews = parity_l1(boot).mean(axis=1)
        out.append({"ratio": int(code) / 100, "skew": float(parity_l1(k / n).mean()),
                    **dict(zip(("ci_low", "ci_high"), percentile_interval(skews, 0.95))),
                    "generated_share": float((frame["source"] == "generated").mean())})
    return pd.DataFrame(out)


def gender_count_table(frame: pd.DataFrame, column: str = "gender", by: str = "occupation") -> pd.DataFrame:
    """Per ``by`` group (``none`` left out) the counts of ``man`` and ``woman`` in ``column``: columns ``occupation``,
    ``man``, ``woman`` (the count table of :mod:`biaslib.metrics.magbig`)."""
    people = frame[frame[by] != "none"]
    counts = people.groupby(by)[column].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=["man", "woman"], fill_value=0)
    return counts.rename_axis(index="occupation", columns=None).reset_index()


def skew_change(frames: Mapping[str, pd.DataFrame], first: str, last: str, ci: float = 0.95) -> Estimate:
    """Change of the training data's gender skew (mean L1 over occupations) from mix ``first`` to mix ``last`` (ratio
    codes of ``frames``), tested: :func:`~biaslib.metrics.magbig.mean_l1_difference` (bias-corrected difference,
    interval and p-value of "no change"). It takes the two mixes as independent samples; nested mixes share their
    real samples, which makes the two sides positively correlated, so its interval is conservative here (wider than
    needed, never narrower). Returns its :class:`~biaslib.metrics.estimate.Estimate`: ``value`` (the corrected
    difference), ``ci_low``, ``ci_high``, ``p_value``, detail ``plug_in`` (the plug-in difference)."""
    return mean_l1_difference(gender_count_table(frames[last]), gender_count_table(frames[first]), ci=ci)

