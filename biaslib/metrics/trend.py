"""Dose-response of a measure on the mixing ratio across trained models: slope, interval, permutation test.

A "model" is one trained CLIP: one (ratio, replicate) pair of an experiment. Each model contributes one value of
a measure with its evaluation interval (a row of :func:`biaslib.results.collect`). For each measure
(:data:`TREND_BY`):

* ``slope``: least-squares slope of the value on the ratio fraction over all models (units of the measure per
  unit ratio, i.e. from all real to all generated).
* ``ci_low``/``ci_high``: with replicates (≥ 2 models at every ratio, ``replicated``) the t interval of the
  least-squares slope with the pure-error variance (the pooled variance of models at the same ratio, N − L degrees
  of freedom): that spread already holds all the noise between models — training and whatever evaluation noise
  differs between them — while evaluation noise all models share (one fixed query set scores every model) moves
  every value alike and leaves the slope alone. Adding each model's evaluation interval again, as until
  2026-12-06, counted it twice (coverage 0.97–0.99 where evaluation dominates) and the replicate bootstrap
  under-covered (0.88 with three replicates). Without replicates: a bootstrap that redraws each model's value from
  a normal with the standard error of its own evaluation interval — evaluation noise only, as ``replicated``
  False says.
* ``p_value``: permutation test of "the ratio does not matter": the ratio labels are permuted across whole models
  (a model keeps its value, whatever noise is in it), two-sided on |slope|; exact over all distinct
  relabellings when there are at most ``n_perm`` of them. Valid with one replicate too (the models are
  exchangeable under the null), but then it has few relabellings.
* ``q_value``: Benjamini–Hochberg over the table's family (every row, or the rows a params file declares). A trend
  is *called* (``called``) only when ``q_value`` < :data:`~biaslib.metrics.intervals.Q_LEVEL` and ``replicated``:
  nothing is called a trend on one replicate. A family that could not call even one finding (its smallest
  attainable p times its size not below the level: 3 ratios × 3 replicates give p ≥ 2/1,680, so 44 rows give
  q ≥ 0.052) is refused.

Measured by simulation in ``tests/test_trend.py`` (ratios {0, ½, 1} × 3 replicates, training noise sd 0.10,
evaluation se 0.05): without an effect the p-value is uniform (KS test; 6.2% below 0.05 of 400 studies); a
planted slope of 0.3 is recovered without bias and detected (p < 0.05) in 78% of 300 studies; the 95% interval
covers it in 0.93–0.97 of 1,000 studies, whether the evaluation noise is each model's own or shared by all and
whether training or evaluation noise dominates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from biaslib.metrics.estimate import Estimate
from biaslib.metrics.intervals import Q_LEVEL, bh_qvalues, check_callable, percentile_interval, z_value

#: A measure: one value per trained model.
TREND_BY = ["experiment", "evaluation", "dataset", "attribute", "metric", "kind", "group"]
TREND_COLUMNS = [*TREND_BY, "models", "ratios", "min_replicates", "slope", "ci_low", "ci_high", "p_value",
                 "min_p", "q_value", "replicated", "called"]


def least_squares_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of each row of ``y`` (shape (draws, models)) on ``x`` (shape (draws, models) or
    (models,)); NaN where x does not vary.

    "Does not vary" is tested exactly (every x of the row equal to its first), not by Σ (x − x̄)² > 0: the mean of
    x values that are not exact in binary (0.1, 0.7) is off by a rounding, so a constant row has a tiny positive
    Σ (x − x̄)² and the slope would be rounding noise over rounding noise (0, or any value) instead of NaN.

    >>> import numpy as np
    >>> least_squares_slopes(np.array([0.0, 0.5, 1.0]), np.array([[1.0, 2.0, 3.0], [3.0, 3.0, 3.0]])).tolist()
    [2.0, 0.0]
    >>> least_squares_slopes(np.array([[0.1, 0.1, 0.1], [0.1, 0.5, 0.9]]), np.array([[1.0, 2.0, 4.0]] * 2)).tolist()
    [nan, 3.75]
    """
    x = np.broadcast_to(x, y.shape)
    varies = ~(x == x[..., :1]).all(axis=-1)
    dx = x - x.mean(axis=-1, keepdims=True)
    sxx = (dx * dx).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(varies & (sxx > 0), (dx * (y - y.mean(axis=-1, keepdims=True))).sum(axis=-1) / sxx, np.nan)


