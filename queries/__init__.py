"""The SQL front end: SQL text + dataset policy → checked, bounded plan (pure)."""

from __future__ import annotations

from queries.errors import QueryRejected
from queries.model import BoundedPlan
from queries.plan import plan_query
from queries.policy import DatasetPolicy


def fingerprint(sql: str, policy: DatasetPolicy) -> str:
    """The plan's fingerprint: equal for queries with the same meaning."""
    return plan_query(sql, policy).fingerprint


__all__ = ["plan_query", "fingerprint", "BoundedPlan", "QueryRejected"]
