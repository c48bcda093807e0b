"""The whole query path under concurrency from several processes: a budget that
admits exactly k queries charges exactly k, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import func, select

from concurrency_workers import run_queries
from sandbox.audit import verify_chain
from sandbox.models import Budget, QueryRun
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
