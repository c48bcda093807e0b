"""The side-channel pair catalogue (data): each pair is two queries over the planted
dataset (tests/privacy/planted.py) that differ only in one condition, true for the
planted person T alone (``city = 'Planted'``, query T) or for nobody
(``city = 'Nowhere'``, query F). Everything observable about the two runs, apart
from the noisy numbers, must be the same (tests/privacy/test_side_channels.py).

``cls`` names the side channel the pair probes: the classes of issue 11 (``error``,
``metadata``, ``notes``, ``order``, ``internal_name``, ``fan_out``, ``logs``) and
ones found on the way (``quantile_null``, ``having``, ``limit``, ``count_distinct``,
``join``, ``only_t``, ``group_expression``).

``expect`` is the outcome the design fixes for both queries, where it fixes one:
``"ok"`` (the run succeeds: total execution) or a refusal code. ``None``: only
identity is required (and, for every pair, that neither run fails after it
reached the data: ``run_failed`` is a backstop, not an outcome a pair may have).
``naive`` marks a pair whose T query fails and F query succeeds when the
operator's SQL runs as written in a plain DuckDB over the same data: the pair is
a real probe, not a pair that could never differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from .planted import CITY_F, CITY_T


@dataclass(frozen=True)
class Pair:
    name: str
    cls: str
    sql_t: str
    sql_f: str
    expect: str | None = None
    naive: bool = False


def make_pair(name: str, cls: str, template: str, *, expect: str | None = None, naive: bool = False) -> Pair:
    """A pair from a template whose ``{city}`` is T's city in query T and nobody's in query F."""
    return Pair(name, cls, template.format(city=CITY_T), template.format(city=CITY_F), expect, naive)


def _where_case(name: str, failing: str, *, expect: str = "ok", cls: str = "error") -> Pair:
    """``failing`` is evaluated for T's row only (the CASE keeps it from every other row)."""
    return make_pair(name, cls, "SELECT COUNT(*) FROM people WHERE CASE WHEN city = '{city}' THEN "
                     + failing + " ELSE FALSE END", expect=expect, naive=True)


def _projected(name: str, aggregate: str, failing: str) -> Pair:
    """``failing`` computed as a column of a subquery filtered on T's city."""
    return make_pair(name, "error", f"SELECT {aggregate} FROM (SELECT {failing} AS a, city FROM people) t "
                     "WHERE city = '{city}'", expect="ok", naive=True)


VISITS_OF = "FROM visits v JOIN people p ON v.person_id = p.person_id"

