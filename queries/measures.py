"""The aggregation layers of the bounded SQL: how each aggregate's exact measures
are computed, with each privacy unit's contribution bounded.

Three shapes, chosen by the planner:

* ``rows``: no bounding needed (every table read has one row per unit);
  measures are plain aggregates over the rows.
* ``units`` (COUNT/SUM/AVG/VAR/STDDEV): per-unit aggregation. The rows are
  aggregated per ``(__unit, g...)`` into partial counts, sums and centred sums
  of squares (a hash aggregate, no sort); each partial is then clamped to what
  ``max_rows`` rows could contribute; each unit keeps at most ``max_groups`` of
  its groups (a window over the small per-(unit, group) table, or none when the
  limit cannot bind); the clamped partials are summed per group.
* ``sample`` (a quantile is present): at most ``max_rows`` rows per
  (unit, group) and ``max_groups`` groups per unit are *chosen* by a keyed hash
  (quantiles need row-level values), then aggregated as in ``rows``.

Quantiles are a histogram: each value gets a code on the candidates' grid
(``2i+1`` when it equals candidate ``i``, ``2i`` when it lies between candidates
``i-1`` and ``i``), ``GROUP BY g..., code``, and the ``lt``/``gt`` lists are sums
over codes (the histogram crossed with the candidate indexes: a few thousand rows
per group, instead of one filtered aggregate per candidate). A row's code depends only on its own value, so a row adds at most 1
to each ``lt_i`` and ``gt_i``, exactly as a per-candidate comparison would.
"""

from __future__ import annotations

from dataclasses import dataclass

from queries.centring import centre_point
from queries.model import Aggregate
from queries.rewrite import bounded_layer, number
from queries.scope import UNIT
from queries.vocabulary import AggregateKind


@dataclass(frozen=True)
class Measured:
    """An aggregate and the value column (``v0``...) it reads (None for ``COUNT(*)``
    and ``COUNT(DISTINCT unit)``)."""

    agg: Aggregate
    value: str | None
    step: float = 1.0        # quantiles: candidates are (base + i) * step
    base: int = 0


def _total(sql: str, integer: bool) -> str:
    """A sum over rows or units: HUGEINT for integers (values within 2^62 over
    fewer than 2^63 rows cannot overflow it), DOUBLE otherwise (never raises)."""
    return f"CAST(COALESCE(SUM({sql}), 0) AS {'HUGEINT' if integer else 'DOUBLE'})"


def _count(sql: str) -> str:
    """A sum of per-unit counts: at most the number of rows, so it fits BIGINT."""
    return f"CAST(COALESCE(SUM({sql}), 0) AS BIGINT)"


def _exact(value: float, integer: bool) -> int | float:
    """Bounds of an integer aggregate as Python ints, so their products are exact
    and render as integer literals (a float above 2^53 would render as DOUBLE)."""
    return int(value) if integer else float(value)


def row_measures(m: Measured) -> list[tuple[str, str]]:
    """Measures over rows (already bounded or needing no bounds); none for quantiles."""
    agg, v = m.agg, m.value
    out = []
    for role, col in agg.columns.items():
        if agg.kind == AggregateKind.COUNT:
            text = f"COUNT({v})" if v else "COUNT(*)"
        elif agg.kind == AggregateKind.COUNT_UNITS:
            text = f"COUNT(DISTINCT {UNIT})"
        elif role == "count":
            text = f"COUNT({v})"
        elif role == "sum":
            assert v is not None, "only COUNT(*) and COUNT(DISTINCT unit) read no value column"
            text = _total(v, agg.integer)
        elif role == "sumsq":
            text = _total(f"{v} * {v}", agg.integer)
        else:
            continue
        out.append((col, text))
    return out


