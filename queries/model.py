"""The checked, bounded plan: what ``queries/`` hands to the runtime and to ``privacy/``.

Contract between packages (keep it stable; add fields with defaults):

* ``bounded_sql`` is generated from the checked AST and runs in plain DuckDB. It
  reads the dataset's tables as ``ds.<table>`` (the runtime attaches a dataset
  version as catalog or schema ``ds``) and takes its parameters by name
  (``$salt`` and any template parameters) from ``params``.
* It returns **one row per group** (one row in all when there are no group
  keys): the group-key columns named by ``GroupKey.column``, then the exact
  bounded measures named in each ``Aggregate.columns``, then, when
  ``partition_selection`` is set, ``units_column`` (the number of distinct
  privacy units contributing to the group).
* Each privacy unit contributes to at most ``max_groups`` groups and, within a
  group, at most ``max_rows`` rows; every summed value is already clamped to
  ``[lower, upper]`` and NaN/±inf are mapped to NULL and dropped in the SQL.
* No value in the data can make it fail: every user scalar in it is total
  (``queries.total``), ``user_scalars`` lists their exact text, and the
  generated arithmetic cannot overflow (integer sums are HUGEINT, counts BIGINT,
  other sums DOUBLE; bound magnitudes are checked when planning).
* ``outputs`` are the operator's select list, as SQL over group-key names and
  aggregate names; ``having``/``order_by``/``limit`` are post-processing over
  the output names. None of it touches data: it runs on the noisy table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping

from queries.vocabulary import AggregateKind


@dataclass(frozen=True)
class PublicTableStats:
    """Exact statistics of a public table (public data, computed at ingestion):
    its row count and, per column, the largest number of rows sharing one value.
    The planner bounds the fan-out of joins with public tables from them."""

    rows: int
    max_rows_per_value: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupKey:
    """A GROUP BY key. ``domain`` is the public list of its values when the policy
    (or the expression over a column with a domain) makes it public; ``None``
    means the keys must pass private partition selection."""

    name: str                       # the operator-visible output name
    column: str                     # its column in the bounded SQL result (g0, g1, ...)
    domain: tuple[Any, ...] | None = None
    sql: str = ""                   # the key expression, for display


@dataclass(frozen=True)
class Aggregate:
    """One private aggregate, as the operator wrote it (``AVG(cost)``), with the
    exact measures the bounded SQL computes for it."""

    name: str                       # a0, a1, ... (referenced by OutputColumn.expr)
    kind: AggregateKind
    columns: dict[str, str]         # role -> column of the bounded SQL result
    lower: float = 0.0              # clamp bounds of each contributed value
    upper: float = 1.0
    integer: bool = True            # values (and so sums) are integers
    quantile: float | None = None   # q for a quantile (0.5 for MEDIAN)
    candidates: tuple[float, ...] = ()  # quantile candidates, ascending
    sql: str = ""                   # the aggregate as written, for display
    max_rows: int | None = None     # per-(unit, group) row limit for this aggregate,
                                    # when it differs from the plan's (e.g. pre-aggregated)
    counts_rows: bool = False       # COUNT(*): every row counts, NULLs included


@dataclass(frozen=True)
class OutputColumn:
    name: str
    expr: str                       # SQL over group-key names (GroupKey.name) and aggregate names (a0...)
    aggregates: tuple[str, ...] = ()  # the aggregates it uses (empty for a plain key)
    is_key: bool = False


@dataclass(frozen=True)
class BoundedPlan:
    dataset: str
    tables: tuple[str, ...]
    group_keys: tuple[GroupKey, ...]
    aggregates: tuple[Aggregate, ...]
    outputs: tuple[OutputColumn, ...]
    bounded_sql: str
    max_groups: int
    max_rows: int
    fingerprint: str
    params: dict[str, Any] = field(default_factory=dict)
    partition_selection: bool = False
    units_column: str | None = None
    having: str | None = None
    order_by: str | None = None
    limit: int | None = None
    fan_out: int = 1                # join fan-out already folded into max_rows
    sql: str = ""                   # the operator's text (never executed)
    notes: tuple[str, ...] = ()     # human-readable planning notes (bounding skipped, ...)
    user_scalars: tuple[str, ...] = ()  # text of every (total) user scalar in bounded_sql
    public_fan_out: int = 1         # bound on the rows public joins make of one private row
    max_total: int | None = None    # rows of one unit across all groups (None: max_rows · max_groups)

    def summary(self) -> dict[str, Any]:
        """What the release manifest and the preview show of the plan."""
        return {
            "dataset": self.dataset,
            "tables": list(self.tables),
            "group_keys": [{"name": k.name, "public_domain": k.domain is not None} for k in self.group_keys],
            "aggregates": [
                {"name": a.name, "kind": a.kind, "sql": a.sql, "lower": a.lower, "upper": a.upper,
                 "quantile": a.quantile}
                for a in self.aggregates
            ],
            "max_groups": self.max_groups,
            "max_rows": self.max_rows,
            **({"max_total": self.max_total} if self.max_total is not None else {}),
            "partition_selection": self.partition_selection,
            "fingerprint": self.fingerprint,
        }
