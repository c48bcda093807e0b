"""Hardened DuckDB workers: one bounded SQL statement at a time, in a separate process.

The boundary is the process, not DuckDB's settings. Each worker is a fresh
Python interpreter (never a fork of the server, and without ``DPS_*`` settings in
its environment) with OS limits set on itself before it opens any
data: address space (``RLIMIT_AS``), CPU seconds per query (``RLIMIT_CPU``, moved
forward before each query), no core dumps, not dumpable. The parent enforces the
wall-clock limit and kills a worker that overruns, together with its query;
the pool then starts a replacement and removes the dead worker's temp dir.

Inside, a version is decrypted once into the worker's private temp dir (0700)
as ``ds.duckdb`` and opened READ_ONLY, so the bounded SQL reads ``ds.<table>``;
the database is opened with the one hardening recipe, ``queries.hardened_duckdb``
(no external access, no extension loading, memory/thread/time limits,
configuration locked) and cached for later queries on that version, together
with its *empty twin*: the same catalog, tables and column types with zero rows,
opened the same way. Each query runs through the recipe's ``run_select``: a
fresh cursor, so temp macros, temp views and variables never outlive it, and
only a single SELECT statement.

Spilling. With ``spill_mb`` > 0 (``DPS_WORKER_SPILL_MB``) each of the two
databases spills what exceeds ``memory_mb`` into its own directory inside the
version's folder (``<folder>/spill`` and ``<folder>/empty/spill``, 0700), up to
``spill_mb`` MiB each; one query runs at a time and DuckDB truncates its temp
files after each, so a worker's spill stays within ``spill_mb`` (the twin, with
no rows, spills next to nothing). The spill dirs go with the version's folder
(evicted, worker stopped or killed). A spilling database keeps DuckDB's local
file system enabled (it cannot spill without it), reaching only its own spill
dir and database file: ``queries.hardened_duckdb`` explains why that is the
narrowest working combination. With ``spill_mb`` = 0 nothing spills and a query
over ``memory_mb`` fails (``run_failed``).

Preloading. A pool may be given versions to open ahead of queries (at most
``cached_versions``, most wanted first). Each worker, its own replacements
included, opens them in its own process while it is idle: before each one it
looks for a waiting message and serves that first, and it only fills free cache
slots, so a preload never evicts a version a query opened. The parent does not
wait for any of it; a query waits for its worker as always, under
``load_timeout_s``. A version that fails to open (a damaged file, a wrong key)
is simply not cached; a query on it then fails as it would have.

The empty twin runs once per SQL text. Each cached version remembers the
(SQL text, parameter names and value types) that already passed its twin and
skips the twin for them. Whether a statement fails on zero rows is decided by
DuckDB from the statement, the parameters and the schema — the twin holds no
data, so no data value enters it — and a cached version's schema never changes.
Keying on parameter *types* rather than values assumes that no value can make
the twin fail: true of the one parameter the planner emits, ``$salt`` (fresh
per run, used only as an argument of ``hash``, which accepts any text). Only
passes are remembered; a failure runs the twin again next time.

A query runs on the empty twin first. What fails there fails whatever the data
hold, so the pool refuses it as :class:`QueryInvalid` (``query_invalid``, HTTP
400) before any row is read. Whatever fails after that, on the data — an engine
error, the time, memory or CPU limit, the worker's death — reaches the caller
as one outcome, ``run_failed``, with one fixed message and a random
``error_id``: nothing in it depends on the cause, so nothing in it depends on a
data value. The cause goes to ``<log_dir>/worker-errors.log`` as a code, with the
error id and the plan fingerprint; never the engine's message (which can quote
data) nor the SQL, unless the pool runs with ``debug_engine_messages`` (unsafe,
for debugging only). The worker's stderr is drained by the parent into
``worker-stderr.log`` under the same rule. Both files are 0600 and rotate under
``log_max_bytes``, keeping ``log_backups`` old files.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from queries.errors import ExecutionFailed, InvalidInput
from queries.hardened_duckdb import LOCKED_DOWN, EngineLimits, Spill, StatementRefused, open_hardened, run_select
from sandbox.logs import PrivateLogFile, private_logger
from sandbox.execution.storage import VersionCorrupt, decrypt_file, unwrap_key

__all__ = ["WorkerLimits", "WorkerPool", "QueryInvalid", "unwrap_key", "open_hardened", "open_empty_twin",
           "run_select", "RUN_FAILED_MESSAGE", "QUERY_INVALID_MESSAGE"]

log = logging.getLogger("dp_sandbox.worker")

ERRORS_LOG = "worker-errors.log"
STDERR_LOG = "worker-stderr.log"

RUN_FAILED_MESSAGE = ("The query ran on the data but produced no result. Every failure on the data gets this "
                      "same message, whatever its cause.")
QUERY_INVALID_MESSAGE = ("The query cannot run on this dataset's schema: it fails even with no rows, so it was "
                         "refused before any data was read.")


class QueryInvalid(ExecutionFailed):
    """The bounded SQL failed on the version's empty twin (same tables and column
    types, no rows): the failure depends on the SQL and the schema alone, and no
    data was read."""

    code = "query_invalid"
    status = 400

    def __init__(self, error_id: str) -> None:
        super().__init__(f"{QUERY_INVALID_MESSAGE} (error id {error_id})", error_id=error_id, code="query_invalid")


@dataclass(frozen=True)
class WorkerLimits(EngineLimits):
    """DuckDB's limits (``memory_mb`` per cached version; ``timeout_s`` is also the
    wall-clock limit per query, enforced by the parent) and the worker process's."""

    address_space_mb: int = 4096    # RLIMIT_AS of the worker process
    cpu_seconds: int = 120          # RLIMIT_CPU budget per query
    cached_versions: int = 2        # decrypted versions a worker keeps open
    load_timeout_s: float = 120.0   # worker start + decrypting a version
    spill_mb: int = 8192            # max_temp_directory_size of each version database; 0: no spilling


