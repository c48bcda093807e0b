"""Per-query overhead of the worker round-trip over running the same bounded SQL in-process.

For each query it times
  * in-process: ``run_select`` (fresh cursor, statement check, Arrow result) on the
    same decrypted, hardened database inside this process,
  * empty twin: ``run_select`` on the version's empty twin (same tables, no rows),
    which the worker runs before the data: its added cost per query, and
  * worker:     ``WorkerPool.execute`` — pickle over a socket pair, the worker's
    cached version, the empty-twin check, a fresh cursor, Arrow IPC back — on the
    encrypted version,
and prints medians, p95, the overhead (worker − in-process) and the ratio. The
first worker call (start-up, decryption, building the twin) is timed separately.

    python bench/worker_overhead.py --people 100000 --repeat 200

The machine is shared and noisy: compare figures taken in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queries.plan import plan_query
from queries.policy import parse_policy
from sandbox.demo.data import write_health
from sandbox.execution.storage import decrypt_file, ingest_version, unwrap_key
from sandbox.execution.worker import WorkerLimits, WorkerPool, open_empty_twin, open_hardened, run_select

QUERIES = {
    "trivial": "SELECT COUNT(*) FROM people",
    "count by sex": "SELECT sex, COUNT(*) FROM people GROUP BY sex",
    "avg income by city": "SELECT city, AVG(income) FROM people GROUP BY city",
    "bounded join": "SELECT c.district, SUM(v.cost) FROM visits v JOIN clinics c ON v.clinic = c.clinic "
                    "GROUP BY c.district",
}


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dps-bench-"))
    try:
        write_health(work / "src", people=args.people)
        policy = parse_policy((work / "src" / "policy.toml").read_text())
        master = os.urandom(32)
        version = ingest_version(policy, work / "src", work / "home", master)
        policy = policy.with_types(version.types)
        key = unwrap_key(version.wrapped_key, master)
        limits = WorkerLimits()
        local_dir = work / "local"
        local_dir.mkdir()
        decrypt_file(version.path, key, local_dir / "ds.duckdb")
        local = open_hardened(local_dir / "ds.duckdb", limits)
        start = time.perf_counter()
        twin = open_empty_twin(local, local_dir / "empty", limits)
        built_ms = (time.perf_counter() - start) * 1000

        print(f"people={args.people:,} visits={version.row_counts['visits']:,} repeat={args.repeat}")
        with WorkerPool(1, limits) as pool:
            start = time.perf_counter()
            pool.execute(version.path, key, "SELECT 1", {})
            print(f"first call (worker start-up + decrypting the version + its empty twin): "
                  f"{(time.perf_counter() - start) * 1000:.0f} ms (the twin alone: {built_ms:.0f} ms)")
            print(f"{'query':<20} {'in-process ms':>14} {'twin ms':>8} {'worker ms':>10} {'overhead ms':>12} "
                  f"{'ratio':>6} {'p95 in/worker':>15}")
            overheads, checks = [], []
            for name, sql in QUERIES.items():
                plan = plan_query(sql, policy, salt="bench")
                local_fn = lambda plan=plan: run_select(local, plan.bounded_sql, plan.params)  # noqa: E731
                twin_fn = lambda plan=plan: run_select(twin, plan.bounded_sql, plan.params)  # noqa: E731
                worker_fn = lambda plan=plan: pool.execute(version.path, key, plan.bounded_sql, plan.params)  # noqa: E731
                assert local_fn().equals(worker_fn())
                _times(local_fn, 5), _times(twin_fn, 5), _times(worker_fn, 5)     # warm all three
                inproc, empty, worker = [], [], []
                for _ in range(args.repeat // 20 or 1):                # interleave to share the noise
                    inproc += _times(local_fn, 20)
                    empty += _times(twin_fn, 20)
                    worker += _times(worker_fn, 20)
                mi, me, mw = statistics.median(inproc), statistics.median(empty), statistics.median(worker)
                overheads.append(mw - mi)
                checks.append(me)
                print(f"{name:<20} {mi:>14.2f} {me:>8.2f} {mw:>10.2f} {mw - mi:>12.2f} {mw / mi:>6.2f} "
                      f"{_p95(inproc):>7.2f}/{_p95(worker):.2f}")
            print(f"fixed round-trip cost (trivial query): {overheads[0]:.2f} ms; "
                  f"median overhead over the queries: {statistics.median(overheads):.2f} ms (target <= 5 ms), "
                  f"of which the empty-twin check: {statistics.median(checks):.2f} ms")
        twin.close()
        local.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
