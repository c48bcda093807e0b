"""The public transparency register and the annual disclosure report.

The register lists licences (operator, organisation, dataset, tables, purpose,
term, status), the approved query templates per licence (title, purpose, ε per
run, runs used; the SQL unless the template is confidential), released products, ε spent and remaining per dataset, and
withdrawals. The disclosure report for a year groups, per agency (dataset
publisher) and per operator, the resources authorised, the products released
and their dates; it is written as ``report.json`` and ``report.html`` in a
signed package (``manifest.json`` + ``manifest.sig``, see products.manifest).

Both publish the audit chain's signed head (seq, hash, signature, key id), pin
the signing key by its fingerprint and list the key history (their ``audit``
section); each publication is kept, and ``dp-sandbox audit verify`` checks the
chain against it (or, with ``--published FILE``, against a saved copy).
"""

from __future__ import annotations

import html
import json
import shutil
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from products.lifecycle import iso, now
from products.manifest import sign_package
from queries.errors import InvalidInput
from sandbox.instance import Instance
from sandbox.persistence.models import Budget, Dataset, Licence, Product, ProductVersion, QueryRun, User
from sandbox.sharing.usage import SharingUsage, sharing_usage
from sandbox.vocabulary import HeadPlace, LicenceStatus, ProductState, RunStatus


@dataclass(frozen=True)
class LicenceEntry:
    id: int
    dataset: str
    operator: str
    organisation: str
    purpose: str
    tables: tuple[str, ...] | None
    status: str
    granted_at: str
    expires_at: str
    revoked_at: str | None
    revoke_reason: str


@dataclass(frozen=True)
class ProductEntry:
    id: int
    title: str
    dataset: str
    operator: str
    state: str
    versions: tuple[tuple[int, str, float, float], ...]   # (number, released_at, epsilon, delta)


@dataclass(frozen=True)
class BudgetEntry:
    dataset: str
    epsilon: float
    epsilon_spent: float
    epsilon_remaining: float
    delta: float
    delta_spent: float


@dataclass(frozen=True)
class WithdrawalEntry:
    product_id: int
    title: str
    withdrawn_at: str | None
    reason: str


@dataclass(frozen=True)
class TemplateEntry:
    """An approved query template; ``sql`` is None when the template is confidential."""

    id: int
    licence_id: int
    dataset: str
    title: str
    purpose: str
    epsilon_per_run: float
    runs_used: int
    epsilon_used: float
    parameters: tuple[dict[str, Any], ...]
    sql: str | None


@dataclass(frozen=True)
class TransparencyRegister:
    generated_at: str
    key_id: str
    licences: tuple[LicenceEntry, ...]
    products: tuple[ProductEntry, ...]
    budgets: tuple[BudgetEntry, ...]
    withdrawals: tuple[WithdrawalEntry, ...]
    templates: tuple[TemplateEntry, ...] = ()
    sharing: tuple[SharingUsage, ...] = ()      # usage of sharing between departments, per month
    audit: dict[str, Any] = field(default_factory=dict)   # the published head, pinned key and key history

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def _entries(inst: Instance) -> TransparencyRegister:
    with inst.store.read() as s:
        users = {u.id: u for u in s.execute(select(User)).scalars()}
        datasets = {d.id: d for d in s.execute(select(Dataset)).scalars()}
        licences = tuple(
            LicenceEntry(l.id, datasets[l.dataset_id].name, users[l.operator_id].name,
                         users[l.operator_id].organisation, l.purpose, tuple(l.tables) if l.tables else None,
                         l.status if l.status != LicenceStatus.ACTIVE or l.expires_at is None
                         or iso(l.expires_at) > iso(now()) else LicenceStatus.EXPIRED,
                         iso(l.created_at), iso(l.expires_at), iso(l.revoked_at), l.revoke_reason)
            for l in s.execute(select(Licence).order_by(Licence.id)).scalars())
        released: dict[int, list[tuple[int, str, float, float]]] = {}
        for v in s.execute(select(ProductVersion).where(ProductVersion.released_at.is_not(None))
                           .order_by(ProductVersion.product_id, ProductVersion.number)).scalars():
            assert v.released_at is not None   # the query selects released versions only
            released.setdefault(v.product_id, []).append((v.number, iso(v.released_at), float(v.epsilon),
                                                          float(v.delta)))
        products, withdrawals = [], []
        for p in s.execute(select(Product).order_by(Product.id)).scalars():
            if p.id not in released:
                continue
            products.append(ProductEntry(p.id, p.title, datasets[p.dataset_id].name, users[p.author_id].name,
                                         p.state, tuple(released[p.id])))
            if p.state == ProductState.WITHDRAWN:
                withdrawals.append(WithdrawalEntry(p.id, p.title, iso(p.withdrawn_at), p.withdraw_reason))
        budgets = tuple(
            BudgetEntry(datasets[b.dataset_id].name, b.epsilon, b.spent_epsilon, max(b.epsilon - b.spent_epsilon, 0.0),
                        b.delta, b.spent_delta)
            for b in s.execute(select(Budget).where(Budget.scope == "dataset").order_by(Budget.dataset_id)).scalars())
        templates = _approved_templates(s, datasets)
    return TransparencyRegister(iso(now()), inst.signer.key_id(), licences, tuple(products), budgets,
                                tuple(withdrawals), templates, tuple(sharing_usage(inst)))