# (SQL text, sorted (parameter name, value type) pairs): what the empty twin decides on
TwinKey = tuple[str, tuple[tuple[str, str], ...]]
TWIN_PASSES_KEPT = 1024             # per cached version, least recently used out


# ---------------------------------------------------------------- inside the worker

def _spill(folder: Path, limits: WorkerLimits) -> Spill | None:
    """A private spill dir for the database in ``folder`` (None: no spilling)."""
    if limits.spill_mb <= 0:
        return None
    directory = folder / "spill"
    directory.mkdir(mode=0o700)
    return Spill(directory, int(limits.spill_mb))


def open_empty_twin(db: duckdb.DuckDBPyConnection, folder: Path, limits: WorkerLimits) -> duckdb.DuckDBPyConnection:
    """The version's empty twin: every table of ``db`` with its exact DuckDB
    definition (names, column types) and no rows, written as ``<folder>/ds.duckdb``
    and opened with :func:`open_hardened`, so the bounded SQL binds to it exactly as
    it binds to the data. Only tables are copied: anything else the SQL names is
    missing in the twin, and the query is refused. It spills into
    ``<folder>/spill`` like the data (``limits.spill_mb``), so both run under the
    same limits."""
    cur = db.cursor()
    try:
        definitions = [sql for (sql,) in cur.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary "
            "ORDER BY schema_name, table_name").fetchall()]
    finally:
        cur.close()
    folder.mkdir(mode=0o700)
    path = folder / "ds.duckdb"
    builder = duckdb.connect(str(path), config=dict(LOCKED_DOWN))
    try:
        for sql in definitions:
            builder.execute(sql)
        builder.execute("CHECKPOINT")
    finally:
        builder.close()
    return open_hardened(path, limits, _spill(folder, limits))


def _cause(exc: BaseException) -> str:
    """The internal cause of a failure, as a code (for the log only)."""
    if isinstance(exc, StatementRefused):
        return "statement_refused"
    if isinstance(exc, duckdb.InterruptException):
        return "query_timeout"
    if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)):
        return "query_resources"
    if isinstance(exc, VersionCorrupt):
        return "version_corrupt"
    return "query_failed"


def twin_key(sql: str, params: dict[str, Any]) -> TwinKey:
    """What decides whether ``sql`` passes the empty twin, besides the schema."""
    return sql, tuple(sorted((name, type(value).__name__) for name, value in params.items()))


