"""The Spark engine against DuckDB on the standard 8-query workload (bench/overhead.py).

For each query it plans the bounded SQL once (health policy, loose per-unit
limits as in the golden tests) and times, over the same demo data:

  * duckdb: the bounded SQL in an in-process DuckDB over tables loaded in memory;
  * spark:  the same plan emitted for Spark (``queries.dialects``) through the
            Spark engine (``sandbox.execution.spark``) on ``--master``, reading the
            version's encrypted Parquet copy from disk, as a stored version is read
            (Parquet modular encryption, ``sandbox.execution.spark_store``; no
            cache between runs);

and prints rows read per second for each, the ratio spark/duckdb and their
geometric mean. Queries the Spark engine refuses (``spark_unsupported``) are
listed as refused. Then the fixed cost per release on Spark: the median of
``sandbox.service.run_query`` for ``COUNT(*)`` on an instance whose engine is Spark
(plan, reserve, run on the version's encrypted Parquet copy, release, charge, audit)
at ``--release-people`` people, and the part of it that is not the query itself.

    python bench/spark.py --people 10000000 --master 'local[2]' --repeat 3

The machine is shared and noisy: compare figures taken in the same run.
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

from bench.overhead import WORKLOAD

SALT = "bench-salt"


def _median_s(fn, repeat: int) -> float:
    fn()                                   # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _loose(policy_text: str) -> str:
    return policy_text.replace("max_groups_per_unit = 5", "max_groups_per_unit = 400") \
                      .replace("max_groups_per_unit = 1\n", "max_groups_per_unit = 400\n")


def workload(people: int, master: str, repeat: int, folder: Path) -> None:
    from queries import plan_query
    from queries.errors import QueryRejected
    from queries.policy import parse_policy
    from sandbox.demo.data import HEALTH_POLICY, write_health
    from sandbox.execution.spark import SparkEngine, SparkLimits
    from sandbox.execution.spark_store import ParquetKey, write_encrypted

    t0 = time.perf_counter()
    write_health(folder, people=people)
    con = duckdb.connect(config={"threads": 2})
    con.execute("CREATE SCHEMA ds")
    con.execute(f"CREATE TABLE ds.people AS SELECT * FROM read_parquet('{folder / 'people.parquet'}')")
    con.execute(f"CREATE TABLE ds.visits AS SELECT * FROM read_csv('{folder / 'visits.csv'}')")
    con.execute(f"CREATE TABLE ds.clinics AS SELECT * FROM read_csv('{folder / 'clinics.csv'}')")
    clear = {}
    for name in ("people", "visits", "clinics"):
        clear[name] = folder / f"clear-{name}.parquet"
        con.execute(f"COPY ds.{name} TO '{clear[name]}' (FORMAT parquet)")
    types: dict[str, dict[str, str]] = {}
    kinds = {"BIGINT": "integer", "INTEGER": "integer", "DOUBLE": "float", "VARCHAR": "string", "DATE": "date"}
    for table, column, dtype in con.execute("SELECT table_name, column_name, data_type FROM "
                                            "information_schema.columns WHERE table_schema = 'ds'").fetchall():
        types.setdefault(table, {})[column] = kinds.get(dtype, "string")
    policy = parse_policy(_loose(HEALTH_POLICY)).with_types(types)
    counts = {t: con.execute(f"SELECT COUNT(*) FROM ds.{t}").fetchone()[0] for t in clear}
    print(f"# {people:,} people ({counts['visits']:,} visits): data {time.perf_counter() - t0:.1f} s", flush=True)

    engine = SparkEngine(master, limits=SparkLimits(timeout_s=3600, max_rows_read=10**12))
    t0 = time.perf_counter()
    engine.session()
    print(f"# Spark session on {master}: {time.perf_counter() - t0:.1f} s to start", flush=True)
    key = ParquetKey.of(b"bench data key, 32 bytes long...")
    t0 = time.perf_counter()
    write_encrypted(engine.session(), clear, folder / "encrypted", key)
    tables = {name: folder / "encrypted" / name for name in clear}
    print(f"# the encrypted Parquet copy: {time.perf_counter() - t0:.1f} s to write", flush=True)
    print(f"{'query':28} {'rows':>12} {'duckdb rows/s':>15} {'spark rows/s':>15} {'spark/duckdb':>13}")
    ratios = []
    for name, sql in WORKLOAD.items():
        plan = plan_query(sql, policy, salt=SALT)
        rows = sum(counts[t] for t in plan.tables)
        params = plan.params if "$salt" in plan.bounded_sql else None
        duck_s = _median_s(lambda p=plan, q=params: con.cursor().execute(p.bounded_sql, q).fetchall(), repeat)
        try:
            spark_s = _median_s(lambda p=plan: engine.execute(tables, p.bounded_sql, p.params, key=key,
                                                              rows=counts), repeat)
        except QueryRejected as exc:
            print(f"{name:28} {rows:>12,} {rows / duck_s:>15,.0f} {'refused':>15} {exc.code:>13}")
            continue
        ratios.append(spark_s / duck_s)
        print(f"{name:28} {rows:>12,} {rows / duck_s:>15,.0f} {rows / spark_s:>15,.0f} {spark_s / duck_s:>13.1f}")
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"# geometric mean of spark/duckdb over {len(ratios)} queries: {geo:.1f}", flush=True)
    engine.stop()
    con.close()


def release_cost(people: int, master: str, repeat: int, folder: Path) -> None:
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_health
    from sandbox.instance import Instance, init_home
    from sandbox.licences import grant_licence
    from queries import plan_query
    from sandbox.datasets import get_dataset, latest_version, version_policy
    from sandbox.execution.storage import unwrap_key
    from sandbox.service import run_query
    from sandbox.settings import load_settings
    from sandbox.users import add_user

    policy = write_health(folder / "src", people=people)
    settings = load_settings(env={}, home=str(folder / "home"), engine="spark", spark_master=master,
                             min_response_ms=0, query_timeout_s=600)
    init_home(settings)
    inst = Instance.open(settings)
    setup = Actor("bench", "admin")
    add_user(inst, setup, "owner1", "owner", "bench password")
    add_user(inst, setup, "operator1", "operator", "bench password")
    add_dataset(inst, Actor("owner1", "owner"), policy)
    grant_licence(inst, Actor("owner1", "owner"), dataset="health", operator="operator1", epsilon=10.0,
                  delta=1e-6, purpose="benchmark", expires=date.today() + timedelta(days=1))
    sql = "SELECT COUNT(*) AS n FROM people"
    eps = 0.1                              # under the demo policy's per-query cap
    try:
        whole = _median_s(lambda: run_query(inst, "operator1", "health", sql, epsilon=eps), repeat)
        with inst.store.read() as s:
            version = latest_version(s, get_dataset(s, "health"))
            plan = plan_query(sql, version_policy(version), salt=SALT)
        data_key = unwrap_key(version.wrapped_key, inst.master_key)
        engine = inst.engine("spark")
        query = _median_s(lambda: engine.execute(Path(version.path), data_key, plan.bounded_sql, plan.params),
                          repeat)
        print(f"# fixed cost per release on Spark ({people:,} people, {master}): run_query {whole * 1000:.0f} ms "
              f"median, of which the Spark query on the encrypted copy {query * 1000:.0f} ms", flush=True)
    finally:
        inst.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--release-people", type=int, default=100_000)
    ap.add_argument("--release-only", action="store_true", help="only the fixed cost per release")
    args = ap.parse_args()
    if not args.release_only:
        with tempfile.TemporaryDirectory(prefix="dps-bench-spark-") as tmp:
            workload(args.people, args.master, args.repeat, Path(tmp) / "workload")
    with tempfile.TemporaryDirectory(prefix="dps-bench-spark-") as tmp:
        release_cost(args.release_people, args.master, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
