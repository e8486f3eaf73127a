"""The amplification study's controls: a paired design whose primary test, declared in the params before the study
runs, must detect a generator planted in the world and stay quiet on an A/A pair.

A params file with a ``control`` section (:class:`biaslib.config.ControlConfig`; ``params/world_control.yaml``)
names its ``variants`` as arms (say ``faithful``, ``planted``: a generator that sharpens gender given the
occupation, and ``faithful_b``: the faithful generator with another seed) and ``pairs`` of them (``planted:
[planted, faithful]``, ``aa: [faithful_b, faithful]``). Replicate ``r`` of every arm trains with seed
``train.seed + r`` on generated data of its own (``generate.per_replicate``: generator seed ``generate.seed + r``),
from the same warm start (``train.warm_start_epochs``): the arms of a pair differ only in their generator. The
study then answers one question per pair, declared before it ran (:func:`declare`):

* **primary**: the paired difference treatment − reference of one measure at one ratio across the R replicate
  pairs, its paired t interval, and its sign-flip permutation p-value (:func:`biaslib.metrics.paired.paired_test`),
  called when p < ``primary.alpha`` (one test per pair: no correction);
* **secondary**: the same comparison of each measure of the fixed ``secondary`` family, Benjamini–Hochberg q over
  that family per pair, called when q < ``q_level``.

:func:`check_design` refuses, before any work, a design that cannot answer: arms that differ in more than
``generate``, replicates that share one generated dataset (then the replicate pairs would leave the generator's
draw out, and an A/A pair of two fixed datasets is called as often as those datasets differ by chance: measured
here, the A/A difference of the cosine endpoint was +0.008, +0.012, +0.009 for three training seeds on one pair
of datasets), or a design whose smallest attainable p cannot reach the threshold
(:func:`biaslib.metrics.intervals.check_callable`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biaslib.config import Params, load_params
from biaslib.errors import BiaslibError
from biaslib.io import write_json
from biaslib.layout import RunLayout
from biaslib.metrics.intervals import bh_qvalues, check_callable
from biaslib.metrics.paired import detectable_effect, paired_test, smallest_attainable_p
from biaslib.ratios import ratio_code
from biaslib.results import collect
from biaslib.studies.amplification.params import ControlConfig
from biaslib.studies.amplification.results import Measure, MeasureError

TABLE_COLUMNS = ["pair", "role", "family", "measure", "treatment", "reference", "pairs", "effect", "ci_low",
                 "ci_high", "sd", "t", "p_value", "p_t", "min_p", "rho", "evaluation_half_width", "q_value",
                 "threshold", "called"]


class ControlDesignError(BiaslibError, ValueError):
    """A control section that cannot answer its question (named in the message)."""


def arms(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None) -> dict[str, Params]:
    """The params of every variant (arm) of a params file, by variant name."""
    base = load_params(params_file, dict(overrides or {}))
    return {name: load_params(params_file, dict(overrides or {}), variant=name) for name in base.variants}


def _comparable(params: Params) -> dict[str, Any]:
    """What the arms of a pair must share: every section but ``generate``, the experiment name and the variants."""
    plain = params.to_dict()
    for key in ("experiment", "generate", "variants"):
        plain.pop(key)
    return plain


def check_design(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None) -> ControlConfig:
    """The control section of ``params_file`` after checking that it can answer its question (module docstring);
    one :class:`ControlDesignError` lists every problem."""
    base = load_params(params_file, dict(overrides or {}))
    spec, problems = base.control, []
    if not spec.pairs:
        raise ControlDesignError(f"{params_file}: no control.pairs: nothing to compare")
    by_name = arms(params_file, overrides)
    for name, pair in spec.pairs.items():
        if len(pair) != 2 or any(arm not in by_name for arm in pair):
            problems.append(f"control.pairs.{name}: expected [treatment, reference], two of the variants "
                            f"{', '.join(by_name) or '(none)'}; got {list(pair)}")
        elif _comparable(by_name[pair[0]]) != _comparable(by_name[pair[1]]):
            problems.append(f"control.pairs.{name}: {pair[0]} and {pair[1]} differ outside the generate section: "
                            "the arms of a pair may differ only in their generator")
    for role in ("positive", "negative"):
        problems += [f"control.{role}: {name!r} is not one of the pairs" for name in getattr(spec, role)
                     if name not in spec.pairs]
    for text in (spec.primary.measure, *spec.secondary):
        try:
            Measure.parse(text)
        except MeasureError as exc:
            problems.append(f"control: {exc}")
    if spec.primary.measure in spec.secondary or len(set(spec.secondary)) < len(spec.secondary):
        problems.append("control.secondary repeats a measure or names the primary one: each measure is tested once")
    if ratio_code(spec.primary.ratio) not in base.mix.ratios:
        problems.append(f"control.primary.ratio {spec.primary.ratio} is not one of mix.ratios {list(base.mix.ratios)}")
    if not base.generate.per_replicate:
        problems.append("generate.per_replicate is false: every replicate pair would train on the same generated "
                        "data, so the test would leave the generator's draw out and call an A/A pair whose two "
                        "datasets differ by chance; set generate.per_replicate: true")
    replicates = base.train.replicates
    floor = smallest_attainable_p(replicates, spec.primary.alternative)
    if floor >= spec.primary.alpha:
        problems.append(f"{replicates} replicate pairs: the smallest p the {spec.primary.alternative} sign-flip test "
                        f"can give is {floor:.4g} ≥ control.primary.alpha {spec.primary.alpha}: no pair can be called; "
                        "use more replicates")
    try:
        check_callable(smallest_attainable_p(replicates), len(spec.secondary), spec.q_level, what="control.secondary")
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ControlDesignError(f"{params_file}: the control design cannot answer its question:\n  - "
                                 + "\n  - ".join(problems))
    return spec


def declaration_path(params: Params) -> Path:
    """Where the declaration of a params file's control is recorded: ``<run>/control_declaration.json``."""
    return RunLayout(params).root / "control_declaration.json"


