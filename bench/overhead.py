"""Overhead of the DP pipeline over plain DuckDB, measured in one run.

For each query of the standard workload it times
  * raw:  the operator's SQL run as plain SQL by an in-process DuckDB over the
          same tables (the baseline), and
  * dp:   the whole query path without HTTP — plan, cost, reserve, worker
          round-trip over the encrypted version, OpenDP release, charge and
          audit (``sandbox.service.run_query``),
and prints the medians, their ratio, the geometric mean of the ratios and the
fixed cost per release (dp − raw on the smallest query).

    python bench/overhead.py --people 1000000 --people 10000000 --repeat 7

By default runs are timed without the response-time grid (``--min-response-ms 0``):
that is the engine's own cost. Production answers on the grid (50 ms, 100 ms, …);
``--min-response-ms 50`` measures that too. The worker gets 2 threads and 4 GiB;
``--worker-defaults`` keeps the instance's default worker settings instead (2
workers, 1 thread, 1 GiB of memory each, spilling to the worker's temp dir).

The machine is shared and noisy: compare ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORKLOAD = {
    "count": "SELECT COUNT(*) AS n FROM people",
    "count by city": "SELECT city, COUNT(*) AS n FROM people GROUP BY city",
    "clamped sum": "SELECT SUM(income) AS total FROM people",
    "avg by sex": "SELECT sex, AVG(income) AS avg_income FROM people GROUP BY sex",
    "count by city, diagnosis": "SELECT city, diagnosis, COUNT(*) AS n FROM people GROUP BY city, diagnosis",
    "age histogram": "SELECT FLOOR(age / 10) * 10 AS decade, COUNT(*) AS n FROM people GROUP BY FLOOR(age / 10) * 10",
    "join sum per clinic": ("SELECT c.district, SUM(v.cost) AS cost FROM visits v JOIN clinics c "
                            "ON v.clinic = c.clinic GROUP BY c.district"),
    "median income": "SELECT MEDIAN(income) AS median_income FROM people",
}


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def licensed_health(inst, policy: Path) -> None:
    """owner1 adds the health dataset from ``policy``; operator1 holds a licence of ε 10 on it."""
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.licences import grant_licence
    from sandbox.users import add_user

    setup = Actor("bench", "admin")
    add_user(inst, setup, "owner1", "owner", "bench password")
    add_user(inst, setup, "operator1", "operator", "bench password")
    add_dataset(inst, Actor("owner1", "owner"), policy)
    grant_licence(inst, Actor("owner1", "owner"), dataset="health", operator="operator1", epsilon=10.0,
                  delta=1e-6, purpose="benchmark", expires=date.today() + timedelta(days=1))


def bench(people: int, repeat: int, min_response_ms: int = 0,
          worker_defaults: bool = False) -> list[tuple[str, float, float]]:
    from sandbox.demo.data import write_health
    from sandbox.instance import Instance, init_home
    from sandbox.service import run_query
    from sandbox.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="dps-bench-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        policy = write_health(tmp_path / "src", people=people, visits_per_person=5)
        workers = {} if worker_defaults else {"workers": 1, "worker_threads": 2, "worker_memory_mb": 4096,
                                              "worker_address_space_mb": 16384}
        settings = load_settings(env={}, home=str(tmp_path / "home"), worker_cpu_seconds=3600, query_timeout_s=600,
                                 min_response_ms=min_response_ms, **workers)
        init_home(settings)
        inst = Instance.open(settings)
        licensed_health(inst, policy)
        print(f"# {people:,} people: data and ingestion {time.perf_counter() - t0:.1f} s", flush=True)

        raw = duckdb.connect(config={"threads": 2})
        src = tmp_path / "src"
        raw.execute(f"CREATE TABLE people AS SELECT * FROM read_parquet('{src / 'people.parquet'}')")
        raw.execute(f"CREATE TABLE visits AS SELECT * FROM read_csv('{src / 'visits.csv'}')")
        raw.execute(f"CREATE TABLE clinics AS SELECT * FROM read_csv('{src / 'clinics.csv'}')")

        # Each release spends a little ε: keep the total within the licence.
        eps = 10.0 / (len(WORKLOAD) * (repeat + 1) * 1.01)
        rows = []
        try:
            for name, sql in WORKLOAD.items():
                raw_ms = _median_ms(lambda sql=sql: raw.execute(sql).fetchall(), repeat)
                dp_ms = _median_ms(lambda sql=sql: run_query(inst, "operator1", "health", sql, epsilon=eps), repeat)
                rows.append((name, raw_ms, dp_ms))
        finally:
            inst.close()
            raw.close()
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, action="append", help="population size (repeatable)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-response-ms", type=int, default=0,
                    help="response-time floor of each run (0: no padding, the engine's own cost)")
    ap.add_argument("--worker-defaults", action="store_true",
                    help="the instance's default worker settings (1 thread, 1 GiB, spilling) instead of 2 threads, 4 GiB")
    args = ap.parse_args()
    for people in args.people or [1_000_000]:
        rows = bench(people, args.repeat, args.min_response_ms, args.worker_defaults)
        print(f"\n{'query':<28}{'raw ms':>10}{'dp ms':>10}{'ratio':>8}")
        for name, raw_ms, dp_ms in rows:
            print(f"{name:<28}{raw_ms:>10.2f}{dp_ms:>10.2f}{dp_ms / raw_ms:>8.2f}")
        geo = math.exp(statistics.fmean(math.log(d / r) for _, r, d in rows))
        fixed = min(d - r for _, r, d in rows)
        print(f"geometric mean ratio: {geo:.2f}x   fixed cost per release (min dp - raw): {fixed:.1f} ms")


if __name__ == "__main__":
    main()
