"""The one error hierarchy of dp-sandbox.

It lives in the lowest package (``queries/``) so that every other package can
raise and catch the same classes without breaking the direction of
dependencies. ``sandbox.errors`` re-exports it.

Every error carries a stable ``code`` (scripts and the API rely on it), an HTTP
``status``, a human message and structured ``fields``: the names of the tables,
columns, functions, settings and parameters it is about, and budget figures.
The Chinese pages build their sentences from the fields (``web/error_text.py``),
and the JSON API sends them as extra members of its problem details. Neither
messages nor fields ever hold values from sensitive data: callers pass names
and figures, never cells.

This module imports only the standard library: the Python client
(``web/client.py``) rebuilds these classes from an API answer with only httpx
installed (``error_from_problem``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping


class SandboxError(Exception):
    """Root of every error dp-sandbox raises on purpose.

    ``code`` and ``status`` default to the class's; ``status=`` overrides the
    HTTP status of one error (``SandboxError("…", code="no_version", status=409)``).
    Every other keyword is a structured field."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields

    @property
    def kind(self) -> str:
        """The code of the nearest class of this module in the error's class
        chain (``query_rejected`` for every refusal of the SQL front end): what a
        client needs to rebuild the error as the same class."""
        for klass in type(self).__mro__:
            if issubclass(klass, SandboxError) and _KINDS.get(klass.code) is klass:
                return klass.code
        return SandboxError.code

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
    def from_offsets(cls, sql: str, start: int, end: int) -> Span:
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

    def __init__(self, code: str, message: str, span: Span | None = None, **fields: Any) -> None:
        super().__init__(message, code=code, span=span, **fields)

    @property
    def span(self) -> Span | None:
        return self.fields.get("span")


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

    @property
    def key(self) -> str | None:
        return self.fields.get("key")

    @property
    def line(self) -> int | None:
        return self.fields.get("line")


class BudgetExceeded(SandboxError):
    """A query's privacy loss would exceed a budget; refused before it ran."""

    code = "budget_exceeded"
    status = 409

    def __init__(self, message: str, *, level: str, requested: dict[str, Any], remaining: dict[str, Any],
                 **fields: Any) -> None:
        super().__init__(message, level=level, requested=requested, remaining=remaining, **fields)

    @property
    def level(self) -> str:
        return str(self.fields.get("level", ""))

    @property
    def requested(self) -> dict[str, Any]:
        return dict(self.fields.get("requested") or {})

    @property
    def remaining(self) -> dict[str, Any]:
        return dict(self.fields.get("remaining") or {})


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

    @property
    def error_id(self) -> str:
        return str(self.fields.get("error_id", ""))


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


class InternalError(SandboxError):
    """Something failed that no rule foresaw (a bug, a lost disk). The answer
    names only a random ``error_id``; the exception and its traceback are only in
    the log under that id, never in the answer, since they may quote anything."""

    code = "internal_error"
    status = 500
    MESSAGE = "an unexpected error happened; quote error id {error_id} to the operators of this instance"

    def __init__(self, error_id: str) -> None:
        super().__init__(self.MESSAGE.format(error_id=error_id), error_id=error_id)

    @property
    def error_id(self) -> str:
        return str(self.fields.get("error_id", ""))


# every class above, by its own code (``SandboxError.kind``)
_KINDS: dict[str, type[SandboxError]] = {
    klass.code: klass for klass in (
        SandboxError, QueryRejected, PolicyError, BudgetExceeded, InvalidInput, NotFound, Forbidden, Unauthorized,
        Conflict, ExecutionFailed, BadMasterKey, VersionCorrupt, PrivacyError, RunFailed, RateLimited, InternalError)
}

# the class of an answer that names no kind (a proxy's error, a request the web
# layer refused before any service ran), by its HTTP status
_BY_STATUS: dict[int, type[SandboxError]] = {
    400: InvalidInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 429: RateLimited,
    500: InternalError,
}

# the members of an RFC 7807 problem that are not the error's fields
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "kind", "instance"})


def error_from_problem(problem: Mapping[str, Any], status: int) -> SandboxError:
    """The error an API answer describes, as the class the server raised: the
    class from ``kind`` (else from the HTTP status), with the answer's ``code``,
    ``status``, message (``detail``) and every other member as a field. A
    ``span`` comes back as a ``Span``."""
    klass = _KINDS.get(str(problem.get("kind", ""))) or _BY_STATUS.get(status, SandboxError)
    fields = {k: v for k, v in problem.items() if k not in _PROBLEM_MEMBERS}
    span = fields.get("span")
    if isinstance(span, Mapping):
        fields["span"] = Span(start=int(span["start"]), end=int(span["end"]), line=int(span["line"]),
                              column=int(span["column"]))
    error = klass.__new__(klass)
    # the base initialiser: the subclasses' own take their arguments, not a problem's members
    SandboxError.__init__(error, str(problem.get("detail", "")), code=str(problem.get("code") or klass.code),
                          status=status, **fields)
    return error
