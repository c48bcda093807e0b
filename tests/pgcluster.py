"""A throwaway PostgreSQL cluster for tests (the installed server's initdb/pg_ctl).

When the tests run as root, the server runs as the ``postgres`` user. Used by
``tests/conftest.py``; also runnable alone: ``python tests/pgcluster.py`` prints
a URL and waits.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dps-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        self.user = "postgres" if self.as_postgres else os.environ.get("USER", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o700)
        self._run(_bin("initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.dir}' -p {self.port} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        deadline = time.time() + 30
        while time.time() < deadline:
            r = self._run(_bin("psql"), "-h", str(self.dir), "-p", str(self.port), "-U", self.user,
                          "-d", "postgres", "-c", "select 1", check=False)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        return self.url("postgres")

    def create_database(self, name: str) -> str:
        self._run(_bin("createdb"), "-h", str(self.dir), "-p", str(self.port), "-U", self.user, name)
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{db}?host={self.dir}&port={self.port}"

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    c = PgCluster()
    print(c.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        c.stop()
