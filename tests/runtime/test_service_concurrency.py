"""The whole query path under concurrency from several processes: a budget that
admits exactly k queries charges exactly k, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from concurrency_workers import run_one_each, run_queries
from sandbox.audit import verify_chain
from sandbox.persistence.models import Budget, QueryRun
from scenario import build


@pytest.mark.slow
def test_200_concurrent_queries_charge_exactly_k(instance, tmp_path_factory):
    build(instance, tmp_path_factory.getbasetemp() / "src-conc", epsilon=1.0)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(4) as pool:
            jobs = [pool.apply_async(run_queries, (str(instance.home), instance.settings.database_url, 50, 0.1, start))
                    for _ in range(4)]
            start.set()
            outcomes = [j.get(timeout=600) for j in jobs]
    assert sum(ok for ok, _ in outcomes) == 10
    assert sum(r for _, r in outcomes) == 190
    with instance.store.read() as s:
        lic = s.execute(select(Budget).where(Budget.scope == "licence")).scalar_one()
        assert lic.spent_epsilon == pytest.approx(1.0) and lic.spent_epsilon <= 1.0 + 1e-9
        assert abs(lic.reserved_epsilon) < 1e-9
        assert s.execute(select(func.count()).select_from(QueryRun).where(QueryRun.status == "charged")).scalar_one() == 10
        assert verify_chain(s, instance.signer.public).ok


@pytest.mark.slow        # many processes for several seconds: CI runs it in the slow tier
def test_one_operator_never_has_more_runs_in_flight_than_allowed(instance, tmp_path_factory):
    """Six processes start a run for one operator at once with the default limit of
    one run in flight: the runs that went through never overlapped, the others were
    refused with too_many_runs before anything was reserved."""
    build(instance, tmp_path_factory.getbasetemp() / "src-inflight", epsilon=5.0)
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(6) as pool:
            jobs = [pool.apply_async(run_one_each, (str(instance.home), instance.settings.database_url, start))
                    for _ in range(6)]
            start.set()
            outcomes = [j.get(timeout=600) for j in jobs]
    codes = sorted({code for code, _ in outcomes})
    assert set(codes) <= {"ok", "too_many_runs"} and "ok" in codes
    ok_ids = [rid for code, rid in outcomes if code == "ok"]
    with instance.store.read() as s:
        runs = s.execute(select(QueryRun).where(QueryRun.id.in_(ok_ids))).scalars().all()
        assert len(runs) == len(ok_ids)
        spans = sorted((r.created_at, r.finished_at) for r in runs)
        for (_, end), (begin, _) in zip(spans, spans[1:]):
            assert end <= begin        # never two in flight at once
        # a refused run reserved nothing: every run row belongs to a run that went through
        assert s.execute(select(func.count()).select_from(QueryRun)).scalar_one() == len(ok_ids)
        lic = s.execute(select(Budget).where(Budget.scope == "licence")).scalar_one()
        assert lic.queries_used == len(ok_ids) and abs(lic.reserved_epsilon) < 1e-9
