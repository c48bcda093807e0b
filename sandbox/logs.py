"""The log files of an instance: private (mode 0600), rotated under a size cap, and
safe to share between the processes that serve one home.

Every file under ``<home>/logs`` is written through :class:`PrivateLogFile`, the
stdlib ``RotatingFileHandler`` with three changes: files are created 0600; a
rollover with no backups truncates instead of growing for ever; and writes and
rollovers hold an ``flock`` on ``<file>.lock``, after which a handler whose file was
rotated by another process reopens the new one. So each log stays under
``max_bytes`` and at most ``backups`` rotated files are kept, whatever the number
of server processes.

Every logger of the code base is named under ``dp_sandbox`` (``dp_sandbox.service``,
``dp_sandbox.worker``, ...). No library module adds a handler. Two functions do:
:func:`configure_logging`, called once by each entry point (the CLI, the web app
factory), sets the threshold of the ``dp_sandbox`` tree to ``DPS_LOG_LEVEL`` and
sends its records to stderr; :func:`attach_instance_log`, called by
``Instance.open``, sends them to ``<home>/logs/dp-sandbox.log`` as well.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import threading
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO
from collections.abc import Iterator

from queries.errors import InvalidInput

__all__ = ["PrivateLogFile", "ROOT_LOGGER", "configure_logging", "attach_instance_log", "detach_instance_log",
           "INSTANCE_LOG"]

INSTANCE_LOG = "dp-sandbox.log"
ROOT_LOGGER = "dp_sandbox"           # every logger of the code base is dp_sandbox.<part>
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class PrivateLogFile(RotatingFileHandler):
    """A rotating log file, mode 0600, that several processes may append to."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        if int(max_bytes) < 1 or int(backups) < 0:
            raise InvalidInput("log_max_bytes must be at least 1 and log_backups at least 0",
                               code="invalid_setting")
        super().__init__(str(path), maxBytes=int(max_bytes), backupCount=int(backups),
                         encoding="utf-8", delay=True)
        self._lock_path = self.baseFilename + ".lock"

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    @contextmanager
    def _across_processes(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)                     # closing releases the lock

    def _follow(self) -> None:
        """Drop a stream whose file another process has rotated away."""
        if self.stream is None:
            return
        try:
            same = os.stat(self.baseFilename).st_ino == os.fstat(self.stream.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            self.stream.close()
            self.stream = None

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, cut so that one line never exceeds the file's cap."""
        text = super().format(record)
        room = self.maxBytes - 1                       # the newline
        data = text.encode("utf-8", "replace")
        if len(data) <= room:
            return text
        marker = " [cut]"
        return data[: max(0, room - len(marker))].decode("utf-8", "ignore") + marker[: room]

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """Whether this record would take the file past ``max_bytes`` (in bytes, from
        the file itself, which other processes may have grown)."""
        if self.stream is None:
            self.stream = self._open()
        size = os.fstat(self.stream.fileno()).st_size
        return size > 0 and size + len((self.format(record) + "\n").encode("utf-8", "replace")) > self.maxBytes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self._across_processes():
                self._follow()
                super().emit(record)
        except Exception:
            self.handleError(record)

    def doRollover(self) -> None:
        if self.backupCount > 0:
            super().doRollover()
            return
        if self.stream:
            self.stream.close()
            self.stream = None
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600))


def private_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A logger outside the logging tree (nothing propagates to or from it) that
    writes bare messages to ``handler``."""
    logger = logging.Logger(name, logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger


# ---------------------------------------------------------------- configuration

_lock = threading.Lock()
_attached: dict[str, tuple[PrivateLogFile, int]] = {}
_configured = logging.NOTSET         # the level configure_logging set (NOTSET: never called)


def _level(name: str | int) -> int:
    if isinstance(name, int):
        return name
    level = logging.getLevelNamesMapping().get(str(name).strip().upper())
    if level is None:
        raise InvalidInput("DPS_LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG",
                           code="invalid_setting", setting="log_level")
    return level


class _Stderr(logging.StreamHandler):
    """The process's stderr as it is when a record is written (a test or a
    server may replace ``sys.stderr`` after logging was configured)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(level: str | int) -> logging.Logger:
    """Configure the ``dp_sandbox`` loggers for this process: records below
    ``level`` (``DPS_LOG_LEVEL``) are dropped, the others go to stderr. Idempotent:
    a second call only changes the level. Returns the ``dp_sandbox`` logger."""
    global _configured
    threshold = _level(level)
    root = logging.getLogger(ROOT_LOGGER)
    with _lock:
        _configured = threshold
        console = next((h for h in root.handlers if isinstance(h, _Stderr)), None)
        if console is None:
            console = _Stderr()
            console.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(console)
        console.setLevel(threshold)
        levels = [threshold] + [handler.level for handler, _ in _attached.values()]
        root.setLevel(min(levels))
    return root


# ---------------------------------------------------------------- the instance log

def attach_instance_log(log_dir: Path, level: str | int, max_bytes: int, backups: int) -> str:
    """Send the ``dp_sandbox`` loggers to ``<log_dir>/dp-sandbox.log`` at ``level``.
    Instances on the same home in one process share one handler (counted), so each
    record is written once. Returns the key to give :func:`detach_instance_log`."""
    threshold = _level(level)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = str((log_dir / INSTANCE_LOG).resolve())
    root = logging.getLogger(ROOT_LOGGER)
    with _lock:
        if key in _attached:
            handler, count = _attached[key]
            _attached[key] = (handler, count + 1)
        else:
            handler = PrivateLogFile(Path(key), max_bytes, backups)
            handler.setFormatter(logging.Formatter(FORMAT))
            _attached[key] = (handler, 1)
            root.addHandler(handler)
        handler.setLevel(min(handler.level or threshold, threshold))
        if root.level == logging.NOTSET or root.level > threshold:
            root.setLevel(threshold)
    return key


def detach_instance_log(key: str) -> None:
    root = logging.getLogger(ROOT_LOGGER)
    with _lock:
        if key not in _attached:
            return
        handler, count = _attached.pop(key)
        if count > 1:
            _attached[key] = (handler, count - 1)
            return
        root.removeHandler(handler)
        levels = [h.level for h, _ in _attached.values()] + ([_configured] if _configured else [])
        root.setLevel(min(levels) if levels else logging.NOTSET)
    handler.close()
