"""Random and mutated SQL: the only exception plan_query ever raises is
QueryRejected, and every accepted plan reads only ``ds.`` tables."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queries import plan_query
from queries.errors import QueryRejected

SEEDS = [
    "SELECT city, COUNT(*) FROM people GROUP BY city",
    "SELECT clinic, SUM(cost) FROM visits WHERE cost > 10 GROUP BY clinic HAVING COUNT(*) > 3 ORDER BY 2 LIMIT 5",
    "WITH pp AS (SELECT person_id, SUM(cost) AS c FROM visits GROUP BY person_id) SELECT AVG(c) FROM pp",
    "SELECT c.kind, AVG(v.cost) FROM visits v JOIN clinics c ON c.clinic = v.clinic GROUP BY 1",
    "SELECT FLOOR(age / 10) * 10 AS d, MEDIAN(income) FROM people GROUP BY d",
    "SELECT p.sex, COUNT(DISTINCT p.person_id) FROM people p JOIN visits v USING (person_id) GROUP BY ALL",
]
TOKENS = ["SELECT", "FROM", "WHERE", "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "JOIN", "ON", "USING", "WITH",
          "AS", "(", ")", ",", ";", "*", "+", "-", "/", "%", "=", "<", ">", "AND", "OR", "NOT", "IN", "IS", "NULL",
          "CASE", "WHEN", "THEN", "ELSE", "END", "COUNT", "SUM", "AVG", "MIN", "MEDIAN", "DISTINCT", "people",
          "visits", "clinics", "person_id", "age", "cost", "city", "clinic", "'x'", "1", "0.5", "$salt", "?",
          "OVER", "UNION", "read_csv('a.csv')", "'a.csv'", "getenv('x')", "#1", "ALL", "ds.people", "\"Age\"",
          "LEFT", "CROSS", "QUALIFY", "COLUMNS('.*')", "::INT", "[1]", "INSTALL", "COPY", "--", "/*", "*/"]

mutated = st.builds(
    lambda seed, cuts: _mutate(seed, cuts),
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 6), st.sampled_from(TOKENS)), max_size=4),
)
token_soup = st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join)


def _mutate(seed: str, cuts) -> str:
    text = seed
    for pos, drop, token in cuts:
        pos = pos % (len(text) + 1)
        text = text[:pos] + " " + token + " " + text[pos + drop:]
    return text


def _check(sql: str, policy) -> None:
    try:
        plan = plan_query(sql, policy, salt="fuzz")
    except QueryRejected as exc:
        assert isinstance(exc.code, str) and exc.code
        return
    tables = re.findall(r"\bFROM\s+([A-Za-z_\"][\w\".]*)|\bJOIN\s+([A-Za-z_\"][\w\".]*)", plan.bounded_sql)
    for pair in tables:
        name = pair[0] or pair[1]
        assert name.startswith("ds.") or name.startswith("__") or name.startswith("("), (name, plan.bounded_sql)
    sql = plan.bounded_sql
    assert ("hash(" in sql) == ("$salt" in sql) and "random" not in sql.lower()
    assert plan.max_rows == 1 or "__units" in sql or "ROW_NUMBER" in sql   # contributions are bounded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sql=st.one_of(mutated, token_soup, st.text(max_size=200)))
def test_only_query_rejected_escapes(sql, policy):
    _check(sql, policy)


def test_deep_nesting_is_refused_not_recursion_error(policy):
    for depth in (50, 200, 2000):
        _check("SELECT COUNT(*) FROM people WHERE " + "(" * depth + "age > 1" + ")" * depth, policy)
        _check("SELECT SUM(" + "ABS(" * depth + "age" + ")" * depth + ") FROM people", policy)
        _check("SELECT COUNT(*) FROM " + "(SELECT * FROM " * depth + "people" + ") t" * depth, policy)
