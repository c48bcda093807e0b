"""A release whose outputs are its keys and aggregates as released (no HAVING,
ORDER BY, LIMIT or expression over them) skips the post-processing SQL; the table
is the same as the SQL gives, value for value and interval for interval."""

from __future__ import annotations

import datetime

import pytest

import privacy.postprocess as post
from privacy import PrivacyLoss, release
from queries import plan_query
from queries.policy import parse_policy
from sandbox.demo.data import HEALTH_POLICY

from .conftest import count, make_plan, mean, public_key, table

POLICY = parse_policy(HEALTH_POLICY)


def _both(plan, noisy, intervals, monkeypatch):
    fast = post.final_table(plan, noisy, intervals)
    with monkeypatch.context() as m:
        m.setattr(post, "_plain_column", lambda expr: "\0 not a column")
        slow = post.final_table(plan, noisy, intervals)
    return fast, slow


@pytest.mark.parametrize("sql", [
    "SELECT COUNT(*) AS n FROM people",
    "SELECT city, COUNT(*) AS n FROM people GROUP BY city",
    "SELECT sex, AVG(income) AS avg_income, COUNT(*) FROM people GROUP BY sex",
])
def test_plain_outputs_skip_the_sql_and_give_the_same_table(sql, monkeypatch):
    plan = plan_query(sql, POLICY)
    keys = [k.name for k in plan.group_keys]
    n = 3
    noisy: dict[str, list] = {k: [f"v{i}" for i in range(n)] for k in keys}
    intervals: dict[str, list] = {}
    for i, agg in enumerate(plan.aggregates):
        noisy[agg.name] = [10 * i + j + 0.5 * (agg.kind == "avg") for j in range(n)]
        intervals[agg.name] = [(v - 1.0, v + 1.0) for v in noisy[agg.name]]
    fast, slow = _both(plan, noisy, intervals, monkeypatch)
    assert fast == slow and len(fast.rows) == n


def test_keys_of_every_type_pass_through_unchanged(monkeypatch):
    plan = make_plan([count()], keys=[public_key(3)])
    when = [datetime.date(2025, 1, d) for d in (1, 2, 3)]
    fast, slow = _both(plan, {"k": when, "a0": [1, 2, 3]}, {"a0": [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]},
                       monkeypatch)
    assert fast == slow and fast.rows[0] == (datetime.date(2025, 1, 1), 1)


def test_an_expression_or_an_order_still_goes_through_the_sql(monkeypatch):
    calls = []
    real = post.select_rows
    monkeypatch.setattr(post, "select_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    plan = plan_query("SELECT COUNT(*) + 1 AS n FROM people", POLICY)
    out = post.final_table(plan, {"a0": [5]}, {"a0": [(4.0, 6.0)]})
    assert calls and out.rows == ((6,),)
    calls.clear()
    release(make_plan([mean()], keys=[public_key(2)]), table(g0=["v0", "v1"], a0_s=[1, 2], a0_n=[3, 4]),
            PrivacyLoss(1.0))
    assert not calls
