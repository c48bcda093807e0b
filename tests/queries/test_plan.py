"""Plan-level behaviour: spans, fingerprints, limits, licences, bounding choices."""

from __future__ import annotations

import pytest

from queries import fingerprint, plan_query
from queries.errors import QueryRejected
from queries.policy import parse_policy
from sandbox.demo.data import TAX_POLICY, TRANSPORT_POLICY


def refusal(sql, policy, **kw) -> QueryRejected:
    with pytest.raises(QueryRejected) as info:
        plan_query(sql, policy, **kw)
    return info.value


def test_span_points_at_offending_node(policy):
    sql = "SELECT COUNT(*) FROM people WHERE\n  getenv('HOME') = 'x'"
    exc = refusal(sql, policy)
    assert exc.code == "system_function"
    assert sql[exc.span.start:exc.span.end] == "getenv('HOME')"
    assert (exc.span.line, exc.span.column) == (2, 3)


@pytest.mark.parametrize("sql, text", [
    ("SELECT COUNT(*) FROM patients", "patients"),
    ("SELECT SUM(salary) FROM people", "salary"),
    ("SELECT MIN(age) FROM people", "MIN(age)"),
    ("SELECT person_id FROM people", "person_id"),
    ("SELECT SUM(LENGTH(city)) FROM people", "SUM(LENGTH(city))"),
])
def test_span_text(policy, sql, text):
    exc = refusal(sql, policy)
    assert sql[exc.span.start:exc.span.end] == text


def test_fingerprint_ignores_form_not_meaning(policy):
    a = "SELECT city, COUNT(*) AS n FROM people WHERE age > 30 GROUP BY city"
    b = "select  CITY as town , count(*) as total\n from People p -- c\n where p.age > 30 group by town"
    assert fingerprint(a, policy) == fingerprint(b, policy)
    for changed in ("SELECT city, COUNT(*) FROM people WHERE age > 31 GROUP BY city",
                    "SELECT sex, COUNT(*) FROM people WHERE age > 30 GROUP BY sex",
                    "SELECT city, SUM(age) FROM people WHERE age > 30 GROUP BY city",
                    "SELECT city, COUNT(*) FROM visits JOIN people USING (person_id) WHERE age > 30 GROUP BY city"):
        assert fingerprint(changed, policy) != fingerprint(a, policy)


def test_salt_is_a_parameter_never_inlined(policy):
    plan = plan_query("SELECT clinic, COUNT(*) FROM visits GROUP BY clinic", policy, salt="s3cret-salt")
    assert plan.params == {"salt": "s3cret-salt"}
    assert "$salt" in plan.bounded_sql and "s3cret" not in plan.bounded_sql
    assert "random" not in plan.bounded_sql.lower()


def test_limits_only_lower(policy):
    sql = "SELECT clinic, SUM(cost) FROM visits GROUP BY clinic"
    base = plan_query(sql, policy)
    assert (base.max_groups, base.max_rows) == (5, 10)
    lower = plan_query(sql, policy, max_groups=2, max_rows=3)
    assert (lower.max_groups, lower.max_rows) == (2, 3)
    higher = plan_query(sql, policy, max_groups=50, max_rows=99)
    assert (higher.max_groups, higher.max_rows) == (5, 10)
    assert refusal(sql, policy, max_rows=0).code == "invalid_limit"


