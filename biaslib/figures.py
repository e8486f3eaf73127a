"""Plotting helpers shared by the notebooks: one look for every figure, saved as PNG and PDF.

Functions return matplotlib figures; :func:`save_figure` writes ``<stem>.png`` (200 dpi) and
``<stem>.pdf`` atomically. Nothing here computes results: figures only draw what they are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from biaslib.io import atomic_path

PALETTE = "colorblind"


def set_style() -> None:
    """Paper style: white grid, colour-blind palette, readable fonts, no top/right spines."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.spines.top": False,
                         "axes.spines.right": False, "pdf.fonttype": 42})


def save_figure(fig: plt.Figure, stem: str | Path, dpi: int = 200) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns both paths. The PDF carries no creation date,
    so the same figure gives the same bytes (a redrawn figure shows in ``git status`` only when it changed)."""
    stem = Path(stem)
    paths = []
    for ext in ("png", "pdf"):
        final = stem.with_suffix(f".{ext}")
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, metadata={"CreationDate": None} if ext == "pdf" else None)
        paths.append(final)
    return paths


def image_grid(images: Sequence, ncols: int, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None,
               cell_inches: float = 0.9) -> plt.Figure:
    """A grid of images (row-major); ``None`` entries leave a blank cell.

    Row labels go on the left, column labels on top; sizes in inches per cell.
    """
    nrows = int(np.ceil(len(images) / ncols))
    left = 1.6 if row_labels is not None else 0.1
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches + left, nrows * cell_inches + 0.5),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i < len(images) and images[i] is not None:
            ax.imshow(np.asarray(images[i]), interpolation="nearest")
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if col_labels is not None:
        for c, label in enumerate(col_labels):
            axes[0, c].set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, y=1.0)
    return fig


def share_plot(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, order: Sequence[str] | None = None,
               reference: float | None = None, xlabel: str | None = None, ylabel: str | None = None,
               title: str | None = None, height: float = 3.2) -> plt.Figure:
    """Bar plot of a share per category (e.g. p(woman | occupation)), optional reference line."""
    n = frame[x].nunique()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.2 * n * (1 + (hue is not None))), height))
    sns.barplot(data=frame, x=x, y=y, hue=hue, order=order, ax=ax, errorbar=None)
    if reference is not None:
        ax.axhline(reference, color="0.3", lw=1, ls="--")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.tick_params(axis="x", rotation=90)
    if title:
        ax.set_title(title)
    return fig


def count_panels(panels: Sequence[tuple[pd.DataFrame, str, str | None, Sequence | None]],
                 titles: Sequence[str] | None = None, width: float = 4.2) -> plt.Figure:
    """One count plot per panel, side by side; a panel is (frame, x column, hue column or None, x order)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 3.4), squeeze=False)
    for i, (ax, (frame, x, hue, order)) in enumerate(zip(axes.flat, panels)):
        sns.countplot(data=frame, x=x, hue=hue, order=order, ax=ax)
        ax.tick_params(axis="x", rotation=60)
        ax.set_ylabel("count")
        if titles:
            ax.set_title(titles[i])
        if hue is not None:
            ax.legend(title=hue, fontsize=7, title_fontsize=8)
    fig.tight_layout()
    return fig