PAIRS: list[Pair] = [
    # -- 1. error existence: a value makes a function fail only when T's row reaches it
    _where_case("date_from_parts_month", "DATE_FROM_PARTS(2020, age, 1) > birth"),
    _where_case("make_date_month", "MAKE_DATE(2020, age, 1) > birth"),
    _where_case("substr_huge_offset", "SUBSTR(diagnosis, big, 2) = city"),
    _where_case("left_huge_length", "LEFT(diagnosis, ABS(big + 1)) = city"),
    _where_case("integer_division_overflow", "big // -1 > age"),
    _where_case("abs_of_min_bigint", "ABS(big) > age"),
    _where_case("negation_overflow", "-big > age"),
    _where_case("multiplication_overflow", "big * 2 < age"),
    _where_case("interval_from_data", "birth + INTERVAL (days) DAY > DATE '2000-01-01'"),
    _where_case("date_trunc_unit_from_column", "DATE_TRUNC(unit, birth) > birth", expect="non_literal_argument"),
    _where_case("date_diff_unit_from_column", "DATE_DIFF(unit, birth, DATE '2020-01-01') > age",
                expect="non_literal_argument"),
    _where_case("date_part_unit_from_column", "DATE_PART(unit, birth) > age", expect="non_literal_argument"),
    _where_case("cast_string_to_int", "CAST(code AS INTEGER) > age"),
    _where_case("cast_double_to_bigint", "CAST(huge AS BIGINT) > age"),
    _where_case("integer_division_by_zero", "100 // (age - 13) > age"),
    _where_case("modulo_by_zero", "100 % (age - 13) > age"),
    # plain DuckDB sums as HUGEINT: only a rewrite that casts the sum to BIGINT fails here (or a
    # planner that refuses such bounds, for both)
    make_pair("case_sums_huge_constant", "error",
              "SELECT SUM(CASE WHEN city = '{city}' THEN 9223372036854775807 ELSE 1 END) FROM people"),
    # within ±2^53 per value: the 1023 ordinary people sum to 2^63 - 2^53, T's 2^53 more reaches 2^63
    make_pair("sum_reaches_bigint_edge", "error",
              "SELECT SUM(CASE WHEN city = '{city}' THEN 9007199254740992 WHEN age >= 20 THEN 9007199254740992 "
              "ELSE 0 END) FROM people", expect="ok"),
    make_pair("error_in_aggregate_argument", "error",
              "SELECT SUM(LEAST(GREATEST(CASE WHEN city = '{city}' THEN ABS(big) ELSE 0 END, 0), 10)) FROM people",
              expect="ok", naive=True),
    make_pair("error_in_group_key", "error",
              "SELECT CASE WHEN city = '{city}' THEN MAKE_DATE(2020, age, 1) ELSE DATE '2020-01-01' END AS d, "
              "COUNT(*) FROM people GROUP BY 1", expect="ok", naive=True),
    make_pair("error_in_cte", "error",
              "WITH t AS (SELECT person_id, CASE WHEN city = '{city}' THEN CAST(code AS INTEGER) ELSE 0 END AS n "
              "FROM people) SELECT COUNT(*) FROM t WHERE n >= 0", expect="ok", naive=True),
    make_pair("error_in_subquery", "error",
              "SELECT COUNT(*) FROM (SELECT person_id, age FROM people "
              "WHERE CASE WHEN city = '{city}' THEN ABS(big) > 0 ELSE TRUE END) t", expect="ok", naive=True),
    make_pair("error_in_join_condition", "error",
              "SELECT COUNT(*) FROM people p JOIN regions r ON p.city = r.city "
              "AND CASE WHEN p.city = '{city}' THEN ABS(p.big) > 0 ELSE TRUE END", expect="ok", naive=True),

    # The filter is pushed below the projection, so only T's row reaches the expression, and the
    # expression is a whole user scalar of its own (not under a CASE or comparison that is
    # itself made total): each pair fails if its one function loses its error-free evaluation.
    _projected("abs_in_projection", "SUM(LEAST(GREATEST(a, 0), 10))", "ABS(big)"),
    _projected("integer_division_in_projection", "SUM(LEAST(GREATEST(a, 0), 10))", "big // -1"),
    _projected("negation_in_projection", "SUM(LEAST(GREATEST(a, 0), 10))", "-big"),
    _projected("make_date_in_projection", "COUNT(a)", "MAKE_DATE(2020, age, 1)"),
    _projected("substr_in_projection", "SUM(LEAST(LENGTH(a), 10))", "SUBSTR(diagnosis, big, 2)"),
    _projected("interval_in_projection", "COUNT(a)", "birth + INTERVAL (days) DAY"),
    make_pair("cast_in_cte_projection", "error",
              "WITH t AS (SELECT CAST(code AS INTEGER) AS n, city FROM people) SELECT COUNT(n) FROM t "
              "WHERE city = '{city}'", expect="ok", naive=True),

    # -- 3. exact metadata: a group of T alone, a value above the clamp, a key outside the domain
    make_pair("dropped_group_city", "metadata",
              "SELECT city, COUNT(*) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY city"),
    make_pair("dropped_group_diagnosis", "metadata",
              "SELECT diagnosis, COUNT(*), AVG(age) FROM people WHERE city = '{city}' OR age >= 30 GROUP BY diagnosis"),
    make_pair("dropped_group_clinic", "metadata",
              f"SELECT v.clinic, COUNT(*) {VISITS_OF} WHERE p.city = '{{city}}' OR p.city = 'Bergen' "
              "GROUP BY v.clinic"),
    make_pair("clamped_income", "metadata",
              "SELECT SUM(income), AVG(income) FROM people WHERE city = '{city}' OR city = 'Oslo'"),
    make_pair("key_outside_domain", "metadata",
              "SELECT sex, COUNT(*) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY sex"),

    # -- 4. notes about NULL and non-finite cells
    make_pair("nan_in_sum", "notes", "SELECT SUM(CASE WHEN city = '{city}' THEN weight ELSE 1.0 END) FROM people"),
    make_pair("nan_in_grouped_avg", "notes",
              "SELECT blood, AVG(weight) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood"),
    make_pair("nan_in_stddev", "notes",
              "SELECT STDDEV_POP(CASE WHEN city = '{city}' THEN weight * 2 ELSE 60.0 END) FROM people"),
    make_pair("null_in_sum", "notes", "SELECT SUM(CASE WHEN city = '{city}' THEN height ELSE 1.0 END) FROM people"),
    make_pair("null_integer_measure", "notes",
              "SELECT SUM(score), COUNT(score), AVG(score) FROM people WHERE city = '{city}' OR city = 'Oslo'"),

    # -- 5. order of partition-selected rows without ORDER BY (T is first in storage)
    make_pair("order_private_key", "order",
              "SELECT blood, COUNT(*) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood"),
    make_pair("order_visits_clinic", "order",
              f"SELECT v.clinic, SUM(v.cost) {VISITS_OF} WHERE p.city = '{{city}}' OR p.city = 'Oslo' "
              "GROUP BY v.clinic"),
    make_pair("order_two_keys", "order",
              "SELECT blood, age < 50 AS young, COUNT(*) FROM people WHERE city = '{city}' OR age >= 20 GROUP BY 1, 2"),

    make_pair("null_key_only_with_t", "order",
              "SELECT CASE WHEN city = '{city}' THEN NULL ELSE blood END AS k, COUNT(*) FROM people GROUP BY 1"),
    make_pair("nan_key_only_with_t", "order",
              "SELECT CASE WHEN city = '{city}' THEN weight ELSE 1.0 END AS k, COUNT(*) FROM people GROUP BY 1"),

    # -- 6. the rewrite's internal names
    make_pair("unit_alias_in_subquery", "internal_name",
              "SELECT COUNT(*) FROM (SELECT person_id AS __unit, age FROM people WHERE city = '{city}') t",
              expect="reserved_name"),
    make_pair("unit_alias_in_cte", "internal_name",
              "WITH t AS (SELECT person_id AS __unit FROM people WHERE city = '{city}') SELECT COUNT(*) FROM t",
              expect="reserved_name"),
    make_pair("quoted_unit_alias", "internal_name",
              "SELECT COUNT(*) FROM (SELECT person_id AS \"__unit\", age FROM people WHERE city = '{city}') t",
              expect="reserved_name"),
    make_pair("unit_column_reference", "internal_name",
              "SELECT COUNT(*) FROM people WHERE city = '{city}' AND __unit IS NOT NULL", expect="reserved_name"),
    make_pair("rewrite_names_as_aliases", "internal_name",
              "SELECT g0, COUNT(*) AS units FROM (SELECT blood AS g0, age AS v0, income AS a0 FROM people "
              "WHERE city = '{city}' OR city = 'Oslo') t GROUP BY g0"),

    # -- 7. fan-out over public lookup tables that only T's rows reach
    make_pair("staff_fan_out", "fan_out",
              f"SELECT COUNT(*) {VISITS_OF} JOIN staff s ON v.clinic = s.clinic "
              "WHERE p.city = '{city}' OR p.city = 'Oslo'"),
    make_pair("staff_fan_out_squared", "fan_out",
              f"SELECT COUNT(*) {VISITS_OF} JOIN staff s ON v.clinic = s.clinic JOIN staff s2 ON s.clinic = s2.clinic "
              "WHERE p.city = '{city}' OR p.city = 'Oslo'", expect="query_too_costly"),
    make_pair("cross_join_hundred", "fan_out",
              "SELECT COUNT(*) FROM people p CROSS JOIN digits a CROSS JOIN digits b "
              "WHERE CASE WHEN p.city = '{city}' THEN a.d >= 0 ELSE a.d < 0 END"),
    make_pair("cross_join_thousand", "fan_out",
              "SELECT COUNT(*) FROM people p CROSS JOIN digits a CROSS JOIN digits b CROSS JOIN digits c "
              "WHERE CASE WHEN p.city = '{city}' THEN a.d >= 0 ELSE a.d < 0 END", expect="query_too_costly"),
    make_pair("non_equality_join", "fan_out",
              f"SELECT COUNT(*) {VISITS_OF} JOIN staff s ON v.clinic <= s.clinic WHERE p.city = '{{city}}'"),
    make_pair("public_key_through_join", "fan_out",
              f"SELECT c.district, COUNT(*) {VISITS_OF} JOIN clinics c ON v.clinic = c.clinic "
              "WHERE p.city = '{city}' OR p.city = 'Oslo' GROUP BY c.district"),

    # -- 8. engine messages that would quote T's values (every pair also checks the logs)
    _where_case("message_quotes_diagnosis", "CAST(diagnosis AS INTEGER) > age", cls="logs"),
    _where_case("message_quotes_unit", "CAST(unit AS DATE) > birth", cls="logs"),
    make_pair("message_quotes_product", "logs",
              "SELECT SUM(CASE WHEN city = '{city}' THEN income * 10000000000000 ELSE 0 END) FROM people",
              naive=True),

    # -- found on the way
    make_pair("median_over_nan", "quantile_null",
              "SELECT MEDIAN(weight) FROM people WHERE city = '{city}' OR city = 'Oslo'"),
    make_pair("quantile_over_null", "quantile_null",
              "SELECT QUANTILE_CONT(height, 0.9) FROM people WHERE city = '{city}' OR city = 'Oslo'"),
    make_pair("grouped_median_clamped", "quantile_null",
              "SELECT blood, MEDIAN(income) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood"),
    make_pair("having_on_key", "having",
              "SELECT city, COUNT(*) FROM people WHERE city = '{city}' OR city IN ('Oslo', 'Bergen') GROUP BY city "
              "HAVING city <> 'Bergen'"),
    make_pair("having_on_count", "having",
              "SELECT blood, COUNT(*) AS n FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood "
              "HAVING n > 10"),
    make_pair("limit_without_order", "limit",
              "SELECT blood, COUNT(*) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood LIMIT 2"),
    make_pair("limit_ordered_by_key", "limit",
              "SELECT blood, COUNT(*) FROM people WHERE city = '{city}' OR city = 'Oslo' GROUP BY blood "
              "ORDER BY blood DESC LIMIT 1"),
    make_pair("count_distinct_unit", "count_distinct",
              f"SELECT COUNT(DISTINCT v.person_id) {VISITS_OF} WHERE p.city = '{{city}}' OR p.city = 'Oslo'"),
    make_pair("count_distinct_per_clinic", "count_distinct",
              f"SELECT v.clinic, COUNT(DISTINCT v.person_id) {VISITS_OF} "
              "WHERE p.city = '{city}' OR p.city = 'Oslo' GROUP BY v.clinic"),
    make_pair("left_join_visits", "join",
              "SELECT p.blood, COUNT(v.cost) FROM people p LEFT JOIN visits v ON v.person_id = p.person_id "
              "WHERE p.city = '{city}' OR p.city IN ('Oslo', 'Bergen') GROUP BY p.blood"),
    make_pair("public_region_key", "join",
              "SELECT r.region, AVG(p.income) FROM people p JOIN regions r ON p.city = r.city "
              "WHERE p.city = '{city}' OR p.city = 'Oslo' GROUP BY r.region"),
    make_pair("only_t_selected", "only_t",
              "SELECT COUNT(*), SUM(income), AVG(age), STDDEV_SAMP(weight) FROM people WHERE city = '{city}'"),
    make_pair("only_t_public_key", "only_t", "SELECT sex, COUNT(*) FROM people WHERE city = '{city}' GROUP BY sex"),
    make_pair("key_from_condition", "group_expression",
              "SELECT CASE WHEN city = '{city}' THEN 'T' ELSE blood END AS k, COUNT(*) FROM people GROUP BY 1"),
]

CLASSES = ("error", "metadata", "notes", "order", "internal_name", "fan_out", "logs")
