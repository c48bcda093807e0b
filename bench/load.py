"""Load on the production server: concurrent API clients on loopback.

Builds an instance (demo users, the health dataset, one licence per client),
starts ``dp-sandbox serve`` (waitress) in its own process, and drives it with
N concurrent clients for T seconds (or until --max-requests), each sending a
mix of catalog reads, query previews and query runs. Reports requests/s and
latency percentiles per kind; fails (exit 1) on any error or on a budget level
whose spent + reserved exceeds its total. A run refused with
``budget_exceeded`` is the ledger doing its job, not an error.

    python bench/load.py                                  # 20 clients, 60 s
    python bench/load.py --clients 5 --seconds 10 --people 2000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "load-test-password"
PREVIEWS = ("SELECT city, COUNT(*) AS n FROM people GROUP BY city",
            "SELECT sex, AVG(income) AS avg_income FROM people GROUP BY sex",
            "SELECT COUNT(*) AS n FROM visits")
RUNS = ("SELECT sex, COUNT(*) AS n FROM people GROUP BY sex",
        "SELECT SUM(income) AS total FROM people")


def build(home: Path, people: int, clients: int, *, licence_epsilon: float = 0.4,
          dataset_epsilon: float | None = None, database_url: str = "") -> None:
    """An instance at ``home`` (its store at ``database_url``; empty: SQLite in the
    home) with owner1, the health dataset of ``people`` people (its total ε
    ``dataset_epsilon``; None: the demo policy's) and operators op0, op1, ... each
    holding a licence of ``licence_epsilon``."""
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.demo.data import write_health
    from sandbox.instance import Instance, init_home
    from sandbox.licences import grant_licence
    from sandbox.settings import load_settings
    from sandbox.users import add_user

    settings = load_settings(env={}, home=str(home), database_url=database_url)
    init_home(settings)
    with Instance.open(settings) as inst:
        setup = Actor("load-setup", "admin")
        add_user(inst, setup, "owner1", "owner", PASSWORD)
        policy = write_health(home / "src", people=people)
        if dataset_epsilon is not None:
            text, n = re.subn(r"^epsilon = .*$", f"epsilon = {dataset_epsilon!r}", policy.read_text(), flags=re.M)
            if n != 1:
                raise RuntimeError("the health policy should declare exactly one total epsilon")
            policy.write_text(text)
        add_dataset(inst, Actor("owner1", "owner"), policy)
        for i in range(clients):
            add_user(inst, setup, f"op{i}", "operator", PASSWORD)
            grant_licence(inst, Actor("owner1", "owner"), dataset="health", operator=f"op{i}",
                          epsilon=licence_epsilon, delta=1e-7, purpose="load test",
                          expires=date.today() + timedelta(days=2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, threads: int, log: Path, env: Mapping[str, str] | None = None
                 ) -> subprocess.Popen:
    """``dp-sandbox serve`` on the instance at ``home`` in a process of its own,
    its output in ``log`` (waitress reports its queue depth there); ``env`` adds
    to or overrides the server's environment (two query workers by default)."""
    server_env = {**os.environ, "DPS_HOME": str(home), "DPS_WORKERS": "2", **(env or {})}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-c", "from sandbox.cli import main; main()", "serve",
                                 "--port", str(port), "--threads", str(threads)], env=server_env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


def wait_for_server(base: str) -> bool:
    """Whether the server at ``base`` answered within 20 s."""
    for _ in range(200):
        try:
            httpx.get(f"{base}/api/v1/keys", timeout=1)
            return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def operator_client(base: str, user: str) -> httpx.Client:
    """An API client of ``base`` holding a fresh bearer token of ``user``."""
    http = httpx.Client(base_url=base, timeout=120)
    token = http.post("/api/v1/tokens", json={"user": user, "password": PASSWORD}).json()["data"]["token"]
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def client_loop(base: str, user: str, deadline: float, budget: list[int], lock: threading.Lock,
                out: list[tuple[str, float, int, str]], seed: int) -> None:
    rng = random.Random(seed)    # picks the request mix only; no privacy noise here
    with closing(operator_client(base, user)) as http:
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            roll = rng.random()
            if roll < 0.45:
                kind, call = "catalog", lambda: http.get("/api/v1/datasets", params={"q": "clinic"})
            elif roll < 0.85:
                sql = rng.choice(PREVIEWS)
                kind, call = "preview", lambda sql=sql: http.post("/api/v1/queries/preview",
                                                                  json={"dataset": "health", "sql": sql})
            else:
                sql = rng.choice(RUNS)
                kind, call = "run", lambda sql=sql: http.post("/api/v1/queries",
                                                              json={"dataset": "health", "sql": sql, "epsilon": 0.05})
            t0 = time.perf_counter()
            resp = call()
            code = "" if resp.status_code < 400 else resp.json().get("code", "")
            out.append((kind, time.perf_counter() - t0, resp.status_code, code))


def overspent(home: Path, database_url: str = "") -> list[str]:
    from sqlalchemy import select

    from sandbox.instance import Instance
    from sandbox.persistence.models import Budget
    from sandbox.settings import load_settings

    bad = []
    settings = load_settings(env={}, home=str(home), database_url=database_url)
    with Instance.open(settings) as inst, inst.store.read() as s:
        for b in s.execute(select(Budget)).scalars():
            if b.spent_epsilon + b.reserved_epsilon > b.epsilon * (1 + 1e-9) + 1e-12:
                bad.append(f"budget {b.id} ({b.scope}): spent {b.spent_epsilon} + reserved {b.reserved_epsilon} "
                           f"> {b.epsilon}")
            if b.reserved_epsilon > 1e-9:
                bad.append(f"budget {b.id}: reservation {b.reserved_epsilon} left behind")
    return bad


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else (values[0] if values else 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=20_000)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=8, help="waitress request threads")
    args = ap.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="dps-load-")) / "home"
    print(f"building instance ({args.people:,} people, {args.clients} operators) in {home} ...", flush=True)
    build(home, args.people, args.clients)
    port = free_port()
    server = start_server(home, port, args.threads, home / "logs" / "bench-server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(base)
        results: list[tuple[str, float, int, str]] = []
        lock, budget = threading.Lock(), [args.max_requests]
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        threads = [threading.Thread(target=client_loop, args=(base, f"op{i}", deadline, budget, lock, results, i))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    finally:
        stop_server(server)

    errors = [r for r in results if r[2] >= 400 and r[3] != "budget_exceeded"]
    refused = sum(1 for r in results if r[3] == "budget_exceeded")
    print(f"{len(results)} requests in {elapsed:.1f} s from {args.clients} clients: "
          f"{len(results) / elapsed:.1f} requests/s")
    for kind in ("catalog", "preview", "run"):
        lat = [r[1] for r in results if r[0] == kind]
        if lat:
            print(f"  {kind:<8} n={len(lat):<6} p50={pct(lat, 50) * 1000:7.1f} ms  p95={pct(lat, 95) * 1000:7.1f} ms")
    allt = [r[1] for r in results]
    print(f"  all      p95={pct(allt, 95) * 1000:.1f} ms; runs refused by an exhausted budget: {refused}")
    bad = overspent(home)
    for line in bad:
        print("OVERSPENT:", line)
    for kind, _, status, code in errors[:10]:
        print(f"ERROR: {kind} -> {status} {code}")
    ok = not errors and not bad
    print("ok: no error, no overspend" if ok else f"FAILED: {len(errors)} error(s), {len(bad)} budget problem(s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
