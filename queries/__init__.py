"""The SQL front end: SQL text + dataset policy → checked, bounded plan (pure).

Importing the package loads nothing heavy: ``queries.errors`` is the error
hierarchy that the Python client shares with the server, and it must import
with only the standard library. The front end (sqlglot) loads on first use of
a name below.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# The submodule ``queries.fingerprint`` (stdlib only) is loaded before the
# function of the same name below is defined, so that the function, not the
# submodule, is what ``queries.fingerprint`` names.
import_module("queries.fingerprint")

if TYPE_CHECKING:
    from queries.errors import QueryRejected
    from queries.model import BoundedPlan
    from queries.plan import plan_query
    from queries.policy import DatasetPolicy

_LAZY = {"plan_query": "queries.plan", "BoundedPlan": "queries.model", "QueryRejected": "queries.errors",
         "DatasetPolicy": "queries.policy"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'queries' has no attribute {name!r}")


def fingerprint(sql: str, policy: DatasetPolicy) -> str:
    """The plan's fingerprint: equal for queries with the same meaning."""
    from queries.plan import plan_query

    return plan_query(sql, policy).fingerprint


__all__ = ["plan_query", "fingerprint", "BoundedPlan", "QueryRejected"]
