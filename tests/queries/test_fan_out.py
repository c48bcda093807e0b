"""The public fan-out bound: how many rows joins with public tables can make of one
private row, from public statistics alone, against ``max_fan_out``."""

from __future__ import annotations

import pytest

from queries import plan_query
from queries.errors import QueryRejected
from queries.model import PublicTableStats

CLINICS = {"clinics": PublicTableStats(rows=12, max_rows_per_value={"clinic": 1, "kind": 5, "district": 4})}


def refusal(sql, policy, **kw) -> QueryRejected:
    with pytest.raises(QueryRejected) as info:
        plan_query(sql, policy, **kw)
    return info.value


@pytest.mark.parametrize("sql, bound", [
    ("SELECT c.kind, COUNT(*) FROM visits v JOIN clinics c ON c.clinic = v.clinic GROUP BY 1", 1),
    ("SELECT c.kind, COUNT(*) FROM visits v JOIN clinics c USING (clinic) GROUP BY 1", 1),
    ("SELECT c.kind, COUNT(*) FROM visits v, clinics c WHERE v.clinic = c.clinic GROUP BY 1", 1),
    ("SELECT c.kind, COUNT(*) FROM clinics c JOIN visits v ON c.clinic = v.clinic GROUP BY 1", 1),
    ("SELECT COUNT(*) FROM visits v LEFT JOIN clinics c ON c.clinic = LOWER(v.clinic)", 1),
    ("SELECT COUNT(*) FROM visits v JOIN clinics c ON c.kind = v.clinic", 5),
    ("SELECT COUNT(*) FROM visits v JOIN clinics c ON c.kind = 'gp'", 5),
    ("SELECT COUNT(*) FROM visits v CROSS JOIN clinics c", 12),
    ("SELECT COUNT(*) FROM visits v JOIN clinics c ON c.clinic < v.clinic", 12),
    ("SELECT COUNT(*) FROM visits v JOIN clinics c ON LOWER(c.clinic) = v.clinic", 12),
    # a second public table joined through the first: 1 clinic, then its kind's 5
    ("SELECT COUNT(*) FROM visits v JOIN clinics a ON a.clinic = v.clinic JOIN clinics b ON b.kind = a.kind", 5),
    # public tables joined only to each other: the cheaper whole table, then one per value
    ("SELECT COUNT(*) FROM visits v, clinics a, clinics b WHERE a.clinic = b.clinic", 12),
    # a public table joined on nothing counts whole; the next one is bounded through it
    ("SELECT COUNT(*) FROM visits v JOIN clinics a ON TRUE JOIN clinics b ON b.kind = a.kind", 60),
    # statistics follow columns through a subquery over the public table
    ("WITH c AS (SELECT clinic, kind FROM clinics WHERE kind <> 'gp') "
     "SELECT c.kind, COUNT(*) FROM visits v JOIN c ON c.clinic = v.clinic GROUP BY 1", 1),
    # joins inside a subquery count too
    ("WITH x AS (SELECT v.person_id, c.kind FROM visits v CROSS JOIN clinics c) "
     "SELECT COUNT(*) FROM x JOIN clinics d ON d.kind = x.kind", 60),
])
def test_bound(policy, sql, bound):
    plan = plan_query(sql, policy, public_stats=CLINICS, max_fan_out=100)
    assert plan.public_fan_out == bound
    if bound > 1:
        exc = refusal(sql, policy, public_stats=CLINICS, max_fan_out=bound - 1)
        assert exc.code == "query_too_costly" and str(bound) in exc.message and str(bound - 1) in exc.message
        assert exc.span is not None


def test_bound_is_a_function_of_public_statistics(policy):
    sql = "SELECT COUNT(*) FROM visits v JOIN clinics c ON c.kind = v.clinic"
    wider = {"clinics": PublicTableStats(rows=12, max_rows_per_value={"kind": 7})}
    assert plan_query(sql, policy, public_stats=wider, max_fan_out=10).public_fan_out == 7
    exc = refusal(sql, policy, public_stats=wider, max_fan_out=6)
    assert "at most 7 rows per value of kind" in exc.message


def test_missing_statistics(policy):
    sql = "SELECT c.kind, COUNT(*) FROM visits v JOIN clinics c ON c.clinic = v.clinic GROUP BY 1"
    exc = refusal(sql, policy, max_fan_out=100)
    assert exc.code == "query_too_costly" and "clinics" in exc.message
    assert sql[exc.span.start:exc.span.end] == "clinics c"
    # without max_fan_out nothing is bounded (library behaviour)
    assert plan_query(sql, policy).public_fan_out == 1
    # private tables need no statistics
    assert plan_query("SELECT COUNT(*) FROM visits", policy, max_fan_out=1).public_fan_out == 1


def test_invalid_max_fan_out(policy):
    for value in (0, -1, 1.5, True):
        assert refusal("SELECT COUNT(*) FROM people", policy, max_fan_out=value).code == "invalid_limit"
