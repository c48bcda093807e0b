"""Ingestion throughput: rows per second from a Parquet file to an encrypted version.

Generates one Parquet file of ``--rows`` rows (default 10 million; person-level
columns with bounds, a domain and a free-text column), then times
``ingest_version``: reading and checking against the policy, the quality report,
the canonical content hash, and AES-256-GCM encryption. Stage times come from
the progress callback.

    python bench/ingest.py --rows 10000000
    python bench/ingest.py --rows 1000000      # scaled down
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from queries.policy import parse_policy
from sandbox.execution.storage import ingest_version

POLICY = """\
[dataset]
name = "bench"
owner = "owner1"
classification = "conditional"
privacy_unit = "person_id"

[budget]
epsilon = 1.0

[tables.people]
source = "people.parquet"
rows_per_unit = 1
columns.person_id = { class = "identifier" }
columns.age       = { class = "quasi", min = 0, max = 120 }
columns.region    = { class = "quasi", domain = ["north", "south", "east", "west"] }
columns.income    = { class = "sensitive", min = 0, max = 200000 }
columns.score     = { class = "sensitive", min = 0, max = 1 }
columns.note      = { class = "sensitive" }
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dps-bench-ingest-"))
    try:
        src = work / "src"
        src.mkdir()
        start = time.perf_counter()
        con = duckdb.connect()
        con.execute(f"""
            COPY (SELECT i + 1 AS person_id,
                         (hash(i, 'age') % 110)::INTEGER AS age,
                         ['north', 'south', 'east', 'west'][1 + (hash(i, 'r') % 4)::INTEGER] AS region,
                         (hash(i, 'inc') % 250000)::BIGINT AS income,
                         (hash(i, 's') % 1000000)::DOUBLE / 1e6 AS score,
                         'note ' || (hash(i, 'n') % 5000)::VARCHAR AS note
                  FROM range({args.rows}) t(i))
            TO '{src / 'people.parquet'}' (FORMAT parquet)""")
        con.close()
        size = (src / "people.parquet").stat().st_size
        print(f"generated {args.rows:,} rows ({size / 1e6:.0f} MB Parquet) in {time.perf_counter() - start:.1f} s")

        policy = parse_policy(POLICY)
        marks: list[tuple[str, float]] = []
        start = time.perf_counter()
        version = ingest_version(policy, src, work / "home", os.urandom(32),
                                 progress=lambda stage, n: marks.append((stage, time.perf_counter())))
        total = time.perf_counter() - start
        previous = start
        for stage, at in marks:
            print(f"  {stage:<12} {at - previous:6.2f} s")
            previous = at
        enc = version.path.stat().st_size
        print(f"ingested {args.rows:,} rows in {total:.2f} s: {args.rows / total:,.0f} rows/s; "
              f"encrypted version {enc / 1e6:.0f} MB ({enc / total / 1e6:.0f} MB/s end to end)")
        print(f"out of bounds: {version.quality['people']['out_of_bounds']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
