"""Shared-extract throughput: rows per second and peak memory of ``share pull``
for a granted extract of a large table.

Builds a throwaway instance with one department, one provider and a dataset of
``--rows`` people (default 10 million) whose ``[sharing]`` class is unconditional
for four columns, grants them to a department user, then times ``write_extract``
(batches of granted columns through the hardened worker, streamed to the file,
signed manifest) in a fresh process, so that the peak memory reported is the
pull's alone: the peak resident set (VmHWM) of the pulling process and of its worker.

    python bench/share_pull.py                     # 10M rows, Parquet
    python bench/share_pull.py --rows 1000000 --format csv
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

POLICY = """\
[dataset]
name = "people"
title = "Population register (bench)"
owner = "owner1"
classification = "conditional"
privacy_unit = "person_id"

[budget]
epsilon = 1.0

[sharing]
class = "unconditional"
columns = ["people.person_id", "people.age", "people.region", "people.score"]
update_frequency = "monthly"

[tables.people]
source = "people.parquet"
rows_per_unit = 1
columns.person_id = { class = "identifier" }
columns.age       = { class = "quasi", min = 0, max = 120 }
columns.region    = { class = "quasi", domain = ["north", "south", "east", "west"] }
columns.income    = { class = "sensitive", min = 0, max = 200000 }
columns.score     = { class = "sensitive", min = 0, max = 1 }
"""

PASSWORD = "bench password 1"


def setup(work: Path, rows: int) -> tuple[Path, int]:
    import duckdb

    from sandbox.audit import SYSTEM, Actor
    from sandbox.datasets import add_dataset
    from sandbox.instance import Instance, init_home
    from sandbox.organisations import add_organisation
    from sandbox.settings import load_settings
    from sandbox.sharing.grants import request_share
    from sandbox.users import add_user

    src = work / "src"
    src.mkdir()
    duckdb.sql(f"""COPY (SELECT i AS person_id, (i * 7) % 100 AS age,
                         ['north', 'south', 'east', 'west'][1 + i % 4] AS region,
                         (i * 13) % 200000 AS income, ((i * 31) % 1000) / 1000.0 AS score
                  FROM range({rows}) t(i)) TO '{src / "people.parquet"}' (FORMAT parquet)""")
    (src / "policy.toml").write_text(POLICY)
    home = work / "home"
    settings = load_settings(env={}, home=str(home), workers=1)
    init_home(settings)
    with Instance.open(settings) as inst:
        add_organisation(inst, SYSTEM, "Statistics Office", "department")
        add_organisation(inst, SYSTEM, "Tax Department", "department")
        add_user(inst, SYSTEM, "owner1", "owner", PASSWORD, org="Statistics Office")
        add_user(inst, SYSTEM, "clerk", "operator", PASSWORD, org="Tax Department")
        add_dataset(inst, Actor("owner1", "owner"), src / "policy.toml")
        grant = request_share(inst, "clerk", dataset="people", columns=["person_id", "age", "region", "score"],
                              purpose="Benchmark", basis="none")
    return home, grant.id


def pull(home: str, grant_id: int, fmt: str, out: str) -> None:
    """Run in a fresh process: one pull, then its figures as JSON on stdout."""
    from products.sharing_extract import write_extract
    from sandbox.instance import Instance
    from sandbox.settings import load_settings

    settings = load_settings(env={}, home=home, workers=1, query_timeout_s=600.0, min_response_ms=0)
    with Instance.open(settings) as inst:
        workers = inst.pool.pids()              # start the worker before the clock
        before = high_water_mib("self")
        start = time.perf_counter()
        receipt = write_extract(inst, "clerk", grant_id, out, fmt)
        seconds = time.perf_counter() - start
        worker_peak = max(high_water_mib(str(pid)) for pid in workers)
    print(json.dumps({
        "rows": receipt.rows, "seconds": seconds, "bytes": Path(out).stat().st_size,
        "parent_before_mib": before, "parent_peak_mib": high_water_mib("self"), "worker_peak_mib": worker_peak,
    }))


def high_water_mib(pid: str) -> float:
    """Peak resident set (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("parquet", "csv", "json"), default="parquet")
    parser.add_argument("--_pull", nargs=3, metavar=("HOME", "GRANT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--_setup", metavar="WORK", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._setup:
        home, grant_id = setup(Path(args._setup), args.rows)
        print(json.dumps({"home": str(home), "grant": grant_id}))
        return
    if args._pull:
        pull(args._pull[0], int(args._pull[1]), args.format, args._pull[2])
        return
    work = Path(tempfile.mkdtemp(prefix="dps-bench-share-"))
    try:
        t0 = time.perf_counter()
        made = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--_setup", str(work)],
                              check=True, capture_output=True, text=True)
        info = json.loads(made.stdout.strip().splitlines()[-1])
        home, grant_id = info["home"], info["grant"]
        print(f"setup (data, ingestion, grant): {time.perf_counter() - t0:.1f} s", flush=True)
        out = work / f"extract.{args.format}"
        done = subprocess.run([sys.executable, __file__, "--format", args.format, "--_pull", str(home),
                               str(grant_id), str(out)], check=True, capture_output=True, text=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"share pull, {args.format}, 4 granted columns of 5")
        print(f"  rows:            {r['rows']:,}")
        print(f"  time:            {r['seconds']:.2f} s")
        print(f"  throughput:      {r['rows'] / r['seconds']:,.0f} rows/s")
        print(f"  file:            {r['bytes'] / 2**20:,.1f} MiB")
        print(f"  peak memory:     {r['parent_peak_mib']:,.0f} MiB (pulling process; "
              f"{r['parent_before_mib']:,.0f} MiB before the pull), {r['worker_peak_mib']:,.0f} MiB (worker)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
