"""The ``[sharing]`` section of a dataset policy: how departments may receive it.

Sharing is the third supply mode, independent of the opening ``classification``:

```toml
[sharing]
class = "conditional"              # unconditional | conditional | none
columns = ["people.age", "people.city", "visits.*"]
update_frequency = "monthly"       # daily | weekly | monthly | quarterly | yearly | irregular
conditions = ["statutory duty under the Public Health Act", "data protection impact assessment on file"]
```

``columns`` names shareable columns as ``table.column``; ``table.*`` stands for every
column of the table except identifiers (an identifier is shareable only when it is
named). ``conditions`` are the only conditions a provider may impose: a conditional
request names the one it meets, and a refusal names the one it does not. Parsing is
pure: text values in, frozen values out, or ``PolicyError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol
from collections.abc import Iterable

from queries.errors import PolicyError
from queries.vocabulary import Classification, ColumnClass, member_of

_SHARING_KEYS = {"class", "columns", "update_frequency", "conditions"}


class SharingClass(StrEnum):
    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NONE = "none"


class UpdateFrequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    IRREGULAR = "irregular"

    @property
    def days(self) -> int | None:
        """The longest gap between versions that still meets the frequency (None: no promise)."""
        return {"daily": 1, "weekly": 7, "monthly": 31, "quarterly": 92, "yearly": 366}.get(self.value)


@dataclass(frozen=True)
class SharingPolicy:
    """A dataset's sharing class and what it declares. ``columns`` are expanded
    ``table.column`` names, in declaration order."""

    cls: SharingClass = SharingClass.NONE
    columns: tuple[str, ...] = ()
    update_frequency: UpdateFrequency = UpdateFrequency.IRREGULAR
    conditions: tuple[str, ...] = ()

    @property
    def shareable(self) -> bool:
        return self.cls != SharingClass.NONE

    def to_dict(self) -> dict[str, Any]:
        return {"cls": self.cls.value, "columns": list(self.columns),
                "update_frequency": self.update_frequency.value, "conditions": list(self.conditions)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SharingPolicy:
        if not data:
            return cls()
        return cls(SharingClass(data["cls"]), tuple(data.get("columns", ())),
                   UpdateFrequency(data.get("update_frequency", "irregular")), tuple(data.get("conditions", ())))


NOT_SHARED = SharingPolicy()


class _Column(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def cls(self) -> ColumnClass: ...


class _Table(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def columns(self) -> tuple[_Column, ...]: ...


def _fail(message: str, key: str = "sharing") -> PolicyError:
    return PolicyError(message, key=key)


def parse_sharing(raw: Any, tables: Iterable[_Table], classification: Classification) -> SharingPolicy:
    """Validate a ``[sharing]`` table against the policy's tables."""
    if not isinstance(raw, dict):
        raise _fail("[sharing] must be a table")
    for key in raw:
        if key not in _SHARING_KEYS:
            raise _fail(f"unknown key '{key}' (allowed: {', '.join(sorted(_SHARING_KEYS))})", f"sharing.{key}")
    if "class" not in raw:
        raise _fail("missing required key 'class'", "sharing.class")
    klass = member_of(SharingClass, raw["class"])
    if klass is None:
        raise _fail(f"class must be one of {', '.join(SharingClass)}", "sharing.class")
    frequency = member_of(UpdateFrequency, raw.get("update_frequency", UpdateFrequency.IRREGULAR))
    if frequency is None:
        raise _fail(f"update_frequency must be one of {', '.join(UpdateFrequency)}", "sharing.update_frequency")
    names = raw.get("columns", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail("must be a list of 'table.column' strings", "sharing.columns")
    conditions = raw.get("conditions", [])
    if not isinstance(conditions, list) or not all(isinstance(c, str) and c.strip() for c in conditions):
        raise _fail("must be a list of non-empty strings", "sharing.conditions")
    if len(set(conditions)) != len(conditions):
        raise _fail("conditions has duplicates", "sharing.conditions")
    by_table = {t.name: t for t in tables}
    columns: list[str] = []
    for name in names:
        table_name, dot, column = name.partition(".")
        table = by_table.get(table_name)
        if not dot or table is None:
            raise _fail(f"'{name}' is not 'table.column' of a table of this policy", "sharing.columns")
        if column == "*":
            expanded = [f"{table.name}.{c.name}" for c in table.columns if c.cls != ColumnClass.IDENTIFIER]
        elif any(c.name == column for c in table.columns):
            expanded = [name]
        else:
            raise _fail(f"table '{table_name}' has no column '{column}'", "sharing.columns")
        columns.extend(c for c in expanded if c not in columns)
    if klass != SharingClass.NONE:
        if classification == Classification.RESTRICTED:
            raise _fail("a restricted dataset is never supplied: its sharing class must be 'none'", "sharing.class")
        if not columns:
            raise _fail("a shareable dataset must list its shareable columns", "sharing.columns")
    if klass == SharingClass.CONDITIONAL and not conditions:
        raise _fail("a conditional class must declare its conditions", "sharing.conditions")
    if klass == SharingClass.UNCONDITIONAL and conditions:
        raise _fail("an unconditional class cannot carry conditions", "sharing.conditions")
    return SharingPolicy(klass, tuple(columns), frequency, tuple(c.strip() for c in conditions))