def _approved_templates(s, datasets: dict[int, Dataset]) -> tuple[TemplateEntry, ...]:
    """Approved templates per licence, as the public sees them (no SQL when confidential)."""
    from sandbox.persistence.approval_models import QueryTemplate
    from sandbox.approvals import template_view

    out = []
    for t in s.execute(select(QueryTemplate).where(QueryTemplate.status == "approved")
                       .order_by(QueryTemplate.licence_id, QueryTemplate.id)).scalars():
        v = template_view(s, t, public=True)
        out.append(TemplateEntry(v.id, v.licence_id, datasets[t.dataset_id].name, v.title, v.purpose,
                                 float(v.epsilon_per_run), int(v.runs_used or 0), float(v.epsilon_used or 0.0),
                                 tuple(p.to_dict() for p in v.parameters), v.sql))
    return tuple(out)


def _publish_head(inst: Instance, place: HeadPlace) -> dict[str, Any]:
    from sandbox.audit import publish_head

    with inst.store.transaction() as s:
        return publish_head(s, inst.signer, place)


def transparency_register(inst: Instance) -> TransparencyRegister:
    """The public register as of now, with the audit chain's head published."""
    reg = _entries(inst)
    return replace(reg, audit=_publish_head(inst, HeadPlace.REGISTER))


@dataclass(frozen=True)
class DisclosureReport:
    year: int
    generated_at: str
    agencies: tuple[dict[str, Any], ...]
    operators: tuple[dict[str, Any], ...]
    path: Path | None = None
    sharing: tuple[dict[str, Any], ...] = ()    # sharing usage per month, dataset, provider and recipient
    audit: dict[str, Any] = field(default_factory=dict)   # the published head, pinned key and key history

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "disclosure_report", "year": self.year, "generated_at": self.generated_at,
                "agencies": list(self.agencies), "operators": list(self.operators), "sharing": list(self.sharing),
                "audit": self.audit}

    def to_html(self) -> str:
        e = html.escape
        out = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>Disclosure report {self.year}</title>",
               f"<h1>Disclosure report {self.year}</h1><p>Generated {e(self.generated_at)}. "
               "Signed: see manifest.json and manifest.sig beside this file.</p>", "<h2>Agencies</h2>"]
        for a in self.agencies:
            out.append(f"<h3>{e(a['agency'])}</h3><p>Datasets: {e(', '.join(a['datasets']) or '—')}; "
                       f"ε spent in {self.year}: {a['epsilon_spent']:.4g}</p>")
            out.append(_html_table(["Licence", "Operator", "Dataset", "Purpose", "From", "Until", "Status"],
                                   [[l["id"], l["operator"], l["dataset"], l["purpose"], l["granted_at"][:10],
                                     l["expires_at"][:10], l["status"]] for l in a["licences"]]))
            out.append(_html_table(["Product", "Title", "Operator", "Released", "ε"],
                                   [[p["id"], p["title"], p["operator"], p["released_at"][:10], f"{p['epsilon']:.4g}"]
                                    for p in a["products"]]))
        out.append("<h2>Operators</h2>")
        for o in self.operators:
            out.append(f"<h3>{e(o['operator'])} ({e(o['organisation'] or '—')})</h3>"
                       f"<p>ε charged in {self.year}: {o['epsilon_spent']:.4g}</p>")
            out.append(_html_table(["Licence", "Dataset", "Tables", "Purpose", "From", "Until", "Status"],
                                   [[l["id"], l["dataset"], ", ".join(l["tables"] or ["all"]), l["purpose"],
                                     l["granted_at"][:10], l["expires_at"][:10], l["status"]] for l in o["licences"]]))
            out.append(_html_table(["Product", "Title", "Version", "Released"],
                                   [[p["id"], p["title"], p["version"], p["released_at"][:10]] for p in o["products"]]))
        out.append("<h2>Sharing between departments</h2>")
        out.append(_html_table(["Month", "Dataset", "Provider", "Recipient", "Pulls", "Queries", "Rows", "Grants"],
                               [[u["month"], u["dataset"], u["provider"], u["recipient"], u["pulls"], u["queries"],
                                 u["rows"], u["grants"]] for u in self.sharing]))
        if self.audit:
            h, k = self.audit["head"], self.audit["signing_key"]
            out.append(f"<h2>Audit chain</h2><p>Head published {e(h['time'])}: record {h['seq']}, hash "
                       f"<code>{e(h['hash'])}</code>, signed with key {e(h['key_id'])}. Signing key fingerprint "
                       f"(SHA-256): <code>{e(k['fingerprint'])}</code>. Check it with "
                       "<code>dp-sandbox audit verify --published report.json</code>.</p>")
        out.append("</html>")
        return "\n".join(out)


