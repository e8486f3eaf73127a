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
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns both paths."""
    stem = Path(stem)
    paths = []
    for ext in ("png", "pdf"):
        final = stem.with_suffix(f".{ext}")
        with atomic_path(final) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi)
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
              ylim: tuple[float | None, float | None] | None = None) -> plt.Figure:
    """Lines with markers (one per ``hue`` value) and, with ``ci=(low, high)`` columns, a shaded band;
    an optional dashed horizontal ``reference`` line."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    groups = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=False))
    for name, part in groups:
        part = part.sort_values(x)
        line, = ax.plot(part[x], part[y], marker="o", label=name)
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
