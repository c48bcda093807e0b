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
the database is then hardened (no external access, no extension loading, no
local file system, no spilling to disk, memory/thread/time limits, configuration
locked) and cached for later queries on that version. Each query gets a fresh
cursor, so temp macros, temp views and variables never outlive it, and only a
single SELECT statement is accepted.

Any failure becomes :class:`ExecutionFailed` with a generic, data-free message
and an ``error_id``; the DuckDB detail (which can quote data) goes only to the
restricted log ``<log_dir>/worker-errors.log`` (mode 0600).
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
import re
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from queries.errors import ExecutionFailed, InvalidInput
from sandbox.storage import VersionCorrupt, decrypt_file, unwrap_key

__all__ = ["WorkerLimits", "WorkerPool", "unwrap_key", "open_hardened", "run_select"]

log = logging.getLogger("sandbox.worker")

MESSAGES = {
    "query_timeout": "The query ran longer than its time limit and was stopped.",
    "query_resources": "The query exceeded its memory or CPU limit and was stopped.",
    "statement_refused": "The worker runs exactly one SELECT statement.",
    "version_corrupt": "The dataset version could not be opened (damaged file or wrong key).",
    "query_failed": "The query failed while running.",
}


@dataclass(frozen=True)
class WorkerLimits:
    memory_mb: int = 1024           # DuckDB memory_limit (per cached version)
    threads: int = 1                # DuckDB threads
    timeout_s: float = 30.0         # wall clock per query; also DuckDB max_execution_time
    address_space_mb: int = 4096    # RLIMIT_AS of the worker process
    cpu_seconds: int = 120          # RLIMIT_CPU budget per query
    min_response_ms: int = 0        # pad every response (success or failure) to at least this
    cached_versions: int = 2        # decrypted versions a worker keeps open
    load_timeout_s: float = 120.0   # worker start + decrypting a version


# ---------------------------------------------------------------- inside the worker

def open_hardened(db_path: Path, limits: WorkerLimits) -> duckdb.DuckDBPyConnection:
    """Open a decrypted version read-only as catalog ``ds`` (the file is named
    ``ds.duckdb``) and lock it down. Settings that must be in place before the
    first query go into the connect config; the rest are set globally, and
    ``lock_configuration`` last."""
    db = duckdb.connect(str(db_path), read_only=True, config={
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "memory_limit": f"{int(limits.memory_mb)}MB",
        "threads": int(limits.threads),
        "temp_directory": "",
        "max_execution_time": max(1, int(limits.timeout_s * 1000)),
    })
    db.execute("SET GLOBAL disabled_filesystems = 'LocalFileSystem'")
    db.execute("SET GLOBAL lock_configuration = true")
    return db


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parameter_names(sql: str) -> set[str]:
    """The ``$name`` parameters a statement uses (case-folded), from DuckDB's own
    tokenizer, so a ``$`` inside a string literal or a comment does not count."""
    tokens = duckdb.tokenize(sql)
    names = set()
    for (offset, kind), (following, _) in zip(tokens, tokens[1:]):
        if kind == duckdb.token_type.operator and sql[offset] == "$" and following == offset + 1:
            match = _NAME.match(sql, following)
            if match:
                names.add(match.group().lower())
    return names


def run_select(db: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None) -> pa.Table:
    """Run one SELECT statement on a fresh cursor; anything else raises ``_Refused``.
    Parameters the statement does not use are dropped (DuckDB refuses extras, and a
    plan carries ``salt`` whether or not its SQL needs it)."""
    statements = db.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise _Refused(f"{len(statements)} statement(s) of type(s) {[s.type.name for s in statements]}")
    used = parameter_names(sql) if params else set()
    bound = {k: v for k, v in (params or {}).items() if k.lower() in used}
    cur = db.cursor()
    try:
        return cur.sql(sql, params=bound or None).to_arrow_table()
    finally:
        cur.close()


class _Refused(Exception):
    pass


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, _Refused):
        return "statement_refused"
    if isinstance(exc, duckdb.InterruptException):
        return "query_timeout"
    if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)):
        return "query_resources"
    if isinstance(exc, VersionCorrupt):
        return "version_corrupt"
    return "query_failed"


