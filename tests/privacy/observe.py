"""What an operator, a reviewer or an admin can observe about one run, apart from
the noisy numbers, gathered through the real service or the real HTTP API.

An :class:`Observation` has a ``view``: a plain, comparable structure in which
every noisy value and interval is a placeholder, random identifiers and times are
placeholders, the condition's city literal (SQL text) is ``<city>`` and the plan
fingerprint is ``<fingerprint>`` once it is checked to be the data-free preview's.
Everything else is kept exactly: success or failure, error code, HTTP status,
message, span, the result's field set, columns, row count, key values in order,
notes, mechanisms, cost, the stored run (get_run, list_runs), the audit records
and ledger entries of the run, how the budget moved, and what reached the log
directory and the Python loggers. ``texts`` holds the raw text of responses and
log lines, to search for T's values.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .planted import DATASET, OPERATOR

NOISY = "<noisy>"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX = re.compile(r"\b[0-9a-f]{8,}\b")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}([.,]\d+)?(Z|[+-]\d{2}:?\d{2})?")
LOGGERS = ("dp_sandbox",)


@dataclass
class Observation:
    view: dict[str, Any]
    texts: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``ok`` or the error code of the run."""
        return self.view["run"]["outcome"]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name} {record.levelname} {text}")


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two views differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in {'T' if k in a else 'F'}" for k in sorted(set(a) ^ set(b), key=str)]
        for k in sorted(set(a) & set(b), key=str):
            out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: T={a!r} F={b!r}"]


