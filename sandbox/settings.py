"""Every setting of a dp-sandbox instance, declared once.

:class:`Settings` is a frozen dataclass with one typed attribute per setting;
each field carries its default, its help text and the bounds it must keep. A
setting is read from the environment variable ``DPS_<NAME>`` and may be
overridden by an explicit value (a CLI flag, a test):
explicit overrides, then the environment, then the default. There is no
settings file. A value that is not of the setting's type, or outside its
bounds, is refused with ``invalid_setting`` naming the variable; an unknown
name with ``unknown_setting``. The README's settings table lists each setting
with its type and default (``tests/runtime/test_settings.py`` checks it).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_type_hints
from collections.abc import Callable, Mapping

from queries.errors import InvalidInput

ENV_PREFIX = "DPS_"

# A bound: the reason a value is refused, or None when it is acceptable.
Check = Callable[[Any], "str | None"]


def _at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"at least {low:g}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "greater than 0"


def _between(low: float, high: float) -> Check:
    return lambda value: None if low <= value <= high else f"between {low:g} and {high:g}"


def _probability(value: float) -> str | None:
    return None if 0 < value < 1 else "strictly between 0 and 1"


LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def _log_level(value: str) -> str | None:
    return None if value.strip().upper() in LOG_LEVELS else f"one of {', '.join(LOG_LEVELS)}"


ENGINES = ("duckdb", "spark")


def _engine(value: str) -> str | None:
    return None if value in ENGINES else f"one of {', '.join(ENGINES)}"


def _spark_master(value: str) -> str | None:
    ok = value.startswith("spark://") or (value.startswith("local[") and value.endswith("]"))
    return None if ok else "local[N] or spark://host:port"


def _spark_conf(value: str) -> str | None:
    pairs = [p for p in value.split(",") if p.strip()]
    ok = all("=" in p and p.split("=", 1)[0].strip().startswith("spark.") for p in pairs)
    return None if ok else "comma-separated spark.key=value pairs"


def _setting(default: Any, help: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one instance (build it with :func:`load_settings`)."""

    home: str = _setting("./dp-sandbox-home", "Instance home directory; holds everything the instance writes.")
    database_url: str = _setting(
        "", "SQLAlchemy URL of the metadata store; empty means SQLite (WAL) inside the home.")
    signing_key_file: str = _setting(
        "", "Ed25519 private key (PEM); empty means <home>/keys/signing.pem, created by init.")
    master_key_file: str = _setting(
        "", "Master key for encryption at rest (32 raw bytes); empty means <home>/keys/master.key.")
    workers: int = _setting(2, "Number of query worker processes.", _at_least(1))
    worker_memory_mb: int = _setting(1024, "DuckDB memory limit per query, in MiB.", _at_least(1))
    worker_threads: int = _setting(1, "DuckDB threads per query.", _at_least(1))
    worker_address_space_mb: int = _setting(
        4096, "Address-space limit (RLIMIT_AS) of each worker process, in MiB.", _at_least(1))
    worker_cpu_seconds: int = _setting(120, "CPU-time limit of each query in a worker, in seconds.", _at_least(1))
    worker_spill_mb: int = _setting(
        8192, "Most a worker's query may spill to disk beyond its memory limit, in MiB, into a private dir "
              "under the worker temp root (removed with it); 0 means no spilling: a query over the memory "
              "limit fails.", _at_least(0))
    worker_temp_root: str = _setting(
        "", "Where workers keep decrypted versions (mode 0700); empty means the system temp dir. "
            "Point it at tmpfs to keep them off disk.")
    query_timeout_s: float = _setting(30.0, "Wall-clock limit per query; the worker is killed past it.", _positive)
    min_response_ms: int = _setting(
        50, "Shortest response time of a query run: every run answers at the first point of the grid "
            "min_response_ms · response_grid_ratio^k at or after its own duration.", _at_least(0))
    response_grid_ratio: float = _setting(
        2.0, "Ratio between successive points of the response-time grid (greater than 1); "
             "0 keeps only the floor min_response_ms.", _at_least(0))
    max_fan_out: int = _setting(
        100, "Most rows of public tables that one row of a private table may join to; a query whose plan "
             "could exceed it is refused (query_too_costly).", _at_least(1))
    max_concurrent_runs: int = _setting(
        1, "Query runs one operator may have in flight at once; more are refused (too_many_runs).", _at_least(1))
    min_epsilon_per_query: float = _setting(
        0.01, "Default floor on the ε of one query, for policies that declare none; smaller requests are "
              "refused (epsilon_below_floor).", _at_least(0))
    debug_engine_messages: bool = _setting(
        False, "UNSAFE: keep DuckDB's own error messages, which can quote data values, in the worker log. "
               "Off in production.")
    engine: str = _setting(
        "duckdb", "Engine that runs the bounded SQL of datasets whose policy names none: duckdb or spark.", _engine)
    spark_master: str = _setting(
        "local[2]", "Spark cluster of the spark engine: local[N] (in this process) or spark://host:port.",
        _spark_master)
    spark_conf: str = _setting(
        "", "Extra Spark configuration for the spark engine, as comma-separated spark.key=value pairs.",
        _spark_conf)
    spark_max_rows_read: int = _setting(
        1_000_000_000, "Most stored rows one Spark query may read, summed over the tables it names; more "
                       "are refused (rows_read_exceeded) before the query runs.", _at_least(1))
    log_max_bytes: int = _setting(
        1048576, "Size at which each log file of the instance is rotated, in bytes.", _at_least(1))
    log_backups: int = _setting(3, "Rotated log files kept per log.", _at_least(0))
    default_epsilon: float = _setting(
        1.0, "ε spent by a query run that names none (capped by the per-query cap).", _positive)
    alpha: float = _setting(0.05, "Confidence intervals are at level 1 - alpha.", _probability)
    reviewers_required: int = _setting(2, "Distinct reviewers who must approve a data product.", _at_least(1))
    small_count_threshold: int = _setting(
        10, "Noisy counts under this are suppressed in products and flagged to reviewers.", _at_least(0))
    host: str = _setting("127.0.0.1", "Address the web server listens on.")
    port: int = _setting(8470, "Port the web server listens on.", _between(0, 65535))
    secure_cookies: bool = _setting(
        False, "Send session cookies only over HTTPS (set it when serving behind TLS).")
    secret_key: str = _setting("", "Flask session secret; empty means <home>/keys/session.key, created by init.")
    log_level: str = _setting(
        "INFO", "Threshold of the dp_sandbox.* loggers: records below it are dropped "
                "(CRITICAL, ERROR, WARNING, INFO or DEBUG).", _log_level)
    notify_webhook_url: str = _setting(
        "", "URL every notification is POSTed to as signed JSON; empty means no webhook.")
    notify_webhook_secret: str = _setting(
        "", "HMAC-SHA256 key that signs each webhook body (X-DPS-Signature); required with a webhook URL.")
    smtp_host: str = _setting("", "SMTP server that e-mails notifications; empty means no e-mail.")
    smtp_port: int = _setting(25, "Port of the SMTP server.", _between(1, 65535))
    smtp_from: str = _setting("dp-sandbox@localhost", "Sender address of notification e-mails.")
    smtp_user: str = _setting("", "SMTP login; empty means none.")
    smtp_password: str = _setting("", "SMTP password of smtp_user.")
    smtp_starttls: bool = _setting(False, "Upgrade the SMTP connection with STARTTLS before logging in.")
    notify_max_attempts: int = _setting(
        8, "Attempts per notification and channel before its delivery is marked failed.", _at_least(1))
    notify_retry_s: float = _setting(
        30.0, "Wait before the first retry of a failed delivery; it doubles with each attempt, up to an hour.",
        _positive)
    notify_poll_s: float = _setting(
        10.0, "How often the deliverer (notifications deliver --loop, the web server) looks for due deliveries, "
              "in seconds.", _positive)
    notify_timeout_s: float = _setting(10.0, "Time limit of one webhook or SMTP delivery, in seconds.", _positive)
    notify_expiry_days: int = _setting(
        7, "An operator is told once when a licence they hold ends within this many days.", _at_least(1))

    def __post_init__(self) -> None:
        for setting in SETTINGS:
            object.__setattr__(self, setting.name, setting.convert(getattr(self, setting.name)))

    @property
    def values(self) -> Mapping[str, Any]:
        """Every setting by name (read-only)."""
        return MappingProxyType({s.name: getattr(self, s.name) for s in SETTINGS})

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

    @property
    def keys_dir(self) -> Path:
        return self.home_path / "keys"

    @property
    def signing_key_path(self) -> Path:
        return Path(self.signing_key_file) if self.signing_key_file else self.keys_dir / "signing.pem"

    @property
    def master_key_path(self) -> Path:
        return Path(self.master_key_file) if self.master_key_file else self.keys_dir / "master.key"

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_path / 'store.sqlite'}"

    def replace(self, **overrides: Any) -> Settings:
        """These settings with ``overrides`` (by setting name; ``None`` leaves a
        setting as it is)."""
        changes = {}
        for name, value in overrides.items():
            if name not in _BY_NAME:
                raise InvalidInput(f"unknown setting '{name}'", code="unknown_setting", setting=name)
            if value is not None:
                changes[name] = value
        return dataclasses.replace(self, **changes)