def line_plot(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, ci: tuple[str, str] | None = None,
              xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
              reference: float | None = None, reference_label: str | None = None,
              ylim: tuple[float | None, float | None] | None = None, markers: bool = True) -> plt.Figure:
    """Lines (one per ``hue`` value; with markers unless ``markers=False``) and, with ``ci=(low, high)``
    columns, a shaded band; an optional dashed horizontal ``reference`` line."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    groups = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=False))
    for name, part in groups:
        part = part.sort_values(x)
        line, = ax.plot(part[x], part[y], marker="o" if markers else None, label=name)
        if ci is not None:
            ax.fill_between(part[x], part[ci[0]], part[ci[1]], color=line.get_color(), alpha=0.2, lw=0)
    if reference is not None:
        ax.axhline(reference, color="0.3", lw=1, ls="--", label=reference_label)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if hue is not None or reference_label:
        ax.legend(title=hue, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def replicate_means(lines: pd.DataFrame, x: str, y: str, ci: tuple[str, str] | None = ("ci_low", "ci_high"),
                    floor: str | None = None) -> pd.DataFrame:
    """One row per ``x`` value, sorted: the mean of ``y`` (and of ``floor``) over the rows at that ``x`` (a
    study's training replicates). With R ≥ 2 rows the ``ci`` columns become the mean ± t(0.975, R − 1) · sd / √R
    (training and evaluation noise together, as the replicates vary by both); with one row they keep that model's
    own evaluation interval."""
    from scipy.stats import t

    lines = lines.sort_values(x)
    if not lines[x].duplicated().any():
        return lines
    rows = []
    for value, part in lines.groupby(x, sort=True):
        row = {x: value, y: part[y].mean()}
        if floor is not None:
            row[floor] = part[floor].mean()
        if ci is not None:
            n = part[y].notna().sum()
            if n >= 2:
                half = t.ppf(0.975, n - 1) * part[y].std(ddof=1) / np.sqrt(n)
                row[ci[0]], row[ci[1]] = row[y] - half, row[y] + half
            else:
                row[ci[0]], row[ci[1]] = part[ci[0]].mean(), part[ci[1]].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def facet_lines(frame: pd.DataFrame, x: str, y: str, col: str, hue: str | None = None, row: str | None = None,
                ci: tuple[str, str] | None = ("ci_low", "ci_high"), xlabel: str | None = None,
                ylabel: str | None = None, title: str | None = None, panel_inches: tuple[float, float] = (3.4, 2.6),
                sharey: bool | str = "row", reference: float | None = None, col_wrap: int | None = None,
                floor: str | None = None) -> plt.Figure:
    """A grid of :func:`line_plot`-style panels: one panel per ``col`` value (and ``row`` value), one line
    with markers per ``hue`` value, a shaded ``ci`` band, an optional dashed ``reference`` line.

    ``floor`` names a column drawn as a dotted line in each line's colour (e.g. ``null_gap``: the gap that
    groups without any difference show by chance; a gap near its floor is not evidence of bias).

    Where a line has several rows per ``x`` (training replicates: a ``replicate`` column), each row is a point,
    the line joins their means and the band is :func:`replicate_means`' interval of the mean. Where only some
    ``x`` values have more than one (a probe: another training seed at one ratio, ``train.probe_ratios``), the line
    and band are replicate 0's, the others are hollow markers, and a footnote states how far they moved the values
    against the band's half-width. With a ``replicate`` column but one model per ``x``, the footnote says that the
    band is evaluation sampling only and training noise is not measured (:func:`band_note`).

    Without ``row``, ``col_wrap`` starts a new row of panels every ``col_wrap`` panels. Panels and lines
    keep the order of first appearance in ``frame``. When every panel shows the same ``hue`` values one
    legend sits right of each row; otherwise each panel gets its own legend.
    """
    cols = list(dict.fromkeys(frame[col]))
    rows = list(dict.fromkeys(frame[row])) if row is not None else [None]
    panels = [(r, c) for r in rows for c in cols]
    ncols = min(col_wrap, len(cols)) if (col_wrap and row is None) else len(cols)
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=sharey,
                             figsize=(panel_inches[0] * ncols + 1.6, panel_inches[1] * nrows + 0.4))
    hue_sets = set()
    probed = _probed(frame, x)
    moves: list[float] = []
    half_widths: list[float] = []
    for index, (row_value, col_value) in enumerate(panels):
        ax = axes.flat[index]
        part = frame[frame[col] == col_value]
        if row is not None:
            part = part[part[row] == row_value]
        groups = [(None, part)] if hue is None else list(part.groupby(hue, sort=False))
        hue_sets.add(tuple(name for name, _ in groups))
        for name, lines in groups:
            moved, halves = _draw_line(ax, lines, name, x, y, ci, floor, probed)
            moves += moved
            half_widths += halves
        if reference is not None:
            ax.axhline(reference, color="0.4", lw=0.8, ls="--")
        ax.set_title(" · ".join(str(v) for v in (row_value, col_value) if v is not None), fontsize=9)
        ax.set_xlabel(xlabel or x if index // ncols == nrows - 1 else "")
        ax.set_ylabel(ylabel or y if index % ncols == 0 else "")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    if hue is not None:
        shared = len(hue_sets) == 1
        targets = [axes[r, ncols - 1] for r in range(nrows)] if shared else list(axes.flat[:len(panels)])
        for ax in targets:
            handles, labels = ax.get_legend_handles_labels()
            if handles:
                ax.legend(handles, labels, title=hue if shared else None, fontsize=6.5, title_fontsize=8,
                          loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        fig.suptitle(title, y=1.01)
    fig.tight_layout()
    note = band_note(frame, x, moves, half_widths) if "replicate" in frame.columns and ci is not None else None
    if note:
        fig.text(0.5, 0.0, note, ha="center", va="top", fontsize=7, color="0.3", wrap=True)
    return fig


def _draw_line(ax: plt.Axes, lines: pd.DataFrame, name: object, x: str, y: str, ci: tuple[str, str] | None,
               floor: str | None, probed: bool) -> tuple[list[float], list[float]]:
    """One line of :func:`facet_lines` (its points, band and floor); with ``probed`` the probe replicates as hollow
    markers. Returns how far each probe moved the value and the band's half-width there."""
    probes = lines[lines["replicate"] != 0] if probed else lines.iloc[:0]
    points = lines = lines[lines["replicate"] == 0] if probed else lines
    lines = replicate_means(lines, x, y, ci, floor)
    line, = ax.plot(lines[x], lines[y], marker="o", ms=3.5, label=name)
    if len(points) > len(lines):
        ax.scatter(points[x], points[y], s=7, color=line.get_color(), alpha=0.55, lw=0)
    moves: list[float] = []
    half_widths: list[float] = []
    if len(probes):
        ax.scatter(probes[x], probes[y], s=16, facecolor="white", edgecolor=line.get_color(), lw=0.9, zorder=3)
        first = lines.set_index(x)
        moves = list(probes[y].to_numpy() - first.loc[probes[x], y].to_numpy())
        if ci is not None:
            half_widths = list((first.loc[probes[x], ci[1]] - first.loc[probes[x], ci[0]]).to_numpy() / 2)
    if ci is not None:
        ax.fill_between(lines[x], lines[ci[0]], lines[ci[1]], color=line.get_color(), alpha=0.18, lw=0)
    if floor is not None and lines[floor].notna().any():
        ax.plot(lines[x], lines[floor], color=line.get_color(), lw=0.9, ls=":")
    return moves, half_widths