class UnitPartials:
    """Per-(unit, group) partial aggregates, deduplicated by their SQL."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, sql: str) -> str:
        for name, existing in self.items:
            if existing == sql:
                return name
        name = f"__p{len(self.items)}"
        self.items.append((name, sql))
        return name


def unit_measures(m: Measured, partials: UnitPartials, max_rows: int) -> list[tuple[str, str]]:
    """Measures summed over clamped per-unit partials. With at most ``r`` rows of
    values in ``[lo, hi]`` a unit's count is at most ``r``, its sum lies in
    ``[r·min(lo, 0), r·max(hi, 0)]`` (a sum of fewer rows is never clamped), and its
    sum of squares about the centre ``mid`` lies in ``[0, r·c²]``."""
    agg, v = m.agg, m.value
    r = int(agg.max_rows if agg.max_rows is not None else max_rows)
    if agg.kind == AggregateKind.COUNT_UNITS:
        return [(agg.columns["count"], "COUNT(*)")]
    n = f"LEAST({partials.add(f'COUNT({v})' if v else 'COUNT(*)')}, {r})"
    if agg.kind == AggregateKind.COUNT:
        return [(agg.columns["count"], _count(n))]
    integer = agg.integer
    lo, hi = _exact(agg.lower, integer), _exact(agg.upper, integer)
    s = partials.add(f"SUM({v})")
    s_clamped = f"LEAST(GREATEST(COALESCE({s}, 0), {number(r * min(lo, 0))}), {number(r * max(hi, 0))})"
    out = []
    for role, col in agg.columns.items():
        if role == "count":
            out.append((col, _count(n)))
        elif role == "sum":
            out.append((col, _total(s_clamped, integer)))
        elif role == "sumsq":
            mid_f, c_f, _ = centre_point(float(lo), float(hi), integer)
            mid, c = _exact(mid_f, integer), _exact(c_f, integer)
            d = f"({v} - {number(mid)})"
            if integer and c * c >= 2 ** 31:
                d = f"CAST({d} AS HUGEINT)"
            q = partials.add(f"SUM({d} * {d})")
            q_clamped = f"LEAST(COALESCE({q}, 0), {number(r * c * c)})"
            # back to raw squares: sum x² = sum (x-mid)² + 2·mid·sum x - mid²·n
            raw = f"{q_clamped} + {number(2 * mid)} * {s_clamped} - {number(mid * mid)} * {n}" if mid else q_clamped
            out.append((col, _total(raw, integer)))
    return out


def quantile_code(m: Measured) -> str:
    """The histogram code of a row's value (see the module docstring), in ``[0, 2K]``."""
    v, k = m.value, len(m.agg.candidates)
    if m.step == 0:
        c = number(m.agg.candidates[0])
        return f"CASE WHEN {v} < {c} THEN 0 WHEN {v} = {c} THEN 1 ELSE 2 END"
    if m.step == 1 and m.agg.integer:
        return f"LEAST(GREATEST(({v} - {m.base}) * 2 + 1, 0), {2 * k})"
    q = f"({v} / {number(m.step)})"
    index = f"FLOOR({q})" + (f" - {m.base}" if m.base else "")
    below = f"LEAST(GREATEST({index}, -1), {k - 1})"
    return f"CAST({below} AS BIGINT) * 2 + CASE WHEN {q} = FLOOR({q}) THEN 1 ELSE 2 END"


def quantile_lists(m: Measured, keys: list[str], histogram: str) -> str:
    """One row per group with the ``lt``/``gt`` lists, from the histogram's rows:
    the codes ``0..2K`` made dense per group (zeros where no value fell), their
    running sum, then ``lt[i]`` = the running sum at code ``2i`` and ``gt[i]`` = the
    group's total less the running sum at code ``2i + 1``. The work is linear in
    the candidates (``2K + 1`` rows per group), so the grid can be fine."""
    k, cols = len(m.agg.candidates), m.agg.columns
    head = "".join(f"{key}, " for key in keys)
    codes = f"(SELECT unnest(range({2 * k + 1})) AS __c) AS __r"
    zeros = (f"SELECT {head}__c, 0 AS __n FROM (SELECT DISTINCT {', '.join(keys)} FROM {histogram}) AS __k "
             f"CROSS JOIN {codes}" if keys else f"SELECT __c, 0 AS __n FROM {codes}")
    dense = (f"SELECT {head}__c, SUM(__n) AS __n FROM (SELECT {head}__c, __n FROM {histogram} UNION ALL {zeros}) "
             f"AS __u{_group_by([*keys, '__c'])}")
    part = f"PARTITION BY {', '.join(keys)} " if keys else ""
    running = (f"SELECT {head}__c, SUM(__n) OVER ({part}ORDER BY __c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) "
               f"AS __cum, SUM(__n) OVER ({part.strip()}) AS __tot FROM ({dense}) AS __d")
    return (f"SELECT {head}CAST(list(__cum ORDER BY __c) FILTER (WHERE __c % 2 = 0 AND __c < {2 * k}) AS BIGINT[]) "
            f"AS {cols['lt']}, CAST(list(__tot - __cum ORDER BY __c) FILTER (WHERE __c % 2 = 1) AS BIGINT[]) "
            f"AS {cols['gt']} FROM ({running}) AS __s{_group_by(keys)}")


def _group_by(keys: list[str]) -> str:
    return f" GROUP BY {', '.join(keys)}" if keys else ""


def total_layer(keys: list[str], values: list[str], max_total: int) -> str:
    """At most ``max_total`` rows of each unit, all groups together, chosen by the
    keyed hash of the whole row (ties among equal rows are equal contributions)."""
    columns = [*keys, *values]
    order = ", ".join([UNIT, *columns, "$salt"])
    tie = "".join(f", {c}" for c in columns)
    return (f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {UNIT} ORDER BY hash({order}){tie}) "
            f"AS __total_rank FROM __all_rows) AS __t WHERE __total_rank <= {int(max_total)}")