@dataclass
class _Version:
    db: duckdb.DuckDBPyConnection       # the data, read-only and hardened
    empty: duckdb.DuckDBPyConnection    # its empty twin, read-only and hardened
    folder: Path
    passed: OrderedDict[TwinKey, None] = field(default_factory=OrderedDict)  # passed the twin

    def check(self, sql: str, params: dict[str, Any]) -> bool:
        """Run ``sql`` on the empty twin unless it passed there before; raise what
        the twin raises. True when the twin ran."""
        key = twin_key(sql, params)
        if key in self.passed:
            self.passed.move_to_end(key)
            return False
        run_select(self.empty, sql, params)
        self.passed[key] = None
        while len(self.passed) > TWIN_PASSES_KEPT:
            self.passed.popitem(last=False)
        return True

    def close(self) -> None:
        self.empty.close()
        self.db.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _VersionCache:
    """Decrypted, hardened databases and their empty twins by (version path,
    data-key digest), least recently used out."""

    def __init__(self, root: Path, limits: WorkerLimits) -> None:
        self.root, self.limits = root, limits
        self.open: OrderedDict[tuple[str, str], _Version] = OrderedDict()

    @staticmethod
    def key(path: str, data_key: bytes) -> tuple[str, str]:
        return path, hashlib.sha256(data_key).hexdigest()

    def get(self, path: str, data_key: bytes) -> _Version:
        key = self.key(path, data_key)
        if key in self.open:
            self.open.move_to_end(key)
            return self.open[key]
        while len(self.open) >= max(1, self.limits.cached_versions):
            self.open.pop(next(iter(self.open))).close()
        folder = Path(tempfile.mkdtemp(dir=self.root))
        db = None
        try:
            decrypt_file(Path(path), data_key, folder / "ds.duckdb")
            db = open_hardened(folder / "ds.duckdb", self.limits, _spill(folder, self.limits))
            version = _Version(db, open_empty_twin(db, folder / "empty", self.limits), folder)
        except BaseException:
            if db is not None:
                db.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.open[key] = version
        return version

    def preload(self, path: str, data_key: bytes) -> None:
        """Open a version into a free slot, as the least recently used: never
        evicts one, never raises (a version that fails to open is not cached)."""
        key = self.key(path, data_key)
        if key in self.open or len(self.open) >= max(1, self.limits.cached_versions):
            return
        _cpu_budget(self.limits.cpu_seconds)
        try:
            self.get(path, data_key)
        except Exception:
            return
        self.open.move_to_end(key, last=False)

    def close(self) -> None:
        while self.open:
            self.open.popitem(last=False)[1].close()


def _harden_process(limits: WorkerLimits) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    size = int(limits.address_space_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    except (OSError, AttributeError):
        pass


def _cpu_budget(seconds: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (used + int(seconds), resource.RLIM_INFINITY))


def _watch_parent(parent_pid: int, root: Path) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            shutil.rmtree(root, ignore_errors=True)
            os._exit(1)


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def worker_main(conn: multiprocessing.connection.Connection) -> None:
    """The worker loop. First message in: ("init", limits, root, parent pid,
    keep details, preload), preload a list of (version path, data key) to open
    while idle, most wanted first; then ("query", path, key, sql, params) or ("stop",).

    Out, per query: ("ready",) once the version is open, ("checked", ran) once the
    SQL passed the empty twin (ran: False when it had passed before and the twin
    was skipped), then ("done", stage, cause, payload): stage is "load",
    "check" or "run"; cause is "" and payload Arrow IPC bytes, or cause is an
    internal cause code and payload the engine's message if details are kept
    (debugging only), else empty."""
    _, fields, root, parent_pid, keep_details, preload = conn.recv()
    limits = WorkerLimits(**fields)
    root_path = Path(root)
    _harden_process(limits)
    threading.Thread(target=_watch_parent, args=(parent_pid, root_path), daemon=True).start()
    cache = _VersionCache(root_path, limits)

    def failed(stage: str, exc: Exception) -> tuple:
        detail = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace") if keep_details else b""
        return ("done", stage, _cause(exc), detail)

    pending = list(preload)
    try:
        while True:
            try:
                while pending and not conn.poll(0):
                    cache.preload(*pending.pop(0))
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] != "query":
                break
            _, path, data_key, sql, params = msg
            _cpu_budget(limits.cpu_seconds)
            try:
                version = cache.get(path, data_key)
            except Exception as exc:
                conn.send(failed("load", exc))
                continue
            conn.send(("ready",))
            try:
                ran = version.check(sql, params)
            except Exception as exc:
                conn.send(failed("check", exc))
                continue
            conn.send(("checked", ran))
            try:
                reply = ("done", "run", "", _to_ipc(run_select(version.db, sql, params)))
            except Exception as exc:
                reply = failed("run", exc)
            conn.send(reply)
    finally:
        cache.close()
        shutil.rmtree(root_path, ignore_errors=True)


def _child_entry(fd: int) -> None:
    worker_main(multiprocessing.connection.Connection(fd))


_CHILD_CODE = "import sys; from sandbox.execution.worker import _child_entry; _child_entry(int(sys.argv[1]))"
_PROJECT_ROOT = str(Path(__file__).resolve().parents[2])