def _html_table(head: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    e = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def _in_year(start: str, end: str | None, year: int) -> bool:
    lo, hi = f"{year}-01-01", f"{year + 1}-01-01"
    return start < hi and (end is None or end >= lo)


def disclosure_report(inst: Instance, year: int, *, out: str | Path | None = None) -> DisclosureReport:
    """Build the year's report and write it as a signed package (default
    ``<home>/register/<year>/``, replaced when run again)."""
    if not isinstance(year, int) or not 1970 <= year <= 9999:
        raise InvalidInput("year must be a four-digit year", code="invalid_year")
    reg = _entries(inst)
    with inst.store.read() as s:
        users = {u.id: u for u in s.execute(select(User)).scalars()}
        datasets = {d.id: d for d in s.execute(select(Dataset)).scalars()}
        runs = s.execute(select(QueryRun.operator_id, QueryRun.dataset_id, QueryRun.epsilon, QueryRun.created_at)
                         .where(QueryRun.status.in_((RunStatus.CHARGED, RunStatus.FAILED)))).all()
    by_name = {d.name: d for d in datasets.values()}
    spent_op: dict[str, float] = {}
    spent_ds: dict[str, float] = {}
    for op_id, ds_id, eps, created in runs:
        if iso(created)[:4] == str(year):
            spent_op[users[op_id].name] = spent_op.get(users[op_id].name, 0.0) + float(eps)
            spent_ds[datasets[ds_id].name] = spent_ds.get(datasets[ds_id].name, 0.0) + float(eps)
    lics = [asdict(l) for l in reg.licences
            if _in_year(l.granted_at, l.revoked_at or l.expires_at, year)]
    prods: list[dict[str, Any]] = [{"id": p.id, "title": p.title, "dataset": p.dataset, "operator": p.operator, "state": p.state,
              "version": n, "released_at": at, "epsilon": eps}
             for p in reg.products for n, at, eps, _ in p.versions if at[:4] == str(year)]

    def agency_of(ds_name: str) -> str:
        d = by_name[ds_name]
        return d.publisher or users[d.owner_id].organisation or users[d.owner_id].name

    agencies: dict[str, dict[str, Any]] = {}
    for d in sorted(datasets.values(), key=lambda d: d.name):
        a = agencies.setdefault(agency_of(d.name), {"agency": agency_of(d.name), "datasets": [], "licences": [],
                                                    "products": [], "epsilon_spent": 0.0})
        a["datasets"].append(d.name)
        a["epsilon_spent"] += spent_ds.get(d.name, 0.0)
    for l in lics:
        agencies[agency_of(l["dataset"])]["licences"].append(l)
    for p in prods:
        agencies[agency_of(p["dataset"])]["products"].append(p)
    operators: dict[str, dict[str, Any]] = {}
    for l in lics:
        operators.setdefault(l["operator"], {"operator": l["operator"], "organisation": l["organisation"],
                                             "licences": [], "products": [],
                                             "epsilon_spent": spent_op.get(l["operator"], 0.0)})["licences"].append(l)
    for p in prods:
        operators.setdefault(p["operator"], {"operator": p["operator"], "organisation": "", "licences": [],
                                             "products": [], "epsilon_spent": spent_op.get(p["operator"], 0.0)})
        operators[p["operator"]]["products"].append(p)
    report = DisclosureReport(year, iso(now()), tuple(json.loads(json.dumps(list(agencies.values())))),
                              tuple(json.loads(json.dumps(sorted(operators.values(), key=lambda o: o["operator"])))),
                              sharing=tuple(u.to_dict() for u in reg.sharing if u.month.startswith(f"{year:04d}-")),
                              audit=_publish_head(inst, HeadPlace.DISCLOSURE_REPORT))
    target = Path(out) if out is not None else inst.home / "register" / str(year)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    try:
        (tmp / "report.json").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        (tmp / "report.html").write_text(report.to_html(), encoding="utf-8")
        sign_package(tmp, {"format": "dp-sandbox/disclosure-report", "format_version": 1, "kind": "disclosure_report",
                           "year": year, "generated_at": report.generated_at}, inst.signer)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return DisclosureReport(report.year, report.generated_at, report.agencies, report.operators, target,
                            report.sharing, report.audit)

