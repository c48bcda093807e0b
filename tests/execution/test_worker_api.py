"""The worker's calling convention: parameters, result types, the plan contract."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

import pytest

from queries.errors import ExecutionFailed
from queries.hardened_duckdb import parameter_names
from sandbox.execution.worker import QueryInvalid, WorkerLimits

from .conftest import log_record


def test_parameter_names_come_from_the_tokenizer():
    sql = "SELECT hash(x, $salt), '$not_a_param', $Lower FROM t -- $comment"
    assert parameter_names(sql) == {"salt", "lower"}
    assert parameter_names("SELECT 1") == set()


def test_unused_parameters_are_dropped_and_used_ones_bound(pool, version, data_key):
    got = pool.execute(version.path, data_key, "SELECT count(*) AS n FROM ds.people WHERE age >= $min_age",
                       {"min_age": 200, "salt": "abc"})
    assert got.column("n").to_pylist() == [0]
    got = pool.execute(version.path, data_key, "SELECT '$salt' AS s", {"salt": "abc"})
    assert got.column("s").to_pylist() == ["$salt"]


def test_a_missing_parameter_is_refused_before_the_data(pool, version, data_key):
    with pytest.raises(ExecutionFailed) as err:
        pool.execute(version.path, data_key, "SELECT $missing AS x", {"other": 1})
    assert err.value.code == "query_invalid" and err.value.status == 400
    assert isinstance(err.value, QueryInvalid)


def test_the_log_names_the_plan_by_fingerprint(pool, version, data_key, worker_home):
    sql = "SELECT CAST(diagnosis AS INTEGER) AS x FROM ds.people"
    with pytest.raises(ExecutionFailed) as given:
        pool.execute(version.path, data_key, sql, {}, fingerprint="plan-4f2a")
    with pytest.raises(ExecutionFailed) as default:
        pool.execute(version.path, data_key, sql, {})
    assert log_record(worker_home / "log", given.value.error_id)["fingerprint"] == "plan-4f2a"
    assert log_record(worker_home / "log", default.value.error_id)["fingerprint"] == \
        hashlib.sha256(sql.encode()).hexdigest()


def test_the_pool_does_not_pad_response_time():
    """The service pads the whole request; a worker limit for it would pad twice."""
    assert "min_response_ms" not in {f.name for f in dataclasses.fields(WorkerLimits)}


def test_results_keep_their_types(pool, version, data_key, reference):
    sql = ("SELECT min(visit_date) AS d, sum(person_id) AS s, avg(cost) AS c, count(*) AS n, "
           "list(DISTINCT clinic ORDER BY clinic)[1:2] AS l FROM ds.visits")
    got = pool.execute(version.path, data_key, sql, {}).to_pylist()[0]
    want = reference.execute(sql).fetchall()[0]
    assert isinstance(got["d"], datetime.date) and got["d"] == want[0]
    assert got["s"] == want[1] and got["n"] == want[3] and got["l"] == want[4]
    assert got["c"] == pytest.approx(want[2])


def test_bounded_sql_from_the_planner_runs_as_is(pool, version, data_key, health_policy, reference):
    from queries.plan import plan_query

    policy = health_policy.with_types(version.types)
    plan = plan_query("SELECT sex, COUNT(*) FROM people GROUP BY sex", policy, salt="s1")
    got = pool.execute(version.path, data_key, plan.bounded_sql, plan.params)
    assert sorted(got.to_pylist(), key=lambda r: r[plan.group_keys[0].column]) == [
        {plan.group_keys[0].column: sex, plan.aggregates[0].columns["count"]: n}
        for sex, n in reference.execute("SELECT sex, count(*) FROM ds.people GROUP BY sex ORDER BY sex").fetchall()
    ]
