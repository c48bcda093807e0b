"""Inline SVG charts drawn on the server (work offline, no script): one panel per
measure (every numeric output column with confidence intervals), each value
with its interval as an error bar. A product's chart hint (``dp-sandbox product
draft --chart RUN=bar|line|table``) picks horizontal bars, a line over the
rows in their order, or no chart. Numbers follow ``sandbox.numbers``."""

from __future__ import annotations

import itertools
import math
from typing import Any

from markupsafe import Markup, escape

from sandbox.numbers import format_cell, format_tick, nice_ticks
from web.i18n import translate as _

WIDTH, BAR_H, GAP, LEFT, RIGHT, TOP = 640, 22, 8, 150, 30, 30
LINE_H = 260
MAX_ROWS = 40
KINDS = ("bar", "line", "table")
_ids = itertools.count(1)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def measure_columns(result: dict[str, Any]) -> list[int]:
    """Output columns that are measures: numbers, with intervals."""
    cols = result.get("columns") or []
    rows = result.get("rows") or []
    intervals = result.get("intervals") or []
    return [j for j in range(len(cols))
            if intervals and any(iv and iv[j] is not None for iv in intervals)
            and all(r[j] is None or _is_number(r[j]) for r in rows) and any(_is_number(r[j]) for r in rows)]


def label_column(result: dict[str, Any], measures: list[int]) -> int | None:
    cols = result.get("columns") or []
    return next((j for j in range(len(cols)) if j not in measures), None)


def chart_kind(hint: Any) -> str:
    kind = hint.get("chart") if isinstance(hint, dict) else hint
    return kind if kind in KINDS else "bar"


def bar_chart(result: dict[str, Any], title: str = "", hint: Any = None) -> Markup:
    """The chart of one released table: a panel per measure (nothing for ``table``)."""
    kind = chart_kind(hint)
    rows = result.get("rows") or []
    measures = measure_columns(result)
    if kind == "table" or not measures or not rows:
        return Markup("")
    label = label_column(result, measures)
    draw = _line_panel if kind == "line" else _bar_panel
    caption = (hint.get("title") if isinstance(hint, dict) else "") or title
    panels = [draw(result, m, label, caption, k) for k, m in enumerate(measures)]
    return Markup('<div class="chart-panels">' + "".join(panels) + "</div>")


def _series(result: dict[str, Any], value: int, label: int | None):
    rows = (result.get("rows") or [])[:MAX_ROWS]
    intervals = result.get("intervals") or []
    out = []
    for i, row in enumerate(rows):
        v = row[value]
        if not _is_number(v):
            continue
        iv = intervals[i][value] if i < len(intervals) and intervals[i] and intervals[i][value] else None
        name = str(row[label]) if label is not None else f"#{i + 1}"
        out.append((name, v, (float(iv[0]), float(iv[1])) if iv else (float(v), float(v)), iv))
    return out


def _header(result: dict[str, Any], value: int, caption: str, height: int, k: int, kind: str) -> list[str]:
    colname = result["columns"][value]
    level = int(round((1 - (result.get("alpha") or 0.05)) * 100))
    text = f"{colname} — {_('estimate and')} {level}% {_('confidence interval')}"
    tid = f"chart-title-{next(_ids)}"
    return [f'<figure class="chart-panel" data-measure="{escape(colname)}" data-kind="{kind}">',
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
            f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="{tid}">',
            f'<title id="{tid}">{escape(caption + " · " if caption else "")}{escape(text)}</title>',
            f'<text x="{LEFT}" y="18" font-size="13" fill="#1a1a1a">{escape(text)}</text>']


