"""A plan's resource need, from public facts alone: the policy's rows_bound, public
tables' statistics, the SQL and the plan (queries/resources.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlglot
from sqlglot import exp

from queries import plan_query
from queries.errors import PolicyError, SandboxError
from queries.model import PublicTableStats
from queries.policy import DatasetPolicy, parse_policy
from queries.resources import ResourceNeed, check_resources, estimate_need
from sandbox.demo.data import HEALTH_POLICY

STATS = {"clinics": PublicTableStats(rows=40, max_rows_per_value={"clinic": 1, "district": 12, "kind": 15})}
BY_CLINIC = "SELECT clinic, COUNT(*) AS n FROM visits GROUP BY clinic"       # a window over the unit
BY_CITY = "SELECT city, COUNT(*) AS n FROM people GROUP BY city"             # groups from a public domain
JOINED = "SELECT p.city, AVG(v.cost) AS c FROM visits v JOIN people p ON v.person_id = p.person_id GROUP BY p.city"
DEFAULTS = {"memory_mb": 1024, "spill_mb": 8192}


def bounded(policy: DatasetPolicy, **bounds: int | None) -> DatasetPolicy:
    return replace(policy, tables=tuple(replace(t, rows_bound=bounds[t.name]) if t.name in bounds else t
                                        for t in policy.tables))


def need_of(sql: str, policy: DatasetPolicy) -> ResourceNeed:
    return estimate_need(plan_query(sql, policy, public_stats=STATS, salt="s"), policy, STATS)


def test_the_estimate_grows_with_the_declared_bound(policy):
    small = need_of(BY_CLINIC, bounded(policy, people=10**6, visits=10**6))
    large = need_of(BY_CLINIC, bounded(policy, people=10**6, visits=10**7))
    assert small.known and large.known
    assert small.rows_read == {"visits": 10**6} and large.rows_read == {"visits": 10**7}
    assert small.memory_mib < large.memory_mib
    kinds = {op.kind for op in large.operators}
    assert {"hash aggregate", "window", "result"} <= kinds


def test_a_window_over_the_unit_of_a_billion_rows_is_refused_with_the_figures(policy):
    plan = plan_query(BY_CLINIC, bounded(policy, people=10**6, visits=10**9), salt="s")
    windows = [w for w in sqlglot.parse_one(plan.bounded_sql, dialect="duckdb").find_all(exp.Window)]
    assert any(c.name == "__unit" for w in windows for c in w.args["partition_by"])
    need = estimate_need(plan, bounded(policy, people=10**6, visits=10**9), STATS)
    with pytest.raises(SandboxError) as info:
        check_resources(need, **DEFAULTS)
    err = info.value
    assert err.code == "resources_exceeded" and err.status == 422
    assert err.fields["need_mb"] == need.memory_mib > 9216
    assert err.fields["limit_mb"] == 9216 and err.fields["limit_name"] == "memory_and_spill"
    assert f"{need.memory_mib:,} MiB" in err.message and "rows_bound" in err.message
    with pytest.raises(SandboxError) as info:
        check_resources(need, memory_mb=1024, spill_mb=0)
    assert info.value.fields["limit_mb"] == 1024 and info.value.fields["limit_name"] == "memory"


def test_the_same_plan_under_a_small_bound_passes(policy):
    check_resources(need_of(BY_CLINIC, bounded(policy, people=10**5, visits=10**5)), **DEFAULTS)
    check_resources(need_of(JOINED, bounded(policy, people=10**5, visits=10**6)), **DEFAULTS)


def test_groups_with_a_public_domain_hold_no_more_than_the_domain(policy):
    """COUNT by a key with a public domain streams its rows into a few groups: a
    billion people need no more memory than a thousand."""
    huge = need_of(BY_CITY, bounded(policy, people=10**9, visits=10**9))
    tiny = need_of(BY_CITY, bounded(policy, people=10**3, visits=10**3))
    assert huge.memory_mib == tiny.memory_mib < 64
    assert huge.rows_read == {"people": 10**9}
    check_resources(huge, memory_mb=64, spill_mb=0)


def test_a_distinct_of_group_keys_with_a_public_domain_holds_the_domain(policy):
    """A grouped median crosses the distinct groups with its candidate codes: with
    a key of public domain that is a few groups, not one per row."""
    sql = "SELECT sex, MEDIAN(age) AS m FROM people GROUP BY sex"
    small = need_of(sql, bounded(policy, people=10**5, visits=10**5))
    large = need_of(sql, bounded(policy, people=10**7, visits=10**7))
    crossed = [op for op in large.operators if op.kind == "hash join"]
    assert crossed and max(op.rows for op in crossed) < 10**4      # 3 groups (F, M, NULL) x the codes
    assert large.memory_mib < 100 * small.memory_mib
    check_resources(large, **DEFAULTS)


def test_a_public_join_counts_the_matching_rows_of_the_lookup_table(policy):
    sql = "SELECT c.district, SUM(v.cost) AS cost FROM visits v JOIN clinics c ON v.clinic = c.clinic GROUP BY c.district"
    need = need_of(sql, bounded(policy, people=10**6, visits=10**6))
    assert need.rows_read == {"visits": 10**6, "clinics": 40}
    joins = [op for op in need.operators if op.kind == "hash join"]
    assert [op.rows for op in joins] == [40]                  # the lookup table is the build side


def test_without_a_declared_bound_the_need_is_unknown_and_nothing_is_refused(policy):
    need = need_of(BY_CLINIC, bounded(policy, people=10**9, visits=None))  # visits declares no bound
    assert not need.known and need.unbounded == ("visits",)
    check_resources(need, memory_mb=1, spill_mb=0, max_rows_read=1)
    assert need_of(BY_CITY, bounded(policy, people=10**3, visits=None)).known     # people alone is bounded
    assert not need_of(JOINED, bounded(policy, people=10**3, visits=None)).known


def test_rows_read_beyond_the_limit_is_refused(policy):
    need = need_of(JOINED, bounded(policy, people=10**6, visits=5 * 10**6))
    assert need.total_rows_read == 6 * 10**6
    check_resources(need, **DEFAULTS, max_rows_read=6 * 10**6)
    with pytest.raises(SandboxError) as info:
        check_resources(need, **DEFAULTS, max_rows_read=10**6)
    assert info.value.code == "resources_exceeded"
    assert info.value.fields == {"limit_name": "rows_read", "need_rows": 6 * 10**6, "limit_rows": 10**6}


@pytest.mark.parametrize("sql", [
    BY_CLINIC, BY_CITY, JOINED,
    "SELECT MEDIAN(income) AS m FROM people",
    "SELECT city, diagnosis, COUNT(*) AS n FROM people GROUP BY city, diagnosis",
    "SELECT COUNT(DISTINCT person_id) AS n FROM visits",
    "SELECT SUM(cost) AS s FROM visits WHERE visit_date >= DATE '2025-06-01'",
])
def test_every_figure_is_a_function_of_the_plan_and_the_policy(policy, sql):
    """Planned twice, with different salts: the same need, refused or not alike."""
    p = bounded(policy, people=3 * 10**8, visits=10**9)
    first = estimate_need(plan_query(sql, p, public_stats=STATS, salt="a"), p, STATS)
    second = estimate_need(plan_query(sql, p, public_stats=STATS, salt="b"), p, STATS)
    assert first == second and first.known and first.memory_mib > 0


# ---------------------------------------------------------------- the policy key

def _with(line: str) -> str:
    assert "rows_bound = 25_000_000\n" in HEALTH_POLICY          # the demo's bound of visits
    return HEALTH_POLICY.replace("rows_bound = 25_000_000\n", f"{line}\n" if line else "")


def test_rows_bound_is_parsed_and_kept_in_the_stored_form():
    parsed = parse_policy(_with("rows_bound = 2_000"))
    assert parsed.table("visits").rows_bound == 2_000 and parsed.table("clinics").rows_bound is None
    again = type(parsed).from_dict(parsed.to_dict())
    assert again == parsed
    plain = parse_policy(_with(""))
    assert "rows_bound" not in plain.to_dict()["tables"][1]                # older policies keep their hash


def test_the_demo_bounds_admit_the_benchmark_at_ten_million_people(policy):
    """bench/overhead.py ingests the demo at 10M people (about 21.5M visits) and
    runs its workload under the default limits (1024 MiB + 8192 MiB of spill)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("overhead", Path(__file__).resolve().parents[2] / "bench" / "overhead.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    assert policy.table("people").rows_bound >= 10_000_000 and policy.table("visits").rows_bound >= 22_000_000
    for sql in bench.WORKLOAD.values():
        check_resources(need_of(sql, policy), **DEFAULTS)


@pytest.mark.parametrize("value, message", [
    ("0", "must be greater than 0"), ("-5", "must be greater than 0"), ("1.5", "must be an integer"),
    ('"many"', "must be a number"), ("true", "must be a number"),
])
def test_rows_bound_must_be_a_positive_integer(value, message):
    with pytest.raises(PolicyError, match=message) as info:
        parse_policy(_with(f"rows_bound = {value}"))
    assert info.value.key == "tables.visits.rows_bound" and info.value.line is not None
