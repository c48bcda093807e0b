"""The rewrite's internal names cannot be reached from user SQL.

Derived relations output generated column names (``c0``, ``c1``...), so no user
alias reaches the bounded SQL; identifiers starting with ``__`` are refused; an
operator who names things ``g0``, ``v0``, ``units`` or ``t0`` gets their own
columns, exactly as plain DuckDB reads the query.
"""

from __future__ import annotations

import pytest

from queries import plan_query
from queries.errors import QueryRejected

from .conftest import run_bounded
from .test_accepted import _close, _normalise


def refusal(sql, policy) -> QueryRejected:
    with pytest.raises(QueryRejected) as info:
        plan_query(sql, policy)
    return info.value


def test_an_alias_cannot_bind_the_privacy_unit_column(policy):
    # the case: a subquery alias __unit bound to the rewrite's unit column
    sql = "SELECT COUNT(*) FROM (SELECT person_id AS pid, age AS __unit FROM people) t WHERE __unit > 30"
    exc = refusal(sql, policy)
    assert exc.code == "reserved_name"
    assert sql[exc.span.start:exc.span.end] == "__unit"


@pytest.mark.parametrize("sql, name", [
    ("WITH __rows AS (SELECT * FROM people) SELECT COUNT(*) FROM __rows", "__rows"),
    ("SELECT COUNT(*) FROM people AS __t", "__t"),
    ("SELECT COUNT(*) AS __n FROM people", "__n"),
    ('SELECT COUNT(*) FROM people WHERE "__unit" IS NULL', '"__unit"'),
    ("SELECT COUNT(*) FROM (SELECT person_id, age FROM people) t GROUP BY t.__c0", "__c0"),
])
def test_double_underscore_names_are_reserved(policy, sql, name):
    exc = refusal(sql, policy)
    assert exc.code == "reserved_name" and sql[exc.span.start:exc.span.end] == name


def test_derived_relations_output_generated_names(policy):
    plan = plan_query("WITH x AS (SELECT person_id AS who, age AS years, city AS town FROM people WHERE age > 3) "
                      "SELECT town, SUM(years) FROM x GROUP BY town", policy)
    for user_name in ("who", "years", "town", "x"):
        assert f'"{user_name}"' not in plan.bounded_sql and f" {user_name} " not in plan.bounded_sql
    pre = plan_query("WITH pp AS (SELECT person_id, SUM(cost) AS spend FROM visits GROUP BY person_id) "
                     "SELECT AVG(spend) FROM pp", policy)
    assert "spend" not in pre.bounded_sql and "pp" not in pre.bounded_sql


def test_internal_looking_names_bind_to_the_operators_columns(health_db, loose_policy):
    sql = ("WITH t1 AS (SELECT person_id AS pid, age AS g0, income AS v0, city AS units FROM people) "
           "SELECT t0.units, SUM(t0.v0) AS a1, AVG(t0.g0) AS a0 FROM t1 AS t0 GROUP BY 1 HAVING a1 > 0")
    ref = ("SELECT city, SUM(LEAST(GREATEST(income, 0), 200000)), SUM(LEAST(GREATEST(age, 0), 120)), COUNT(age) "
           "FROM ds.people GROUP BY city")
    plan = plan_query(sql, loose_policy, salt="s")
    got = _normalise(run_bounded(plan, health_db))
    expected = _normalise(health_db.cursor().execute(ref).fetchall())
    assert len(got) == len(expected)
    assert all(_close(x, y) for g, e in zip(got, expected) for x, y in zip(g, e))
    # outputs never take an aggregate's name for something else (post-processing reads them)
    assert [(o.name, o.expr) for o in plan.outputs][1:] == [("a1_2", "a0"), ("a0_2", "a1")]
    assert plan.having == "a0 > 0"


def test_user_table_aliases_shaped_like_generated_ones(health_db, loose_policy):
    sql = ("SELECT t1.sex, COUNT(*) FROM visits t1 JOIN people t0 ON t0.person_id = t1.person_id "
           "WHERE t0.age > 40 GROUP BY t1.sex")
    with pytest.raises(QueryRejected):       # visits has no sex: t1 is the operator's visits, not people
        plan_query(sql, loose_policy)
    sql = sql.replace("t1.sex", "t0.sex")
    plan = plan_query(sql, loose_policy, salt="s")
    ref = ("SELECT p.sex, COUNT(*) FROM ds.visits v JOIN ds.people p ON p.person_id = v.person_id "
           "WHERE p.age > 40 GROUP BY p.sex")
    got = _normalise(run_bounded(plan, health_db))
    assert got == _normalise(health_db.cursor().execute(ref).fetchall())