def _bar_panel(result: dict[str, Any], value: int, label: int | None, caption: str, k: int) -> str:
    series = _series(result, value, label)
    if not series:
        return ""
    lo = min(0.0, *(a for _, _, (a, _), _ in series))
    hi = max(0.0, *(b for _, _, (_, b), _ in series))
    ticks, step = nice_ticks(lo, hi if hi > lo else lo + 1)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LEFT - RIGHT

    def x(v: float) -> float:
        return LEFT + (v - lo) / span * plot_w

    height = TOP + len(series) * (BAR_H + GAP) + 30
    parts = _header(result, value, caption, height, k, "bar")
    zero = x(0.0)
    for i, (name, v, (a, b), iv) in enumerate(series):
        y = TOP + i * (BAR_H + GAP)
        x0, x1 = sorted((zero, x(v)))
        parts.append(f'<text x="{LEFT - 6}" y="{y + BAR_H * 0.7:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#1a1a1a">{escape(name[:24])}</text>')
        parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{BAR_H}" '
                     f'fill="#5b8fc7"><title>{escape(name)}: {escape(format_cell(v, iv))}</title></rect>')
        ym = y + BAR_H / 2
        parts.append(f'<g class="errorbar" stroke="#1a1a1a" stroke-width="1.5">'
                     f'<line x1="{x(a):.1f}" y1="{ym}" x2="{x(b):.1f}" y2="{ym}"/>'
                     f'<line x1="{x(a):.1f}" y1="{y + 4}" x2="{x(a):.1f}" y2="{y + BAR_H - 4}"/>'
                     f'<line x1="{x(b):.1f}" y1="{y + 4}" x2="{x(b):.1f}" y2="{y + BAR_H - 4}"/></g>')
    axis_y = TOP + len(series) * (BAR_H + GAP)
    parts.append(f'<line x1="{zero:.1f}" y1="{TOP - 4}" x2="{zero:.1f}" y2="{axis_y}" stroke="#888"/>')
    for t in ticks:
        parts.append(f'<text class="tick" x="{x(t):.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle" '
                     f'fill="#4a4a4a">{escape(format_tick(t, step))}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def _line_panel(result: dict[str, Any], value: int, label: int | None, caption: str, k: int) -> str:
    series = _series(result, value, label)
    if not series:
        return ""
    lo = min(a for _, _, (a, _), _ in series)
    hi = max(b for _, _, (_, b), _ in series)
    ticks, step = nice_ticks(lo, hi if hi > lo else lo + 1)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
    span = (hi - lo) or 1.0
    left, bottom = 70, 40
    plot_w, plot_h = WIDTH - left - RIGHT, LINE_H - TOP - bottom
    n = len(series)

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return TOP + plot_h - (v - lo) / span * plot_h

    parts = _header(result, value, caption, LINE_H, k, "line")
    for t in ticks:
        parts.append(f'<line x1="{left}" y1="{y(t):.1f}" x2="{WIDTH - RIGHT}" y2="{y(t):.1f}" stroke="#ddd"/>'
                     f'<text class="tick" x="{left - 6}" y="{y(t) + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#4a4a4a">{escape(format_tick(t, step))}</text>')
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v, _, _) in enumerate(series))
    parts.append(f'<polyline class="line" points="{points}" fill="none" stroke="#5b8fc7" stroke-width="2"/>')
    every = max(1, math.ceil(n / 12))
    for i, (name, v, (a, b), iv) in enumerate(series):
        parts.append(f'<g class="errorbar" stroke="#1a1a1a" stroke-width="1.5">'
                     f'<line x1="{x(i):.1f}" y1="{y(a):.1f}" x2="{x(i):.1f}" y2="{y(b):.1f}"/>'
                     f'<line x1="{x(i) - 4:.1f}" y1="{y(a):.1f}" x2="{x(i) + 4:.1f}" y2="{y(a):.1f}"/>'
                     f'<line x1="{x(i) - 4:.1f}" y1="{y(b):.1f}" x2="{x(i) + 4:.1f}" y2="{y(b):.1f}"/></g>')
        parts.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="#5b8fc7">'
                     f'<title>{escape(name)}: {escape(format_cell(v, iv))}</title></circle>')
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{LINE_H - bottom + 16}" font-size="11" text-anchor="middle" '
                         f'fill="#1a1a1a">{escape(name[:12])}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def highlight_span(sql: str, span: dict[str, int] | None) -> Markup:
    """The SQL with the offending span marked (escaped)."""
    if not span:
        return escape(sql)
    start, end = span.get("start", 0), span.get("end", 0)
    if end <= start:
        end = min(start + 1, len(sql))
    return (escape(sql[:start]) + Markup('<mark class="bad" id="offending-span">') + escape(sql[start:end])
            + Markup("</mark>") + escape(sql[end:]))
