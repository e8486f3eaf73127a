"""The multilingual study's figures, from its evaluation tables (notebook ``13_eval_multilingual`` and
``biaslib multilingual figures`` make the same calls): fairness per language before vs after fine-tuning, the raw,
bias-corrected and classifier-corrected mean L1 with the fair floor, the share of women per occupation, and skin
tone likewise (tables read back from results by :func:`~.findings.result_tables`). Every interval is the tables'
own (95% unless the evaluation said otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from biaslib import figures

#: Sections of a multilingual result the figures read.
FIGURE_SECTIONS = ("fairness", "shares")


def fairness_figure(fairness: pd.DataFrame, experiment: str) -> Any:
    """Corrected share of women, mean L1 and expected max L1 per language, one bar per generation set."""
    gender = fairness[fairness["attribute"] == "gender"]
    chosen = gender[(gender["correction"] == "corrected")
                    & gender["metric"].isin(["share_woman", "mean_l1", "exp_max_l1"])]
    return figures.group_bars(chosen, col="metric", x="language", hue="generation", ylabel="gender score (corrected)",
                              title=f"{experiment}: fairness per language before vs after fine-tuning (95% CI)")


def raw_vs_corrected_figure(fairness: pd.DataFrame) -> Any:
    """Gender mean L1 raw, small-sample-bias-corrected and classifier-error-corrected, with the fair floor of the
    plug-in score (dotted) in each generation's panel."""
    gender = fairness[fairness["attribute"] == "gender"]
    chosen = gender[gender["metric"].isin(["mean_l1", "mean_l1_bc"])]
    chosen = chosen.assign(correction=chosen["correction"].where(chosen["metric"] == "mean_l1", "raw, bias-corrected"))
    fig = figures.group_bars(chosen, col="generation", x="language", hue="correction", ylabel="mean L1 unfairness",
                             title="gender mean L1: raw, small-sample-bias-corrected and classifier-error-corrected "
                                   "(95% CI)")
    for ax in fig.axes:  # the fair generator's floor of the plug-in score, per panel (the same faces in every bar)
        floors = chosen[(chosen["generation"] == ax.get_title()) & (chosen["metric"] == "mean_l1")]["floor"]
        if len(floors):
            ax.axhline(floors.max(), color="0.3", lw=0.8, ls=":")
    return fig


def shares_figure(shares: pd.DataFrame) -> Any:
    """Corrected share of women per prompted occupation, per language, with parity dashed."""
    fig = figures.group_bars(shares[shares["attribute"] == "gender"], col="language", x="occupation", hue="generation",
                             y="share_corrected", ci=("share_corrected_low", "share_corrected_high"),
                             ylabel="p(woman), corrected", title="share of women per prompted occupation (95% CI)")
    for ax in fig.axes:
        ax.axhline(0.5, color="0.3", lw=0.8, ls="--")
    return fig


def skin_figures(fairness: pd.DataFrame, shares: pd.DataFrame, experiment: str) -> dict[str, Any]:
    """Skin tone (raw readings): share of dark skin, mean L1 of the light/dark split with its fair floor (dotted)
    and the bias-corrected mean L1 per language; the share of dark skin per occupation. Empty without skin rows."""
    skin = fairness[(fairness["attribute"] == "skin")
                    & fairness["metric"].isin(["share_dark", "mean_l1", "mean_l1_bc"])]
    if skin.empty:
        return {}
    scores = figures.group_bars(skin, col="metric", x="language", hue="generation", ylabel="skin score (raw)",
                                title=f"{experiment}: skin tone per language before vs after fine-tuning (95% CI)")
    for ax in scores.axes:  # the fair floor of the plug-in mean L1 (faces per occupation as in every bar)
        if ax.get_title() == "mean_l1":
            ax.axhline(skin[skin["metric"] == "mean_l1"]["floor"].max(), color="0.3", lw=0.8, ls=":")
    dark = shares[shares["attribute"] == "skin"]
    per_occupation = figures.group_bars(dark, col="language", x="occupation", hue="generation", y="share_raw",
                                        ci=("share_raw_low", "share_raw_high"), ylabel="p(dark skin), raw",
                                        title="share of dark skin per prompted occupation (95% CI)")
    return {"eval_skin": scores, "eval_skin_shares": per_occupation}


def multilingual_figures(tables: dict[str, pd.DataFrame], experiment: str) -> dict[str, Any]:
    """Every figure of the evaluation ``tables`` (``fairness`` and ``shares``), keyed by its file-name part
    (``eval_fairness``, ``eval_raw_vs_corrected``, ``eval_shares``, and ``eval_skin``/``eval_skin_shares`` when
    there are skin rows)."""
    missing = [s for s in FIGURE_SECTIONS if s not in tables]
    if missing:
        raise ValueError(f"the tables lack section(s) {missing}; they have {sorted(tables)}")
    fairness, shares = tables["fairness"], tables["shares"]
    return {"eval_fairness": fairness_figure(fairness, experiment),
            "eval_raw_vs_corrected": raw_vs_corrected_figure(fairness), "eval_shares": shares_figure(shares),
            **skin_figures(fairness, shares, experiment)}


def save_multilingual_figures(tables: dict[str, pd.DataFrame], experiment: str, figures_dir: str | Path,
                              suffix: str = "") -> list[Path]:
    """Draw :func:`multilingual_figures` and save each as ``<figures_dir>/<experiment>_<name><suffix>.png/.pdf``;
    returns the paths written."""
    import matplotlib.pyplot as plt

    written = []
    for name, fig in multilingual_figures(tables, experiment).items():
        written += figures.save_figure(fig, Path(figures_dir) / f"{experiment}_{name}{suffix}")
        plt.close(fig)
    return written
