"""Real SQL planned by ``queries.plan_query`` over the demo health data in DuckDB
(schema ``ds``), with one worst-case person added: the exact aggregates move by no
more than the sensitivity ``privacy`` charges for, and releases on both datasets
stay within the budget."""

import numpy as np
import pytest

pytest.importorskip("queries.plan")

import duckdb

from privacy import PrivacyLoss, release
from privacy.accounting import needs_selection
from privacy.measures import group_table
from privacy.sensitivity import measure_sensitivities, units_sensitivity
from queries import plan_query
from queries.policy import parse_policy
from sandbox.demo.data import load_health, write_health

from .conftest import epsilon_lower_bound

SHAPES = {
    "count": "SELECT COUNT(*) FROM people",
    "sum": "SELECT SUM(income) FROM people",
    "avg": "SELECT sex, AVG(age) FROM people GROUP BY sex",
    "var": "SELECT VAR_SAMP(age) FROM people",
    "quantile": "SELECT MEDIAN(income) FROM people",
    "count_units": "SELECT COUNT(DISTINCT person_id) FROM visits",
    "public_group": "SELECT city, COUNT(*) FROM people GROUP BY city",
    "private_group": "SELECT clinic, COUNT(*) FROM visits GROUP BY clinic",
    "join_fan_out": "SELECT c.district, SUM(v.cost) FROM visits v JOIN clinics c ON v.clinic = c.clinic "
                    "GROUP BY c.district",
    # a private-to-private join: each person's income is counted once per visit (fan-out 10)
    "join_private_fan_out": "SELECT p.sex, SUM(p.income), COUNT(*) FROM people p JOIN visits v "
                            "ON p.person_id = v.person_id GROUP BY p.sex",
    "cte": "WITH pv AS (SELECT person_id, SUM(cost) AS tc FROM visits GROUP BY person_id) SELECT AVG(tc) FROM pv",
    "multi": "SELECT sex, COUNT(*), SUM(income), AVG(age) FROM people GROUP BY sex",
    # per-unit aggregation with clamped partials (visits: up to 10 rows per person)
    "visits_per_clinic": "SELECT clinic, COUNT(*), SUM(cost), AVG(cost), VAR_POP(cost) FROM visits GROUP BY clinic",
    "visits_total": "SELECT COUNT(cost), SUM(cost), STDDEV_SAMP(cost) FROM visits",
    "visits_median": "SELECT clinic, MEDIAN(cost), COUNT(*) FROM visits GROUP BY clinic",
    "having": "SELECT city, COUNT(*) AS n FROM people GROUP BY city HAVING n > 100 ORDER BY n DESC LIMIT 3",
}
BUDGET = PrivacyLoss(1.0, 1e-6)


@pytest.fixture(scope="module")
def health(tmp_path_factory):
    folder = tmp_path_factory.mktemp("health")
    policy = parse_policy(write_health(folder, people=2000).read_text())
    pair = []
    for extra in (False, True):
        con = load_health(duckdb.connect(), folder)
        if extra:   # the worst-case person: extreme values, many visits at many clinics
            con.execute("INSERT INTO ds.people VALUES (999999, 120, 'F', 400000, 'Oslo', 'J06')")
            con.execute("INSERT INTO ds.visits SELECT 9000000 + i, 999999, 'C' || lpad((1 + i % 40)::VARCHAR, 2, '0'),"
                        " 9000.0, DATE '2025-06-01' FROM range(25) t(i)")
        pair.append(con)
    yield policy, pair
    for con in pair:
        con.close()


def run(con, plan):
    params = {k: v for k, v in plan.params.items() if f"${k}" in plan.bounded_sql}
    return con.sql(plan.bounded_sql, params=params).to_arrow_table()