def _declared(params_file: str | Path | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    base = load_params(params_file, dict(overrides or {}))
    return {"control": dataclasses.asdict(base.control),
            "arms": {name: dataclasses.asdict(p.generate) for name, p in arms(params_file, overrides).items()},
            "replicates": base.train.replicates}


def declare(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None) -> Path:
    """Record the control's primary test, secondary family and arms before the study runs (``study run`` calls
    this first); returns the record's path. A second call with the same declaration changes nothing; a changed one
    is refused: a test chosen after results exist is not pre-specified (delete the record to declare anew, and say
    so in the report)."""
    from datetime import datetime, timezone

    from biaslib.provenance import git_state

    check_design(params_file, overrides)
    path = declaration_path(load_params(params_file, dict(overrides or {})))
    declared = json.loads(json.dumps(_declared(params_file, overrides), default=str))
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded.get("declared") != declared:
            raise ControlDesignError(
                f"{path} records another declaration (made {recorded.get('declared_utc')}): the control's test, "
                "family or arms changed after the study started. A test chosen after the results exist is not "
                "pre-specified; delete the record to declare anew (and report that you did)")
        return path
    commit, dirty = git_state()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json(path, {"declared": declared, "declared_utc": now, "params_file": str(params_file),
                      "git_commit": commit, "git_dirty": dirty})
    return path


def recorded_declaration(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None) -> dict:
    """The declaration recorded when the study ran; an error when there is none or when the params now say
    otherwise (the analysis never uses a test declared after the fact)."""
    path = declaration_path(load_params(params_file, dict(overrides or {})))
    if not path.is_file():
        raise ControlDesignError(f"no declaration {path}: run the study (`biaslib amplification run --params "
                                 f"{params_file}`), which records the control's test before it trains anything")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    if recorded.get("declared") != json.loads(json.dumps(_declared(params_file, overrides), default=str)):
        raise ControlDesignError(f"{path}: the params' control section differs from the one declared on "
                                 f"{recorded.get('declared_utc')}; analyse with the declared one or declare anew")
    return recorded


# ---- analysis --------------------------------------------------------------------------------------------------

def pair_values(results: pd.DataFrame, treatment: str, reference: str, measure: Measure, ratio: str,
                replicates: int) -> pd.DataFrame:
    """One row per replicate of a pair: ``replicate``, ``treatment``, ``reference`` (the measure's values),
    ``difference`` and ``half_width`` (the larger of the two models' evaluation half-widths). Every replicate of both
    arms must have exactly one value: a missing or repeated one is an error naming it."""
    rows, problems = measure.select(results[results["ratio"] == ratio_code(ratio)]), []
    values: dict[str, dict[int, tuple[float, float]]] = {}
    for experiment in (treatment, reference):
        part = rows[rows["experiment"] == experiment]
        for replicate in range(replicates):
            found = part[part["replicate"] == replicate]
            if len(found) != 1 or not np.isfinite(found["value"]).all():
                problems.append(f"{experiment} replicate {replicate}: {len(found)} value(s) of {measure.label} at "
                                f"ratio {ratio_code(ratio)}")
                continue
            row = found.iloc[0]
            values.setdefault(experiment, {})[replicate] = (float(row["value"]),
                                                            float(row["ci_high"] - row["ci_low"]) / 2)
    if problems:
        raise BiaslibError("the control cannot be analysed: " + "; ".join(problems)
                           + " (evaluate every replicate of both arms: `biaslib amplification run`)")
    frame = pd.DataFrame({"replicate": range(replicates),
                          "treatment": [values[treatment][r][0] for r in range(replicates)],
                          "reference": [values[reference][r][0] for r in range(replicates)],
                          "half_width": [max(values[treatment][r][1], values[reference][r][1])
                                         for r in range(replicates)]})
    return frame.assign(difference=frame["treatment"] - frame["reference"])


@dataclass
class ControlResults:
    """A control's declared spec, its arms (variant → params), every result row and the replicate values of each
    (pair, measure): ``values`` (long format: ``pair``, ``measure``, ``family`` and :func:`pair_values`' columns)."""

    params_file: str | Path | None
    base: Params
    arms: dict[str, Params]
    results: pd.DataFrame
    values: pd.DataFrame

    @property
    def spec(self) -> ControlConfig:
        return self.base.control

    @property
    def tag(self) -> str:
        return self.base.experiment


def load_control(params_file: str | Path | None, overrides: Mapping[str, Any] | None = None) -> ControlResults:
    """The results of a control's arms and the replicate values of every pair and declared measure (the declaration
    recorded when the study ran must match the params: :func:`recorded_declaration`)."""
    spec = check_design(params_file, overrides)
    recorded_declaration(params_file, overrides)
    base, by_name = load_params(params_file, dict(overrides or {})), arms(params_file, overrides)
    experiments = {name: p.experiment for name, p in by_name.items()}
    results = collect(base.runs_dir, study="amplification")
    results = results[results["experiment"].isin(experiments.values())] if len(results) else results
    measures = [("primary", spec.primary.measure)] + [("secondary", m) for m in spec.secondary]
    parts = []
    for pair, (treatment, reference) in spec.pairs.items():
        for family, text in measures:
            values = pair_values(results, experiments[treatment], experiments[reference], Measure.parse(text),
                                 spec.primary.ratio, base.train.replicates)
            parts.append(values.assign(pair=pair, measure=Measure.parse(text).label, family=family))
    return ControlResults(params_file, base, by_name, results, pd.concat(parts, ignore_index=True))


def _role(spec: ControlConfig, pair: str) -> str:
    return "positive" if pair in spec.positive else "negative" if pair in spec.negative else "comparison"


def control_table(control: ControlResults, *, n_perm: int = 20000, seed: int = 0) -> pd.DataFrame:
    """:data:`TABLE_COLUMNS`: per pair and measure the paired test (``effect`` [``ci_low``, ``ci_high``], ``p_value``,
    ``rho``, …), ``evaluation_half_width`` (median over the models of their own intervals' half-width: the
    evaluation sampling the paired test conditions on), ``q_value`` (secondary: BH over the pair's family) and
    ``called`` (primary: p < alpha; secondary: q < q_level)."""
    spec = control.spec
    rows = []
    for (pair, measure), part in control.values.groupby(["pair", "measure"], sort=False):
        family = part["family"].iloc[0]
        alternative = spec.primary.alternative if family == "primary" else "two-sided"
        test = paired_test(part["treatment"], part["reference"], alternative=alternative, n_perm=n_perm, seed=seed)
        treatment, reference = spec.pairs[pair]
        rows.append({"pair": pair, "role": _role(spec, pair), "family": family, "measure": measure,
                     "treatment": treatment, "reference": reference,
                     **{k: v for k, v in test.as_dict("effect").items() if k not in ("alternative", "exact")},
                     "evaluation_half_width": float(part["half_width"].median())})
    table = pd.DataFrame(rows)
    table["q_value"] = np.nan
    for _, part in table[table["family"] == "secondary"].groupby("pair", sort=False):
        table.loc[part.index, "q_value"] = bh_qvalues(part["p_value"].to_numpy(dtype=np.float64))
    primary = table["family"] == "primary"
    table["threshold"] = np.where(primary, spec.primary.alpha, spec.q_level)
    table["called"] = np.where(primary, table["p_value"] < spec.primary.alpha, table["q_value"] < spec.q_level)
    return table[TABLE_COLUMNS]


def detectable_effects(table: pd.DataFrame, designs: Mapping[str, int], alpha: float,
                       alternative: str = "two-sided") -> pd.DataFrame:
    """Per primary row, the effect a paired design of R pairs detects with 80% power at ``alpha`` if one difference
    varies as much as here (its ``sd``): one column ``detectable <label>`` per design ``{label: R}`` (NaN where R
    pairs cannot reach ``alpha`` at all, e.g. one replicate), and ``pairs_needed``: the fewest pairs (up to
    :data:`MAX_PAIRS`) that detect an effect as large as the one measured."""
    primary = table[table["family"] == "primary"][["pair", "measure", "effect", "sd"]].copy()
    for label, pairs in designs.items():
        primary[f"detectable {label}"] = [detectable_effect(sd, pairs, alpha=alpha, alternative=alternative)
                                          if pairs >= 2 else np.nan for sd in primary["sd"]]
    primary["pairs_needed"] = [_pairs_needed(abs(effect), sd, alpha, alternative)
                               for effect, sd in zip(primary["effect"], primary["sd"])]
    return primary.reset_index(drop=True)


#: The largest design :func:`detectable_effects` sizes.
MAX_PAIRS = 100


def _pairs_needed(effect: float, sd: float, alpha: float, alternative: str) -> float:
    for pairs in range(2, MAX_PAIRS + 1):
        detectable = detectable_effect(sd, pairs, alpha=alpha, alternative=alternative)
        if np.isfinite(detectable) and detectable <= effect:
            return float(pairs)
    return float("nan")


def generator_amplification(control: ControlResults, *, n_boot: int = 300, seed: int = 0) -> pd.DataFrame:
    """Gender × occupation amplification of each arm's generated images (every replicate's data pooled) against
    the real web people (:func:`.generator_amplification.amplification_table`; the simulator's labels are exact):
    the plant's size at the data level, with its interval. Columns of that table plus ``arm``."""
    from biaslib.studies.amplification.generator_amplification import amplification_table, study_people

    parts = []
    for name, params in control.arms.items():
        people = [study_people(params.for_replicate(r)) for r in params.data_replicates()]
        generated = pd.concat([g for _, g in people], ignore_index=True)
        parts.append(amplification_table(people[0][0], generated, n_boot=n_boot, seed=seed).assign(arm=name))
    return pd.concat(parts, ignore_index=True)


def _p(x: float) -> str:
    return "n/a" if not np.isfinite(x) else ("< 0.001" if x < 1e-3 else f"{x:.3f}")


def control_findings(table: pd.DataFrame, spec: ControlConfig, amplification: pd.DataFrame | None = None,
                     detectable: pd.DataFrame | None = None) -> list[str]:
    """The control's findings as sentences computed from :func:`control_table` (and the generators'
    amplification, the detectable effects): the verdict of each pair's primary test, whether the control passes,
    the secondary calls, and what the design can and cannot show."""
    lines = []
    primary = table[table["family"] == "primary"]
    for row in primary.itertuples(index=False):
        verdict = "called" if row.called else "not called"
        expected = {"positive": "called (a plant)", "negative": "quiet (A/A)"}.get(row.role)
        ok = "" if expected is None else (" — as a control must" if (row.role == "positive") == bool(row.called)
                                          else " — THE CONTROL FAILS")
        lines.append(f"{row.pair} ({row.treatment} − {row.reference}), primary {row.measure}: paired effect "
                     f"{row.effect:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}] over {row.pairs} replicate pairs "
                     f"(paired t 95%), sign-flip p {_p(row.p_value)} (smallest attainable {row.min_p:.4f}), ρ = "
                     f"{row.rho:.2f}: {verdict} at α = {row.threshold:g}{ok}"
                     + (f"; expected {expected}" if expected else "") + ".")
    positive, negative = primary[primary["role"] == "positive"], primary[primary["role"] == "negative"]
    if len(positive) or len(negative):
        passed = bool(positive["called"].all()) and not bool(negative["called"].any())
        lines.append(f"The control {'passes' if passed else 'FAILS'}: {int(positive['called'].sum())} of "
                     f"{len(positive)} planted pair(s) called, {int(negative['called'].sum())} of {len(negative)} "
                     "A/A pair(s) called.")
    for pair, part in table[table["family"] == "secondary"].groupby("pair", sort=False):
        called = part[part["called"]]
        named = ", ".join(f"{r.measure} {r.effect:+.4f} (q {_p(r.q_value)})" for r in called.itertuples())
        lines.append(f"{pair}: {len(called)} of {len(part)} secondary measures differ beyond chance (BH q < "
                     f"{spec.q_level:g} over the declared family){': ' + named if named else ''}.")
    half = primary["evaluation_half_width"].median() if len(primary) else np.nan
    lines.append(f"What the intervals cover: the variation between replicate pairs (training seeds and generator "
                 f"draws), for this evaluation set (its occupations and faces, shared by every model). One model's "
                 f"value alone carries ±{half:.4f} from that set (median half-width of the models' own intervals); "
                 "the arms of a pair share it, so most of it cancels in their difference, but an effect measured "
                 "here is a statement about these queries and faces.")
    if amplification is not None and len(amplification):
        bias = amplification[(amplification["metric"] == "bias_amplification") & (amplification["estimate"] == "raw")]
        for row in bias.itertuples(index=False):
            lines.append(f"Generator {row.arm}: gender × occupation BiasAmp of its images {row.value:+.3f} "
                         f"[{row.ci_low:+.3f}, {row.ci_high:+.3f}] against the real web people.")
    if detectable is not None and len(detectable):
        columns = [c for c in detectable.columns if c.startswith("detectable ")]
        for row in detectable.to_dict("records"):
            sizes = ", ".join(f"{c.removeprefix('detectable ')} {row[c]:.4f}" if np.isfinite(row[c]) else
                              f"{c.removeprefix('detectable ')}: none (too few pairs to reach α)" for c in columns)
            needed = (f"{row['pairs_needed']:.0f} pairs" if np.isfinite(row["pairs_needed"])
                      else f"more than {MAX_PAIRS} pairs")
            lines.append(f"{row['pair']}: the paired effect detected with 80% power if a difference varies as here "
                         f"(sd {row['sd']:.4f}): {sizes}; an effect as large as this one's ({abs(row['effect']):.4f}) "
                         f"needs {needed}.")
    return lines


__all__ = ["ControlDesignError", "ControlResults", "arms", "check_design", "control_findings",
           "control_table", "declare", "detectable_effects", "generator_amplification", "load_control",
           "pair_values", "recorded_declaration"]
