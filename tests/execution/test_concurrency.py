"""Many client threads share a small pool: correct answers, no leaked workers."""

from __future__ import annotations

import threading

from sandbox.execution.worker import WorkerPool

from .conftest import TEST_LIMITS, assert_no_leak

QUERIES = [
    ("SELECT count(*) AS n FROM ds.people WHERE age >= $a", lambda i: {"a": i % 100}),
    ("SELECT sex, count(*) AS n, sum(least(income, 200000)) AS s FROM ds.people WHERE city = $c "
     "GROUP BY sex ORDER BY sex", lambda i: {"c": ["Oslo", "Bergen", "Hamar"][i % 3]}),
    ("SELECT c.district, count(*) AS n FROM ds.visits v JOIN ds.clinics c ON v.clinic = c.clinic "
     "WHERE v.cost > $x GROUP BY c.district ORDER BY c.district", lambda i: {"x": float(i * 10)}),
]
THREADS, PER_THREAD = 8, 50


def test_eight_threads_fifty_queries_each_on_two_workers(version, data_key, reference, tmp_path):
    expected = {}
    for q, (sql, params) in enumerate(QUERIES):
        for i in range(THREADS * PER_THREAD):
            key = (q, tuple(sorted(params(i).items())))
            if key not in expected:
                expected[key] = reference.execute(sql, params(i)).fetchall()
    failures: list[str] = []
    pool = WorkerPool(2, TEST_LIMITS, temp_root=tmp_path)
    start_pids = set(pool.pids())

    def client(t: int) -> None:
        for j in range(PER_THREAD):
            i = t * PER_THREAD + j
            q = i % len(QUERIES)
            sql, params = QUERIES[q]
            try:
                table = pool.execute(version.path, data_key, sql, params(i))
                rows = [tuple(r.values()) for r in table.to_pylist()]
                if rows != expected[(q, tuple(sorted(params(i).items())))]:
                    failures.append(f"wrong result for query {q} params {params(i)}")
            except Exception as exc:  # collected and asserted below
                failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert set(pool.pids()) == start_pids          # no worker was lost or replaced
    pool.close()
    assert_no_leak(pool, tmp_path, list(start_pids))
