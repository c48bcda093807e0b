"""Audit chain export and verification: seconds per 10,000 records.

Builds a throwaway instance (SQLite in a temporary home, or the PostgreSQL store
given with ``--database-url``), appends ``--records`` records (default 50,000) in
batches of 1,000 per transaction, then times ``dp-sandbox audit export`` (the
JSON Lines file and keys) and ``verify_chain`` (every digest, hash and Ed25519
signature, the key history, the head and the published heads).

    python bench/audit_bench.py
    python bench/audit_bench.py --records 200000
    python bench/audit_bench.py --database-url postgresql+psycopg://localhost/bench
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()

    from sandbox import audit
    from sandbox.instance import Instance, init_home
    from sandbox.settings import load_settings
    from sandbox.vocabulary import HeadPlace

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={}, home=str(Path(tmp) / "home"), database_url=args.database_url)
        init_home(settings)
        inst = Instance.open(settings)
        try:
            actor = audit.Actor("bench", "admin")
            t0 = time.perf_counter()
            written = 0
            while written < args.records:
                with inst.store.transaction() as s:
                    for _ in range(min(1_000, args.records - written)):
                        audit.append(s, inst.signer, actor, "bench.event", "thing", written,
                                     {"i": written, "epsilon": 0.01 * (written % 100), "note": "benchmark record"})
                        written += 1
            t_append = time.perf_counter() - t0
            with inst.store.transaction() as s:
                audit.publish_head(s, inst.signer, HeadPlace.REGISTER)
            n = written + 1

            out = Path(tmp) / "chain.jsonl"
            t0 = time.perf_counter()
            with inst.store.read() as s:
                audit.export_chain(s, out)
            t_export = time.perf_counter() - t0

            t0 = time.perf_counter()
            with inst.store.read() as s:
                report = audit.verify_chain(s, inst.signer.public)
            t_verify = time.perf_counter() - t0
            if not report.ok:
                raise SystemExit(f"verification failed: {report.reason}")
            per = 10_000 / n
            print(f"store:   {inst.store.engine.dialect.name}, {n} records, export {out.stat().st_size / n:.0f} bytes/record")
            print(f"append:  {t_append * per:.2f} s per 10k records (batches of 1,000)")
            print(f"export:  {t_export * per:.2f} s per 10k records")
            print(f"verify:  {t_verify * per:.2f} s per 10k records")
        finally:
            inst.close()


if __name__ == "__main__":
    main()
