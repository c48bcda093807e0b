"""Sensitivity of each exact measure, read from the plan's contribution bounds.

Neighbouring datasets differ by all rows of one privacy unit (add/remove). The
bounded SQL guarantees that one unit touches at most ``max_groups`` groups and,
in each, at most ``max_rows`` rows (an aggregate's own ``max_rows`` overrides the
plan's), and that every summed value lies in ``[lower, upper]``. So a measure
whose per-row contribution is at most ``c`` in absolute value changes by at most
``d = max_rows * c`` in each of at most ``max_groups`` groups:

* L1 over the vector of groups: ``max_groups * d``
* L2: ``sqrt(max_groups) * d``
* L-inf (per group, used by quantile scores): ``d``

When the plan also bounds a unit's rows across all groups (``max_total``, the
policy's ``max_total_rows_per_unit``), the changes over all groups add up to at
most ``T = max_total * c`` (plus the fixed-point slack of each group reached), so

* L1 is at most ``T``;
* L2 is at most ``sqrt(d * T)`` (the sum of the squared changes is at most the
  largest change times their sum).

Quantile scores are charged per group and keep ``max_groups * d``.

Every noised measure is an integer. Counts and integer sums are integers
already. Non-integer measures are released on a fixed-point grid of step
``fixed_point_step(c)`` (a power of two about 2^-20 of the bound), see
``docs/privacy.md``: the exact sum is rounded to the grid, which adds one grid unit
to the sensitivity, and one more unit absorbs the floating-point error of the
SQL's summation.

Averages and variances are released from *centred* measures (``x - mid`` with
``mid`` the midpoint of the bounds snapped to the grid), which halves the
per-row bound of the sum when the bounds are one-sided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from queries.centring import FIXED_POINT_BITS, centre_point, fixed_point_step  # noqa: F401 (re-exported)
from queries.errors import PrivacyError
from queries.model import Aggregate, BoundedPlan
from queries.vocabulary import VARIANCE_KINDS, AggregateKind

FLOAT_SLACK_UNITS = 2   # rounding to the grid (1) + summation error (1)
QUANTILE_DENOMINATOR = 10_000


@dataclass(frozen=True)
class MeasureSensitivity:
    """One noised measure: an integer vector over groups (or, for quantiles, one
    score vector per group)."""

    aggregate: str         # a0, ...
    role: str              # count, sum, sumsq, score, units
    step: float            # released value = integer * step (1 for integers)
    per_group: int         # L-inf bound in grid units (d)
    max_groups: int        # groups one unit can touch (G)
    weight: float = 1.0    # error weight within its aggregate (see accounting)
    total: int | None = None   # bound on the changes of all groups together, in grid units (T)

    @property
    def l1(self) -> int:
        full = self.max_groups * self.per_group
        return full if self.total is None else min(full, self.total)

    @property
    def l2(self) -> float:
        full = math.sqrt(self.max_groups) * self.per_group
        return full if self.total is None else min(full, math.sqrt(self.per_group * self.total))


def rows_per_group(plan: BoundedPlan, agg: Aggregate) -> int:
    rows = agg.max_rows if agg.max_rows is not None else plan.max_rows
    if rows < 1 or plan.max_groups < 1:
        raise PrivacyError("contribution bounds must be positive", code="invalid_bounds")
    return int(rows)


def centre(agg: Aggregate) -> tuple[float, float, float]:
    """(mid, c, step): the centring point on the grid, the per-row bound of
    ``|x - mid|`` and the grid step for centred values."""
    lower, upper = float(agg.lower), float(agg.upper)
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower > upper:
        raise PrivacyError(f"aggregate {agg.name} has invalid clamp bounds", code="invalid_bounds")
    return centre_point(lower, upper, agg.integer)


def _units(value_bound: float, step: float, integer: bool) -> int:
    if integer:
        return max(int(math.ceil(value_bound)), 0)
    return int(math.ceil(value_bound / step)) + FLOAT_SLACK_UNITS


def quantile_fraction(q: float) -> tuple[int, int]:
    """(num, den) with q = num/den, den = 10000, as in OpenDP's quantile score."""
    if q is None or not (0.0 <= q <= 1.0):
        raise PrivacyError("quantile must be within [0, 1]", code="invalid_quantile")
    frac = Fraction(q).limit_denominator(QUANTILE_DENOMINATOR)
    return frac.numerator, frac.denominator


