"""No data value reaches a log, and every log stays under its size cap.

The operator chooses SQL whose engine errors would quote a planted string, a
person's value or an exact aggregate; none of it may appear in any file under the
log directory. Rotation is checked with many failures in one pool, with several
processes writing one file, and for the workers' stderr.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from queries.errors import ExecutionFailed, InvalidInput
from sandbox.logs import INSTANCE_LOG, ROOT_LOGGER, PrivateLogFile
from sandbox.execution.worker import ERRORS_LOG, STDERR_LOG, WorkerPool

from .conftest import CITIES, TEST_LIMITS, log_record, log_text

PLANTED = "PLANTED-7f3c"
# (SQL, the caller's code): engine messages of all of these quote the planted string or a data value
QUOTING = [
    (f"SELECT error('{PLANTED}-' || city) FROM ds.people", "run_failed"),
    ("SELECT CAST(city AS INTEGER) FROM ds.people", "run_failed"),
    (f"SELECT CAST(city || '{PLANTED}' AS DATE) FROM ds.people", "run_failed"),
    ("SELECT make_date(2020, age, 1) FROM ds.people", "run_failed"),
    ("SELECT CAST(sum(income) AS TINYINT) FROM ds.people", "run_failed"),
    (f"SELECT error('{PLANTED}')", "query_invalid"),
    (f"SELECT CAST('{PLANTED}' AS INTEGER)", "query_invalid"),
]


def _crash_with_stderr(pool: WorkerPool, text: str) -> None:
    """Make one live worker die with ``text`` in its stderr: a message it cannot
    unpickle names an attribute that does not exist, and the traceback quotes it."""
    worker = pool._take()
    worker.conn.send_bytes(b"csandbox.execution.worker\n" + text.encode() + b"\n.")
    worker.proc.wait(30)
    pool._replace(worker)


def _exact_aggregates(reference) -> list[str]:
    total, = reference.execute("SELECT sum(income) FROM ds.people").fetchall()[0]
    return [str(total)]


@pytest.fixture()
def quiet_pool(tmp_path):
    with WorkerPool(1, TEST_LIMITS, log_dir=tmp_path / "log", temp_root=tmp_path) as pool:
        yield pool


def test_no_data_value_reaches_any_log(quiet_pool, version, data_key, reference, tmp_path):
    for sql, code in QUOTING:
        with pytest.raises(ExecutionFailed) as err:
            quiet_pool.execute(version.path, data_key, sql, {})
        assert err.value.code == code, sql
        assert set(log_record(tmp_path / "log", err.value.error_id)) <= {
            "time", "error_id", "outcome", "stage", "cause", "fingerprint", "exit_code"}
    _crash_with_stderr(quiet_pool, PLANTED.replace("-", "_") + "_Oslo")
    assert quiet_pool.execute(version.path, data_key, "SELECT 1 AS x", {}).column("x").to_pylist() == [1]
    quiet_pool.close()
    text = log_text(tmp_path / "log")
    for needle in [PLANTED, PLANTED.replace("-", "_"), *CITIES, *_exact_aggregates(reference), "Error", "SELECT"]:
        assert needle not in text, needle
    stderr = [json.loads(line) for line in (tmp_path / "log" / STDERR_LOG).read_text().splitlines()]
    assert [r["event"] for r in stderr] == ["stderr_withheld"]
    for path in (tmp_path / "log").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_debug_mode_keeps_engine_messages(version, data_key, tmp_path):
    """debug_engine_messages (unsafe) is what makes the same failures quote data."""
    with WorkerPool(1, TEST_LIMITS, log_dir=tmp_path / "log", temp_root=tmp_path,
                    debug_engine_messages=True) as pool:
        with pytest.raises(ExecutionFailed) as err:
            pool.execute(version.path, data_key, QUOTING[0][0], {})
        assert PLANTED not in str(err.value.to_dict())          # the caller still sees nothing
        record = log_record(tmp_path / "log", err.value.error_id)
        assert f"{PLANTED}-" in record["detail"] and record["sql"] == QUOTING[0][0]
        _crash_with_stderr(pool, "DEBUG_ONLY_NAME")
    assert "DEBUG_ONLY_NAME" in (tmp_path / "log" / STDERR_LOG).read_text()


def _sizes(log_dir: Path, name: str) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in log_dir.glob(name + "*") if not p.name.endswith(".lock")}


def test_worker_logs_rotate_under_their_cap(version, data_key, tmp_path):
    cap, backups = 1200, 2
    log_dir = tmp_path / "log"
    with WorkerPool(1, TEST_LIMITS, log_dir=log_dir, temp_root=tmp_path, log_max_bytes=cap,
                    log_backups=backups, debug_engine_messages=True) as pool:
        last = None
        for i in range(120):
            with pytest.raises(ExecutionFailed) as err:
                pool.execute(version.path, data_key, f"SELECT CAST(city || '{i}' AS INTEGER) FROM ds.people", {})
            last = err.value.error_id
        for i in range(4):
            _crash_with_stderr(pool, f"crash_number_{i}_" + "x" * 400)
    for name in (ERRORS_LOG, STDERR_LOG):
        sizes = _sizes(log_dir, name)
        assert set(sizes) <= {name} | {f"{name}.{k}" for k in range(1, backups + 1)}, sizes
        assert all(size <= cap for size in sizes.values()), sizes
        assert sum(sizes.values()) <= cap * (backups + 1)
    assert len(_sizes(log_dir, ERRORS_LOG)) == backups + 1          # it did rotate
    assert log_record(log_dir, last)["cause"] == "query_failed"     # the newest record is kept


def test_no_backups_means_the_file_is_cut_not_grown(tmp_path):
    handler = PrivateLogFile(tmp_path / "x.log", 300, 0)
    logger = logging.Logger("t")
    logger.addHandler(handler)
    for i in range(200):
        logger.error("record %d %s", i, "y" * 40)
    logger.error("z" * 1000)                         # one record over the cap is cut to fit
    handler.close()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["x.log"]
    assert (tmp_path / "x.log").stat().st_size <= 300
    assert (tmp_path / "x.log").read_text().endswith("[cut]\n")


def test_several_processes_share_one_log_under_its_cap(tmp_path):
    """Several server processes append to one home's logs: rotation by one is seen by
    the others, no line is torn, and the cap holds."""
    root = str(Path(__file__).resolve().parents[2])
    script = textwrap.dedent(f"""
        import json, logging, sys
        from pathlib import Path
        from sandbox.logs import PrivateLogFile
        handler = PrivateLogFile(Path({str(tmp_path / 'shared.log')!r}), 2048, 2)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.Logger("p")
        logger.addHandler(handler)
        for i in range(400):
            logger.info(json.dumps({{"process": sys.argv[1], "i": i, "pad": "p" * 30}}))
        handler.close()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], env={"PYTHONPATH": root},
                              stderr=subprocess.PIPE) for n in range(3)]
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read()
        proc.stderr.close()
    sizes = _sizes(tmp_path, "shared.log")
    assert set(sizes) == {"shared.log", "shared.log.1", "shared.log.2"}
    assert all(size <= 2048 for size in sizes.values()), sizes
    for name in sizes:
        for line in (tmp_path / name).read_text().splitlines():
            assert json.loads(line)["pad"] == "p" * 30


def test_an_instance_logs_to_its_home_at_its_level(make_instance, health_dir, version, data_key):
    inst = make_instance(log_level="warning", log_max_bytes=4096, log_backups=1)
    log_file = inst.home / "logs" / INSTANCE_LOG
    logging.getLogger("dp_sandbox.test").info("an info line")
    logging.getLogger("dp_sandbox.queries.test").warning("a warning line")
    with pytest.raises(ExecutionFailed) as err:
        inst.pool.execute(version.path, data_key, f"SELECT error('{PLANTED}' || city) FROM ds.people", {})
    text = log_file.read_text()
    assert "a warning line" in text and "an info line" not in text
    assert err.value.error_id in text and "run_failed" in text
    inst.close()
    assert not any(getattr(h, "baseFilename", "") == str(log_file) for h in logging.getLogger(ROOT_LOGGER).handlers)
    text = log_text(inst.home / "logs")
    assert PLANTED not in text and not any(city in text for city in CITIES)


def test_an_unknown_log_level_is_refused(make_instance):
    with pytest.raises(InvalidInput) as err:
        make_instance(log_level="chatty")
    assert err.value.code == "invalid_setting"
