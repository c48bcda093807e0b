"""Where the time of one release goes, by span.

Builds a throwaway instance (the health demo data at ``--people``), then runs
``--repeat`` releases of one query through ``sandbox.service.run_query`` (the
path of ``dp-sandbox query run``, without HTTP and with no response-time grid)
and prints the mean wall time of each span of the path, measured by wrapping the
functions that make it up:

  context     user, dataset, licence, version and budget rows
  gate        the approval gate (automatic, template or request)
  concurrency the operator's runs in flight (``_check_concurrency``)
  plan        the plan's key and the plan (sqlglot, cached per key: ``plan_key``,
              ``_template_plan``)
  resources   the plan's resource need, checked (``_check_resources``)
  cost        the OpenDP design of the release and its loss (``_cost_of``)
  reserve     the ledger's conditional updates (``ledger.reserve``)
  audit       each audit record (``audit.append``, inside the two transactions)
  worker      the worker round trip (``WorkerPool.execute``)
  release     the OpenDP measurement and post-processing (``privacy.release``)
  finish      the charge transaction (``_finish``: charge, run row, audit)

Spans nest (``audit`` is inside ``reserve txn`` and ``finish``); the ``total``
line is the whole call, and ``other`` is what no top-level span covers.

    python bench/release_profile.py --people 1000000 --repeat 200 \\
        --sql "SELECT COUNT(*) AS n FROM people"
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPANS: dict[str, list[float]] = defaultdict(list)
TOP_LEVEL = ("context", "gate", "concurrency", "plan", "resources", "cost", "reserve", "worker", "release", "finish")


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPANS[name].append((time.perf_counter() - t0) * 1000)
    return wrapper


def instrument() -> None:
    import privacy
    from sandbox import approvals, audit, ledger, service
    from sandbox.execution import worker

    service._context = _timed("context", service._context)
    approvals.gate_run = _timed("gate", approvals.gate_run)
    service._check_concurrency = _timed("concurrency", service._check_concurrency)
    service.plan_key = _timed("plan", service.plan_key)
    service._template_plan = _timed("plan", service._template_plan)
    service._check_resources = _timed("resources", service._check_resources)
    service._cost_of = _timed("cost", service._cost_of)
    ledger.reserve = _timed("reserve", ledger.reserve)
    audit.append = _timed("audit", audit.append)
    worker.WorkerPool.execute = _timed("worker", worker.WorkerPool.execute)
    privacy.release = _timed("release", privacy.release)
    service._finish = _timed("finish", service._finish)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--sql", default="SELECT COUNT(*) AS n FROM people")
    ap.add_argument("--database-url", default="", help="metadata store (default: SQLite in the home)")
    args = ap.parse_args()

    from sandbox.demo.data import write_health
    from bench.overhead import licensed_health
    from sandbox.instance import Instance, init_home
    from sandbox.service import run_query
    from sandbox.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="dps-profile-") as tmp:
        folder = Path(tmp)
        policy = write_health(folder / "src", people=args.people)
        settings = load_settings(env={}, home=str(folder / "home"), workers=1, worker_threads=2,
                                 min_response_ms=0, database_url=args.database_url)
        init_home(settings)
        inst = Instance.open(settings)
        try:
            licensed_health(inst, policy)
            eps = 10.0 / ((args.repeat + 5) * 1.01)
            for _ in range(5):                       # warm-up: worker start, decryption, caches
                run_query(inst, "operator1", "health", args.sql, epsilon=eps)
            instrument()
            totals = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                run_query(inst, "operator1", "health", args.sql, epsilon=eps)
                totals.append((time.perf_counter() - t0) * 1000)
        finally:
            inst.close()

    n = args.repeat
    print(f"# {args.people:,} people, {n} releases of: {args.sql}")
    print(f"{'span':<14}{'mean ms':>10}{'median ms':>11}{'calls/release':>15}")
    covered = 0.0
    for name in (*TOP_LEVEL, "audit"):
        times = SPANS.get(name, [])
        if not times:
            continue
        per_release = sum(times) / n
        if name in TOP_LEVEL:
            covered += per_release
        print(f"{name:<14}{per_release:>10.2f}{statistics.median(times):>11.2f}{len(times) / n:>15.1f}")
    mean = statistics.fmean(totals)
    print(f"{'other':<14}{mean - covered:>10.2f}")
    print(f"{'total':<14}{mean:>10.2f}{statistics.median(totals):>11.2f}")


if __name__ == "__main__":
    main()