def _child_env() -> dict[str, str]:
    """The parent's environment without dp-sandbox settings (the master key may be one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    env["PYTHONPATH"] = os.pathsep.join([_PROJECT_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return env


# ---------------------------------------------------------------- the parent side

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


def _drain_stderr(fd: int, pid: int, sink: logging.Logger, verbatim: bool) -> None:
    """Read a worker's stderr until it exits. Kept verbatim only in debug mode;
    otherwise one line says that the worker wrote something, never what."""
    told = False
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if verbatim:
                sink.info(json.dumps({"time": _now(), "pid": pid, "stderr": chunk.decode("utf-8", "replace")}))
            elif not told:
                sink.info(json.dumps({"time": _now(), "pid": pid, "event": "stderr_withheld"}))
                told = True
    finally:
        os.close(fd)


class _Worker:
    """One worker process (a fresh interpreter, never a fork of the server) and its
    private temp dir, talking over a socket pair. Its stderr is a pipe that a
    thread drains into the pool's stderr log (or /dev/null without a log dir)."""

    def __init__(self, limits: WorkerLimits, temp_root: Path | None, stderr_log: logging.Logger | None,
                 keep_details: bool, preload: list[tuple[str, bytes]]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dps-worker-", dir=temp_root))
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-c", _CHILD_CODE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE if stderr_log is not None else subprocess.DEVNULL,
                cwd=self.root, env=_child_env(), close_fds=True)
        finally:
            theirs.close()
        self.drain: threading.Thread | None = None
        if stderr_log is not None and self.proc.stderr is not None:
            fd = os.dup(self.proc.stderr.fileno())
            self.proc.stderr.close()
            self.drain = threading.Thread(target=_drain_stderr, args=(fd, self.proc.pid, stderr_log, keep_details),
                                          name=f"dps-worker-stderr-{self.proc.pid}", daemon=True)
            self.drain.start()
        self.conn = multiprocessing.connection.Connection(ours.detach())
        self.conn.send(("init", asdict(limits), str(self.root), os.getpid(), keep_details, preload))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def receive(self, timeout: float) -> tuple:
        if not self.conn.poll(max(0.0, timeout)):
            raise _Timeout()
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise _Died() from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()
        if self.drain is not None:
            self.drain.join(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
            self.proc.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


class WorkerPool:
    """A fixed number of worker processes shared by many threads.

    With a ``log_dir``, failures are recorded in ``worker-errors.log`` and the
    workers' stderr in ``worker-stderr.log`` (both 0600, rotated at
    ``log_max_bytes`` with ``log_backups`` old files kept). ``debug_engine_messages``
    adds DuckDB's messages and the SQL to those logs: they can quote data values,
    so it is for debugging on data that may be seen, never in production.

    ``preload`` lists (version path, data key) pairs, most wanted first, that
    every worker (replacements too) opens while idle; only the first
    ``limits.cached_versions`` are kept. ``twin_runs`` counts the queries whose
    SQL ran on an empty twin, passing or refused (the rest had passed it before)."""

    def __init__(self, size: int = 2, limits: WorkerLimits = WorkerLimits(), log_dir: Path | None = None,
                 temp_root: Path | None = None, *, log_max_bytes: int = 1 << 20, log_backups: int = 3,
                 debug_engine_messages: bool = False, preload: Sequence[tuple[Path, bytes]] = ()) -> None:
        if size < 1:
            raise InvalidInput("a worker pool needs at least one worker")
        self.size, self.limits = size, limits
        self.preload = [(str(Path(path).resolve()), bytes(key))
                        for path, key in preload][:max(1, limits.cached_versions)]
        self.twin_runs = 0
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.temp_root = temp_root
        self.debug_engine_messages = bool(debug_engine_messages)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._errors_log: logging.Logger | None = None
        self._stderr_log: logging.Logger | None = None
        handlers: list[logging.Handler] = []
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            handlers = [PrivateLogFile(self.log_dir / name, log_max_bytes, log_backups)
                        for name in (ERRORS_LOG, STDERR_LOG)]
            self._errors_log = private_logger("dp_sandbox.worker.errors", handlers[0])
            self._stderr_log = private_logger("dp_sandbox.worker.stderr", handlers[1])
        self._finalizer = weakref.finalize(self, WorkerPool._shutdown, self._live, self._lock, handlers)
        for _ in range(size):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        worker = _Worker(self.limits, self.temp_root, self._stderr_log, self.debug_engine_messages, self.preload)
        with self._lock:
            if not self._closed:
                self._live.add(worker)
                return worker
        worker.stop()
        raise self._closed_error()

    @staticmethod
    def _closed_error() -> ExecutionFailed:
        return ExecutionFailed("The worker pool is closed.", error_id=secrets.token_hex(8), code="pool_closed")

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
        if not self._closed:
            try:
                self._idle.put(self._start())
            except ExecutionFailed:
                pass

    def _take(self) -> _Worker:
        while True:
            if self._closed:
                raise self._closed_error()
            try:
                return self._idle.get(timeout=0.25)
            except queue.Empty:
                continue

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._live]

    def execute(self, version_path: Path, data_key: bytes, sql: str, params: dict | None = None, *,
                timeout_s: float | None = None, fingerprint: str | None = None) -> pa.Table:
        """Run one bounded SELECT on a version and return its result as Arrow.

        The SQL runs on the version's empty twin first; a failure there raises
        :class:`QueryInvalid` (``query_invalid``) and no data is read. Any failure
        on the data raises ``ExecutionFailed`` with code ``run_failed``, one fixed
        message and an ``error_id``; the cause is logged as a code with
        ``fingerprint`` (the plan's; the SQL's SHA-256 if None). A version that does
        not decrypt raises ``version_corrupt``, a closed pool ``pool_closed``.

        ``timeout_s`` overrides the wall-clock limit (empty twin and data together)
        for this query; DuckDB's own ``max_execution_time`` stays at
        ``limits.timeout_s``, so a longer override only helps queries that DuckDB
        cannot interrupt."""
        timeout = self.limits.timeout_s if timeout_s is None else float(timeout_s)
        request = ("query", str(Path(version_path).resolve()), bytes(data_key), sql, dict(params or {}))
        worker = self._take()
        try:
            worker.conn.send(request)
        except (OSError, ValueError):                    # died while idle: the query never ran
            self._replace(worker)
            worker = self._take()
            worker.conn.send(request)
        stage, cause, payload, exit_code = "load", "", b"", None
        try:
            reply = worker.receive(self.limits.load_timeout_s)
            if reply[0] == "ready":
                stage, deadline = "check", time.monotonic() + timeout
                reply = worker.receive(timeout)
                if reply[0] != "checked" or reply[1]:      # refused by the twin, or passed it just now
                    with self._lock:
                        self.twin_runs += 1
                if reply[0] == "checked":
                    stage = "run"
                    reply = worker.receive(deadline - time.monotonic())
            _, stage, cause, payload = reply
        except _Timeout:
            self._replace(worker)
            cause = "query_timeout" if stage != "load" else "load_timeout"
        except (_Died, OSError, ValueError):
            self._replace(worker)
            cause, exit_code = "worker_died", worker.proc.returncode
        except BaseException:
            self._replace(worker)
            raise
        else:
            self._idle.put(worker)
        if not cause:
            return pa.ipc.open_stream(payload).read_all()
        raise self._failure(stage, cause, payload, sql, fingerprint, exit_code)

    def _failure(self, stage: str, cause: str, detail: bytes, sql: str, fingerprint: str | None,
                 exit_code: int | None) -> ExecutionFailed:
        """The caller's error for a failure, and its log record. Only a damaged
        version (or the wrong key) is told apart on the data side: it cannot depend
        on a data value. Everything else that fails on the data is ``run_failed``."""
        error_id = secrets.token_hex(8)
        if stage == "check":
            error: ExecutionFailed = QueryInvalid(error_id)
        elif cause == "version_corrupt":
            error = ExecutionFailed(f"The dataset version could not be opened (damaged file or wrong key). "
                                    f"(error id {error_id})", error_id=error_id, code="version_corrupt")
        else:
            error = ExecutionFailed(f"{RUN_FAILED_MESSAGE} (error id {error_id})", error_id=error_id,
                                    code="run_failed")
        record: dict[str, Any] = {
            "time": _now(), "error_id": error_id, "outcome": error.code, "stage": stage, "cause": cause,
            "fingerprint": fingerprint or hashlib.sha256(sql.encode()).hexdigest(),
        }
        if exit_code is not None:
            record["exit_code"] = exit_code
        if self.debug_engine_messages:
            record["detail"] = detail.decode("utf-8", "replace")
            record["sql"] = sql
        if self._errors_log is not None:
            self._errors_log.info(json.dumps(record))
        log.warning("worker: %s (stage %s, cause %s, error id %s)", error.code, stage, cause, error_id)
        return error

    def close(self) -> None:
        """Stop every worker and remove its temp dir (also run at interpreter exit)."""
        with self._lock:
            self._closed = True
        self._finalizer()

    @staticmethod
    def _shutdown(live: set[_Worker], lock: threading.Lock, handlers: list[logging.Handler]) -> None:
        with lock:
            workers = list(live)
            live.clear()
        for worker in workers:
            worker.stop()
        for handler in handlers:
            handler.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
