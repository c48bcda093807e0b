"""The one error hierarchy of dp-sandbox.

It lives in the lowest package (``queries/``) so that every other package can
raise and catch the same classes without breaking the direction of
dependencies. ``sandbox.errors`` re-exports it.

Every error carries a stable ``code`` (scripts and the API rely on it), an HTTP
``status`` and a human message. Messages never quote values from sensitive
data: callers pass names of tables, columns, settings and keys, never cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SandboxError(Exception):
    """Root of every error dp-sandbox raises on purpose."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        """The problem-details shape shared by the CLI (``--json``) and the API."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        for key, value in self.fields.items():
            if value is not None:
                body[key] = value.to_dict() if hasattr(value, "to_dict") else value
        return body

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Span:
    """Where in the SQL text a problem is: 0-based character offsets, end exclusive,
    plus the 1-based line and column of ``start``."""

    start: int
    end: int
    line: int
    column: int

    @classmethod
    def from_offsets(cls, sql: str, start: int, end: int) -> "Span":
        start = max(0, min(start, len(sql)))
        end = max(start, min(end, len(sql)))
        line = sql.count("\n", 0, start) + 1
        column = start - (sql.rfind("\n", 0, start) + 1) + 1
        return cls(start=start, end=end, line=line, column=column)

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "line": self.line, "column": self.column}


class QueryRejected(SandboxError):
    """The SQL front end refused a query before anything ran. Costs nothing."""

    code = "query_rejected"
    status = 422

    def __init__(self, code: str, message: str, span: Span | None = None) -> None:
        super().__init__(message, code=code, span=span)
        self.span = span


class PolicyError(SandboxError):
    """A dataset policy file is malformed or does not match its data."""

    code = "policy_invalid"
    status = 422

    def __init__(self, message: str, *, key: str | None = None, line: int | None = None,
                 code: str | None = None) -> None:
        where = ""
        if key:
            where = f" [{key}]"
        if line:
            where += f" (line {line})"
        super().__init__(f"{message}{where}", code=code, key=key, line=line)
        self.key = key
        self.line = line


class BudgetExceeded(SandboxError):
    """A query's privacy loss would exceed a budget; refused before it ran."""

    code = "budget_exceeded"
    status = 409

    def __init__(self, message: str, *, level: str, requested: dict, remaining: dict) -> None:
        super().__init__(message, level=level, requested=requested, remaining=remaining)
        self.level = level
        self.requested = requested
        self.remaining = remaining


class InvalidInput(SandboxError):
    code = "invalid_input"
    status = 400


class NotFound(SandboxError):
    code = "not_found"
    status = 404


class Forbidden(SandboxError):
    code = "forbidden"
    status = 403


class Unauthorized(SandboxError):
    code = "unauthorized"
    status = 401


class Conflict(SandboxError):
    code = "conflict"
    status = 409


class ExecutionFailed(SandboxError):
    """A query failed inside a worker. The message is generic and data-free; the
    detail is only in the restricted log under ``error_id``."""

    code = "execution_failed"
    status = 500

    def __init__(self, message: str, *, error_id: str, code: str | None = None) -> None:
        super().__init__(message, code=code, error_id=error_id)
        self.error_id = error_id


class BadMasterKey(SandboxError):
    """The master key is malformed or is not the key that wrapped this version's data key."""

    code = "bad_master_key"
    status = 500


class VersionCorrupt(SandboxError):
    """A version file failed authentication: damaged, truncated, edited or the wrong data key."""

    code = "version_corrupt"
    status = 500


class PrivacyError(SandboxError):
    """A privacy computation could not be carried out as asked (for instance an
    accuracy target that no ε under the caps can meet)."""

    code = "privacy_error"
    status = 422


class RunFailed(ExecutionFailed):
    """A run that reached the data produced no result. One code and one message
    whatever the cause (engine error, time or memory limit, a failed release), so
    that nothing in the outcome depends on a data value; the cause is logged as a
    code under ``error_id``. The run is charged."""

    code = "run_failed"
    status = 422
    MESSAGE = "The query ran but produced no result; it was charged."

    def __init__(self, error_id: str) -> None:
        super().__init__(f"{self.MESSAGE} (error id {error_id})", error_id=error_id, code="run_failed")


class RateLimited(SandboxError):
    """Too many requests of one kind at once (for instance runs in flight per operator)."""

    code = "rate_limited"
    status = 429
