"""The per-unit total contribution bound (``max_total_rows_per_unit``): at most k
rows of a unit across all groups, as ZetaSQL's and Tumult's per-unit bounds.

The policy declares it per table; the planner keeps at most k rows of each unit
(keyed hash of the row) before any other bound, tightens the per-group rows and
the groups to k, and the sensitivity of every count and sum becomes k times the
per-row bound over all groups together (``privacy.sensitivity``). Shown here on
the demo data: removing the person with the most visits moves all groups together
by at most k rows.
"""

from __future__ import annotations

import math

import pytest

from queries import plan_query
from queries.dialects import emit_bounded
from queries.errors import PolicyError
from queries.policy import parse_policy
from queries.vocabulary import Engine
from sandbox.demo.data import HEALTH_POLICY

from .conftest import typed

K = 3
WITH_TOTAL = HEALTH_POLICY.replace("max_groups_per_unit = 5\n", f"max_groups_per_unit = 5\nmax_total_rows_per_unit = {K}\n")
BY_CLINIC = "SELECT clinic, COUNT(*) AS n, SUM(cost) AS cost FROM visits GROUP BY clinic"


@pytest.fixture(scope="module")
def total_policy(health_db):
    assert WITH_TOTAL != HEALTH_POLICY
    return typed(parse_policy(WITH_TOTAL), health_db)


def test_the_policy_declares_it_per_private_table():
    policy = parse_policy(WITH_TOTAL)
    assert policy.table("visits").max_total_rows_per_unit == K
    assert policy.table("people").max_total_rows_per_unit is None
    assert "max_total_rows_per_unit" not in str(parse_policy(HEALTH_POLICY).to_dict())   # older hashes hold
    for bad in ("0", "-1", "2.5", '"3"'):
        with pytest.raises(PolicyError) as info:
            parse_policy(WITH_TOTAL.replace(f"max_total_rows_per_unit = {K}", f"max_total_rows_per_unit = {bad}"))
        assert info.value.fields["key"] == "tables.visits.max_total_rows_per_unit"
    public = WITH_TOTAL.replace("public = true", "public = true\nmax_total_rows_per_unit = 2")
    with pytest.raises(PolicyError) as info:
        parse_policy(public)
    assert info.value.fields["key"] == "tables.clinics.max_total_rows_per_unit"


def test_the_plan_keeps_k_rows_per_unit_before_any_other_bound(total_policy):
    plan = plan_query(BY_CLINIC, total_policy, salt="s")
    assert (plan.max_total, plan.max_rows, plan.max_groups) == (K, K, K)
    assert f"__total_rank <= {K}" in plan.bounded_sql
    assert plan.summary()["max_total"] == K
    assert any(n.startswith(f"at most {K} rows per unit in total") for n in plan.notes)
    assert "__total_rank" in emit_bounded(plan.bounded_sql, Engine.SPARK).sql      # runs on Spark too
    people = plan_query("SELECT COUNT(*) FROM people", total_policy)
    assert people.max_total is None                                                 # one row per unit


def test_removing_one_person_moves_all_groups_together_by_at_most_k_rows(health_db, total_policy):
    plan = plan_query(BY_CLINIC, total_policy, salt="audit")
    heavy = health_db.execute("SELECT person_id FROM ds.visits GROUP BY person_id "
                              "ORDER BY COUNT(DISTINCT clinic) DESC, COUNT(*) DESC, person_id LIMIT 1").fetchone()[0]
    con = health_db.cursor()
    con.execute("CREATE SCHEMA IF NOT EXISTS nk")
    con.execute(f"CREATE OR REPLACE TABLE nk.visits AS SELECT * FROM ds.visits WHERE person_id <> {int(heavy)}")
    params = {"salt": "audit"}
    before = {r[0]: r[1:] for r in health_db.cursor().execute(plan.bounded_sql, params).fetchall()}
    after = {r[0]: r[1:] for r in con.execute(plan.bounded_sql.replace("ds.visits", "nk.visits"), params).fetchall()}
    zero = (0, 0.0, 0)
    moved_count = sum(abs(before.get(g, zero)[0] - after.get(g, zero)[0]) for g in before.keys() | after.keys())
    moved_sum = sum(abs(before.get(g, zero)[1] - after.get(g, zero)[1]) for g in before.keys() | after.keys())
    assert 0 < moved_count <= K
    assert moved_sum <= K * 5000 + 1e-6 * sum(abs(v[1]) for v in before.values())
    assert not math.isnan(moved_sum)


BY_KIND = ("SELECT c.kind, COUNT(*) AS n, SUM(v.cost) AS cost, COUNT(DISTINCT v.person_id) AS people "
           "FROM visits v JOIN clinics c ON v.clinic = c.clinic GROUP BY c.kind")


def test_when_the_total_bound_alone_bounds_each_group_the_measures_read_the_kept_rows(health_db, total_policy):
    """With k rows per unit in total and no binding group limit (k groups or more
    cover every kind), every (unit, group) already holds at most k rows: the
    per-unit partials and their clamps would change nothing, so the bounded SQL
    aggregates the kept rows directly. Removing the heaviest person still moves
    all groups together by at most k rows, and one unit."""
    plan = plan_query(BY_KIND, total_policy, salt="audit")
    assert (plan.max_total, plan.max_rows) == (K, K)
    assert f"__total_rank <= {K}" in plan.bounded_sql and "__units" not in plan.bounded_sql
    assert "__group_rank" not in plan.bounded_sql
    heavy = health_db.execute("SELECT person_id FROM ds.visits GROUP BY person_id "
                              "ORDER BY COUNT(*) DESC, person_id LIMIT 1").fetchone()[0]
    con = health_db.cursor()
    con.execute("CREATE SCHEMA IF NOT EXISTS nk2")
    con.execute(f"CREATE OR REPLACE TABLE nk2.visits AS SELECT * FROM ds.visits WHERE person_id <> {int(heavy)}")
    con.execute("CREATE OR REPLACE TABLE nk2.clinics AS SELECT * FROM ds.clinics")
    params = {"salt": "audit"}
    before = {r[0]: r[1:] for r in health_db.cursor().execute(plan.bounded_sql, params).fetchall()}
    after = {r[0]: r[1:] for r in con.execute(plan.bounded_sql.replace("ds.", "nk2."), params).fetchall()}
    kept = health_db.execute(f"SELECT LEAST(COUNT(*), {K}) FROM ds.visits WHERE person_id = {int(heavy)}").fetchone()[0]
    columns = [o.name for o in plan.outputs]
    assert columns[:1] == ["kind"]
    moved = [sum(abs(before[g][i] - after.get(g, (0,) * len(before[g]))[i]) for g in before) for i in range(3)]
    assert moved[0] == kept <= K                    # the heaviest person's kept rows, over all groups
    assert moved[1] <= K * 5000 + 1e-9 * sum(abs(v[1]) for v in before.values())
    assert 0 < moved[2] <= K                        # one unit, in at most k groups
