"""A throwaway standalone Spark cluster for the ``spark`` tier: one master and two
workers on 127.0.0.1, started from the installed PySpark's ``spark-class`` and
stopped (by the ids of the processes it started) at the end. Also runnable alone:
``python tests/sparkcluster.py`` prints the master URL and waits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class SparkCluster:
    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "2g") -> None:
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.ui_port = _free_port(), _free_port()
        self.work = Path(tempfile.mkdtemp(prefix="dps-spark-cluster-"))
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        home = spark_home()
        return {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
                "SPARK_LOG_DIR": str(self.work / "logs"), "SPARK_WORKER_DIR": str(self.work / "work"),
                "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}

    def _start(self, name: str, *args: str) -> None:
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        with open(self.work / f"{name}.log", "wb") as log:     # the child keeps its own copy of the descriptor
            self.procs.append(subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _alive_workers(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as r:
                state = json.load(r)
        except OSError:
            return -1
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def start(self, timeout: float = 120.0) -> str:
        self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))
        deadline = time.monotonic() + timeout
        while self._alive_workers() < 0:
            self._check(deadline)
        for i in range(self.workers):
            self._start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                        "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(_free_port()),
                        self.url)
        while self._alive_workers() < self.workers:
            self._check(deadline)
        return self.url

    def _check(self, deadline: float) -> None:
        dead = [p.args for p in self.procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"the Spark cluster did not start (logs in {self.work}): {dead}")
        time.sleep(0.5)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()


if __name__ == "__main__":
    cluster = SparkCluster()
    print(cluster.start(), flush=True)
    try:
        signal.pause()
    finally:
        cluster.stop()
