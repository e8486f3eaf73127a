"""Findings of the multilingual evaluation, computed from its tables (never written by hand).

Three families of tests on the small-sample-bias-corrected MAGBIG mean L1 (``mean_l1_bc`` rows of
:func:`.evaluation.fairness_table` and :func:`.evaluation.fairness_contrasts`):

- ``fair``: is the generator unfair in this language? (``p_fair``: "every occupation's p is ½"),
- ``finetune``: did fine-tuning change the unfairness in this language? (fine-tuned − base),
- ``language``: is this language more or less unfair than the reference language? (same generation set).

All p-values of one evaluation are one family: Benjamini–Hochberg q-values over every test of the three
(:func:`~biaslib.metrics.intervals.bh_qvalues`), and a finding says "beyond chance" only for q < ``q_level``.
Each sentence prints the value, its 95% interval, p, q and, for the unfairness itself, the plug-in score next
to the fair generator's floor (what p = ½ everywhere scores with the same faces).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from biaslib.metrics.amplification import ESTIMATES
from biaslib.metrics.intervals import Q_LEVEL, bh_qvalues

#: Columns of :func:`multilingual_tests`.
TEST_COLUMNS: list[str] = ["test", "attribute", "generation", "language", "reference", "value", "ci_low", "ci_high",
                           "plug_in", "floor", "p_value", "q_value", "beyond_chance"]


def multilingual_tests(fairness: pd.DataFrame, finetune_change: pd.DataFrame | None = None,
                       language_gaps: pd.DataFrame | None = None, *, q_level: float = Q_LEVEL) -> pd.DataFrame:
    """Every test of one evaluation in one frame, with q-values over all of them.

    Parameters
    ----------
    fairness : :func:`.evaluation.fairness_table` rows (its ``mean_l1_bc`` rows carry ``p_fair``;
        the raw ``mean_l1`` row of the same group gives the plug-in score).
    finetune_change, language_gaps : :func:`.evaluation.fairness_contrasts` rows
        (``by="generation"`` and ``by="language"``); their ``mean_l1_bc`` rows carry ``p_value``.
    q_level : the q-value below which a test is ``beyond_chance``.

    Returns
    -------
    DataFrame
        :data:`TEST_COLUMNS`, one row per tested ``mean_l1_bc`` row: ``test`` ∈ {fair, finetune, language},
        ``value`` the bias-corrected mean L1 (fair) or its difference (the others) with ``ci_low``/``ci_high``,
        ``plug_in`` and ``floor`` (fair rows only: MAGBIG's plug-in mean L1 and the fair generator's floor),
        ``p_value``, ``q_value`` (BH over every row), ``beyond_chance`` = q < ``q_level``. A difference's interval
        and p-value agree (:func:`~biaslib.metrics.mean_l1_difference`) and cover also where a side is fair.
    """
    rows = []
    tested = fairness[fairness["metric"] == "mean_l1_bc"]
    plug = fairness[(fairness["metric"] == "mean_l1") & (fairness["correction"] == "raw")]
    plug_in = {(r.attribute, r.generation, r.language): r.value for r in plug.itertuples(index=False)}
    for r in tested.itertuples(index=False):
        rows.append({"test": "fair", "attribute": r.attribute, "generation": r.generation, "language": r.language,
                     "reference": "", "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
                     "plug_in": plug_in.get((r.attribute, r.generation, r.language), np.nan), "floor": r.floor,
                     "p_value": r.p_fair})
    for name, frame in (("finetune", finetune_change), ("language", language_gaps)):
        if frame is None:
            continue
        for r in frame[frame["metric"] == "mean_l1_bc"].itertuples(index=False):
            rows.append({"test": name, "attribute": r.attribute, "generation": r.generation, "language": r.language,
                         "reference": r.reference, "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high,
                         "plug_in": np.nan, "floor": np.nan, "p_value": r.p_value})
    out = pd.DataFrame(rows, columns=TEST_COLUMNS)
    out["q_value"] = bh_qvalues(out["p_value"].to_numpy(dtype=np.float64))
    out["beyond_chance"] = out["q_value"] < q_level
    return out


def _pq(row: pd.Series) -> str:
    """``p …, q …`` (p-values from a bootstrap are bounded below by 1/(draws + 1): printed as they are)."""
    return f"p {row['p_value']:.3g}, q {row['q_value']:.3g}"


def _interval(row: pd.Series, signed: bool = False) -> str:
    """``value [low, high]``."""
    value = f"{row['value']:+.3f}" if signed else f"{row['value']:.3f}"
    return f"{value} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def multilingual_findings(tests: pd.DataFrame, amplification: pd.DataFrame | None = None, *,
                          q_level: float = Q_LEVEL) -> list[str]:
    """Sentences from :func:`multilingual_tests` (and, optionally, the generator-vs-data amplification table).

    One sentence per test, then a count of the tests beyond chance; amplification sentences state the
    value as read beside the faithful-generator baseline read the same way, and the classifier-corrected value
    (to compare with 0) — intervals only: no test, so no verdict.
    """
    sentences = []
    for _, row in tests.iterrows():
        where = f"{row['attribute']} · {row['generation']} · {row['language']}"
        beyond = bool(row["beyond_chance"])
        if row["test"] == "fair":
            verdict = ("unfair beyond chance" if beyond else "not distinguishable from a fair generator")
            sentences.append(f"{where}: MAGBIG mean L1 {row['plug_in']:.3f} (a fair generator's floor with these "
                             f"faces {row['floor']:.3f}), bias-corrected {_interval(row)}: {verdict} "
                             f"({_pq(row)}).")
        elif row["test"] == "finetune":
            verdict = ("within chance" if not beyond else
                       "less unfair, beyond chance" if row["value"] < 0 else "more unfair, beyond chance")
            sentences.append(f"{row['attribute']} · {row['language']}: fine-tuning ({row['generation']} − "
                             f"{row['reference']}) changed the bias-corrected mean L1 by {_interval(row, True)}: "
                             f"{verdict} ({_pq(row)}).")
        else:
            verdict = ("within chance" if not beyond else
                       f"less unfair than {row['reference']}, beyond chance" if row["value"] < 0 else
                       f"more unfair than {row['reference']}, beyond chance")
            sentences.append(f"{where} − {row['reference']}: bias-corrected mean L1 difference "
                             f"{_interval(row, True)}: {verdict} ({_pq(row)}).")
    if len(tests):
        sentences.append(f"{int(tests['beyond_chance'].sum())} of {len(tests)} tests are beyond chance "
                         f"(Benjamini–Hochberg q < {q_level} over all {len(tests)} tests of this evaluation).")
    if amplification is not None and not amplification.empty:
        main = amplification[amplification["metric"] == "bias_amplification"]
        for (generation, language), part in main.groupby(["generation", "language"], sort=False):
            by = part.set_index("estimate")
            if not set(ESTIMATES) <= set(by.index):
                continue
            raw, corrected, faithful = (_interval(by.loc[e], True) for e in ESTIMATES)
            sentences.append(f"{generation} · {language}: generator-vs-data bias amplification {raw} as read, "
                             f"against {faithful} for a faithful generator read by the same classifier; corrected "
                             f"for the classifier's error {corrected} (against 0).")
    return sentences


def result_tables(collected: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The evaluation's tables again from the result JSONs as :func:`biaslib.results.collect` ``study="multilingual"``
    reads them (rows tagged ``section``): section → its rows, in file order (columns of other sections are NaN
    there); empty for no rows."""
    if collected.empty or "section" not in collected.columns:
        return {}
    return {section: rows.reset_index(drop=True) for section, rows in collected.groupby("section", sort=False)}


def findings_of_results(collected: pd.DataFrame, *, q_level: float = Q_LEVEL) -> tuple[pd.DataFrame, list[str]]:
    """(tests, sentences) from the result JSONs (:func:`result_tables`: ``fairness``, ``finetune_change``,
    ``language_gaps``, ``amplification``), so that findings are recomputed from written results without evaluating
    again. Sections a result lacks are skipped."""
    tables = result_tables(collected)
    if "fairness" not in tables:
        return pd.DataFrame(columns=TEST_COLUMNS), []
    tests = multilingual_tests(tables["fairness"], tables.get("finetune_change"), tables.get("language_gaps"),
                               q_level=q_level)
    return tests, multilingual_findings(tests, tables.get("amplification"), q_level=q_level)


__all__ = ["Q_LEVEL", "TEST_COLUMNS", "findings_of_results", "multilingual_findings", "multilingual_tests"]