def _probed(frame: pd.DataFrame, x: str) -> bool:
    """True when some ``x`` values have more models (``replicate`` values) than others: a probe, not a design."""
    if "replicate" not in frame.columns or frame.empty:
        return False
    per_x = frame.groupby(x)["replicate"].nunique()
    return per_x.min() == 1 and per_x.max() > 1


def band_note(frame: pd.DataFrame, x: str, moves: Sequence[float] = (), half_widths: Sequence[float] = ()) -> str:
    """What a per-ratio figure's band covers, for its footnote: replicates → the t-interval of their mean (training
    and evaluation noise); a probe → evaluation sampling only, and how far another training seed moved the values
    (``moves``, against the band's ``half_widths`` there); one model per ratio → evaluation sampling only, training
    noise not measured."""
    if _probed(frame, x):
        moved = np.abs(np.asarray(moves, dtype=float))
        moved = moved[np.isfinite(moved)]
        half = np.nanmedian(half_widths) if len(half_widths) else float("nan")
        return (f"band: 95% interval of evaluation sampling only (one CLIP per ratio: training noise left out); "
                f"hollow: the same ratio trained with another seed, which moved the values by a median "
                f"{np.median(moved):.3f} (largest {moved.max():.3f}) against a median band half-width of {half:.3f}"
                if len(moved) else "band: 95% interval of evaluation sampling only")
    if frame.groupby(x)["replicate"].nunique().min() > 1:
        return ("points: one trained model each; line: their mean; band: 95% t-interval of that mean "
                "(training + evaluation noise)")
    return ("band: 95% interval of evaluation sampling only (one CLIP per ratio); how far another training run "
            "moves the curve is not measured here (train.probe_ratios measures it)")


def group_bars(frame: pd.DataFrame, col: str, x: str = "group", hue: str | None = None, y: str = "value",
               ci: tuple[str, str] = ("ci_low", "ci_high"), title: str | None = None,
               panel_inches: tuple[float, float] = (3.2, 2.6), ylabel: str | None = None) -> plt.Figure:
    """One panel per ``col`` value: bars of ``y`` per ``x`` (grouped by ``hue``) with ``ci`` error bars.

    Panels, groups and hues keep their order of first appearance in ``frame``.
    """
    panels = list(dict.fromkeys(frame[col]))
    fig, axes = plt.subplots(1, len(panels), squeeze=False,
                             figsize=(panel_inches[0] * len(panels) + 0.8, panel_inches[1] + 0.6))
    hues = list(dict.fromkeys(frame[hue])) if hue is not None else [None]
    colours = sns.color_palette(PALETTE, len(hues))
    width = 0.8 / len(hues)
    for ax, panel in zip(axes.flat, panels):
        part = frame[frame[col] == panel]
        labels = list(dict.fromkeys(part[x]))
        for h, (hue_value, colour) in enumerate(zip(hues, colours)):
            bars = part if hue is None else part[part[hue] == hue_value]
            bars = bars.set_index(x).reindex(labels)
            positions = np.arange(len(labels)) + (h - (len(hues) - 1) / 2) * width
            errors = np.vstack([bars[y] - bars[ci[0]], bars[ci[1]] - bars[y]]).clip(min=0)
            ax.bar(positions, bars[y], width, yerr=errors, color=colour, capsize=2, label=hue_value,
                   error_kw={"lw": 0.8})
        ax.set_xticks(np.arange(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(str(panel), fontsize=9)
    axes[0, 0].set_ylabel(ylabel or y)
    if hue is not None:
        axes[0, -1].legend(title=hue, fontsize=7, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                           frameon=False)
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig
