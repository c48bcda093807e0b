"""Numbers for people: one rule for how the CLI, the pages and the charts print
released values.

A noisy value is only as precise as its confidence interval. Its digits are
chosen from the interval's half-width: the value and both ends are rounded to
the place of the half-width's second significant digit (a half-width of 3.2
keeps tenths, one of 1 200 000 keeps hundred-thousands). So ``1000001 ± 3``
prints as ``1,000,001.0 [999,998.0, 1,000,004.0]`` and not ``1e+06 [1e+06,
1e+06]``, and ``3905349655 ± 1.2e6`` as ``3,905,300,000 [3,904,100,000, …]``.

Values without an interval (ε, δ, costs) keep four significant digits with
trailing zeros dropped (``0.2999999999997`` → ``0.3``). Chart axes use "nice"
ticks (1, 2 or 5 × 10^k) printed with the decimals of their step.

Downloads (CSV, Parquet, JSON) keep the full values: rounding is for reading.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Sequence

SIGNIFICANT_OF_WIDTH = 2        # digits of the half-width that are kept
PLAIN_SIGNIFICANT = 4


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def place_of(half_width: float) -> int:
    """The decimal place kept for a value with this half-width: 1 means tenths,
    0 units, -5 hundred-thousands."""
    if not _finite(half_width) or half_width <= 0:
        return 6
    return SIGNIFICANT_OF_WIDTH - 1 - math.floor(math.log10(half_width))


def _fixed(v: float, place: int, grouping: bool = True) -> str:
    if place <= 0:
        rounded = int(round(v, place))
        return f"{rounded:,}" if grouping else str(rounded)
    text = f"{v:,.{place}f}" if grouping else f"{v:.{place}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text.replace(",", "")) == 0 else text


def format_plain(v: Any, significant: int = PLAIN_SIGNIFICANT) -> str:
    """A value without an interval: ``significant`` digits, no trailing zeros,
    thousands grouped; integers in full."""
    if v is None:
        return ""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(v)))
    if magnitude >= 15 or magnitude < -4:          # δ = 1e-6 and 5e-7 read alike, not 0.000001 and 5e-7
        mantissa, _, exponent = f"{v:.{significant - 1}e}".partition("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    place = significant - 1 - magnitude
    if place <= 0:
        return _fixed(v, place)
    text = f"{round(v, place):,.{place}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_estimate(value: Any, interval: Sequence[float] | None) -> tuple[str, str | None]:
    """(value, "[lower, upper]" or None), both rounded by the rule above."""
    if not _finite(value):
        return ("" if value is None else str(value)), None
    if not interval or not all(_finite(x) for x in interval[:2]):
        return (str(value) if isinstance(value, int) else format_plain(value)), None
    lo, hi = float(interval[0]), float(interval[1])
    half = (hi - lo) / 2
    if half <= 0:
        return format_plain(value), f"[{format_plain(lo)}, {format_plain(hi)}]"
    place = place_of(half)
    if isinstance(value, int) and not isinstance(value, bool):
        place = min(place, 0)
    return _fixed(float(value), place), f"[{_fixed(lo, place)}, {_fixed(hi, place)}]"


def format_cell(value: Any, interval: Sequence[float] | None) -> str:
    """``value [lower, upper]`` (or the value alone), for one line of text."""
    v, iv = format_estimate(value, interval)
    return f"{v} {iv}" if iv else v


def format_half_width(half_width: float) -> str:
    """An expected ± half-width: two significant digits."""
    if not _finite(half_width):
        return "∞"
    return format_plain(half_width, SIGNIFICANT_OF_WIDTH)


def nice_step(span: float, ticks: int = 5) -> float:
    """A tick step of 1, 2 or 5 × 10^k giving about ``ticks`` intervals over ``span``."""
    if not _finite(span) or span <= 0:
        return 1.0
    raw = span / max(ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def nice_ticks(lo: float, hi: float, ticks: int = 5) -> tuple[list[float], float]:
    """Ticks covering [lo, hi] at a nice step, and the step."""
    step = nice_step(hi - lo, ticks)
    start = math.floor(lo / step) * step
    out = []
    k = 0
    while True:
        t = start + k * step
        if t > hi + step * 1e-9:
            break
        out.append(0.0 if abs(t) < step * 1e-9 else t)
        k += 1
        if k > 1000:
            break
    if out and out[-1] < hi - step * 1e-9:
        out.append(out[-1] + step)
    return out, step


def format_tick(v: float, step: float) -> str:
    """A tick label with as many decimals as its step needs."""
    place = max(0, -math.floor(math.log10(step) + 1e-12)) if step > 0 else 0
    return _fixed(v, place)