class Observer:
    """Runs queries as operator1 on the planted dataset and observes them."""

    def __init__(self, inst, client=None, token: str | None = None) -> None:
        self.inst, self.client, self.token = inst, client, token
        self.log_dir = inst.home / "logs"
        self._handler = _Collect()
        self._levels: dict[str, int] = {}

    # -- logging capture (every level of the project's loggers, restored by close)
    def open(self) -> Observer:
        logging.getLogger().addHandler(self._handler)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        return self

    def close(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    # -- normalisation
    def _scrub(self, value: Any, city: str, fingerprint: str | None) -> Any:
        """Placeholders for what may differ between two runs of the same SQL text:
        ids, times, the condition's city literal, the (checked) fingerprint."""
        if isinstance(value, dict):
            return {self._scrub(k, city, fingerprint): self._scrub(v, city, fingerprint) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._scrub(v, city, fingerprint) for v in value]
        if isinstance(value, str):
            if fingerprint:
                value = value.replace(fingerprint, "<fingerprint>")
            value = _UUID.sub("<uuid>", value)
            value = _TIME.sub("<time>", value)
            value = _HEX.sub("<hex>", value)
            return value.replace(city, "<city>")
        return value

    def _mask_result(self, result: dict[str, Any], key_flags: list[bool] | None, city: str,
                     fingerprint: str | None) -> dict[str, Any]:
        """A released result with noisy cells and intervals replaced; key cells kept
        exactly (never scrubbed: a released 'Planted' key would be a leak)."""
        out: dict[str, Any] = {}
        for name, value in result.items():
            if name == "rows":
                flags = key_flags if key_flags is not None and all(len(r) == len(key_flags) for r in value) else None
                out[name] = [[cell if flags is not None and flags[i] else NOISY for i, cell in enumerate(row)]
                             for row in value]
                if flags is None:
                    out["key_flags_mismatch"] = True
            elif name == "intervals":
                out[name] = [[NOISY for _ in row] for row in value]
            else:
                out[name] = self._scrub(value, city, fingerprint)
        return out

    # -- snapshots of what is stored and logged
    def _logs(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.log_dir)): p.read_bytes()
                for p in sorted(self.log_dir.rglob("*")) if p.is_file()} if self.log_dir.exists() else {}

    def _store_state(self) -> dict[str, Any]:
        from sandbox.persistence.models import AuditRecord, Budget, QueryRun

        with self.inst.store.read() as s:
            runs = set(s.execute(select(QueryRun.id)).scalars())
            seq = s.execute(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1)).scalar() or 0
            budgets = {(b.scope, b.licence_id): _budget_numbers(b) for b in s.execute(select(Budget)).scalars()}
        return {"runs": runs, "seq": seq, "budgets": budgets}

    def _snapshot(self) -> dict[str, Any]:
        return {"store": self._store_state(), "logs": self._logs(), "pylog": len(self._handler.lines)}

    def _since(self, before: dict[str, Any], city: str, fingerprint: str | None, key_flags) -> tuple[dict, list[str]]:
        """Stored runs, audit records, ledger entries, budget moves and log lines
        that appeared since ``before``."""
        from sandbox.persistence.models import AuditRecord, Budget, LedgerEntry
        from sandbox.service import get_run, list_runs

        after = self._store_state()
        new_runs = sorted(after["runs"] - before["store"]["runs"])
        texts: list[str] = []
        stored = []
        # the runs' JSON forms: what the API answers and the CLI prints
        listed = {r.run_id: r.to_dict() for r in list_runs(self.inst, OPERATOR, DATASET) if r.run_id in new_runs}
        for run_id in new_runs:
            run = get_run(self.inst, OPERATOR, run_id).to_dict()
            texts.append(repr(run))
            masked = {k: v for k, v in run.items() if k != "result"}
            masked["result"] = (self._mask_result(run["result"], key_flags, city, fingerprint)
                                if run["result"] is not None else None)
            stored.append({"get_run": self._scrub(masked, city, fingerprint),
                           "list_runs": self._scrub(listed.get(run_id), city, fingerprint)})
        with self.inst.store.read() as s:
            records = s.execute(select(AuditRecord).where(AuditRecord.seq > before["store"]["seq"])
                                .order_by(AuditRecord.seq)).scalars().all()
            audit = [{"actor": r.actor, "role": r.role, "action": r.action, "object_type": r.object_type,
                      "object_id": r.object_id, "payload": r.payload} for r in records]
            scopes = {b.id: b.scope for b in s.execute(select(Budget)).scalars()}
            entries = s.execute(select(LedgerEntry).where(LedgerEntry.run_id.in_(new_runs))
                                .order_by(LedgerEntry.id)).scalars().all() if new_runs else []
            ledger = [{"scope": scopes[e.budget_id], "kind": e.kind, "epsilon": e.epsilon, "delta": e.delta}
                      for e in entries]
        texts += [repr(a) for a in audit]
        moved = {f"{k[0]}:{k[1]}": [round(x - y, 9) for x, y in zip(v, before["store"]["budgets"][k])]
                 for k, v in after["budgets"].items()}
        logs, log_texts = self._log_delta(before, city)
        texts += log_texts
        view = {"stored": stored, "audit": self._scrub(audit, city, fingerprint), "ledger": ledger,
                "budget_moved": moved, "logs": logs}
        return view, texts

    def _log_delta(self, before: dict[str, Any], city: str) -> tuple[dict[str, list[str]], list[str]]:
        """New log lines per file (and of the Python loggers), with ids and times
        replaced: what was logged must not depend on data."""
        now = self._logs()
        delta: dict[str, list[str]] = {}
        raw: list[str] = []
        for name, content in now.items():
            old = before["logs"].get(name, b"")
            new = content[len(old):] if content.startswith(old) else content
            if new:
                text = new.decode("utf-8", "replace")
                raw.append(text)
                delta[name] = [_shape(line, city) for line in text.splitlines()]
        lines = self._handler.lines[before["pylog"]:]
        raw += lines
        if lines:
            delta["python-loggers"] = [_shape(line, city) for line in lines]
        return delta, raw

    # -- the service
    def _preview_service(self, sql: str, epsilon: float, version: int | None):
        from queries.errors import SandboxError
        from sandbox.service import check_query

        try:
            checked = check_query(self.inst, OPERATOR, DATASET, sql, epsilon=epsilon, version=version)
        except SandboxError as exc:
            return None, {"outcome": exc.code, "status": exc.status, "error": exc.to_dict()}
        return checked.plan, {"outcome": "ok", "checked": checked.to_dict()}

    def service(self, sql: str, city: str, *, epsilon: float = 1.0, version: int | None = None) -> Observation:
        from queries.errors import SandboxError
        from sandbox.service import run_query

        plan, preview = self._preview_service(sql, epsilon, version)
        fingerprint = plan.fingerprint if plan is not None else None
        key_flags = [o.is_key for o in plan.outputs] if plan is not None else None
        before = self._snapshot()
        texts: list[str] = []
        try:
            result = run_query(self.inst, OPERATOR, DATASET, sql, epsilon=epsilon, version=version).to_dict()
            texts.append(repr(result))
            run = {"outcome": "ok", "type": "QueryResult",
                   "result": self._mask_result(result, key_flags, city, fingerprint)}
        except SandboxError as exc:
            texts.append(repr(exc.to_dict()))
            run = {"outcome": exc.code, "type": type(exc).__name__, "status": exc.status,
                   "error": self._scrub(exc.to_dict(), city, fingerprint)}
        except Exception as exc:    # never expected: the service raises SandboxError only
            texts.append(repr(exc))
            run = {"outcome": f"exception:{type(exc).__name__}", "type": type(exc).__name__}
        after, more = self._since(before, city, fingerprint, key_flags)
        texts += more
        view = {"preview": self._scrub(preview, city, fingerprint), "run": run, **after}
        return Observation(view, texts)

    # -- the HTTP API (Flask test client of the real app)
    def _api(self, method: str, path: str, **kw):
        return self.client.open(path, method=method, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def _budget_api(self) -> list[list[float]]:
        body = self._api("GET", f"/api/v1/budget/{DATASET}").get_json()["data"]
        return [[lvl["spent"]["epsilon"], lvl["spent"]["delta"], lvl["reserved"]["epsilon"],
                 lvl["reserved"]["delta"], lvl.get("queries", {}).get("used", 0)] for lvl in body]

    def http(self, sql: str, city: str, *, epsilon: float = 1.0) -> Observation:
        request = {"dataset": DATASET, "sql": sql, "epsilon": epsilon}
        texts: list[str] = []
        pre = self._api("POST", "/api/v1/queries/preview", json=request)
        texts.append(pre.get_data(as_text=True))
        checked = pre.get_json()["data"] if pre.status_code == 200 else None
        fingerprint = checked["plan"]["fingerprint"] if checked else None
        keys = {k["name"] for k in checked["plan"]["group_keys"]} if checked else set()
        preview = {"status": pre.status_code, "body": self._scrub(pre.get_json(), city, fingerprint)}
        before = self._snapshot()
        total = self._api("GET", f"/api/v1/queries?dataset={DATASET}&per_page=1").get_json()["meta"]["total"]
        budget = self._budget_api()
        resp = self._api("POST", "/api/v1/queries", json=request)
        texts.append(resp.get_data(as_text=True))
        body = resp.get_json()
        key_flags = None
        if resp.status_code < 300:
            data = dict(body["data"])
            key_flags = [column in keys for column in data["columns"]]
            body = {**body, "data": self._mask_result(data, key_flags, city, fingerprint)}
        run = {"outcome": "ok" if resp.status_code < 300 else body.get("code"), "status": resp.status_code,
               "mimetype": resp.mimetype,
               "headers": sorted(h for h in resp.headers.keys() if h.lower() not in ("content-length", "date")),
               "body": self._scrub(body, city, fingerprint)}
        listing = self._api("GET", f"/api/v1/queries?dataset={DATASET}&per_page=5").get_json()
        new = listing["meta"]["total"] - total
        stored = []
        for entry in listing["data"][:max(new, 0)]:
            detail = self._api("GET", f"/api/v1/queries/{entry['run_id']}")
            texts.append(detail.get_data(as_text=True))
            got = detail.get_json()
            if detail.status_code == 200 and got["data"].get("result") is not None:
                got = {**got, "data": {**got["data"],
                                       "result": self._mask_result(got["data"]["result"], key_flags, city,
                                                                   fingerprint)}}
            stored.append({"list": self._scrub(entry, city, fingerprint), "status": detail.status_code,
                           "detail": self._scrub(got, city, fingerprint)})
        moved = [[round(x - y, 9) for x, y in zip(a, b)] for a, b in zip(self._budget_api(), budget)]
        logs, log_texts = self._log_delta(before, city)
        texts += log_texts
        view = {"preview": preview, "run": run, "new_runs": new, "stored": stored, "budget_moved": moved,
                "logs": logs}
        return Observation(view, texts)


def _budget_numbers(b) -> list[float]:
    return [b.spent_epsilon, b.spent_delta, b.reserved_epsilon, b.reserved_delta,
            float(getattr(b, "queries_used", 0) or 0)]


def _shape(line: str, city: str) -> str:
    """A log line with its time, ids and fingerprints replaced; every other
    character (numbers included) is compared exactly."""
    line = _UUID.sub("<uuid>", line.replace(city, "<city>"))
    line = _TIME.sub("<time>", line)
    return _HEX.sub("<hex>", line)


def leaked(texts: list[str], canaries: tuple[str, ...]) -> list[str]:
    """The canaries (T's distinctive values) found in any of ``texts``. A numeric
    canary counts only as a whole number: ``987654`` or ``987654.0``, not the same
    digits inside a longer noisy number such as ``79687.57098765433``, which a
    release prints by chance."""
    patterns = {c: re.compile(rf"(?<![\d.]){re.escape(c)}(?!\d)") if c.isdigit() else None for c in canaries}
    found = set()
    for c, pattern in patterns.items():
        if any((pattern.search(t) is not None) if pattern else (c in t) for t in texts):
            found.add(c)
    return sorted(found)
