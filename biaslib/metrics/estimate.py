"""The one result type of every measure in :mod:`biaslib.metrics` that comes with its uncertainty.

A measure with an interval (and, where it has a null hypothesis, a test of it) returns an :class:`Estimate`:
``value`` in the measure's units, ``ci_low``/``ci_high`` at level ``ci`` and ``p_value``, always under these names,
whatever the measure (a gap, a slope, a paired effect, a corrected mean L1). What only one measure has (the gap's
groups, the trend's number of models, the paired test's ``rho``) is in ``details`` and reads as an attribute
(``result.low_group``); each function's docstring names its details. :meth:`Estimate.as_dict` is the flat row.

The other kinds of result, each with one type: per-group (or per-query) tables are a :class:`pandas.DataFrame`
with the columns of :func:`biaslib.metrics.groups.summary_frame`; a point score without an interval is a
``float`` (per item or per query, a ``numpy.ndarray``); a set of point scores of one table (MAGBIG's) a
``dict[str, float]``; an interval kernel returns ``(low, high)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The fields every :class:`Estimate` has, in the order of :meth:`Estimate.as_dict`.
ESTIMATE_FIELDS: tuple[str, ...] = ("value", "ci_low", "ci_high", "p_value")


@dataclass(frozen=True)
class Estimate:
    """A measure with its interval and the p-value of its null.

    Attributes
    ----------
    value : float
        The point estimate, in the measure's units.
    ci_low, ci_high : float
        Its interval at level ``ci`` (NaN when none was computed, e.g. ``n_boot=0``).
    p_value : float
        The p-value of the measure's null hypothesis (named in the function's docstring); NaN when the measure has
        no test or it was not run.
    ci : float
        The interval's level.
    details : Mapping[str, Any]
        What only this measure has, each also an attribute (``result.low_group``).

    Examples
    --------
    >>> result = Estimate(0.25, 0.1, 0.4, p_value=0.01, details={"n": 40})
    >>> result.value, result.n, result.covers(0.0)
    (0.25, 40, False)
    >>> result.as_dict()
    {'value': 0.25, 'ci_low': 0.1, 'ci_high': 0.4, 'p_value': 0.01, 'n': 40}
    >>> list(result.as_dict("slope"))[0]
    'slope'
    """

    value: float
    ci_low: float
    ci_high: float
    p_value: float = math.nan
    ci: float = 0.95
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = set(self.details) & {*ESTIMATE_FIELDS, "ci", "details"}
        if clash:
            raise ValueError(f"details may not reuse the names of Estimate's fields: {sorted(clash)}")

    def __getattr__(self, name: str) -> Any:
        # called only when the fields do not have ``name``; ``__dict__`` directly, as unpickling runs before it is set
        details = self.__dict__.get("details", {})
        if name in details:
            return details[name]
        raise AttributeError(f"Estimate has no field or detail {name!r} (details: {', '.join(details) or 'none'})")

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (False when the interval was not computed)."""
        return bool(self.ci_low <= value <= self.ci_high)

    def as_dict(self, value: str = "value") -> dict[str, Any]:
        """``value`` (under the name ``value``, e.g. a table's ``slope`` column), ``ci_low``, ``ci_high``,
        ``p_value`` and then the details: one flat row."""
        return {value: self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
                **self.details}


__all__ = ["ESTIMATE_FIELDS", "Estimate"]
