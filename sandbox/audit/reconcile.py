"""State reconciliation: the store must follow from the audit chain.

The hash chain proves that no record was changed or removed; it says nothing about
the tables the records describe. ``reconcile_state`` replays the records in order and
recomputes what the store should hold:

* each budget level: its totals (``licence.grant``, ``licence.top_up``,
  ``budget.set``), its spent and reserved ε, δ and ρ and its query count
  (``query.reserve`` moves a run's loss into ``reserved`` on every level it names;
  ``query.run`` / ``query.fail`` release it and charge what was spent, or give the
  run back its place under the query cap);
* each ledger entry (one ``reserve`` and one ``charge`` or ``cancel`` per run and level);
* each licence: status, end date, approval mode, accounting, dataset and operator
  (``licence.grant``, ``licence.revoke``, ``licence.extend``, ``licence.set_approval``);
* each user's role and active flag (``user.add``, ``user.set_role``,
  ``user.deactivate``, ``user.reactivate``).

It then compares every recomputed value with the stored one and reports each
difference with its object: ``budget 3: spent_epsilon 0.2 in the store, 0.5 from
the chain``. Rows the chain never created, and rows it created that the store lost,
are reported too. Only the store's index from a dataset to its budget row is used to
place records that name a dataset rather than a budget (``budget.set``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from privacy.model import PrivacyLoss
from sandbox.instance import Instance
from sandbox.ledger import QueryLoss
from sandbox.persistence.models import AuditRecord, Budget, Dataset, LedgerEntry, Licence, User
from sandbox.vocabulary import LicenceStatus

COUNTERS = ("spent_epsilon", "spent_delta", "spent_rho", "reserved_epsilon", "reserved_delta", "reserved_rho",
            "queries_used")
TOTALS = ("epsilon", "delta", "max_epsilon_per_query", "max_delta_per_query", "min_epsilon_per_query",
          "max_queries", "rho", "rho_delta")


@dataclass(frozen=True)
class Mismatch:
    """One value the store holds that the chain does not give (or the other way round)."""

    object_type: str            # budget | ledger | licence | user
    object_id: str
    field: str
    store: Any                  # None: the store has no such row
    chain: Any                  # None: the chain never created the row

    def message(self) -> str:
        if self.store is None:
            return f"{self.object_type} {self.object_id}: {self.field} in the chain, missing from the store"
        if self.chain is None:
            return f"{self.object_type} {self.object_id}: {self.field} in the store, not in the chain"
        return (f"{self.object_type} {self.object_id}: {self.field} {_shown(self.store)} in the store, "
                f"{_shown(self.chain)} from the chain")

    def to_dict(self) -> dict[str, Any]:
        return {"object_type": self.object_type, "object_id": self.object_id, "field": self.field,
                "store": self.store, "chain": self.chain, "message": self.message()}


@dataclass(frozen=True)
class StateReport:
    """Whether the store follows from the chain, what was checked, and every mismatch."""

    ok: bool
    checked: dict[str, int]
    mismatches: tuple[Mismatch, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": dict(self.checked),
                "mismatches": [m.to_dict() for m in self.mismatches]}

    def lines(self) -> list[str]:
        counts = ", ".join(f"{n} {kind}" for kind, n in self.checked.items())
        if self.ok:
            return [f"state follows from the chain: {counts}"]
        return [f"state DIFFERS from the chain in {len(self.mismatches)} place(s) ({counts} checked):",
                *(f"  {m.message()}" for m in self.mismatches)]


def _shown(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    d = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


@dataclass
class _Level:
    """A budget level as the chain builds it. ``totals`` holds only what a record set."""

    zcdp: bool | None = None                  # None: no record said (a dataset level is never zCDP)
    totals: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0.0))
    created: bool = False                     # a record created it (licence.grant)


@dataclass
class _Replay:
    budgets: dict[int, _Level] = field(default_factory=dict)
    ledger: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    ledger_amounts: dict[tuple[int, str, str], tuple[float, float]] = field(default_factory=dict)
    licences: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, tuple[list[int], QueryLoss]] = field(default_factory=dict)

    def level(self, budget_id: int) -> _Level:
        return self.budgets.setdefault(budget_id, _Level())

    def move(self, budget_id: int, which: str, q: QueryLoss, sign: int, zcdp_in_store: bool) -> None:
        lv = self.level(budget_id)
        zcdp = lv.zcdp if lv.zcdp is not None else zcdp_in_store
        c = lv.counters
        if zcdp:
            c[f"{which}_rho"] += sign * q.rho
            c[f"{which}_delta"] += sign * q.pure_delta
        else:
            c[f"{which}_epsilon"] += sign * q.loss.epsilon
            c[f"{which}_delta"] += sign * q.loss.delta

    def entry(self, budget_id: int, run_id: str, kind: str, loss: PrivacyLoss) -> None:
        key = (budget_id, run_id, kind)
        self.ledger[key] += 1
        self.ledger_amounts[key] = (loss.epsilon, loss.delta)


def _replay(s: Session, records: list[AuditRecord]) -> _Replay:
    st = _Replay()
    # the store's index from a dataset / licence to its budget row, and which rows keep ρ
    dataset_budget: dict[int, int] = {}
    licence_budget: dict[int, int] = {}
    zcdp_rows: set[int] = set()
    for b in s.execute(select(Budget)).scalars():
        if b.scope == "dataset":
            dataset_budget[b.dataset_id] = b.id
        elif b.licence_id is not None:
            licence_budget[b.licence_id] = b.id
        if b.rho is not None:
            zcdp_rows.add(b.id)

    for rec in records:
        p = rec.payload or {}
        action = rec.action
        if action == "user.add":
            st.users[int(rec.object_id)] = {"name": p.get("name"), "role": p.get("role"), "active": True}
        elif action.startswith("user.") and rec.object_type == "user":
            u = st.users.setdefault(int(rec.object_id), {"name": p.get("name")})
            if action == "user.set_role" and "to" in p:
                u["role"] = p["to"]
            if isinstance(p.get("active"), bool):
                u["active"] = p["active"]
        elif action == "licence.grant":
            lid = int(rec.object_id)
            st.licences[lid] = {"status": LicenceStatus.ACTIVE.value, "expires_at": _when(p.get("expires")),
                                "approval_mode": p.get("approval"), "accounting": p.get("accounting"),
                                "dataset": p.get("dataset"), "operator": p.get("operator")}
            bid = p.get("budget", licence_budget.get(lid))
            if bid is not None:
                lv = st.level(int(bid))
                lv.created = True
                lv.zcdp = p.get("accounting") == "zcdp"
                lv.totals.update({"epsilon": p.get("epsilon"), "delta": p.get("delta"),
                                  "min_epsilon_per_query": p.get("min_epsilon_per_query"),
                                  "max_queries": p.get("max_queries")})
                for key in ("max_epsilon_per_query", "max_delta_per_query", "rho", "rho_delta"):
                    if key in p:
                        lv.totals[key] = p[key]
                st.licences[lid]["budget"] = int(bid)
        elif action == "licence.revoke":
            st.licences.setdefault(int(rec.object_id), {})["status"] = LicenceStatus.REVOKED.value
        elif action == "licence.extend":
            st.licences.setdefault(int(rec.object_id), {})["expires_at"] = _when(p.get("to"))
        elif action == "licence.set_approval":
            st.licences.setdefault(int(rec.object_id), {})["approval_mode"] = p.get("to")
        elif action == "licence.top_up":
            bid = p.get("budget", licence_budget.get(int(rec.object_id)))
            if bid is not None:
                st.level(int(bid)).totals.update({k: p[k] for k in ("epsilon", "delta", "rho", "rho_delta",
                                                                    "max_epsilon_per_query", "max_delta_per_query")
                                                  if k in p})
        elif action == "budget.set" and rec.object_type == "dataset":
            bid = dataset_budget.get(int(rec.object_id))
            if bid is not None:
                lv = st.level(bid)
                lv.zcdp = False
                lv.totals.update({k: p[k] for k in ("epsilon", "delta", "max_epsilon_per_query",
                                                    "max_delta_per_query", "min_epsilon_per_query") if k in p})
        elif action == "query.reserve":
            run_id = rec.object_id
            levels = p.get("levels")
            if levels is None:      # a record written before runs named their levels
                ds_id = _dataset_id(s, p.get("dataset"))
                levels = [x for x in (dataset_budget.get(ds_id) if ds_id is not None else None,
                                      licence_budget.get(int(p.get("licence") or 0))) if x is not None]
            reserved = (QueryLoss.from_payload(p["reserved"]) if "reserved" in p
                        else QueryLoss(PrivacyLoss(float(p.get("epsilon") or 0.0), float(p.get("delta") or 0.0))))
            levels = [int(x) for x in levels]
            st.runs[run_id] = (levels, reserved)
            for bid in levels:
                st.move(bid, "reserved", reserved, 1, bid in zcdp_rows)
                st.level(bid).counters["queries_used"] += 1
                st.entry(bid, run_id, "reserve", reserved.loss)
        elif action in ("query.run", "query.fail"):
            run_id = rec.object_id
            if run_id not in st.runs:
                continue
            levels, reserved = st.runs.pop(run_id)
            charged = bool(p.get("charged", float(p.get("epsilon") or 0.0) > 0))
            settled = QueryLoss.from_payload(p["settled"]) if "settled" in p else (
                QueryLoss(PrivacyLoss(float(p.get("epsilon") or 0.0), float(p.get("delta") or 0.0)))
                if charged else reserved)
            for bid in levels:
                st.move(bid, "reserved", reserved, -1, bid in zcdp_rows)
                if charged:
                    st.move(bid, "spent", settled, 1, bid in zcdp_rows)
                    st.entry(bid, run_id, "charge", settled.loss)
                else:
                    st.level(bid).counters["queries_used"] -= 1
                    st.entry(bid, run_id, "cancel", reserved.loss)
    return st


def _dataset_id(s: Session, name: Any) -> int | None:
    if not name:
        return None
    return s.execute(select(Dataset.id).where(Dataset.name == str(name))).scalar_one_or_none()


def reconcile_session(s: Session) -> StateReport:
    """Reconcile inside an open read session (see the module's docstring)."""
    records = list(s.execute(select(AuditRecord).order_by(AuditRecord.seq)).scalars())
    st = _replay(s, records)
    out: list[Mismatch] = []

    def differ(kind: str, oid: Any, name: str, stored: Any, expected: Any) -> None:
        if not _same(stored, expected):
            out.append(Mismatch(kind, str(oid), name, stored, expected))

    # budgets
    stored_budgets = {b.id: b for b in s.execute(select(Budget).order_by(Budget.id)).scalars()}
    for bid, b in stored_budgets.items():
        lv = st.budgets.get(bid)
        if lv is None:
            lv = _Level()                     # no record touched it: nothing spent, nothing reserved
            if b.scope == "licence":
                out.append(Mismatch("budget", str(bid), f"licence {b.licence_id}'s budget row", "present", None))
                continue
        for name in COUNTERS:
            stored = getattr(b, name)
            stored = 0.0 if stored is None else stored
            differ("budget", bid, name, stored, lv.counters[name])
        for name, expected in lv.totals.items():
            if expected is not None or name in ("rho", "max_queries"):
                differ("budget", bid, name, getattr(b, name), expected)
    for bid, lv in st.budgets.items():
        if bid not in stored_budgets and (lv.created or any(v for v in lv.counters.values())):
            out.append(Mismatch("budget", str(bid), "budget row", None, "created"))

    # ledger entries
    stored_entries: Counter[tuple[int, str, str]] = Counter()
    amounts: dict[tuple[int, str, str], tuple[float, float]] = {}
    for e in s.execute(select(LedgerEntry).order_by(LedgerEntry.id)).scalars():
        key = (e.budget_id, e.run_id, e.kind)
        stored_entries[key] += 1
        amounts[key] = (e.epsilon, e.delta)
    for key in sorted(set(stored_entries) | set(st.ledger)):
        bid, run_id, kind = key
        oid = f"budget {bid} run {run_id}"
        n_store, n_chain = stored_entries.get(key, 0), st.ledger.get(key, 0)
        if n_store < n_chain:
            out.append(Mismatch("ledger", oid, f"{kind} entry", None, "recorded"))
        elif n_store > n_chain:
            out.append(Mismatch("ledger", oid, f"{kind} entry", "present", None))
        else:
            (se, sd), (ce, cd) = amounts[key], st.ledger_amounts[key]
            differ("ledger", oid, f"{kind} epsilon", se, ce)
            differ("ledger", oid, f"{kind} delta", sd, cd)

    # licences
    names = {u.id: u.name for u in s.execute(select(User)).scalars()}
    datasets = {d.id: d.name for d in s.execute(select(Dataset)).scalars()}
    stored_licences = {lic.id: lic for lic in s.execute(select(Licence).order_by(Licence.id)).scalars()}
    for lid, lic in stored_licences.items():
        want = st.licences.get(lid)
        if want is None or "dataset" not in want:
            out.append(Mismatch("licence", str(lid), "licence row", "present", None))
            continue
        differ("licence", lid, "status", lic.status, want.get("status"))
        stored_end, chain_end = _when(lic.expires_at), want.get("expires_at")
        if stored_end != chain_end:
            out.append(Mismatch("licence", str(lid), "expires_at", stored_end.isoformat() if stored_end else None,
                                chain_end.isoformat() if chain_end else "unset"))
        for name in ("approval_mode", "accounting"):
            if want.get(name) is not None:
                differ("licence", lid, name, getattr(lic, name), want[name])
        differ("licence", lid, "dataset", datasets.get(lic.dataset_id), want.get("dataset"))
        differ("licence", lid, "operator", names.get(lic.operator_id), want.get("operator"))
    for lid, want in st.licences.items():
        if lid not in stored_licences and "dataset" in want:
            out.append(Mismatch("licence", str(lid), "licence row", None, "granted"))

    # users
    stored_users = {u.id: u for u in s.execute(select(User).order_by(User.id)).scalars()}
    for uid, u in stored_users.items():
        want = st.users.get(uid)
        if want is None or "role" not in want:
            out.append(Mismatch("user", u.name, "user row", "present", None))
            continue
        differ("user", u.name, "role", u.role, want["role"])
        differ("user", u.name, "active", bool(u.active), want.get("active", True))
    for uid, want in st.users.items():
        if uid not in stored_users and "role" in want:
            out.append(Mismatch("user", str(want.get("name") or uid), "user row", None, "added"))

    checked = {"budgets": len(stored_budgets), "ledger entries": sum(stored_entries.values()),
               "licences": len(stored_licences), "users": len(stored_users)}
    return StateReport(not out, checked, tuple(out))


def reconcile_state(inst: Instance) -> StateReport:
    """Recompute budgets, ledger entries, licences and users from the audit records
    and report every value the store holds differently."""
    with inst.store.read() as s:
        if s.get_bind().dialect.name == "postgresql":
            # one snapshot for the records and the tables (SQLite's read already holds the write lock)
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        return reconcile_session(s)
