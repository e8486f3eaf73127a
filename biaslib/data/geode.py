"""GeoDE object images from six world regions (Ramaswamy et al. 2023; formats.md B4)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd

from biaslib.data._common import PathLike, layout_error, read_csv, read_labels, require_dir, require_unique

REGIONS = ("Africa", "Americas", "EastAsia", "Europe", "SouthEastAsia", "WestAsia")
COUNTRY_REGION: dict[str, str] = {
    **dict.fromkeys(
        ["Angola", "Botswana", "Cameroon", "Egypt", "Ghana", "Nigeria", "South Africa"], "Africa"
    ),
    **dict.fromkeys(["Argentina", "Brazil", "Colombia", "Mexico", "Uruguay", "Venezuela"], "Americas"),
    **dict.fromkeys(["China", "Hong Kong", "Japan", "South Korea", "Taiwan"], "EastAsia"),
    **dict.fromkeys(
        ["Bulgaria", "Cyprus", "France", "Germany", "Greece", "Ireland", "Italy", "Netherlands", "Poland",
         "Portugal", "Romania", "Spain", "Switzerland", "Ukraine", "United Kingdom"],
        "Europe",
    ),
    **dict.fromkeys(["Indonesia", "Malaysia", "Philippines", "Singapore", "Thailand"], "SouthEastAsia"),
    **dict.fromkeys(["Jordan", "Saudi Arabia", "Turkey", "United Arab Emirates", "Yemen"], "WestAsia"),
}

LAYOUT = """
<root>/
  index.csv        columns: file_path (relative to <root>), object, ip_country[, region]
  <file_path>      e.g. images/bag/<name>.jpg
"""


def _fold(text: str) -> str:
    """Case- and separator-insensitive form of a name (``"East_Asia"`` -> ``"eastasia"``)."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


_REGION_BY_FOLD = {_fold(region): region for region in REGIONS}
_COUNTRY_BY_FOLD = {_fold(country): country for country in COUNTRY_REGION}


def load_geode(root: PathLike) -> pd.DataFrame:
    """Load the GeoDE index.

    Columns: ``image_id`` (``file_path`` without its extension), ``file`` (absolute image path),
    ``object`` (class name as written in index.csv), ``region`` (one of :data:`REGIONS`; spelling
    variants such as ``East Asia`` are normalised; derived from ``ip_country`` via
    :data:`COUNTRY_REGION` when the CSV has no ``region`` column) and ``ip_country``.
    """
    root = require_dir(root, "GeoDE root", LAYOUT)
    index = root / "index.csv"
    if not index.is_file():
        raise layout_error(f"GeoDE index not found: {index}", LAYOUT)
    raw = read_csv(index, ["file_path", "object", "ip_country"], LAYOUT)
    if "region" in raw.columns:
        region = read_labels(raw["region"], REGIONS, index, "region",
                             repair=lambda v: _REGION_BY_FOLD.get(_fold(v)))
    else:
        countries = read_labels(raw["ip_country"], tuple(COUNTRY_REGION), index, "ip_country",
                                repair=lambda v: _COUNTRY_BY_FOLD.get(_fold(v)))
        region = countries.map(COUNTRY_REGION)
    frame = pd.DataFrame({
        "image_id": [str(PurePosixPath(p).with_suffix("")) for p in raw["file_path"]],
        "file": [str(root / p) for p in raw["file_path"]],
        "object": raw["object"],
        "region": region,
        "ip_country": raw["ip_country"],
    })
    require_unique(frame["image_id"], index)
    return frame
