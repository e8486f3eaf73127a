"""biaslib.figures and biaslib.world.gallery: what each figure draws is read back from the matplotlib objects
(data, bands, error bars, panels) and the files written; the gallery's sweeps against the world's renders."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from biaslib import figures  # noqa: E402
from biaslib.world import World, gallery  # noqa: E402
from biaslib.world.attributes import AGE_LEVELS, GENDERS, PLACES, SKIN_TONES, STYLES  # noqa: E402
from biaslib.world.distribution import OBJECTS, REGIONS  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_save_figure_writes_png_and_pdf_of_the_figure_size(tmp_path):
    fig, _ = plt.subplots(figsize=(2.0, 1.5))
    (tmp_path / "sub").mkdir()
    paths = figures.save_figure(fig, tmp_path / "sub" / "panel", dpi=100)
    assert [p.name for p in paths] == ["panel.png", "panel.pdf"]
    assert Image.open(paths[0]).size == (200, 150)
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["panel.pdf", "panel.png"]  # no temp files
    first = [p.read_bytes() for p in paths]
    import time

    time.sleep(1.1)  # a PDF creation date would change by now
    assert [p.read_bytes() for p in figures.save_figure(fig, tmp_path / "sub" / "panel", dpi=100)] == first


def test_image_grid_places_images_row_major_and_leaves_blanks():
    images = [np.full((4, 4, 3), i * 40, np.uint8) for i in range(5)]
    fig = figures.image_grid([*images[:3], None, *images[3:]], ncols=3, row_labels=["a", "b"],
                             col_labels=["x", "y", "z"], title="t")
    axes = fig.axes
    assert len(axes) == 6
    shown = [ax.images[0].get_array() if ax.images else None for ax in axes]
    assert shown[3] is None and shown[5] is not None
    for ax_index, image in zip((0, 1, 2, 4, 5), images):
        assert np.array_equal(np.asarray(shown[ax_index]), image)
    assert [axes[0].get_ylabel(), axes[3].get_ylabel()] == ["a", "b"]
    assert [ax.get_title() for ax in axes[:3]] == ["x", "y", "z"]


def test_line_plot_draws_sorted_lines_and_their_interval_band():
    frame = pd.DataFrame({"ratio": [1.0, 0.0, 0.5, 0.0, 1.0], "value": [3.0, 1.0, 2.0, 5.0, 6.0],
                          "low": [2.5, 0.5, 1.5, 4.5, 5.5], "high": [3.5, 1.5, 2.5, 5.5, 6.5],
                          "group": ["g", "g", "g", "h", "h"]})
    fig = figures.line_plot(frame, "ratio", "value", hue="group", ci=("low", "high"), reference=0.5,
                            reference_label="chance")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["g"].get_xdata()) == [0.0, 0.5, 1.0] and list(lines["g"].get_ydata()) == [1.0, 2.0, 3.0]
    assert list(lines["h"].get_ydata()) == [5.0, 6.0] and list(lines["chance"].get_ydata()) == [0.5, 0.5]
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.5 and band[:, 1].max() == 3.5  # group g's band: its lowest low to highest high


def test_facet_lines_one_panel_per_column_and_row_with_a_legend_per_row():
    frame = pd.DataFrame([{"experiment": e, "attribute": a, "group": g, "ratio": r, "value": v,
                           "ci_low": v - 0.1, "ci_high": v + 0.1}
                          for e in ("e1", "e2") for a in ("age", "race", "gender") for g in ("x", "y")
                          for r, v in ((0.0, 0.2), (1.0, 0.4))])
    fig = figures.facet_lines(frame, "ratio", "value", col="attribute", hue="group", row="experiment")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == [f"{e} · {a}" for e in ("e1", "e2") for a in ("age", "race", "gender")]
    assert [ax.get_legend() is not None for ax in visible] == [False, False, True, False, False, True]
    wrapped = figures.facet_lines(frame[frame["experiment"] == "e1"], "ratio", "value", col="attribute", col_wrap=2)
    assert sum(ax.get_visible() for ax in wrapped.axes) == 3 and len(wrapped.axes) == 4
    floored = figures.facet_lines(frame[frame["experiment"] == "e1"].assign(null_gap=0.05), "ratio", "value",
                                  col="attribute", hue="group",
                                  floor="null_gap")
    first = floored.axes[0].get_lines()
    assert [line.get_linestyle() for line in first] == ["-", ":", "-", ":"]  # each group's line, then its floor
    assert list(first[1].get_ydata()) == [0.05, 0.05] and first[1].get_color() == first[0].get_color()


def _ratio_rows(replicates: dict[float, int]) -> pd.DataFrame:
    """One panel, one line: value 0.2 + 0.1·ratio + 0.05·replicate (interval ±0.02) per ratio and replicate."""
    return pd.DataFrame([{"attribute": "gender", "ratio": r, "replicate": k, "value": 0.2 + 0.1 * r + 0.05 * k,
                          "ci_low": 0.18 + 0.1 * r + 0.05 * k, "ci_high": 0.22 + 0.1 * r + 0.05 * k}
                         for r, n in replicates.items() for k in range(n)])


def _footnote(fig: plt.Figure) -> str:
    return " ".join(text.get_text() for text in fig.texts)


def test_per_ratio_figures_say_what_their_band_covers():
    """Issue 25: a band of one CLIP per ratio covers evaluation sampling only. With a probe (another seed at one
    ratio) the line and band stay replicate 0's, the probe is a hollow marker and the footnote states how far it
    moved the values; without one it says that training noise is not measured; with replicates everywhere the band is
    their mean's t-interval."""
    probed = figures.facet_lines(_ratio_rows({0.0: 2, 0.5: 1, 1.0: 1}), "ratio", "value", col="attribute")
    line = probed.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [0.0, 0.5, 1.0] and list(line.get_ydata()) == pytest.approx([0.2, 0.25, 0.3])
    from matplotlib.collections import PathCollection

    hollow = [c for c in probed.axes[0].collections if isinstance(c, PathCollection)]
    assert len(hollow) == 1 and list(hollow[0].get_offsets()[0]) == pytest.approx([0.0, 0.25])
    assert ("hollow: the same ratio trained with another seed, which moved the values by a median 0.050 (largest "
            "0.050) against a median band half-width of 0.020") in _footnote(probed)
    single = figures.facet_lines(_ratio_rows({0.0: 1, 1.0: 1}), "ratio", "value", col="attribute")
    assert "evaluation sampling only (one CLIP per ratio); how far another training run moves the curve is not " \
           "measured here" in _footnote(single)
    replicated = figures.facet_lines(_ratio_rows({0.0: 3, 1.0: 3}), "ratio", "value", col="attribute")
    assert "band: 95% t-interval of that mean (training + evaluation noise)" in _footnote(replicated)
    assert _footnote(figures.facet_lines(_ratio_rows({0.0: 1}).drop(columns="replicate"), "ratio", "value",
                                         col="attribute")) == ""  # not a study's results: nothing claimed


