"""Every setting of a dp-sandbox instance, declared once.

A setting has a name, a type, a default and a help text. It is read from the
environment variable ``DPS_<NAME>`` and may be overridden by a CLI flag; the
README's settings table lists each one (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from queries.errors import InvalidInput

ENV_PREFIX = "DPS_"


@dataclass(frozen=True)
class Setting:
    name: str
    type: Callable[[str], Any]
    default: Any
    help: str

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("home", str, "./dp-sandbox-home", "Instance home directory; holds everything the instance writes."),
    Setting("database_url", str, "", "SQLAlchemy URL of the metadata store; empty means SQLite (WAL) inside the home."),
    Setting("signing_key_file", str, "", "Ed25519 private key (PEM); empty means <home>/keys/signing.pem, created by init."),
    Setting("master_key_file", str, "", "Master key for encryption at rest (32 raw bytes); empty means <home>/keys/master.key."),
    Setting("workers", int, 2, "Number of query worker processes."),
    Setting("worker_memory_mb", int, 1024, "DuckDB memory limit per query, in MiB."),
    Setting("worker_threads", int, 1, "DuckDB threads per query."),
    Setting("worker_address_space_mb", int, 4096, "Address-space limit (RLIMIT_AS) of each worker process, in MiB."),
    Setting("worker_cpu_seconds", int, 120, "CPU-time limit of each query in a worker, in seconds."),
    Setting("worker_temp_root", str, "", "Where workers keep decrypted versions (mode 0700); empty means the system temp dir. Point it at tmpfs to keep them off disk."),
    Setting("query_timeout_s", float, 30.0, "Wall-clock limit per query; the worker is killed past it."),
    Setting("min_response_ms", int, 50, "Shortest response time of a query run: every run answers at the first point of the grid min_response_ms · response_grid_ratio^k at or after its own duration."),
    Setting("response_grid_ratio", float, 2.0, "Ratio between successive points of the response-time grid (greater than 1); 0 keeps only the floor min_response_ms."),
    Setting("max_fan_out", int, 100, "Most rows of public tables that one row of a private table may join to; a query whose plan could exceed it is refused (query_too_costly)."),
    Setting("max_concurrent_runs", int, 1, "Query runs one operator may have in flight at once; more are refused (too_many_runs)."),
    Setting("min_epsilon_per_query", float, 0.01, "Default floor on the ε of one query, for policies that declare none; smaller requests are refused (epsilon_below_floor)."),
    Setting("debug_engine_messages", bool, False, "UNSAFE: keep DuckDB's own error messages, which can quote data values, in the worker log. Off in production."),
    Setting("log_max_bytes", int, 1048576, "Size at which each log file of the instance is rotated, in bytes."),
    Setting("log_backups", int, 3, "Rotated log files kept per log."),
    Setting("default_epsilon", float, 1.0, "ε spent by a query run that names none (capped by the per-query cap)."),
    Setting("alpha", float, 0.05, "Confidence intervals are at level 1 - alpha."),
    Setting("reviewers_required", int, 2, "Distinct reviewers who must approve a data product."),
    Setting("small_count_threshold", int, 10, "Noisy counts under this are suppressed in products and flagged to reviewers."),
    Setting("host", str, "127.0.0.1", "Address the web server listens on."),
    Setting("port", int, 8470, "Port the web server listens on."),
    Setting("secure_cookies", bool, False, "Send session cookies only over HTTPS (set it when serving behind TLS)."),
    Setting("secret_key", str, "", "Flask session secret; empty means <home>/keys/session.key, created by init."),
    Setting("log_level", str, "INFO", "Log level of the instance's loggers."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one instance."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def home_path(self) -> Path:
        return Path(self.values["home"]).expanduser().resolve()

    @property
    def keys_dir(self) -> Path:
        return self.home_path / "keys"

    @property
    def data_dir(self) -> Path:
        return self.home_path / "data"

    @property
    def signing_key_path(self) -> Path:
        return Path(self.values["signing_key_file"]) if self.values["signing_key_file"] else self.keys_dir / "signing.pem"

    @property
    def master_key_path(self) -> Path:
        return Path(self.values["master_key_file"]) if self.values["master_key_file"] else self.keys_dir / "master.key"

    @property
    def store_url(self) -> str:
        return self.values["database_url"] or f"sqlite:///{self.home_path / 'store.sqlite'}"

    def replace(self, **overrides: Any) -> "Settings":
        merged = dict(self.values)
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in _BY_NAME:
                raise InvalidInput(f"unknown setting '{name}'", code="unknown_setting")
            merged[name] = value
        return Settings(merged)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults, then ``DPS_*`` variables, then explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = env.get(setting.env)
        if raw is None:
            values[setting.name] = setting.default
            continue
        conv = _bool if setting.type is bool else setting.type
        try:
            values[setting.name] = conv(raw)
        except ValueError:
            raise InvalidInput(f"{setting.env} must be a {setting.type.__name__}", code="invalid_setting") from None
    return Settings(values).replace(**overrides)