def _distinct_relabellings(values: np.ndarray, counts: np.ndarray, n: int) -> list[list[float]]:
    """Every distinct arrangement of ``counts[j]`` copies of ``values[j]`` over ``n`` positions."""
    if len(values) == 0:
        return [[0.0] * n]
    out = []
    rest = list(range(n))
    for positions in itertools.combinations(rest, int(counts[0])):
        others = [i for i in rest if i not in positions]
        for tail in _distinct_relabellings(values[1:], counts[1:], len(others)):
            labels = [0.0] * n
            for i in positions:
                labels[i] = float(values[0])
            for i, label in zip(others, tail):
                labels[i] = label
            out.append(labels)
    return out


def _relabellings(x: np.ndarray, n_perm: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(ratio labels permuted across models, shape (draws, models); exact): every distinct relabelling when
    there are at most ``n_perm``, else ``n_perm`` random ones."""
    values, counts = np.unique(x, return_counts=True)
    distinct = math.factorial(len(x)) // math.prod(math.factorial(int(c)) for c in counts)
    if distinct <= n_perm:
        return np.array(_distinct_relabellings(values, counts, len(x)), dtype=np.float64), True
    return np.array([rng.permutation(x) for _ in range(n_perm)]), False


def _pure_error_interval(x: np.ndarray, y: np.ndarray, members: list[np.ndarray], slope: float,
                         ci: float) -> tuple[float, float]:
    """t interval of the least-squares slope of ``y`` on ``x`` (models,) with the pure-error variance: the pooled
    within-ratio variance of the models at each ratio level (``members``: each level's model indices, ≥ 2 each),
    N − L degrees of freedom. NaN when x does not vary."""
    from scipy.stats import t

    sxx = float(((x - x.mean()) ** 2).sum())
    if sxx <= 0 or np.isnan(slope):
        return float("nan"), float("nan")
    within = sum(float(((y[m] - y[m].mean()) ** 2).sum()) for m in members)
    df = len(x) - len(members)
    half = float(t.ppf(0.5 + ci / 2.0, df)) * math.sqrt(within / df / sxx)
    return slope - half, slope + half


def model_trend(ratio: np.ndarray, value: np.ndarray, se: np.ndarray, *, n_boot: int = 2000, n_perm: int = 5000,
                ci: float = 0.95, seed: int = 0) -> Estimate:
    """Slope, interval (t with pure error when replicated, else evaluation bootstrap) and permutation p-value of one
    measure (module docstring): an :class:`~biaslib.metrics.estimate.Estimate` whose ``value`` is the slope, with
    details ``models``, ``ratios``, ``min_replicates``, ``min_p`` and ``replicated``.

    ``ratio``, ``value``, ``se``: one entry per trained model (ratio fraction, value, evaluation standard error;
    NaN se counts as 0).

    Two replicates at ratios 0 and 1 (values 0, 0.2 and 1, 1.2): slope 1; pure-error variance 0.04 / 2, so the
    interval is 1 ± t_{2, 0.975} · √0.02. Of the C(4, 2) = 6 relabellings the true one and its mirror reach
    |slope| 1, so p = 2/6, which is also the smallest p this design can give.

    >>> import numpy as np
    >>> result = model_trend(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 0.2, 1.0, 1.2]), np.zeros(4))
    >>> result.value, round(result.ci_low, 3), round(result.ci_high, 3), result.replicated
    (1.0, 0.392, 1.608, True)
    >>> round(result.p_value, 3), round(result.min_p, 3)
    (0.333, 0.333)
    """
    x, y = np.asarray(ratio, dtype=np.float64), np.asarray(value, dtype=np.float64)
    se = np.nan_to_num(np.asarray(se, dtype=np.float64), nan=0.0)
    rng = np.random.default_rng(seed)
    levels = np.unique(x)
    members = [np.flatnonzero(x == level) for level in levels]
    slope = float(least_squares_slopes(x, y))
    sizes = [len(m) for m in members]
    if min(sizes) >= 2:
        low, high = _pure_error_interval(x, y, members, slope, ci)
    else:  # evaluation noise only: each model's value redrawn with its own evaluation standard error
        draws = y + rng.standard_normal((n_boot, len(y))) * se
        boot = least_squares_slopes(x, draws)
        low, high = percentile_interval(boot[np.isfinite(boot)], ci) if np.isfinite(boot).any() else (np.nan, np.nan)
    relabelled, exact = _relabellings(x, n_perm, rng)
    null = np.abs(least_squares_slopes(relabelled, np.broadcast_to(y, relabelled.shape)))
    tol = 1e-12 * max(abs(slope), 1.0)
    hits = int((null >= abs(slope) - tol).sum())
    p = hits / len(null) if exact else (1 + hits) / (1 + len(null))
    # the smallest p these values could give: the most extreme relabelling (and its ties) alone
    min_p = int((null >= np.nanmax(null) - tol).sum()) / len(null) if exact else 1 / (1 + len(null))
    tested = not np.isnan(slope)
    return Estimate(slope, float(low), float(high), float(p) if tested else np.nan, ci, details={
        "models": len(x), "ratios": len(levels), "min_replicates": min(sizes),
        "min_p": float(min_p) if tested else np.nan, "replicated": min(sizes) >= 2})


def _models(frame: pd.DataFrame, ci: float) -> pd.DataFrame:
    """The rows of ``frame`` with a value, every :data:`TREND_BY` column (missing ones as one level), a
    ``replicate`` (default 0) and ``se``, the evaluation standard error from the ``ci`` interval's half width."""
    frame = frame[frame["value"].notna()].copy()
    for column in TREND_BY:
        if column not in frame.columns:
            frame[column] = ""
    if "replicate" not in frame.columns:
        frame["replicate"] = 0
    frame["se"] = (frame["ci_high"] - frame["ci_low"]) / (2 * z_value(ci))
    return frame


