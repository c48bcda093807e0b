"""Noisy measures -> released aggregate values with their (1-alpha) intervals.

* count / sum: the noisy value ± OpenDP's discrete Laplace/Gaussian accuracy at
  ``alpha``.
* avg: ``mid + S'/N`` from the centred noisy sum and the noisy count; the
  interval is the range of ``mid + S/N`` over the box of the two intervals, each at
  ``alpha/2`` (so the box covers both with probability >= 1-alpha), with ``N >= 1``,
  intersected with the clamp bounds.
* var / stddev: the same over the box of (sum of squares, sum, count), each at
  ``alpha/3``, clipped to ``[0, ((upper-lower)/2)^2]``.
* quantile: the selected candidate; its interval is the candidate range (a
  data-driven interval would need more budget: see docs/privacy.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from privacy import mechanisms as mech
from privacy.accounting import NoiseDesign
from privacy.sensitivity import centre, fixed_point_step
from queries.model import Aggregate
from queries.vocabulary import COUNT_KINDS, AggregateKind


@dataclass(frozen=True)
class AggregateValues:
    values: tuple[Any, ...]                       # one per group
    intervals: tuple[tuple[float, float], ...]    # one per group


def _hw(design: NoiseDesign, agg: str, role: str, alpha: float) -> float:
    m = design.measure(agg, role)
    return mech.half_width(design.family, m.scale, alpha) * m.sens.step


def _ratio_range(s_lo: float, s_hi: float, n_lo: float, n_hi: float) -> tuple[float, float]:
    corners = [s / n for s in (s_lo, s_hi) for n in (n_lo, n_hi)]
    return min(corners), max(corners)


def _clip(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def aggregate_values(agg: Aggregate, design: NoiseDesign, noisy: dict[str, list], alpha: float) -> AggregateValues:
    kind = agg.kind
    if kind in COUNT_KINDS:
        hw = _hw(design, agg.name, "count", alpha)
        vals = [int(v) for v in noisy["count"]]
        return AggregateValues(tuple(vals), tuple((v - hw, v + hw) for v in vals))
    if kind == AggregateKind.SUM:
        step = design.measure(agg.name, "sum").sens.step
        hw = _hw(design, agg.name, "sum", alpha)
        vals = [int(v) if agg.integer else v * step for v in noisy["sum"]]
        return AggregateValues(tuple(vals), tuple((v - hw, v + hw) for v in vals))
    if kind == AggregateKind.QUANTILE:
        cands = agg.candidates
        vals = [cands[i] for i in noisy["score"]]
        return AggregateValues(tuple(vals), tuple((float(cands[0]), float(cands[-1])) for _ in vals))
    if kind == AggregateKind.AVG:
        return _averages(agg, design, noisy, alpha)
    return _variances(agg, design, noisy, alpha)


def _averages(agg, design, noisy, alpha) -> AggregateValues:
    mid, _, step = centre(agg)
    lower, upper = float(agg.lower), float(agg.upper)
    hw_s, hw_n = _hw(design, agg.name, "sum", alpha / 2), _hw(design, agg.name, "count", alpha / 2)
    values, intervals = [], []
    for s_units, n in zip(noisy["sum"], noisy["count"]):
        s = s_units * step
        values.append(_clip(mid + s / max(n, 1), lower, upper))
        if n + hw_n < 1:
            intervals.append((lower, upper))
            continue
        lo, hi = _ratio_range(s - hw_s, s + hw_s, max(n - hw_n, 1.0), n + hw_n)
        intervals.append((_clip(mid + lo, lower, upper), _clip(mid + hi, lower, upper)))
    return AggregateValues(tuple(values), tuple(intervals))


def _variances(agg, design, noisy, alpha) -> AggregateValues:
    mid, c, step = centre(agg)
    step_q = design.measure(agg.name, "sumsq").sens.step
    sample = agg.kind in (AggregateKind.VAR_SAMP, AggregateKind.STDDEV_SAMP)
    root = agg.kind in (AggregateKind.STDDEV_POP, AggregateKind.STDDEV_SAMP)
    vmax = ((float(agg.upper) - float(agg.lower)) / 2) ** 2
    hw_q = _hw(design, agg.name, "sumsq", alpha / 3)
    hw_s = _hw(design, agg.name, "sum", alpha / 3)
    hw_n = _hw(design, agg.name, "count", alpha / 3)
    n_min = 2 if sample else 1
    values, intervals = [], []
    for q_units, s_units, n in zip(noisy["sumsq"], noisy["sum"], noisy["count"]):
        q, s = q_units * step_q, s_units * step
        nn = max(n, n_min)
        factor = nn / (nn - 1) if sample else 1.0
        point = _clip((max(q, 0.0) / nn - (s / nn) ** 2) * factor, 0.0, vmax * factor)
        if n + hw_n < n_min:
            lo, hi = 0.0, vmax * (2.0 if sample else 1.0)
        else:
            n_lo, n_hi = max(n - hw_n, n_min), n + hw_n
            r_lo, r_hi = _ratio_range(s - hw_s, s + hw_s, n_lo, n_hi)
            r2_min = 0.0 if r_lo <= 0 <= r_hi else min(r_lo * r_lo, r_hi * r_hi)
            r2_max = max(r_lo * r_lo, r_hi * r_hi)
            f_lo, f_hi = ((n_hi / (n_hi - 1)), (n_lo / (n_lo - 1))) if sample else (1.0, 1.0)
            lo = max(max(q - hw_q, 0.0) / n_hi - r2_max, 0.0) * f_lo
            hi = min((q + hw_q) / n_lo - r2_min, vmax) * f_hi
            lo, hi = min(lo, hi), max(lo, hi)
        if root:
            point, lo, hi = math.sqrt(point), math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0))
        values.append(point)
        intervals.append((lo, hi))
    return AggregateValues(tuple(values), tuple(intervals))


def expected_half_width(agg: Aggregate, design: NoiseDesign, alpha: float) -> float | None:
    """The data-free (1-alpha) half-width of an aggregate, where it does not depend on data."""
    if agg.kind in COUNT_KINDS:
        return _hw(design, agg.name, "count", alpha)
    if agg.kind == AggregateKind.SUM:
        return _hw(design, agg.name, "sum", alpha)
    return None


__all__ = ["AggregateValues", "aggregate_values", "expected_half_width", "fixed_point_step"]
