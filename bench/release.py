"""Releasing and verifying a large data product, measured.

Builds a throwaway instance with a product of ``--tables`` tables of
``--cells`` cells each (4 columns: a key, a count, a sum and an average, each
number with its interval), takes it through submission and two approvals,
then times

  * checks:  the automatic disclosure checks at submission,
  * release: writing Parquet, CSV and JSON of every table, hashing them and
             signing the manifest, with the state change and audit record,
  * verify:  offline verification of the package (every hash + the signature),
  * verify zip: the same over a zip export,

and prints the medians over ``--repeat`` products. Target: release + verify
of 10 tables × 10k cells under 2 s.

    python bench/release.py --tables 10 --cells 10000 --repeat 3

The stored results are deterministic placeholders (no noise is drawn here):
the benchmark measures packaging, not privacy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SQL = ("SELECT diagnosis, COUNT(*) AS n, SUM(income) AS total_income, AVG(income) AS mean_income "
       "FROM people WHERE age > {age} GROUP BY diagnosis")


def build(home: Path):
    from sqlalchemy import select

    from queries import plan_query
    from queries.policy import parse_policy
    from sandbox.audit import Actor
    from sandbox.demo.data import HEALTH_POLICY
    from sandbox.instance import Instance, init_home
    from sandbox.licences import grant_licence
    from sandbox.persistence.models import Budget, Dataset, DatasetVersion, User
    from sandbox.settings import load_settings
    from sandbox.users import add_user

    settings = load_settings(env={}, home=str(home))
    init_home(settings)
    inst = Instance.open(settings)
    for name, role in [("owner1", "owner"), ("operator1", "operator"), ("reviewer1", "reviewer"),
                       ("reviewer2", "reviewer")]:
        add_user(inst, Actor("bench", "admin"), name, role, "long enough password")
    with inst.store.transaction() as s:
        owner = s.execute(select(User).where(User.name == "owner1")).scalar_one()
        ds = Dataset(name="health", title="Health", publisher="Agency", owner_id=owner.id,
                     classification="conditional", privacy_unit="person_id")
        s.add(ds)
        s.flush()
        v = DatasetVersion(dataset_id=ds.id, number=1, content_hash="0" * 64, policy_hash="0" * 64, path="-",
                           wrapped_key=b"-", policy={}, row_counts={}, quality={}, created_by=owner.id)
        s.add(v)
        s.add(Budget(scope="dataset", dataset_id=ds.id, epsilon=1000.0, delta=1e-5, max_epsilon_per_query=10.0,
                     max_delta_per_query=1e-6))
        s.flush()
        ids = ds.id, v.id
    lid = grant_licence(inst, Actor("owner1", "owner"), dataset="health", operator="operator1", epsilon=1000.0,
                        delta=1e-6, purpose="bench", expires=date.today() + timedelta(days=1))
    policy = parse_policy(HEALTH_POLICY)
    return inst, lid, ids, policy, plan_query


def add_runs(inst, lid, ids, policy, plan_query, tables: int, cells: int) -> list[str]:
    from sqlalchemy import select

    from sandbox.persistence.models import QueryRun, User

    rows_per_table = max(1, cells // 4)
    out = []
    with inst.store.transaction() as s:
        op = s.execute(select(User).where(User.name == "operator1")).scalar_one()
        for t in range(tables):
            plan = plan_query(SQL.format(age=t), policy, salt="bench")
            rows, intervals = [], []
            for r in range(rows_per_table):
                n = 50.0 + (r * 7919 + t) % 1000
                total = n * 41000.0
                rows.append([f"G{r:05d}", n, total, total / n])
                intervals.append([None, [n - 4.0, n + 4.0], [total - 9e4, total + 9e4],
                                  [total / n - 900.0, total / n + 900.0]])
            run_id = str(uuid.uuid4())
            s.add(QueryRun(id=run_id, licence_id=lid, dataset_id=ids[0], version_id=ids[1], operator_id=op.id,
                           sql=SQL.format(age=t), fingerprint=plan.fingerprint, plan=plan.summary(),
                           status="charged", epsilon=0.1, delta=0.0,
                           result={"columns": [o.name for o in plan.outputs], "rows": rows,
                                   "intervals": intervals, "alpha": 0.05, "epsilon": 0.1, "delta": 0.0,
                                   "suppressed_groups": 0, "mechanisms": [], "notes": []},
                           finished_at=datetime.now(UTC)))
            out.append(run_id)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", type=int, default=10)
    ap.add_argument("--cells", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from products.manifest import verify_path
    from products.service import (
        draft_product, export_product, release_product, review_product, submit_product,
    )

    figures: dict[str, list[float]] = {"checks": [], "release": [], "verify": [], "verify zip": []}
    with tempfile.TemporaryDirectory() as tmp:
        inst, lid, ids, policy, plan_query = build(Path(tmp) / "home")
        try:
            size = 0
            for i in range(args.repeat):
                runs = add_runs(inst, lid, ids, policy, plan_query, args.tables, args.cells)
                pid = draft_product(inst, "operator1", title=f"bench {i}", run_ids=runs).id
                t0 = time.perf_counter()
                submit_product(inst, "operator1", pid, attestation="bench")
                figures["checks"].append(time.perf_counter() - t0)
                review_product(inst, "reviewer1", pid, "approve")
                review_product(inst, "reviewer2", pid, "approve")
                t0 = time.perf_counter()
                pkg = release_product(inst, "operator1", pid)
                figures["release"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                report = verify_path(pkg.path, inst.signer.public_pem())
                figures["verify"].append(time.perf_counter() - t0)
                assert report.ok, report.problems
                z = export_product(inst, None, pid, Path(tmp) / "exports", as_zip=True)
                t0 = time.perf_counter()
                assert verify_path(z).ok
                figures["verify zip"].append(time.perf_counter() - t0)
                size = sum(p.stat().st_size for p in pkg.path.rglob("*") if p.is_file())
        finally:
            inst.close()
    print(f"product of {args.tables} tables x {args.cells:,} cells ({size / 1e6:.1f} MB on disk), "
          f"median of {args.repeat}:")
    for name, values in figures.items():
        print(f"  {name:<11} {statistics.median(values) * 1000:8.0f} ms")
    total = statistics.median(figures["release"]) + statistics.median(figures["verify"])
    print(f"  release + verify: {total:.2f} s (target < 2 s) {'OK' if total < 2 else 'OVER'}")


if __name__ == "__main__":
    main()