def trend(frame: pd.DataFrame, *, n_boot: int = 2000, n_perm: int = 5000, ci: float = 0.95, seed: int = 0,
          q_level: float = Q_LEVEL, family: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.DataFrame:
    """:func:`model_trend` of every measure of a results frame, with Benjamini–Hochberg q-values over its family.

    ``frame``: rows with :data:`TREND_BY` (missing ones are treated as one level), ``ratio_fraction``, ``value``,
    ``ci_low``/``ci_high`` (the evaluation interval at level ``ci``; its half width / z is the standard error)
    and optionally ``replicate`` (default 0: one model per ratio). ``family`` selects the rows of the output that
    are tested together (a boolean Series; default every row): only they get a q-value and can be ``called``; the
    others keep their p-value. A replicated family whose smallest attainable p cannot reach ``q_level`` at its
    size is an error (:func:`~biaslib.metrics.intervals.check_callable`), not a table of non-findings. Returns
    :data:`TREND_COLUMNS` (``min_p``: the smallest p-value each row's design and values could give).

    Three ratios × three replicates on the line value = ratio (± 0.1 replicate noise): the slope is 1 and only the
    true labelling and its mirror of the 9! / (3!)^3 = 1,680 reach it, so p = 2/1,680; the one-row family's q equals
    it and the trend is called.

    >>> import numpy as np
    >>> import pandas as pd
    >>> ratio = np.repeat([0.0, 0.5, 1.0], 3)
    >>> value = ratio + np.tile([0.0, 0.1, -0.1], 3)
    >>> frame = pd.DataFrame({"metric": "m", "ratio_fraction": ratio, "replicate": np.tile([0, 1, 2], 3),
    ...                       "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1})
    >>> row = trend(frame).iloc[0]
    >>> int(row["models"]), round(float(row["slope"]), 3), float(row["p_value"]) == float(row["q_value"]) == 2 / 1680
    (9, 1.0, True)
    >>> bool(row["called"])
    True
    """
    rows = []
    for i, (keys, part) in enumerate(_models(frame, ci).groupby(TREND_BY, sort=True, dropna=False)):
        part = part.drop_duplicates(["ratio_fraction", "replicate"])
        slope = model_trend(part["ratio_fraction"].to_numpy(), part["value"].to_numpy(), part["se"].to_numpy(),
                            n_boot=n_boot, n_perm=n_perm, ci=ci, seed=seed + i)
        rows.append({**dict(zip(TREND_BY, keys)), **slope.as_dict("slope")})
    table = pd.DataFrame(rows, columns=[c for c in TREND_COLUMNS if c not in ("q_value", "called")])
    chosen = (family(table) if family is not None else pd.Series(True, index=table.index)).astype(bool)
    tested = chosen & table["p_value"].notna()
    table["q_value"] = np.nan
    if tested.any():
        table.loc[tested, "q_value"] = bh_qvalues(table.loc[tested, "p_value"].to_numpy(dtype=np.float64))
    callable_rows = tested & table["replicated"].astype(bool)
    if callable_rows.any():
        check_callable(float(table.loc[callable_rows, "min_p"].min()), int(tested.sum()), q_level,
                       what="the dose-response table")
    table["called"] = table["replicated"].astype(bool) & (table["q_value"] < q_level)
    return table[TREND_COLUMNS]


def detectable_slope(model_var: float, replicates: int, ratios: Sequence[float], *, alpha: float = 0.05,
                     power: float = 0.8) -> float:
    """The smallest slope a design of ``replicates`` models at each of ``ratios`` detects with probability
    ``power`` at two-sided level ``alpha``, when one model's value varies with variance ``model_var`` (training
    plus evaluation noise): (t_{1−α/2} + t_{power}) · √(model_var / (R · Σ (x − x̄)²)), t with R·L − 2 degrees of
    freedom (the least-squares slope's test; the permutation test of :func:`model_trend` has about its power).

    Three replicates at ratios 0, ½, 1: R · Σ (x − x̄)² = 3 · ½ and 7 degrees of freedom, so the slope is
    (t_{7, 0.975} + t_{7, 0.8}) · √(0.01 / 1.5) = (2.365 + 0.896) · 0.0816.

    >>> round(detectable_slope(0.01, 3, [0.0, 0.5, 1.0]), 3)
    0.266
    """
    from scipy.stats import t

    x = np.asarray(ratios, dtype=np.float64)
    sxx = replicates * float(((x - x.mean()) ** 2).sum())
    df = replicates * len(x) - 2
    if np.unique(x).size < 2 or df < 1:  # not sxx <= 0: rounding leaves ~1e-33 for [0.1, 0.1, 0.1]
        raise ValueError(f"a slope needs at least two distinct ratios and three models, got {replicates} × {list(x)}")
    return float((t.ppf(1 - alpha / 2, df) + t.ppf(power, df)) * math.sqrt(model_var / sxx))


def pilot_variance_bound(variance: float, df: int, assurance: float = 0.8) -> float:
    """Upper ``assurance`` confidence bound of a variance estimated with ``df`` degrees of freedom:
    df · variance / χ²_df(1 − assurance) (normal values). A design sized with it reaches its target power with
    probability ``assurance`` over the pilot's own noise (Browne 1995); sized with the estimate itself it falls short
    more often than not (a 3-replicate pilot of 3 ratios: 71% detected for a stated 80%).

    With 2 degrees of freedom χ²_2(q) = −2 ln(1 − q), so the bound is 2 · variance / (−2 ln 0.8) = variance / −ln 0.8.

    >>> import math
    >>> round(pilot_variance_bound(1.0, 2), 4), round(-1 / math.log(0.8), 4)
    (4.4814, 4.4814)
    >>> pilot_variance_bound(1.0, 0)
    nan
    """
    from scipy.stats import chi2

    if not 0.0 < assurance < 1.0:
        raise ValueError(f"assurance must be in (0, 1), got {assurance}")
    if df < 1:
        return float("nan")
    return float(df * variance / chi2.ppf(1.0 - assurance, df))


def power(frame: pd.DataFrame, replicates: int, ratios: Sequence[float], *, ci: float = 0.95, alpha: float = 0.05,
          target: float = 0.8, assurance: float = 0.8) -> pd.DataFrame:
    """Per measure of a results frame with replicates (``replicate`` column, ≥ 2 models at some ratio): the
    measured variance of one model's value (pooled within-ratio variance across replicates, ``model_var``, with
    ``replicate_df`` degrees of freedom), its evaluation part (mean squared standard error of the models' intervals,
    ``evaluation_var``), the training part (``training_var`` = the difference, at least 0), the variance a design is
    sized with (``model_var_upper``: :func:`pilot_variance_bound` at ``assurance``) and the :func:`detectable_slope`
    of a design of ``replicates`` × ``ratios`` at ``target`` power with that variance (``detectable_slope``; NaN
    without replicates). Measured (tests/test_trend.py): sized from 3-replicate pilots, the slope is detected in
    ≈ 89% of studies (≥ 80% in 80% of pilots); sized from the estimate alone it was 71%.

    Three replicates at each of three ratios, offsets 0, +0.1, −0.1 from the ratio: each ratio's variance is
    0.02 / 2 = 0.01 with 2 degrees of freedom, 6 in all; the evaluation intervals ± 0.1 give se = 0.1 / 1.96.

    >>> import numpy as np
    >>> import pandas as pd
    >>> ratio = np.repeat([0.0, 0.5, 1.0], 3)
    >>> value = ratio + np.tile([0.0, 0.1, -0.1], 3)
    >>> frame = pd.DataFrame({"metric": "m", "ratio_fraction": ratio, "replicate": np.tile([0, 1, 2], 3),
    ...                       "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1})
    >>> row = power(frame, 3, [0.0, 0.5, 1.0]).iloc[0]
    >>> int(row["replicate_df"]), round(float(row["model_var"]), 4), round(float(row["evaluation_var"]), 4)
    (6, 0.01, 0.0026)
    >>> round(float(row["model_var_upper"]), 6) == round(pilot_variance_bound(0.01, 6), 6)
    True
    """
    rows = []
    for keys, part in _models(frame, ci).groupby(TREND_BY, sort=True, dropna=False):
        groups = [g["value"].to_numpy(float) for _, g in part.groupby("ratio_fraction")]
        df = sum(len(g) - 1 for g in groups)
        model_var = sum(((g - g.mean()) ** 2).sum() for g in groups) / df if df > 0 else np.nan
        evaluation_var = float(np.nanmean(part["se"].to_numpy(float) ** 2)) if part["se"].notna().any() else 0.0
        upper = pilot_variance_bound(model_var, df, assurance)
        rows.append({**dict(zip(TREND_BY, keys)), "replicate_df": df, "model_var": model_var,
                     "evaluation_var": evaluation_var, "training_var": max(model_var - evaluation_var, 0.0)
                     if df > 0 else np.nan, "model_var_upper": upper,
                     "detectable_slope": detectable_slope(upper, replicates, ratios, alpha=alpha, power=target)
                     if df > 0 else np.nan})
    return pd.DataFrame(rows)


__all__ = ["TREND_BY", "TREND_COLUMNS", "detectable_slope", "least_squares_slopes", "model_trend",
           "pilot_variance_bound", "power", "trend"]