class _VersionCache:
    """Decrypted, hardened databases by (version path, data-key digest), least recently used out."""

    def __init__(self, root: Path, limits: WorkerLimits) -> None:
        self.root, self.limits = root, limits
        self.open: OrderedDict[tuple[str, str], tuple[duckdb.DuckDBPyConnection, Path]] = OrderedDict()

    def get(self, path: str, data_key: bytes) -> duckdb.DuckDBPyConnection:
        key = (path, hashlib.sha256(data_key).hexdigest())
        if key in self.open:
            self.open.move_to_end(key)
            return self.open[key][0]
        while len(self.open) >= max(1, self.limits.cached_versions):
            self._drop(next(iter(self.open)))
        folder = Path(tempfile.mkdtemp(dir=self.root))
        try:
            decrypt_file(Path(path), data_key, folder / "ds.duckdb")
            db = open_hardened(folder / "ds.duckdb", self.limits)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.open[key] = (db, folder)
        return db

    def _drop(self, key: tuple[str, str]) -> None:
        db, folder = self.open.pop(key)
        db.close()
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        for key in list(self.open):
            self._drop(key)


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
    """The worker loop. First message in: ("init", limits, root, parent pid); then
    ("query", path, key, sql, params) or ("stop",). Out, per query: ("ready",)
    once the version is open, then ("done", code, payload) where code is "" and
    payload Arrow IPC bytes, or code is an error code and payload the error
    detail (for the restricted log only)."""
    _, fields, root, parent_pid = conn.recv()
    limits = WorkerLimits(**fields)
    root_path = Path(root)
    _harden_process(limits)
    threading.Thread(target=_watch_parent, args=(parent_pid, root_path), daemon=True).start()
    cache = _VersionCache(root_path, limits)
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] != "query":
                break
            _, path, data_key, sql, params = msg
            _cpu_budget(limits.cpu_seconds)
            try:
                db = cache.get(path, data_key)
                conn.send(("ready",))
                payload = _to_ipc(run_select(db, sql, params))
                reply = ("done", "", payload)
            except Exception as exc:  # every failure becomes a code + detail
                reply = ("done", _error_code(exc), f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
            conn.send(reply)
    finally:
        cache.close()
        shutil.rmtree(root_path, ignore_errors=True)


def _child_entry(fd: int) -> None:
    worker_main(multiprocessing.connection.Connection(fd))


_CHILD_CODE = "import sys; from sandbox.worker import _child_entry; _child_entry(int(sys.argv[1]))"
_PROJECT_ROOT = str(Path(__file__).resolve().parents[1])


def _child_env() -> dict[str, str]:
    """The parent's environment without dp-sandbox settings (the master key may be one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPS_")}
    env["PYTHONPATH"] = os.pathsep.join([_PROJECT_ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return env


# ---------------------------------------------------------------- the parent side

class _Timeout(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """One worker process (a fresh interpreter, never a fork of the server) and its
    private temp dir, talking over a socket pair."""

    def __init__(self, limits: WorkerLimits, temp_root: Path | None, log_dir: Path | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dps-worker-", dir=temp_root))
        ours, theirs = socket.socketpair()
        stderr = subprocess.DEVNULL
        if log_dir is not None:
            stderr = os.open(log_dir / "worker-stderr.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-c", _CHILD_CODE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr, cwd=self.root, env=_child_env(), close_fds=True)
        finally:
            theirs.close()
            if log_dir is not None:
                os.close(stderr)
        self.conn = multiprocessing.connection.Connection(ours.detach())
        self.conn.send(("init", asdict(limits), str(self.root), os.getpid()))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def receive(self, timeout: float) -> tuple:
        if not self.conn.poll(timeout):
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
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
            self.proc.wait(5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


class WorkerPool:
    """A fixed number of worker processes shared by many threads."""

    def __init__(self, size: int = 2, limits: WorkerLimits = WorkerLimits(), log_dir: Path | None = None,
                 temp_root: Path | None = None) -> None:
        if size < 1:
            raise InvalidInput("a worker pool needs at least one worker")
        self.size, self.limits = size, limits
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.temp_root = temp_root
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._finalizer = weakref.finalize(self, WorkerPool._shutdown, self._live, self._lock)
        for _ in range(size):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        worker = _Worker(self.limits, self.temp_root, self.log_dir)
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
                timeout_s: float | None = None) -> pa.Table:
        """Run one bounded SELECT on a version and return its result as Arrow.

        ``timeout_s`` overrides the wall-clock limit for this query; DuckDB's own
        ``max_execution_time`` stays at ``limits.timeout_s``, so a longer override
        only helps queries that DuckDB cannot interrupt. Raises ``ExecutionFailed``."""
        started = time.monotonic()
        timeout = self.limits.timeout_s if timeout_s is None else float(timeout_s)
        request = ("query", str(Path(version_path).resolve()), bytes(data_key), sql, dict(params or {}))
        worker = self._take()
        try:
            worker.conn.send(request)
        except (OSError, ValueError):                    # died while idle: the query never ran
            self._replace(worker)
            worker = self._take()
            worker.conn.send(request)
        code, payload = "", b""
        try:
            first = worker.receive(self.limits.load_timeout_s)
            if first[0] == "ready":
                first = worker.receive(timeout)
            _, code, payload = first
        except _Timeout:
            self._replace(worker)
            code, payload = "query_timeout", b"killed by the parent after the wall-clock limit"
        except (_Died, OSError, ValueError):
            self._replace(worker)
            exitcode = worker.proc.returncode
            code, payload = "query_resources", f"worker died (exit code {exitcode})".encode()
        except BaseException:
            self._replace(worker)
            raise
        else:
            self._idle.put(worker)
        if code:
            error = self._failure(code, payload, sql)
        else:
            result = pa.ipc.open_stream(payload).read_all()
        pad = self.limits.min_response_ms / 1000.0 - (time.monotonic() - started)
        if pad > 0:
            time.sleep(pad)
        if code:
            raise error
        return result

    def _failure(self, code: str, detail: bytes, sql: str) -> ExecutionFailed:
        error_id = secrets.token_hex(8)
        if self.log_dir is not None:
            record = {"error_id": error_id, "time": time.time(), "code": code,
                      "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(), "sql": sql,
                      "detail": detail.decode("utf-8", "replace")}
            path = self.log_dir / "worker-errors.log"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, (json.dumps(record) + "\n").encode())
            finally:
                os.close(fd)
        log.warning("worker query failed: code=%s error_id=%s", code, error_id)
        message = MESSAGES.get(code, MESSAGES["query_failed"])
        return ExecutionFailed(f"{message} (error id {error_id})", error_id=error_id, code=code)

    def close(self) -> None:
        """Stop every worker and remove its temp dir (also run at interpreter exit)."""
        with self._lock:
            self._closed = True
        self._finalizer()

    @staticmethod
    def _shutdown(live: set[_Worker], lock: threading.Lock) -> None:
        with lock:
            workers = list(live)
            live.clear()
        for worker in workers:
            worker.stop()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
