"""Dataset policies: the owner's declarative description of a dataset.

A policy is written as TOML (see ``docs/policy.md``) and parsed here into frozen
values that the SQL front end, the privacy layer and the runtime all share.
Parsing is pure: it takes text and returns values, or raises ``PolicyError``
naming the key and, where it can, the line.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from typing import Any
from collections.abc import Iterable

from queries.errors import PolicyError
from queries.sharing_policy import _SHARING_KEYS, SharingPolicy, parse_sharing  # noqa: F401 (re-exported)
from queries.vocabulary import Classification, ColumnClass, ColumnType, Engine, member_of

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_DATASET_KEYS = {
    "name", "title", "description", "owner", "classification", "privacy_unit",
    "publisher", "max_groups_per_unit", "keywords", "licence", "engine",
}
_BUDGET_KEYS = {"epsilon", "delta", "max_epsilon_per_query", "max_delta_per_query", "min_epsilon_per_query"}
_TABLE_KEYS = {
    "source", "rows_per_unit", "max_rows_per_unit", "max_groups_per_unit", "max_total_rows_per_unit", "public",
    "description", "columns", "rows_bound",
}
_COLUMN_KEYS = {"class", "min", "max", "domain", "type", "description", "source"}


@dataclass(frozen=True)
class ColumnPolicy:
    """One column: its class, and the facts the owner declares about it.

    ``min``/``max`` are clamping bounds (policy facts, never read from the data);
    ``domain`` is a public list of the values the column can take: group keys with
    a domain are released in full without partition selection. ``type`` is filled
    in from the data when a version is ingested. ``source`` is the file's header
    the column reads when it is not ``name`` (``"Money spent (euros)"``): SQL,
    downloads and products know the column by ``name`` only.
    """

    name: str
    cls: ColumnClass
    min: float | None = None
    max: float | None = None
    domain: tuple[Any, ...] | None = None
    type: ColumnType | None = None
    description: str = ""
    source: str | None = None

    @property
    def header(self) -> str:
        """The column's header in the source file."""
        return self.source if self.source is not None else self.name

    @property
    def bounded(self) -> bool:
        return self.min is not None and self.max is not None


@dataclass(frozen=True)
class TablePolicy:
    """One table. ``public`` tables (lookup tables) hold no privacy unit and may be
    joined freely. ``rows_per_unit = 1`` proves each unit has at most one row, so
    no bounding work is needed; otherwise ``max_rows_per_unit`` bounds a unit's
    contribution in each group and ``max_groups_per_unit`` the groups it reaches;
    ``max_total_rows_per_unit`` bounds its rows across all groups together.
    ``rows_bound`` is the owner's public bound on the table's total number of
    rows (checked at ingestion): what a run may read and hold is estimated from
    it, never from the exact count (``queries.resources``); None: not declared."""

    name: str
    source: str
    columns: tuple[ColumnPolicy, ...]
    rows_per_unit: int | None = None
    max_rows_per_unit: int = 1
    max_groups_per_unit: int | None = None
    public: bool = False
    description: str = ""
    max_total_rows_per_unit: int | None = None
    rows_bound: int | None = None

    def column(self, name: str) -> ColumnPolicy | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class BudgetPolicy:
    """The owner's total budget for the dataset, the per-query cap and the per-query
    floor (None: the instance's default floor)."""

    epsilon: float
    delta: float
    max_epsilon_per_query: float
    max_delta_per_query: float
    min_epsilon_per_query: float | None = None