def test_group_bars_heights_and_error_bars_are_the_values_and_intervals():
    frame = pd.DataFrame({"panel": ["p", "p", "q"], "group": ["a", "b", "a"], "value": [0.3, 0.6, 0.2],
                          "ci_low": [0.2, 0.4, 0.1], "ci_high": [0.5, 0.7, 0.25]})
    fig = figures.group_bars(frame, col="panel")
    left = fig.axes[0]
    assert [bar.get_height() for bar in left.patches] == [0.3, 0.6]
    bars = next(c for c in left.containers if hasattr(c, "errorbar"))
    caps = bars.errorbar.lines[2][0].get_segments()
    assert [tuple(np.round(s[:, 1], 6)) for s in caps] == [(0.2, 0.5), (0.4, 0.7)]
    assert [t.get_text() for t in left.get_xticklabels()] == ["a", "b"] and fig.axes[1].get_title() == "q"


def test_share_and_count_panels_draw_one_bar_per_category():
    frame = pd.DataFrame({"occupation": ["nurse", "pilot", "nurse", "pilot"], "share": [0.9, 0.1, 0.8, 0.2],
                          "source": ["tabled", "tabled", "observed", "observed"]})
    fig = figures.share_plot(frame, "occupation", "share", hue="source", order=["pilot", "nurse"], reference=0.5)
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == [0.1, 0.2, 0.8, 0.9]
    people = pd.DataFrame({"skin_tone": [1, 1, 2, 3, 3, 3]})
    counts = figures.count_panels([(people, "skin_tone", None, None)], titles=["skin"])
    assert sorted(p.get_height() for p in counts.axes[0].patches) == [1, 2, 3]


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=0)


def test_attribute_sweep_changes_only_the_swept_attributes(world):
    images, rows, cols = gallery.attribute_sweep(world)
    assert len(images) == len(GENDERS) * len(AGE_LEVELS) * len(SKIN_TONES) == len(rows) * len(cols)
    assert rows[0] == f"{GENDERS[0]}, {AGE_LEVELS[0]}" and cols == [f"skin {t}" for t in SKIN_TONES]
    pixels = [np.asarray(im, dtype=np.int16) for im in images]
    assert all(np.abs(pixels[0] - p).sum() > 0 for p in pixels[1:len(SKIN_TONES)])  # skin tone shows
    again, _, _ = gallery.attribute_sweep(world)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))  # deterministic


def test_style_place_and_object_sweeps_fill_their_grids(world):
    images, rows, cols = gallery.style_place_sweep(world)
    assert (len(images), rows, cols) == (len(STYLES) * len(PLACES), list(STYLES), list(PLACES))
    images, rows, cols = gallery.object_sweep(world)
    assert (len(images), rows, cols) == (len(OBJECTS) * len(REGIONS), list(OBJECTS), list(REGIONS))


def test_examples_by_pads_missing_examples_with_blanks(world):
    people = world.people(40, stream="gallery/test")
    common = people["occupation"].value_counts().index[0]
    images, labels = gallery.examples_by(world, people, "occupation", [common, "no such job"], per_value=2)
    assert labels == [common, "no such job"] and len(images) == 4
    assert images[0] is not None and images[1] is not None and images[2:] == [None, None]
    expected = world.render(people[people["occupation"] == common].iloc[0].to_dict())
    assert np.array_equal(np.asarray(images[0]), np.asarray(expected))


def test_most_skewed_equals_sorting_by_hand():
    table = pd.DataFrame({"woman": [0.9, 0.2, 0.5, 0.99, 0.05]}, index=["nurse", "pilot", "chef", "none", "ceo"])
    assert gallery.most_skewed(table, k=1) == ["nurse", "ceo"]
    assert gallery.most_skewed(table, k=2) == ["nurse", "chef", "pilot", "ceo"]


def test_browser_offers_every_value_of_each_attribute(world):
    people = world.people(30, stream="gallery/browser")
    box = gallery.browser(world, people, max_images=2)
    dropdowns = [child for row in box.children[:2] for child in row.children]
    assert [d.description for d in dropdowns] == ["occupation", "gender", "age_level", "skin_tone"]
    assert list(dropdowns[1].options) == ["any", *sorted(people["gender"].unique())]
    open_before = len(plt.get_fignums())
    for value in dropdowns[1].options[1:]:  # each change redraws; no figure may stay open
        dropdowns[1].value = value
    assert len(plt.get_fignums()) == open_before
