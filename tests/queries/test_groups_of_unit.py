"""Group keys that are functions of the unit: a key built only from columns of a
one-row-per-unit table (``people``) takes one value per unit, so the planner
charges ``max_groups = 1`` instead of the joined table's bound, and says so in
the plan's notes. The bounded SQL still keeps one group per unit, so the charge
holds even on data that breaks the inference.

Shown on the demo data: removing one person (the one with the most visits)
changes the bounded aggregates of exactly one group, by at most the per-group
bound, and a person given two rows in ``people`` (which ingestion refuses) still
reaches one group only.
"""

from __future__ import annotations

import math

import pytest

from queries import plan_query
from sandbox.demo.data import HEALTH_POLICY

from .conftest import run_bounded, small_dataset

DEMO = "SELECT city, AVG(cost) AS avg_cost FROM visits JOIN people ON visits.person_id = people.person_id GROUP BY city"
COUNT_BY_CITY = ("SELECT p.city, COUNT(*) AS n, SUM(v.cost) AS cost FROM visits v "
                 "JOIN people p ON v.person_id = p.person_id GROUP BY p.city")


@pytest.mark.parametrize("sql", [
    DEMO,
    "SELECT UPPER(p.city) AS c, COUNT(*) FROM visits v JOIN people p USING (person_id) GROUP BY UPPER(p.city)",
    "SELECT p.city, p.sex, COUNT(*) FROM people p JOIN visits v ON p.person_id = v.person_id GROUP BY p.city, p.sex",
    "SELECT p.city, COUNT(*) FROM clinics c JOIN visits v ON v.clinic = c.clinic "
    "JOIN people p ON p.person_id = v.person_id GROUP BY p.city",
])
def test_keys_of_the_one_row_per_unit_table_charge_one_group(policy, sql):
    plan = plan_query(sql, policy, salt="s")
    assert plan.max_groups == 1
    assert any(n.startswith("one group per unit: the group keys are columns of people") for n in plan.notes)
    assert "__group_rank <= 1" in plan.bounded_sql             # still enforced


@pytest.mark.parametrize("sql", [
    "SELECT clinic, COUNT(*) FROM visits GROUP BY clinic",                                  # several rows per unit
    "SELECT p.city, v.clinic, COUNT(*) FROM visits v JOIN people p ON v.person_id = p.person_id "
    "GROUP BY p.city, v.clinic",                                                            # one key of visits
    "SELECT c.district, COUNT(*) FROM visits v JOIN people p ON v.person_id = p.person_id "
    "JOIN clinics c ON c.clinic = v.clinic GROUP BY c.district",                             # a public table's key
])
def test_other_keys_keep_the_policys_bound(policy, sql):
    plan = plan_query(sql, policy, salt="s")
    assert plan.max_groups > 1
    assert not any(n.startswith("one group per unit") for n in plan.notes)


def _by_group(plan, con) -> dict:
    return {row[0]: row[1:] for row in run_bounded(plan, con)}


def test_removing_one_person_changes_one_group_by_at_most_the_bound(health_db, policy):
    plan = plan_query(COUNT_BY_CITY, policy, salt="audit")
    assert plan.max_groups == 1
    heavy = health_db.execute("SELECT person_id FROM ds.visits GROUP BY person_id "
                              "ORDER BY COUNT(*) DESC, person_id LIMIT 1").fetchone()[0]
    neighbour = health_db.cursor()
    neighbour.execute("CREATE SCHEMA IF NOT EXISTS nb")
    for table in ("people", "visits", "clinics"):
        where = f" WHERE person_id <> {int(heavy)}" if table != "clinics" else ""
        neighbour.execute(f"CREATE OR REPLACE TABLE nb.{table} AS SELECT * FROM ds.{table}{where}")
    neighbour_sql = plan.bounded_sql.replace("ds.", "nb.")
    params = {"salt": "audit"} if "$salt" in plan.bounded_sql else None
    before = _by_group(plan, health_db)
    after = {row[0]: row[1:] for row in health_db.cursor().execute(neighbour_sql, params).fetchall()}
    def differs(a, b) -> bool:         # float sums are compared up to their summation order
        return a is None or b is None or a[0] != b[0] or not math.isclose(a[1], b[1], rel_tol=1e-9)

    changed = [g for g in before.keys() | after.keys() if differs(before.get(g), after.get(g))]
    assert len(changed) == 1                                  # max_groups = 1 holds on the data
    old, new = before[changed[0]], after[changed[0]]
    assert 0 < old[0] - new[0] <= plan.max_rows               # the count: at most max_rows of one unit
    assert 0 <= old[1] - new[1] <= plan.max_rows * 5000       # the sum: at most max_rows · the cost bound


def test_a_unit_in_two_rows_of_a_one_row_table_still_reaches_one_group():
    """Ingestion refuses a second row per unit in a ``rows_per_unit = 1`` table; here
    the table is written directly, so the inference is wrong on purpose. The
    bounded SQL keeps one group for the unit all the same."""
    policy, con = small_dataset(
        HEALTH_POLICY,
        "CREATE TABLE ds.people AS SELECT * FROM (VALUES (1, 30, 'F', 'Oslo', 100.0, 'A00'), "
        "(1, 30, 'F', 'Bergen', 100.0, 'A00'), (2, 40, 'M', 'Oslo', 50.0, 'A00')) "
        "AS t(person_id, age, sex, city, income, diagnosis)",
        "CREATE TABLE ds.visits AS SELECT * FROM (VALUES (1, 1, 'C1', DATE '2024-01-01', 10.0), "
        "(2, 1, 'C2', DATE '2024-01-02', 20.0), (3, 2, 'C1', DATE '2024-01-03', 30.0)) "
        "AS t(visit_id, person_id, clinic, visit_date, cost)",
        "CREATE TABLE ds.clinics AS SELECT * FROM (VALUES ('C1', 'North', 'hospital'), ('C2', 'South', 'gp')) "
        "AS t(clinic, district, kind)",
    )
    plan = plan_query("SELECT p.city, COUNT(*) AS n FROM visits v JOIN people p ON v.person_id = p.person_id "
                      "GROUP BY p.city", policy, salt="s")
    assert plan.max_groups == 1
    counts = {row[0]: row[1] for row in run_bounded(plan, con)}
    # unbounded, person 1's two visits join both of its rows: Oslo 2 + 1, Bergen 2 (5 rows)
    # bounded, person 1 keeps one city: {Oslo: 3} or {Oslo: 1, Bergen: 2}
    assert sum(counts.values()) == 3
    assert counts in ({"Oslo": 3}, {"Oslo": 1, "Bergen": 2})