def measure_sensitivities(plan: BoundedPlan, agg: Aggregate) -> tuple[MeasureSensitivity, ...]:
    """The noised measures of one aggregate, with their sensitivities and the
    error weights used to split the aggregate's budget between them."""
    g = int(plan.max_groups)
    m = rows_per_group(plan, agg)
    kind = agg.kind
    # the bound over all groups: only on the plan's own rows (an aggregate with rows of its own has none)
    t = int(plan.max_total) if plan.max_total is not None and agg.max_rows is None else None

    def total(per_row: float, step: float, integer: bool = agg.integer) -> int | None:
        if t is None:
            return None
        if integer:
            return max(int(math.ceil(t * per_row)), 0)
        return int(math.ceil(t * per_row / step)) + FLOAT_SLACK_UNITS * min(g, t)

    if kind == AggregateKind.COUNT:
        return (MeasureSensitivity(agg.name, "count", 1.0, m, g, total=total(1.0, 1.0, True)),)
    if kind == AggregateKind.COUNT_UNITS:
        return (MeasureSensitivity(agg.name, "count", 1.0, 1, g),)
    if kind == AggregateKind.SUM:
        c = max(abs(float(agg.lower)), abs(float(agg.upper)))
        step = 1.0 if agg.integer else fixed_point_step(c)
        return (MeasureSensitivity(agg.name, "sum", step, _units(m * c, step, agg.integer), g, total=total(c, step)),)
    if kind == AggregateKind.AVG:
        _, c, step = centre(agg)
        # error of mid + S/N is about (sigma_S + |mean - mid| sigma_N) / N, |mean - mid| <= c
        return (MeasureSensitivity(agg.name, "sum", step, _units(m * c, step, agg.integer), g, weight=1.0,
                                   total=total(c, step)),
                MeasureSensitivity(agg.name, "count", 1.0, m, g, weight=c, total=total(1.0, 1.0, True)))
    if kind in VARIANCE_KINDS:
        _, c, step = centre(agg)
        step_q = 1.0 if agg.integer else fixed_point_step(c * c)
        # d var = dQ/N - 2 mean dS/N + (2 mean^2 - Q/N) dN/N, each coefficient bounded by 1, 2c, c^2
        return (MeasureSensitivity(agg.name, "sumsq", step_q, _units(m * c * c, step_q, agg.integer), g, weight=1.0,
                                   total=total(c * c, step_q)),
                MeasureSensitivity(agg.name, "sum", step, _units(m * c, step, agg.integer), g, weight=2 * c,
                                   total=total(c, step)),
                MeasureSensitivity(agg.name, "count", 1.0, m, g, weight=c * c, total=total(1.0, 1.0, True)))
    if kind == AggregateKind.QUANTILE:
        if not agg.candidates:
            raise PrivacyError(f"aggregate {agg.name} has no quantile candidates", code="invalid_quantile")
        num, den = quantile_fraction(agg.quantile if agg.quantile is not None else 0.5)
        return (MeasureSensitivity(agg.name, "score", 1.0, m * max(num, den - num), g),)
    raise PrivacyError(f"aggregate kind '{kind}' is not supported", code="unsupported_aggregate")


def units_sensitivity(plan: BoundedPlan) -> MeasureSensitivity:
    """The count of units per group used by partition selection: one unit adds 1
    to at most ``max_groups`` groups."""
    return MeasureSensitivity("partition_selection", "units", 1.0, 1, int(plan.max_groups))