@dataclass(frozen=True)
class DatasetPolicy:
    name: str
    title: str
    owner: str
    classification: Classification
    privacy_unit: str | None
    tables: tuple[TablePolicy, ...]
    budget: BudgetPolicy | None = None
    description: str = ""
    publisher: str = ""
    max_groups_per_unit: int = 1
    keywords: tuple[str, ...] = field(default_factory=tuple)
    sharing: SharingPolicy | None = None     # the [sharing] section; None: not shared
    engine: Engine | None = None             # where its bounded SQL runs; None: the instance's DPS_ENGINE

    def table(self, name: str) -> TablePolicy | None:
        for table in self.tables:
            if table.name == name:
                return table
        return None

    def with_types(self, types: dict[str, dict[str, str]]) -> DatasetPolicy:
        """A copy with column types filled in from ingested data."""
        tables = []
        for table in self.tables:
            known = types.get(table.name, {})
            cols = tuple(replace(c, type=ColumnType(known[c.name]) if c.name in known else c.type)
                         for c in table.columns)
            tables.append(replace(table, columns=cols))
        return replace(self, tables=tuple(tables))

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable form (stored with each dataset version)."""
        from dataclasses import asdict

        data = asdict(self)
        for table in data["tables"]:             # absent, not null, so older policies keep their hash
            if table.get("max_total_rows_per_unit") is None:
                table.pop("max_total_rows_per_unit", None)
            if table.get("rows_bound") is None:
                table.pop("rows_bound", None)
        for table in data["tables"]:             # "source" only where a header is mapped: older hashes hold
            for col in table["columns"]:
                if col.get("source") is None:
                    col.pop("source", None)
        data.pop("sharing")
        if data.get("engine") is None:           # absent, not null, so older policies keep their hash
            data.pop("engine", None)
        if self.sharing is not None:             # absent, not null, so older policies keep their hash
            data["sharing"] = self.sharing.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetPolicy:
        tables = tuple(
            TablePolicy(
                **{k: v for k, v in t.items() if k != "columns"},
                columns=tuple(
                    ColumnPolicy(**{**c, "cls": ColumnClass(c["cls"]),
                                    "type": ColumnType(c["type"]) if c.get("type") is not None else None,
                                    "domain": tuple(c["domain"]) if c.get("domain") is not None else None})
                    for c in t["columns"]
                ),
            )
            for t in data["tables"]
        )
        budget = BudgetPolicy(**data["budget"]) if data.get("budget") else None
        rest = {k: v for k, v in data.items() if k not in ("tables", "budget", "keywords", "sharing")}
        sharing = SharingPolicy.from_dict(data["sharing"]) if data.get("sharing") else None
        rest["classification"] = Classification(rest["classification"])
        if rest.get("engine") is not None:
            rest["engine"] = Engine(rest["engine"])
        return cls(**rest, tables=tables, budget=budget, keywords=tuple(data.get("keywords", ())), sharing=sharing)


def _line_of(text: str, *keys: str) -> int | None:
    """Best-effort line number of the last key in a dotted path, searched after the
    section that holds it."""
    lines = text.splitlines()
    start = 0
    if len(keys) >= 2:
        section = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(k) for k in keys[:2]) + r"\s*\]")
        for i, line in enumerate(lines):
            if section.match(line):
                start = i
                break
    last = keys[-1]
    pat = re.compile(r"(^|[\s.{,])" + re.escape(last) + r"\s*=")
    for i in range(start, len(lines)):
        if pat.search(lines[i]):
            return i + 1
    return None


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, message: str, *path: str) -> PolicyError:
        return PolicyError(message, key=".".join(path) or None, line=_line_of(self.text, *path) if path else None)

    def unknown_keys(self, got: Iterable[str], allowed: set[str], *path: str) -> None:
        for key in got:
            if key not in allowed:
                raise self.fail(f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})", *path, key)

    def number(self, value: Any, *path: str, positive: bool = False, integer: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail("must be a number", *path)
        if integer and not isinstance(value, int):
            raise self.fail("must be an integer", *path)
        if not math.isfinite(value):
            raise self.fail("must be finite", *path)
        if positive and value <= 0:
            raise self.fail("must be greater than 0", *path)
        if value < 0:
            raise self.fail("must not be negative", *path)
        return value

    def string(self, value: Any, *path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail("must be a non-empty string", *path)
        return value

    def name(self, value: Any, *path: str) -> str:
        value = self.string(value, *path)
        if not NAME_PATTERN.match(value):
            raise self.fail("must be a lower-case name of letters, digits and _ starting with a letter", *path)
        return value


def parse_policy(text: str) -> DatasetPolicy:
    """Parse and validate a policy's TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PolicyError(f"not valid TOML: {exc}", line=int(match.group(1)) if match else None) from None
    r = _Reader(text)
    r.unknown_keys(data, {"dataset", "budget", "tables", "sharing"})
    ds = data.get("dataset")
    if not isinstance(ds, dict):
        raise PolicyError("missing [dataset] section", key="dataset")
    r.unknown_keys(ds, _DATASET_KEYS, "dataset")
    for key in ("name", "owner", "classification"):
        if key not in ds:
            raise PolicyError(f"missing required key '{key}'", key=f"dataset.{key}")
    name = r.name(ds["name"], "dataset", "name")
    owner = r.string(ds["owner"], "dataset", "owner")
    classification = member_of(Classification, ds["classification"])
    if classification is None:
        raise r.fail(f"classification must be one of {', '.join(Classification)}", "dataset", "classification")
    unit = ds.get("privacy_unit")
    if classification == Classification.CONDITIONAL and not unit:
        raise PolicyError("a conditional dataset must name its privacy_unit", key="dataset.privacy_unit")
    if unit is not None:
        unit = r.name(unit, "dataset", "privacy_unit")
    max_groups = ds.get("max_groups_per_unit", 1)
    r.number(max_groups, "dataset", "max_groups_per_unit", positive=True, integer=True)
    engine = None
    if "engine" in ds:
        engine = member_of(Engine, ds["engine"])
        if engine is None:
            raise r.fail(f"must be one of {', '.join(Engine)}", "dataset", "engine")

    budget = None
    if "budget" in data:
        b = data["budget"]
        if not isinstance(b, dict):
            raise PolicyError("[budget] must be a table", key="budget")
        r.unknown_keys(b, _BUDGET_KEYS, "budget")
        if "epsilon" not in b:
            raise PolicyError("missing required key 'epsilon'", key="budget.epsilon")
        eps = float(r.number(b["epsilon"], "budget", "epsilon", positive=True))
        delta = float(r.number(b.get("delta", 0.0), "budget", "delta"))
        if delta >= 1:
            raise r.fail("must be below 1", "budget", "delta")
        per_q = float(r.number(b.get("max_epsilon_per_query", eps), "budget", "max_epsilon_per_query", positive=True))
        if per_q > eps:
            raise r.fail("must not exceed budget.epsilon", "budget", "max_epsilon_per_query")
        per_qd = float(r.number(b.get("max_delta_per_query", delta), "budget", "max_delta_per_query"))
        if per_qd > delta:
            raise r.fail("must not exceed budget.delta", "budget", "max_delta_per_query")
        floor = None
        if "min_epsilon_per_query" in b:
            floor = float(r.number(b["min_epsilon_per_query"], "budget", "min_epsilon_per_query", positive=True))
            if floor > per_q:
                raise r.fail("must not exceed budget.max_epsilon_per_query", "budget", "min_epsilon_per_query")
        budget = BudgetPolicy(eps, delta, per_q, per_qd, floor)
    elif classification == Classification.CONDITIONAL:
        raise PolicyError("a conditional dataset needs a [budget] section", key="budget")

    raw_tables = data.get("tables")
    if not isinstance(raw_tables, dict) or not raw_tables:
        raise PolicyError("a dataset needs at least one [tables.NAME] section", key="tables")
    tables = tuple(_parse_table(r, tname, t, unit) for tname, t in raw_tables.items())
    if unit and not any(t.column(unit) for t in tables if not t.public):
        raise PolicyError(f"the privacy unit '{unit}' is not a column of any table", key="dataset.privacy_unit")
    keywords = ds.get("keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise r.fail("must be a list of strings", "dataset", "keywords")
    return DatasetPolicy(
        name=name,
        title=str(ds.get("title", name)),
        owner=owner,
        classification=classification,
        privacy_unit=unit,
        tables=tables,
        budget=budget,
        description=str(ds.get("description", "")),
        publisher=str(ds.get("publisher", "")),
        max_groups_per_unit=int(max_groups),
        keywords=tuple(keywords),
        sharing=parse_sharing(data["sharing"], tables, classification) if "sharing" in data else None,
        engine=engine,
    )


def _parse_table(r: _Reader, tname: str, t: Any, unit: str | None) -> TablePolicy:
    path = ("tables", tname)
    r.name(tname, *path)
    if not isinstance(t, dict):
        raise PolicyError("must be a table", key=".".join(path))
    r.unknown_keys(t, _TABLE_KEYS, *path)
    if "source" not in t:
        raise PolicyError("missing required key 'source'", key=f"tables.{tname}.source")
    source = r.string(t["source"], *path, "source")
    if not source.lower().endswith((".csv", ".parquet")):
        raise r.fail("source must be a .csv or .parquet file", *path, "source")
    if "/" in source.replace("\\", "/").lstrip("./") and ".." in source:
        raise r.fail("source must stay inside the policy's folder", *path, "source")
    public = t.get("public", False)
    if not isinstance(public, bool):
        raise r.fail("must be true or false", *path, "public")
    rows_per_unit = t.get("rows_per_unit")
    if rows_per_unit is not None:
        r.number(rows_per_unit, *path, "rows_per_unit", positive=True, integer=True)
    max_rows = r.number(t.get("max_rows_per_unit", rows_per_unit or 1), *path, "max_rows_per_unit",
                        positive=True, integer=True)
    if rows_per_unit is not None and max_rows > rows_per_unit:
        max_rows = rows_per_unit
    max_groups = t.get("max_groups_per_unit")
    if max_groups is not None:
        r.number(max_groups, *path, "max_groups_per_unit", positive=True, integer=True)
    max_total = t.get("max_total_rows_per_unit")
    if max_total is not None:
        r.number(max_total, *path, "max_total_rows_per_unit", positive=True, integer=True)
        if public:
            raise r.fail("a public table has no privacy unit to bound", *path, "max_total_rows_per_unit")
        max_total = int(min(max_total, rows_per_unit)) if rows_per_unit is not None else int(max_total)
    rows_bound = t.get("rows_bound")
    if rows_bound is not None:
        rows_bound = int(r.number(rows_bound, *path, "rows_bound", positive=True, integer=True))
    raw_cols = t.get("columns")
    if not isinstance(raw_cols, dict) or not raw_cols:
        raise PolicyError("a table needs at least one column", key=f"tables.{tname}.columns")
    columns = []
    headers: dict[str, str] = {}
    for cname, c in raw_cols.items():
        cpath = (*path, "columns", cname)
        if not isinstance(cname, str) or not NAME_PATTERN.match(cname):
            raise r.fail("must be a lower-case name of letters, digits and _ starting with a letter; to read a "
                         f"file's header '{cname}', name the column so and map it: "
                         f"columns.some_name = {{ source = \"{cname}\", class = ... }}", *cpath)
        if not isinstance(c, dict):
            raise r.fail("must be an inline table like { class = \"quasi\" }", *cpath)
        r.unknown_keys(c, _COLUMN_KEYS, *cpath)
        col_source = c.get("source")
        if col_source is not None:
            col_source = r.string(col_source, *cpath, "source")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in col_source):
                raise r.fail("must not hold control characters", *cpath, "source")
        header = cname if col_source is None else col_source
        if header in headers:
            raise r.fail(f"the file's header '{header}' is already read by column '{headers[header]}'", *cpath)
        headers[header] = cname
        cls = member_of(ColumnClass, c.get("class"))
        if cls is None:
            raise r.fail(f"class must be one of {', '.join(ColumnClass)}", *cpath)
        lo, hi = c.get("min"), c.get("max")
        if (lo is None) != (hi is None):
            raise r.fail("declare both min and max, or neither", *cpath)
        if lo is not None:
            for k, v in (("min", lo), ("max", hi)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise r.fail(f"{k} must be a finite number", *cpath)
            if lo > hi:
                raise r.fail("min is greater than max", *cpath)
        domain = c.get("domain")
        if domain is not None:
            if not isinstance(domain, list) or not domain:
                raise r.fail("domain must be a non-empty list", *cpath)
            if len(set(map(repr, domain))) != len(domain):
                raise r.fail("domain has duplicate values", *cpath)
            domain = tuple(domain)
        ctype = c.get("type")
        if ctype is not None:
            ctype = member_of(ColumnType, ctype)
            if ctype is None:
                raise r.fail(f"type must be one of {', '.join(ColumnType)}", *cpath)
        columns.append(ColumnPolicy(
            name=cname, cls=cls, min=lo, max=hi, domain=domain, type=ctype,
            description=str(c.get("description", "")), source=col_source,
        ))
    table = TablePolicy(
        name=tname, source=source, columns=tuple(columns), rows_per_unit=rows_per_unit,
        max_rows_per_unit=int(max_rows), max_groups_per_unit=max_groups, public=public,
        description=str(t.get("description", "")), max_total_rows_per_unit=max_total, rows_bound=rows_bound,
    )
    if not public and unit:
        col = table.column(unit)
        if col is None:
            raise PolicyError(
                f"table '{tname}' has no privacy-unit column '{unit}' (mark lookup tables public = true)",
                key=f"tables.{tname}.columns",
            )
        if col.cls != ColumnClass.IDENTIFIER:
            raise r.fail("the privacy unit column must have class 'identifier'", *path, "columns", unit)
    if public and any(col.cls in (ColumnClass.IDENTIFIER, ColumnClass.SENSITIVE) for col in columns):
        raise PolicyError("a public table cannot hold identifier or sensitive columns",
                          key=f"tables.{tname}.columns")
    return table