def aligned(plan, exact, selecting):
    groups = group_table(plan, exact, selecting)
    return groups, {key: i for i, key in enumerate(groups.keys)}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_worst_case_unit_stays_within_charged_sensitivity(health, shape):
    policy, (con0, con1) = health
    plan = plan_query(SHAPES[shape], policy)
    selecting = needs_selection(plan)
    (g0, idx0), (g1, idx1) = (aligned(plan, run(con, plan), selecting) for con in (con0, con1))
    keys = set(idx0) | set(idx1)
    for agg in plan.aggregates:
        for sens in measure_sensitivities(plan, agg):
            if sens.role == "score":
                a0, a1 = g0.exact.scores[agg.name], g1.exact.scores[agg.name]
                diffs = [max((abs(x - y) for x, y in zip(a0[idx0[k]] if k in idx0 else [0] * len(agg.candidates),
                                                          a1[idx1[k]] if k in idx1 else [0] * len(agg.candidates))),
                             default=0) for k in keys]
            else:
                a0, a1 = g0.exact.vectors[(agg.name, sens.role)], g1.exact.vectors[(agg.name, sens.role)]
                diffs = [abs((a1[idx1[k]] if k in idx1 else 0) - (a0[idx0[k]] if k in idx0 else 0)) for k in keys]
            changed = [d for d in diffs if d]
            assert len(changed) <= sens.max_groups, (agg.name, sens.role)
            # scores are recomputed from clamped lt/gt lists; other measures carry the float slack
            assert max(changed, default=0) <= sens.per_group, (agg.name, sens.role)
    if selecting:
        us = units_sensitivity(plan)
        diffs = [abs(g1.exact.units.get(str(idx1.get(k, -1)), 0) - g0.exact.units.get(str(idx0.get(k, -1)), 0))
                 for k in keys]
        assert sum(1 for d in diffs if d) <= us.max_groups and max(diffs) <= 1
    for con in (con0, con1):
        r = release(plan, run(con, plan), BUDGET)
        assert BUDGET.covers(r.loss)


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["count", "sum", "public_group", "join_fan_out", "join_private_fan_out"])
def test_end_to_end_audit(health, shape):
    policy, (con0, con1) = health
    plan = plan_query(SHAPES[shape], policy)
    exact0, exact1 = run(con0, plan), run(con1, plan)
    budget = PrivacyLoss(1.0)
    first0, first1 = [], []
    for _ in range(400):
        first0.append(release(plan, exact0, budget).rows[0][-1])
        first1.append(release(plan, exact1, budget).rows[0][-1])
    first0, first1 = np.array(first0, dtype=float), np.array(first1, dtype=float)
    threshold = (np.median(first0) + np.median(first1)) / 2
    upper = first1 >= threshold if np.median(first1) >= np.median(first0) else first1 <= threshold
    lower = first0 >= threshold if np.median(first1) >= np.median(first0) else first0 <= threshold
    bound = epsilon_lower_bound(int(upper.sum()), int(lower.sum()), len(first0))
    assert bound <= release(plan, exact0, budget).loss.epsilon


# A unit whose rows make naive clamping of raw partials fail: values at both ends of a
# two-sided range. With r = 1 row, lower = -100, upper = 50: mid = -25, c = 75, so the
# centred sum of squares may move by at most c² = 5625. The unit's rows -100, 50, 50
# have sum 0 and sum of squares 15000: clamping the raw sum of squares to
# [0, r·max(lower², upper²)] = [0, 10000] would let it move by 10000 + 625 = 10625.
TWO_SIDED = """
[dataset]
name = "signed"
title = "Signed values"
owner = "owner1"
classification = "conditional"
privacy_unit = "uid"
max_groups_per_unit = 2

[budget]
epsilon = 10.0
delta = 1e-6

[tables.t]
source = "t.csv"
max_rows_per_unit = 1
columns.uid = { class = "identifier" }
columns.k   = { class = "quasi", domain = ["a", "b", "c"] }
columns.x   = { class = "sensitive", min = -100, max = 50 }
"""
TWO_SIDED_SHAPES = [
    "SELECT k, COUNT(*), SUM(x), AVG(x), VAR_POP(x) FROM t GROUP BY k",
    "SELECT COUNT(x), SUM(x), AVG(x), VAR_SAMP(x), STDDEV_POP(x) FROM t",
    "SELECT k, MEDIAN(x) FROM t GROUP BY k",
]


@pytest.mark.parametrize("sql", TWO_SIDED_SHAPES)
@pytest.mark.parametrize("integer", [True, False])
def test_worst_case_unit_with_two_sided_bounds(sql, integer):
    policy = parse_policy(TWO_SIDED).with_types({"t": {"uid": "integer", "k": "string",
                                                      "x": "integer" if integer else "float"}})
    plan = plan_query(sql, policy, salt="s")
    cons = []
    for extra in (False, True):
        con = duckdb.connect()
        con.execute("CREATE SCHEMA ds")
        con.execute(f"CREATE TABLE ds.t (uid BIGINT, k VARCHAR, x {'BIGINT' if integer else 'DOUBLE'})")
        con.execute("INSERT INTO ds.t SELECT i, ['a', 'b', 'c'][1 + i % 3], (i * 37) % 151 - 100 FROM range(300) r(i)")
        if extra:   # worst case: many rows at both ends in every group (sum 0, large squares)
            con.execute("INSERT INTO ds.t SELECT 999, k, x FROM (VALUES ('a'), ('b'), ('c')) g(k), "
                        "(VALUES (-100), (50), (50), (-100), (50), (50)) v(x)")
        cons.append(con)
    selecting = needs_selection(plan)
    (g0, idx0), (g1, idx1) = (aligned(plan, run(con, plan), selecting) for con in cons)
    for agg in plan.aggregates:
        for sens in measure_sensitivities(plan, agg):
            if sens.role == "score":
                a0, a1 = g0.exact.scores[agg.name], g1.exact.scores[agg.name]
                diffs = [max(abs(x - y) for x, y in zip(a0[idx0[k]], a1[idx1[k]])) for k in idx0]
            else:
                a0, a1 = g0.exact.vectors[(agg.name, sens.role)], g1.exact.vectors[(agg.name, sens.role)]
                diffs = [abs(a1[idx1[k]] - a0[idx0[k]]) for k in idx0]
            changed = [d for d in diffs if d]
            assert len(changed) <= sens.max_groups, (agg.name, sens.role)
            assert max(changed, default=0) <= sens.per_group, (agg.name, sens.role, changed, sens.per_group)
    for con in cons:
        con.close()
