"""The control's report: figures of every paired difference, the tables and the findings, from the results alone
(``biaslib amplification control``, the last step of ``make control``).

:func:`report_control` runs :mod:`.control`'s analysis on a params file's results and writes

* ``figures/<experiment>_paired_differences.png|pdf``: each replicate pair's difference per pair and measure, with
  the mean and its paired t interval, filled where the comparison is called;
* ``figures/<experiment>_arms.png|pdf``: the primary measure of every arm, each replicate's models joined (the
  pairing, and with it ρ);
* ``figures/<experiment>_generator_amplification.png|pdf``: each arm's generated images against the real data
  (the plant's size at the data level);
* the Markdown report (``--out``) and ``<run>/control_report.json`` (the tables, findings and
  provenance).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.layout import RunLayout
from biaslib.studies.amplification.control import (
    ControlResults,
    control_findings,
    control_table,
    detectable_effects,
    generator_amplification,
    load_control,
    recorded_declaration,
)
from biaslib.studies.amplification.dose_response import markdown_table

#: The columns of the Markdown table.
REPORT_COLUMNS = ["pair", "role", "family", "measure", "effect", "ci_low", "ci_high", "p_value", "q_value", "rho",
                  "called"]


def paired_figure(control: ControlResults, table: pd.DataFrame) -> Any:
    """One panel per measure (the primary first): for each pair the replicate pairs' differences (dots), their mean
    and paired t 95% interval (bar; filled marker where called), a line at 0."""
    import matplotlib.pyplot as plt

    measures = list(dict.fromkeys(control.values["measure"]))
    pairs = list(control.spec.pairs)
    columns = min(3, len(measures))
    rows = int(np.ceil(len(measures) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.8 * rows), squeeze=False)
    replicates = int(control.values["replicate"].nunique())
    for ax, measure in zip(axes.flat, measures):
        for i, pair in enumerate(pairs):
            part = control.values[(control.values["measure"] == measure) & (control.values["pair"] == pair)]
            row = table[(table["measure"] == measure) & (table["pair"] == pair)].iloc[0]
            jitter = np.linspace(-0.12, 0.12, len(part)) if len(part) > 1 else np.zeros(len(part))
            ax.scatter(i + jitter, part["difference"], s=10, color=f"C{i}", alpha=0.6, zorder=2)
            error = [[row["effect"] - row["ci_low"]], [row["ci_high"] - row["effect"]]]
            filled = f"C{i}" if row["called"] else "white"
            ax.errorbar(i + 0.3, row["effect"], yerr=error, fmt="o", color=f"C{i}", mfc=filled, capsize=3, zorder=3)
        ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(range(len(pairs)), pairs, fontsize=8)
        family = "primary" if measure == measures[0] else "secondary"
        ax.set_title(f"{measure} ({family})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(measures):]:
        ax.set_visible(False)
    fig.suptitle(f"{control.tag}: treatment − reference per replicate pair (dots); mean and paired t 95% interval "
                 f"over {replicates} pairs (training seeds and generator draws, this evaluation set); filled: called",
                 fontsize=8)
    fig.tight_layout()
    return fig


def arms_figure(control: ControlResults) -> Any:
    """The primary measure of every arm (x), one line per replicate joining that replicate's models: parallel lines
    are pairs whose arms moved together (high ρ), which is what makes a small paired effect visible."""
    import matplotlib.pyplot as plt

    primary = control.values[control.values["family"] == "primary"]
    arms = list(dict.fromkeys(arm for pair in control.spec.pairs.values() for arm in pair))  # each pair side by side
    values: dict[tuple[str, int], float] = {}
    for pair, part in primary.groupby("pair", sort=False):
        treatment, reference = control.spec.pairs[pair]
        for row in part.itertuples(index=False):
            values[treatment, row.replicate], values[reference, row.replicate] = row.treatment, row.reference
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for replicate in sorted({r for _, r in values}):
        ax.plot(range(len(arms)), [values.get((arm, replicate), np.nan) for arm in arms], color="0.5", lw=0.8,
                marker="o", ms=3, alpha=0.7)
    ax.set_xticks(range(len(arms)), arms, fontsize=8)
    ax.set_ylabel(primary["measure"].iloc[0], fontsize=8)
    ax.set_title(f"{control.tag}: the primary measure of each arm; lines join one replicate's models", fontsize=8)
    pairs = "; ".join(f"{name}: {t} − {r}" for name, (t, r) in control.spec.pairs.items())
    ax.set_xlabel(f"arm (pairs {pairs})", fontsize=7)
    fig.tight_layout()
    return fig


def report_control(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None, *,
                   figures_dir: str | Path = "figures", designs: Mapping[str, int] | None = None,
                   amplification: bool = True) -> dict[str, Any]:
    """The control's analysis, figures and report (module docstring). ``designs``: other numbers of replicate pairs
    to size (label → R; this design's own R is always included). Returns ``table``, ``detectable``,
    ``amplification`` (empty when not computed), ``findings``, ``markdown``, ``figures`` (name → PNG path) and
    ``json`` (the report record's path)."""
    import matplotlib.pyplot as plt

    from biaslib import figures
    from biaslib.io import write_json
    from biaslib.studies.amplification.generator_amplification import amplification_figure

    control = load_control(params_file, overrides)
    spec = control.spec
    table = control_table(control)
    own = {f"this design R={control.base.train.replicates}": control.base.train.replicates, **(designs or {})}
    detectable = detectable_effects(table, own, spec.primary.alpha, spec.primary.alternative)
    amp = generator_amplification(control) if amplification else pd.DataFrame()
    findings = control_findings(table, spec, amp, detectable)
    figures.set_style()
    drawn = {f"{control.tag}_paired_differences": paired_figure(control, table),
             f"{control.tag}_arms": arms_figure(control)}
    if len(amp):
        drawn[f"{control.tag}_generator_amplification"] = amplification_figure(amp, x="arm")
    paths = {}
    for name, fig in drawn.items():
        figures.save_figure(fig, Path(figures_dir) / name)
        paths[name] = Path(figures_dir) / f"{name}.png"
        plt.close(fig)
    markdown = "\n".join([f"# {control.tag}: positive and negative controls", "",
                          *(f"- {line}" for line in findings), "", markdown_table(table, REPORT_COLUMNS, digits=4), "",
                          markdown_table(detectable, list(detectable.columns), digits=4)])
    record = RunLayout(control.base).root / "control_report.json"
    write_json(record, {"declaration": recorded_declaration(params_file, overrides), "table": _records(table),
                        "values": _records(control.values), "detectable": _records(detectable),
                        "amplification": _records(amp), "findings": findings,
                        "results": sorted(set(control.results["file"])) if len(control.results) else []})
    return {"table": table, "detectable": detectable, "amplification": amp, "findings": findings,
            "markdown": markdown, "figures": paths, "json": record}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as strict JSON (NaN → null)."""
    return json.loads(frame.to_json(orient="records")) if len(frame) else []


__all__ = ["REPORT_COLUMNS", "arms_figure", "paired_figure", "report_control"]