_KINDS = {str: "a text", int: "an integer", float: "a number", bool: "a boolean (true or false)"}


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean")


@dataclass(frozen=True)
class Setting:
    """One setting as the README, the administration page and the environment see it."""

    name: str
    type: type
    default: Any
    help: str
    check: Check | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    def _refuse(self) -> InvalidInput:
        return InvalidInput(f"{self.env} must be {_KINDS[self.type]}", code="invalid_setting", setting=self.name)

    def parse(self, text: str) -> Any:
        """The value of the environment text ``text``."""
        if self.type is str:
            return text
        try:
            return _bool(text) if self.type is bool else self.type(text.strip())
        except ValueError:
            raise self._refuse() from None

    def convert(self, value: Any) -> Any:
        """``value`` as this setting's type, within its bounds; text is parsed as
        if it came from the environment, a path is a ``str`` setting."""
        if isinstance(value, str) and self.type is not str:
            value = self.parse(value)
        elif self.type is str and isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise self._refuse()
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{self.env} must be a finite number", code="invalid_setting", setting=self.name)
        problem = self.check(value) if self.check is not None else None
        if problem is not None:
            raise InvalidInput(f"{self.env} must be {problem}", code="invalid_setting", setting=self.name)
        return value


def _declared() -> tuple[Setting, ...]:
    types = get_type_hints(Settings)
    return tuple(Setting(f.name, types[f.name], f.default, f.metadata["help"], f.metadata["check"])
                 for f in dataclasses.fields(Settings))


SETTINGS: tuple[Setting, ...] = _declared()
_BY_NAME = {s.name: s for s in SETTINGS}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Explicit ``overrides`` (CLI flags; ``None`` means not given), then ``DPS_*``
    variables of ``env`` (the process environment by default), then defaults."""
    env = os.environ if env is None else env
    from_env = {s.name: s.parse(env[s.env]) for s in SETTINGS if s.env in env}
    return Settings(**from_env).replace(**overrides)
