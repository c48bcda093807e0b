"""rows_bound: the owner's public size of a table. Ingestion refuses a version that
holds more, and every size-based refusal before a run (resources_exceeded on
DuckDB, rows_read_exceeded on Spark) reads the bound, never the exact count, so
neighbouring datasets get the same decision and the same answer."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from queries import plan_query
from queries.errors import PolicyError, SandboxError
from queries.model import PublicTableStats
from queries.policy import DatasetPolicy, parse_policy
from queries.resources import check_resources, estimate_need
from queries.vocabulary import Engine
from sandbox.demo.data import write_health
from sandbox.execution.engine import check_runnable
from sandbox.execution.storage import StoredVersion, ingest_version

PEOPLE = 300
SQLS = (
    "SELECT clinic, COUNT(*) AS n FROM visits GROUP BY clinic",
    "SELECT city, COUNT(*) AS n FROM people GROUP BY city",
    "SELECT p.city, AVG(v.cost) AS c FROM visits v JOIN people p ON v.person_id = p.person_id GROUP BY p.city",
    "SELECT c.district, SUM(v.cost) AS s FROM visits v JOIN clinics c ON v.clinic = c.clinic GROUP BY c.district",
)


def _bounded(policy: DatasetPolicy, **bounds: int | None) -> DatasetPolicy:
    return replace(policy, tables=tuple(replace(t, rows_bound=bounds[t.name]) if t.name in bounds else t
                                        for t in policy.tables))


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory, master_key) -> tuple[tuple[DatasetPolicy, StoredVersion], ...]:
    """Two versions under one policy and one bound: all of one person's rows in the
    second are missing from the first (neighbouring datasets)."""
    out = []
    for people in (PEOPLE - 1, PEOPLE):
        folder = tmp_path_factory.mktemp(f"health{people}")
        policy = _bounded(parse_policy(write_health(folder, people=people).read_text()),
                          people=4 * 10**7, visits=4 * 10**8)
        stored = ingest_version(policy, folder, tmp_path_factory.mktemp("home"), master_key)
        out.append((policy.with_types(stored.types), stored))
    assert out[0][1].row_counts != out[1][1].row_counts
    return tuple(out)


def _stats(stored: StoredVersion) -> dict[str, PublicTableStats]:
    return {t: PublicTableStats(rows=int(v["rows"]), max_rows_per_value=dict(v["max_rows_per_value"]))
            for t, v in stored.public_stats.items()}


def _outcome(policy: DatasetPolicy, stored: StoredVersion, sql: str, engine: Engine) -> dict | None:
    stats = _stats(stored)
    plan = plan_query(sql, policy, public_stats=stats, salt="same")
    need = estimate_need(plan, policy, stats)
    try:
        check_runnable(engine, plan.bounded_sql, need, max_rows_read=10**8)
        check_resources(need, memory_mb=1024, spill_mb=8192)
    except SandboxError as exc:
        return {"status": exc.status, **exc.to_dict()}
    return None


@pytest.mark.parametrize("engine", [Engine.DUCKDB, Engine.SPARK])
def test_neighbouring_datasets_get_the_same_decision_and_payload(neighbours, engine):
    (p0, v0), (p1, v1) = neighbours
    outcomes = [(_outcome(p0, v0, sql, engine), _outcome(p1, v1, sql, engine)) for sql in SQLS]
    for first, second in outcomes:
        assert first == second
    refused = [o[0]["code"] for o in outcomes if o[0] is not None]
    assert refused and set(refused) <= {"resources_exceeded", "rows_read_exceeded"}
    assert any(o[0] is None for o in outcomes)          # the domain-grouped count passes at any size
    for first, _ in outcomes:
        if first is not None:
            text = str(first)
            assert str(v0.row_counts["visits"]) not in text and str(v1.row_counts["visits"]) not in text


def test_spark_reads_the_bound_not_the_stored_counts(neighbours):
    (policy, stored), _ = neighbours
    sql = SQLS[1]
    plan = plan_query(sql, policy, salt="s")
    need = estimate_need(plan, policy, _stats(stored))
    assert need.rows_read == {"people": 4 * 10**7}
    check_runnable(Engine.SPARK, plan.bounded_sql, need, max_rows_read=4 * 10**7)
    with pytest.raises(SandboxError) as info:
        check_runnable(Engine.SPARK, plan.bounded_sql, need, max_rows_read=4 * 10**7 - 1)
    assert info.value.code == "rows_read_exceeded" and info.value.status == 422
    assert info.value.fields == {"limit": 4 * 10**7 - 1, "need_rows": 4 * 10**7}
    check_runnable(Engine.DUCKDB, plan.bounded_sql, need, max_rows_read=1)       # DuckDB has no such bound
    unknown = estimate_need(plan, _bounded(policy, people=None), _stats(stored))
    assert not unknown.known
    check_runnable(Engine.SPARK, plan.bounded_sql, unknown, max_rows_read=1)     # no bound: not refused


def test_a_source_over_its_bound_is_refused_and_nothing_is_stored(neighbours, master_key, tmp_path):
    (_, stored), _ = neighbours
    folder = tmp_path / "src"
    policy = parse_policy(write_health(folder, people=PEOPLE - 1).read_text())
    visits = stored.row_counts["visits"]
    home = tmp_path / "home"
    with pytest.raises(PolicyError) as info:
        ingest_version(_bounded(policy, visits=visits - 1), folder, home, master_key)
    err = info.value
    assert err.code == "rows_bound_exceeded" and err.status == 422 and err.key == "tables.visits.rows_bound"
    assert f"{visits:,} rows" in err.message and f"rows_bound = {visits - 1:,}" in err.message
    assert not home.exists() or list(Path(home).iterdir()) == []
    exact = ingest_version(_bounded(policy, visits=visits, people=PEOPLE - 1), folder, tmp_path / "ok", master_key)
    assert exact.row_counts == {**stored.row_counts}            # a bound equal to the count is met
