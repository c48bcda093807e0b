"""NULLs are ignored by every aggregate, for every column type and every shape of
bounded SQL, checked against exact reference answers.

The tables hold one row per unit and values well inside the declared bounds, so
neither contribution bounding nor clamping changes anything: the exact measures
the bounded SQL returns must equal the plain answers over the non-NULL values.
(Before, an integer column was clamped with ``LEAST(GREATEST(x, lo), hi)``, and
DuckDB's GREATEST ignores NULL: each NULL became the lower bound.)
"""

from __future__ import annotations

import math

import pytest

from queries import plan_query

from .conftest import small_dataset

POLICY = """\
[dataset]
name = "nulls"
owner = "owner"
classification = "conditional"
privacy_unit = "pid"

[budget]
epsilon = 1.0

[tables.people]
source = "people.parquet"
rows_per_unit = 1
columns.pid = { class = "identifier" }
columns.i = { class = "sensitive", min = -100, max = 100 }
columns.f = { class = "sensitive", min = -100, max = 100 }
columns.s = { class = "sensitive" }

[tables.visits]
source = "visits.parquet"
max_rows_per_unit = 3
columns.pid = { class = "identifier" }
columns.i = { class = "sensitive", min = -100, max = 100 }
columns.f = { class = "sensitive", min = -100, max = 100 }
columns.s = { class = "sensitive" }
"""

I = [5, None, -3, 7, None, 10, 0, 42]
F = [1.5, None, -2.25, None, 3.0, 8.5, 0.0, -7.75]
S = ["a", None, "b", None, None, "c", "d", "e"]


def _values(values) -> str:
    return ", ".join(f"({pid}, {'NULL' if i is None else i}, {'NULL' if f is None else f}, "
                     f"{'NULL' if s is None else repr(s)})" for pid, (i, f, s) in enumerate(zip(*values), start=1))


@pytest.fixture(scope="module")
def data():
    rows = _values((I, F, S))
    return small_dataset(POLICY, *(f"CREATE TABLE ds.{t} (pid BIGINT, i INTEGER, f DOUBLE, s VARCHAR); "
                                   f"INSERT INTO ds.{t} VALUES {rows}" for t in ("people", "visits")))


def _present(values):
    return [v for v in values if v is not None]


def _reference(kind: str, column: str) -> dict[str, float]:
    values = _present({"i": I, "f": F, "s": S}[column])
    if kind == "count":
        return {"count": len(values)}
    total, squares = sum(values), sum(v * v for v in values)
    if kind == "sum":
        return {"sum": total}
    if kind == "avg":
        return {"sum": total, "count": len(values)}
    return {"sum": total, "sumsq": squares, "count": len(values)}


def _measures(plan, con) -> dict[str, object]:
    cur = con.cursor()
    cur.execute(plan.bounded_sql, {"salt": "s"} if "$salt" in plan.bounded_sql else None)
    (row,) = cur.fetchall()
    return dict(zip((d[0] for d in cur.description), row))


def _same(got, expected) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        return math.isclose(float(got), float(expected), rel_tol=1e-12, abs_tol=1e-9)
    return int(got) == expected


SHAPES = {
    # table, extra aggregate that forces the shape, the shape's mark in the SQL
    "rows": ("people", "", "bounding skipped"),
    "units": ("visits", "", "__units"),
    "sample": ("visits", ", MEDIAN(f)", "__row_rank"),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("column", ["i", "f"])
def test_sum_avg_var_count_ignore_nulls(data, shape, column):
    policy, con = data
    table, extra, mark = SHAPES[shape]
    sql = f"SELECT SUM({column}), AVG({column}), VAR_POP({column}), COUNT({column}), COUNT(s){extra} FROM {table}"
    plan = plan_query(sql, policy, salt="s")
    assert mark in plan.bounded_sql or mark in plan.notes[0]
    got = _measures(plan, con)
    kinds = [("sum", column), ("avg", column), ("var_pop", column), ("count", column), ("count", "s")]
    for agg, (kind, col) in zip(plan.aggregates, kinds):
        assert agg.kind == kind
        for role, expected in _reference(kind, col).items():
            value = got[agg.columns[role]]
            assert _same(value, expected), (shape, agg.sql, role, value, expected)


@pytest.mark.parametrize("shape", ["rows", "sample"])
@pytest.mark.parametrize("column", ["i", "f"])
def test_quantile_histograms_ignore_nulls(data, shape, column):
    policy, con = data
    table = SHAPES[shape][0]
    plan = plan_query(f"SELECT MEDIAN({column}), QUANTILE_CONT({column}, 0.9) FROM {table}", policy, salt="s")
    got = _measures(plan, con)
    values = _present(I if column == "i" else F)
    for agg in plan.aggregates:
        assert agg.kind == "quantile"
        assert list(got[agg.columns["lt"]]) == [sum(v < c for v in values) for c in agg.candidates]
        assert list(got[agg.columns["gt"]]) == [sum(v > c for v in values) for c in agg.candidates]


def test_all_null_groups_contribute_nothing(data):
    policy, con = data
    plan = plan_query("SELECT SUM(i), AVG(f), COUNT(s) FROM visits WHERE i IS NULL AND f IS NULL", policy)
    got = _measures(plan, con)
    assert [got[c] for a in plan.aggregates for c in a.columns.values()] == [0, 0, 0, 0]
