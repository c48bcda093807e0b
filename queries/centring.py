"""The fixed-point grid and the centring point of a clamped aggregate.

Shared by the bounded SQL (which clamps each unit's sum of squares about the
centre) and by ``privacy/`` (which releases averages and variances from measures
centred on the same point and charges their sensitivity). Both must agree to the
bit, so the arithmetic lives in one place.
"""

from __future__ import annotations

import math

FIXED_POINT_BITS = 20   # grid step is about 2^-20 of the per-row bound


def fixed_point_step(bound: float) -> float:
    """The grid step for values bounded by ``bound`` in absolute value: the power
    of two nearest below ``bound * 2^-20`` (exact in binary floating point)."""
    if not math.isfinite(bound) or bound <= 0:
        return 2.0 ** -FIXED_POINT_BITS
    return 2.0 ** (math.floor(math.log2(bound)) - FIXED_POINT_BITS)


def centre_point(lower: float, upper: float, integer: bool) -> tuple[float, float, float]:
    """(mid, c, step) for values clamped to ``[lower, upper]``: the centring point
    on the grid, the per-row bound of ``|x - mid|`` and the grid step of centred
    values (1 for integers). Bounds must be finite with ``lower <= upper``."""
    if integer:
        mid = float(math.floor((lower + upper) / 2))
        return mid, max(upper - mid, mid - lower), 1.0
    step = fixed_point_step(max(abs(lower), abs(upper), upper - lower))
    mid = math.floor((lower + upper) / 2 / step) * step
    return mid, max(upper - mid, mid - lower), step
