"""Planning and release time, measured (not asserted in tests: the machines are shared).

  * plan:    parse, check and plan every accepted golden query (tests/fixtures/sql/accepted.sql)
             against the health policy: median and p90 in ms;
  * release: the OpenDP release of a 10-group count, mean and float sum from exact
             aggregates (no DuckDB, no store): median in ms.

    python bench/planning.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _test_helpers(package: str):
    """The fixtures module of one test package (golden-file reader, plan builders)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"{package}_conftest", ROOT / "tests" / package / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan_times(repeat: int) -> list[float]:
    read_golden = _test_helpers("queries").read_golden

    from queries import plan_query
    from queries.policy import parse_policy
    from sandbox.demo.data import HEALTH_POLICY

    policy = parse_policy(HEALTH_POLICY)
    blocks = read_golden("accepted.sql")
    times = []
    for _ in range(repeat):
        for block in blocks:
            start = time.perf_counter()
            try:
                plan_query(block["sql"], policy, salt="bench")
            except Exception:   # a golden query that needs column types from data: not timed
                continue
            times.append((time.perf_counter() - start) * 1000)
    return times


def release_times(repeat: int) -> list[float]:
    import pyarrow as pa

    from privacy import release
    from privacy.model import PrivacyLoss

    helpers = _test_helpers("privacy")
    plan = helpers.make_plan([helpers.count(), helpers.mean("a1"), helpers.total("a2", column="s", integer=False)],
                             keys=[helpers.public_key(10)])
    exact = pa.table({"g0": [f"v{i}" for i in range(10)], "c": [100] * 10, "a1_s": [500] * 10,
                      "a1_n": [100] * 10, "s": [12.5] * 10})
    release(plan, exact, PrivacyLoss(1.0))
    times = []
    for _ in range(repeat * 20):
        start = time.perf_counter()
        release(plan, exact, PrivacyLoss(1.0))
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    plans = sorted(plan_times(args.repeat))
    print(f"plan:    median {statistics.median(plans):.2f} ms, p90 {plans[int(0.9 * (len(plans) - 1))]:.2f} ms "
          f"over {len(plans)} plans")
    rel = release_times(args.repeat)
    print(f"release: median {statistics.median(rel):.2f} ms over {len(rel)} releases")


if __name__ == "__main__":
    main()