def bounded_sql(rows_sql: str, keys: list[str], measured: list[Measured], *, shape: str,
                key_filter: str | None, max_rows: int, max_groups: int | None,
                units_column: str | None, max_total: int | None = None) -> str:
    """The whole bounded SQL: one row per group, keys then each aggregate's
    measure columns in order, then ``units_column``. ``max_groups=None`` means the
    group limit cannot bind (no window); ``max_total`` keeps at most that many rows
    of each unit before any other bound.

    ``shape``: ``rows`` (nothing to bound), ``units`` (per-(unit, group) partials,
    clamped), ``sample`` (rows sampled per unit and group: quantiles), or ``total``:
    the total layer alone bounds every (unit, group) to at most ``max_total`` rows,
    no more than any aggregate's row limit, so the per-unit clamps of ``units``
    would change nothing and the measures are taken over the kept rows directly."""
    if max_total is not None and shape != "rows":
        values = sorted({m.value for m in measured if m.value})
        ctes = [("__all_rows", rows_sql), ("__rows", total_layer(keys, values, max_total))]
    else:
        ctes = [("__rows", rows_sql)]
    if shape == "units":
        partials = UnitPartials()
        measures = [cm for m in measured for cm in unit_measures(m, partials, max_rows)]
        if units_column:
            measures.append((units_column, "COUNT(*)"))
        items = ", ".join([UNIT, *keys, *(f"{sql} AS {name}" for name, sql in partials.items)])
        ctes.append(("__units", f"SELECT {items} FROM __rows{_group_by([UNIT, *keys])}{_having(key_filter)}"))
        source = "__units"
        if max_groups is not None and keys:
            order = ", ".join([UNIT, *keys, "$salt"])
            ctes.append(("__bounded", f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {UNIT} "
                                      f"ORDER BY hash({order}), {', '.join(keys)}) AS __group_rank FROM __units) "
                                      f"AS __w WHERE __group_rank <= {int(max_groups)}"))
            source = "__bounded"
        return _with(ctes) + f"SELECT {', '.join([*keys, *(f'{s} AS {c}' for c, s in measures)])} " \
                             f"FROM {source}{_group_by(keys)}"
    if shape == "sample":
        values = sorted({m.value for m in measured if m.value})
        ctes.append(("__bounded", bounded_layer("__rows", keys, values, max_groups=max_groups if keys else None,
                                                max_rows=max_rows, key_filter=key_filter)))
        source, post_filter = "__bounded", ""
    else:  # a group outside the public domains is dropped after aggregation (same result, faster)
        source, post_filter = "__rows", _having(key_filter)
    plain = [(m, row_measures(m)) for m in measured]
    columns = [c for _, ms in plain for c in ms]
    if units_column:  # one row per unit when nothing is bounded (rows_per_unit = 1)
        columns.append((units_column, f"COUNT(DISTINCT {UNIT})" if shape in ("sample", "total") else "COUNT(*)"))
    quantiles = [m for m in measured if m.agg.kind == AggregateKind.QUANTILE]
    if not quantiles:
        return _with(ctes) + f"SELECT {', '.join([*keys, *(f'{s} AS {c}' for c, s in columns)])} " \
                             f"FROM {source}{_group_by(keys)}{post_filter}"
    # the row source is read by every histogram too: inline it rather than hold it in memory
    ctes = [(name, f"NOT MATERIALIZED ({sql})" if name == source else sql) for name, sql in ctes]
    main = [*keys, *(f"{s} AS {c}" for c, s in columns)] or ["COUNT(*) AS __all"]
    ctes.append(("__main", f"SELECT {', '.join(main)} FROM {source}{_group_by(keys)}{post_filter}"))
    joins = []
    for i, m in enumerate(quantiles):
        ctes.append((f"__h{i}", f"SELECT {''.join(k + ', ' for k in keys)}{quantile_code(m)} AS __c, COUNT(*) AS __n "
                                f"FROM {source} WHERE {m.value} IS NOT NULL{_group_by([*keys, '__c'])}"))
        ctes.append((f"__q{i}", quantile_lists(m, keys, f"__h{i}")))
        on = " AND ".join(f"__main.{k} IS NOT DISTINCT FROM __q{i}.{k}" for k in keys) or "TRUE"
        joins.append(f" LEFT JOIN __q{i} ON {on}")
    zeros = {m.agg.name: "[" + ", ".join("0" for _ in m.agg.candidates) + "]::BIGINT[]" for m in quantiles}
    select = [f"__main.{k}" for k in keys]
    for m, ms in plain:
        if m.agg.kind == AggregateKind.QUANTILE:
            select += [f"COALESCE({m.agg.columns[r]}, {zeros[m.agg.name]}) AS {m.agg.columns[r]}" for r in ("lt", "gt")]
        select += [f"__main.{c}" for c, _ in ms]
    if units_column:
        select.append(f"__main.{units_column}")
    return _with(ctes) + f"SELECT {', '.join(select)} FROM __main{''.join(joins)}"


def _having(key_filter: str | None) -> str:
    return f" HAVING {key_filter}" if key_filter else ""


def _with(ctes: list[tuple[str, str]]) -> str:
    return "WITH " + ", ".join(f"{name} AS {sql}" if sql.startswith("NOT MATERIALIZED (") else f"{name} AS ({sql})"
                               for name, sql in ctes) + " "
