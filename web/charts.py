"""Inline SVG charts drawn on the server: bars with error bars for a released
table (works offline, no script)."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

WIDTH, BAR_H, GAP, LEFT, RIGHT, TOP = 640, 22, 8, 150, 30, 30


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def chart_columns(result: dict[str, Any]) -> tuple[int | None, int | None]:
    """(label column, value column): the first column with intervals is the value."""
    cols = result.get("columns") or []
    rows = result.get("rows") or []
    intervals = result.get("intervals") or []
    value = next((j for j in range(len(cols))
                  if intervals and any(iv[j] is not None for iv in intervals)
                  and all(_is_number(r[j]) for r in rows)), None)
    label = next((j for j in range(len(cols)) if j != value and not (intervals and any(iv[j] for iv in intervals))),
                 None)
    return label, value


def bar_chart(result: dict[str, Any], title: str = "") -> Markup:
    """Bars of the value column with their confidence intervals as error bars."""
    label, value = chart_columns(result)
    rows = result.get("rows") or []
    if value is None or not rows:
        return Markup("")
    intervals = result.get("intervals") or []
    rows = rows[:40]
    vals = [float(r[value]) for r in rows]
    ivs = [iv[value] if iv and iv[value] else (v, v) for iv, v in zip(intervals, vals)]
    lo = min(0.0, *(a for a, _ in ivs), *vals)
    hi = max(0.0, *(b for _, b in ivs), *vals)
    span = (hi - lo) or 1.0
    plot_w = WIDTH - LEFT - RIGHT

    def x(v: float) -> float:
        return LEFT + (v - lo) / span * plot_w

    height = TOP + len(rows) * (BAR_H + GAP) + 30
    colname = result["columns"][value]
    alpha = result.get("alpha") or 0.05
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
             f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="chart-title">',
             f'<title id="chart-title">{escape(title or colname)} ({int(round((1 - alpha) * 100))}%)</title>',
             f'<text x="{LEFT}" y="18" font-size="13" fill="#1a1a1a">{escape(colname)} '
             f'± {int(round((1 - alpha) * 100))}% CI</text>']
    zero = x(0.0)
    for i, (row, v, (a, b)) in enumerate(zip(rows, vals, ivs)):
        y = TOP + i * (BAR_H + GAP)
        name = str(row[label]) if label is not None else f"#{i + 1}"
        x0, x1 = sorted((zero, x(v)))
        parts.append(f'<text x="{LEFT - 6}" y="{y + BAR_H * 0.7:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#1a1a1a">{escape(name[:24])}</text>')
        parts.append(f'<rect class="bar" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 0.5):.1f}" height="{BAR_H}" '
                     f'fill="#5b8fc7"><title>{escape(name)}: {v:.6g} [{a:.6g}, {b:.6g}]</title></rect>')
        ym = y + BAR_H / 2
        parts.append(f'<g class="errorbar" stroke="#1a1a1a" stroke-width="1.5">'
                     f'<line x1="{x(a):.1f}" y1="{ym}" x2="{x(b):.1f}" y2="{ym}"/>'
                     f'<line x1="{x(a):.1f}" y1="{y + 4}" x2="{x(a):.1f}" y2="{y + BAR_H - 4}"/>'
                     f'<line x1="{x(b):.1f}" y1="{y + 4}" x2="{x(b):.1f}" y2="{y + BAR_H - 4}"/></g>')
    axis_y = TOP + len(rows) * (BAR_H + GAP)
    parts.append(f'<line x1="{zero:.1f}" y1="{TOP - 4}" x2="{zero:.1f}" y2="{axis_y}" stroke="#888"/>')
    for v in (lo, hi):
        parts.append(f'<text x="{x(v):.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle" '
                     f'fill="#4a4a4a">{v:.4g}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def highlight_span(sql: str, span: dict[str, int] | None) -> Markup:
    """The SQL with the offending span marked (escaped)."""
    if not span:
        return escape(sql)
    start, end = span.get("start", 0), span.get("end", 0)
    if end <= start:
        end = min(start + 1, len(sql))
    return (escape(sql[:start]) + Markup('<mark class="bad" id="offending-span">') + escape(sql[start:end])
            + Markup("</mark>") + escape(sql[end:]))
