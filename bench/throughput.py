"""Releases per second over HTTP, by number of concurrent operators and store.

For each store it builds an instance with bench/load.py's ``build`` (owner1, the
health dataset, one operator licence per client; the dataset's total ε and each
licence sized so that the whole run fits), starts ``dp-sandbox serve`` processes
on it, and for each N of --clients drives them for --seconds with N clients. Each
client logs in as its own operator and sends only query runs (``POST
/api/v1/queries``, ε --epsilon each, alternating the two runs of bench/load.py),
one at a time; the clients are spread round-robin over the server processes.

  * sqlite:   the embedded store (WAL) in the home, one server process;
  * postgres: a throwaway PostgreSQL server (initdb and pg_ctl from
              /usr/lib/postgresql/*/bin, on a free port in a temp dir, stopped at
              the end), served by each count of --server-processes (1 and 2 by
              default): several processes on one home and one database.

For each store and process count it prints clients, releases/s, p50 and p95
latency of a release, refusals by code (a 4xx such as ``budget_exceeded`` is
counted, not an error) and releases/s relative to the fewest clients. Any HTTP
5xx or request without an answer, or a budget level whose spent + reserved
exceeds its total at the end, is a failure: printed, exit status 1.

The response-time grid is off by default (``--min-response-ms 0``, that is
``DPS_MIN_RESPONSE_MS=0`` for the servers): a release answers as soon as it is
done, so the figures are the platform's own cost. Production answers on the grid
(50 ms, 100 ms, 200 ms, ...); ``--min-response-ms 50`` measures that.

    python bench/throughput.py --people 100000
    python bench/throughput.py --clients 1 --clients 2 --seconds 3 --people 2000
    python bench/throughput.py --store postgres --server-processes 1 --server-processes 2

Clients, servers, query workers and PostgreSQL share the machine's cores: compare
figures taken in the same run.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import (RUNS, build, free_port, operator_client, overspent, pct, start_server, stop_server,
                        wait_for_server)

STORES = ("sqlite", "postgres")
STORE_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
# Budget sizing: no client completes more releases per second than this, so the
# licences and the dataset's total never run out in a run (if one did, the
# refusals column would say so).
CEILING_PER_CLIENT = 200
WARMUP_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    """One query run as a client saw it: HTTP status (0: no answer), error code, seconds."""

    status: int
    code: str
    seconds: float


@dataclass(frozen=True)
class Point:
    """The answers of ``clients`` concurrent clients over ``elapsed`` seconds."""

    clients: int
    elapsed: float
    answers: tuple[Answer, ...]

    @property
    def releases(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 201]

    @property
    def rate(self) -> float:
        return len(self.releases) / self.elapsed

    @property
    def refusals(self) -> Counter[str]:
        return Counter(a.code or str(a.status) for a in self.answers if 400 <= a.status < 500)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 0 or a.status >= 500]


def pg_program(name: str) -> str:
    """``name`` from the newest PostgreSQL installed under /usr/lib/postgresql."""
    found = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not found:
        raise SystemExit(f"PostgreSQL's {name} is not installed (/usr/lib/postgresql/*/bin)")
    return max(found, key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL server of its own for the block, listening on 127.0.0.1 on a free
    port, its cluster in a temp dir; yields the SQLAlchemy URL of an empty database.

    Commits are asynchronous (``synchronous_commit=off``), as SQLite's
    ``synchronous=NORMAL`` in WAL mode is: a crash may lose the last commits, never
    corrupt the store. Run as root, the server runs as the ``postgres`` user."""
    root = Path(tempfile.mkdtemp(prefix="dps-throughput-pg-"))
    port = free_port()
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else os.environ.get("USER", "postgres")

    def run(name: str, *args: str, check: bool = True) -> None:
        cmd = [pg_program(name), *args]
        if as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            log = root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")

    data = str(root / "data")
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
               "-c synchronous_commit=off -c max_connections=200")
    try:
        if as_root:
            shutil.chown(root, "postgres", "postgres")
        run("initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        run("pg_ctl", "-D", data, "-o", options, "-l", str(root / "server.log"), "-w", "start")
        try:
            run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", user, "dps")
            yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/dps"
        finally:
            run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serving(home: Path, processes: int, threads: int, env: dict[str, str]) -> Iterator[list[str]]:
    """``processes`` servers of the instance at ``home``, each on a port of its own;
    yields their base URLs and stops them after the block."""
    servers, bases = [], []
    try:
        for i in range(processes):
            port = free_port()
            servers.append(start_server(home, port, threads, home / "logs" / f"throughput-server-{i}.log", env))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            if not wait_for_server(base):
                raise RuntimeError(f"the server at {base} did not start (see {home / 'logs'})")
        yield bases
    finally:
        for server in servers:
            stop_server(server)


def error_code(resp: httpx.Response) -> str:
    """The API's error code of an error answer ("" for a success or another shape)."""
    if resp.status_code < 400:
        return ""
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def run_client(http: httpx.Client, epsilon: float, start: threading.Barrier, clock: list[float],
               seconds: float, out: list[Answer]) -> None:
    """Query runs one after the other from the start (the barrier) for ``seconds``."""
    start.wait()
    deadline = clock[0] + seconds
    i = 0
    while time.monotonic() < deadline:
        body = {"dataset": "health", "sql": RUNS[i % len(RUNS)], "epsilon": epsilon}
        i += 1
        t0 = time.perf_counter()
        try:
            resp = http.post("/api/v1/queries", json=body)
        except Exception as exc:      # no answer: a failure, and this client stops
            out.append(Answer(0, type(exc).__name__, time.perf_counter() - t0))
            return
        took = time.perf_counter() - t0
        out.append(Answer(resp.status_code, error_code(resp), took))


def measure(bases: list[str], clients: int, seconds: float, epsilon: float) -> Point:
    """``clients`` operators (op0, op1, ...), client i on server i mod len(bases),
    logged in first, then running queries together for ``seconds``."""
    https: list[httpx.Client] = []
    clock: list[float] = []
    start = threading.Barrier(clients, action=lambda: clock.append(time.monotonic()))
    outs: list[list[Answer]] = [[] for _ in range(clients)]
    try:
        https += [operator_client(bases[i % len(bases)], f"op{i}") for i in range(clients)]
        threads = [threading.Thread(target=run_client, args=(http, epsilon, start, clock, seconds, out))
                   for http, out in zip(https, outs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for http in https:
            http.close()
    elapsed = time.monotonic() - clock[0]
    return Point(clients, elapsed, tuple(a for out in outs for a in out))


def print_table(title: str, points: list[Point]) -> None:
    """One row per point; the ratio is releases/s over that of the first point
    (the fewest clients)."""
    base = points[0]
    print(f"\n{title}")
    print(f"{'clients':>7} {'releases':>8} {'releases/s':>10} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'vs ' + str(base.clients) + ' cl.':>12}  refusals")
    for p in points:
        lat = [a.seconds for a in p.releases]
        refusals = ", ".join(f"{code} {n}" for code, n in sorted(p.refusals.items())) or "none"
        ratio = p.rate / base.rate if base.rate else float("nan")
        print(f"{p.clients:>7} {len(lat):>8} {p.rate:>10.1f} {pct(lat, 50) * 1000:>8.1f} "
              f"{pct(lat, 95) * 1000:>8.1f} {ratio:>12.2f}  {refusals}", flush=True)


def failures_of(label: str, points: list[Point]) -> list[str]:
    lines = []
    for p in points:
        by_kind = Counter((a.status, a.code) for a in p.failures)
        lines += [f"{label}, {p.clients} clients: {n} x {'HTTP ' + str(s) if s else 'no answer'} {code}".rstrip()
                  for (s, code), n in sorted(by_kind.items())]
    return lines


def run_store(store: str, args: argparse.Namespace, work: Path, database_url: str) -> tuple[
        list[str], dict[int, list[Point]]]:
    """Build one instance on ``store`` and measure it at each process count; returns
    the failures and the points by process count."""
    counts = sorted(set(args.server_processes)) if store == "postgres" else [1]
    most = max(args.clients)
    measured = WARMUP_SECONDS + args.seconds * len(args.clients)
    licence_epsilon = args.epsilon * CEILING_PER_CLIENT * measured * len(counts)
    home = work / store / "home"
    t0 = time.perf_counter()
    build(home, args.people, most, licence_epsilon=licence_epsilon, dataset_epsilon=licence_epsilon * most,
          database_url=database_url)
    print(f"\n# {STORE_TITLES[store]}: instance built in {time.perf_counter() - t0:.1f} s "
          f"({most} operators, licences of ε {licence_epsilon:g})", flush=True)
    env = {"DPS_WORKERS": str(args.workers), "DPS_MIN_RESPONSE_MS": str(args.min_response_ms),
           "DPS_DATABASE_URL": database_url}
    problems: list[str] = []
    by_count: dict[int, list[Point]] = {}
    for count in counts:
        label = f"{STORE_TITLES[store]}, {count} server process{'es' if count > 1 else ''}"
        with serving(home, count, args.threads, env) as bases:
            warmup = measure(bases, min(most, 2 * count), WARMUP_SECONDS, args.epsilon)
            points = [measure(bases, n, args.seconds, args.epsilon) for n in args.clients]
        print_table(label, points)
        problems += failures_of(f"{label} (warm-up)", [warmup]) + failures_of(label, points)
        problems += [f"{label}: {line}" for line in overspent(home, database_url)]
        by_count[count] = points
    return problems, by_count


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, action="append", help="concurrent clients (repeatable; 1, 4, 16)")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each measurement")
    ap.add_argument("--people", type=int, default=20_000, help="size of the synthetic population")
    ap.add_argument("--store", choices=STORES, action="append", help="store back end (repeatable; both)")
    ap.add_argument("--server-processes", type=int, action="append",
                    help="server processes on PostgreSQL (repeatable; 1 and 2); SQLite has one")
    ap.add_argument("--threads", type=int, default=8, help="waitress request threads per server process")
    ap.add_argument("--workers", type=int, default=2, help="query worker processes per server process")
    ap.add_argument("--epsilon", type=float, default=0.01, help="ε of each query run")
    ap.add_argument("--min-response-ms", type=int, default=0,
                    help="floor of the response-time grid (0: grid off; production: 50)")
    args = ap.parse_args(argv)
    args.clients = sorted(set(args.clients or [1, 4, 16]))
    args.server_processes = args.server_processes or [1, 2]
    if min(args.clients) < 1 or min(args.server_processes) < 1:
        ap.error("--clients and --server-processes must be at least 1")
    stores = args.store or list(STORES)

    grid = ("off (DPS_MIN_RESPONSE_MS=0): each release answers as soon as it is done"
            if args.min_response_ms == 0 else
            f"on (DPS_MIN_RESPONSE_MS={args.min_response_ms}): each release answers at the next point of "
            f"{args.min_response_ms} ms x 2^k")
    print(f"# releases/s over HTTP: query runs of ε {args.epsilon:g}, {args.seconds:g} s per point, "
          f"{args.people:,} people, {os.cpu_count()} cores")
    print(f"# each server process: {args.threads} request threads, {args.workers} query workers; "
          f"PostgreSQL with synchronous_commit=off (as SQLite's synchronous=NORMAL in WAL)")
    print(f"# response-time grid {grid}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="dps-throughput-"))
    problems: list[str] = []
    for store in stores:
        if store == "postgres":
            with throwaway_postgres() as url:
                found, by_count = run_store(store, args, work, url)
            counts = sorted(by_count)
            if len(counts) > 1:
                first = by_count[counts[0]]
                for count in counts[1:]:
                    ratios = ", ".join(f"{b.rate / a.rate if a.rate else float('nan'):.2f}x at {a.clients} "
                                       f"client{'s' if a.clients > 1 else ''}"
                                       for a, b in zip(first, by_count[count]))
                    print(f"\nreleases/s of PostgreSQL with {count} server processes over {counts[0]}: {ratios}")
        else:
            found, _ = run_store(store, args, work, "")
        problems += found

    for line in problems:
        print("FAILED:", line)
    if problems:
        print(f"FAILED: {len(problems)} problem(s); instance homes and server logs kept in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("ok: no 5xx, no request without an answer, no budget level overspent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