def test_bounding_skipped_for_one_row_per_unit(policy):
    plan = plan_query("SELECT city, AVG(income) FROM people GROUP BY city", policy)
    assert (plan.max_groups, plan.max_rows) == (1, 1)
    assert "ROW_NUMBER" not in plan.bounded_sql and any("skipped" in n for n in plan.notes)
    joined = plan_query("SELECT c.kind, COUNT(*) FROM visits v JOIN clinics c ON c.clinic = v.clinic "
                        "GROUP BY c.kind", policy)
    # per-unit aggregation; three kinds fit in max_groups = 5, so no group window is needed
    assert "GROUP BY __unit, g0" in joined.bounded_sql and "LEAST(__p0, 10)" in joined.bounded_sql
    assert "ROW_NUMBER" not in joined.bounded_sql and joined.notes == (
        "group limit not binding: max_groups = 3 covers every group",)
    clinics = plan_query("SELECT clinic, COUNT(*) FROM visits GROUP BY clinic", policy, salt="s")
    assert "ROW_NUMBER() OVER (PARTITION BY __unit ORDER BY hash(__unit, g0, $salt), g0)" in clinics.bounded_sql
    assert "__group_rank <= 5" in clinics.bounded_sql and "PARTITION BY __unit, g0" not in clinics.bounded_sql
    median = plan_query("SELECT clinic, MEDIAN(cost) FROM visits GROUP BY clinic", policy, salt="s")
    assert "PARTITION BY __unit, g0" in median.bounded_sql   # quantiles sample rows


def test_join_fan_out_and_pre_aggregation(policy):
    plan = plan_query("SELECT COUNT(*) FROM people p LEFT JOIN visits v ON p.person_id = v.person_id", policy)
    assert plan.max_rows == 10 and plan.fan_out == 10
    pre = plan_query("WITH pp AS (SELECT person_id, SUM(cost) AS c FROM visits GROUP BY person_id) "
                     "SELECT AVG(c) FROM pp", policy)
    (agg,) = pre.aggregates
    assert (agg.kind, agg.lower, agg.upper, pre.max_rows) == ("avg", 0.0, 50000.0, 1)


def test_aggregate_roles_and_keys(policy):
    plan = plan_query("SELECT sex, COUNT(*), COUNT(DISTINCT person_id), SUM(income), AVG(age), VAR_POP(age), "
                      "MEDIAN(age) FROM people GROUP BY sex", policy)
    roles = [(a.kind, set(a.columns)) for a in plan.aggregates]
    assert roles == [("count", {"count"}), ("count_units", {"count"}), ("sum", {"sum"}),
                     ("avg", {"sum", "count"}), ("var_pop", {"sum", "sumsq", "count"}), ("quantile", {"lt", "gt"})]
    median = plan.aggregates[-1]
    assert median.quantile == 0.5 and median.integer and 64 <= len(median.candidates) <= 128
    assert plan.group_keys[0].domain == ("F", "M") and not plan.partition_selection
    open_keys = plan_query("SELECT diagnosis, COUNT(*) FROM people GROUP BY diagnosis", policy)
    assert open_keys.partition_selection and open_keys.units_column == "units"


def test_outputs_having_order_limit(policy):
    plan = plan_query("SELECT city AS town, SUM(income) / COUNT(*) AS mean FROM people GROUP BY town "
                      "HAVING COUNT(*) > 10 ORDER BY mean DESC LIMIT 3", policy)
    assert [(o.name, o.expr, o.is_key) for o in plan.outputs] == [("town", '"town"', True),
                                                                 ("mean", "a0 / NULLIF(a1, 0)", False)]
    assert plan.having == "a1 > 10" and plan.order_by == "a0 / NULLIF(a1, 0) DESC" and plan.limit == 3


def test_licence_and_dataset_classes(policy):
    assert refusal("SELECT COUNT(*) FROM visits", policy, tables=frozenset({"people"})).code == "unlicensed_table"
    assert plan_query("SELECT COUNT(*) FROM people", policy, tables=frozenset({"people"})).tables == ("people",)
    assert refusal("SELECT COUNT(*) FROM returns", parse_policy(TAX_POLICY)).code == "dataset_restricted"
    assert refusal("SELECT COUNT(*) FROM ridership", parse_policy(TRANSPORT_POLICY)).code == "no_private_table"


def test_non_string_input(policy):
    assert refusal(None, policy).code == "parse_error"  # type: ignore[arg-type]
