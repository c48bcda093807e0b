"""Licence approval modes: how much human approval comes before a query runs.

* ``automatic`` — any query that passes the automatic checks runs within budget.
* ``templates`` — only queries from an approved template run: SQL with named
  parameters (``:city``), each declared with a type and an allowed set or range.
  Values are validated against their domains and bound into the parsed AST as
  literals (never by string formatting), so an injection attempt is simply an
  out-of-domain value.
* ``each`` — every query is a request that the owner (or a reviewer the owner
  delegated) approves; an approved request runs exactly once.

Preview (``check_query``) works in every mode without approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, UTC
from typing import Any

import sqlglot
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from privacy.model import TOLERANCE, PrivacyLoss
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound, QueryRejected
from queries.vocabulary import member_of
from sandbox import audit
from sandbox.persistence.approval_models import ApprovalDelegate, QueryRequest, QueryTemplate
from sandbox.audit import Actor
from sandbox.datasets import get_dataset, latest_version, version_policy
from sandbox.instance import Instance
from sandbox.licences import PENDING_TEMPLATE_STATES, active_licence, close_expired, licence_status
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import Budget, Dataset, Licence, User
from sandbox.persistence.store import existing_row, rowcount
from sandbox.users import actor_for_owner, actor_of, get_user
from sandbox.vocabulary import ApprovalMode, LicenceStatus, Role

PARAM_TYPES = ("string", "integer", "float", "date")
_INT = re.compile(r"^[+-]?\d{1,18}$")
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str
    allowed: tuple[Any, ...] | None = None
    min: Any = None
    max: Any = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParameterSpec:
        allowed = d.get("allowed")
        return cls(d["name"], d["type"], tuple(allowed) if allowed is not None else None, d.get("min"), d.get("max"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.allowed is not None:
            out["allowed"] = list(self.allowed)
        if self.min is not None:
            out["min"], out["max"] = self.min, self.max
        return out

    def convert(self, text: Any) -> Any:
        """The typed value of ``text`` if it lies in the declared domain, else a
        refusal that never echoes the value."""
        raw = str(text).strip()
        try:
            if self.type == "integer":
                if not _INT.match(raw):
                    raise ValueError
                value: Any = int(raw)
            elif self.type == "float":
                if not _FLOAT.match(raw):
                    raise ValueError
                value = float(raw)
            elif self.type == "date":
                value = date.fromisoformat(raw)
            else:
                value = raw
        except ValueError:
            raise InvalidInput(f"parameter '{self.name}' must be a {self.type}", code="parameter_out_of_domain",
                               parameter=self.name) from None
        if self.allowed is not None:
            allowed = {self._typed(a) for a in self.allowed}
            if value not in allowed:
                raise InvalidInput(f"parameter '{self.name}' is not one of its allowed values",
                                   code="parameter_out_of_domain", parameter=self.name)
        if self.min is not None and not (self._typed(self.min) <= value <= self._typed(self.max)):
            raise InvalidInput(f"parameter '{self.name}' is outside its allowed range",
                               code="parameter_out_of_domain", parameter=self.name)
        return value

    def _typed(self, v: Any) -> Any:
        if self.type == "integer":
            return int(v)
        if self.type == "float":
            return float(v)
        if self.type == "date":
            return v if isinstance(v, date) else date.fromisoformat(str(v))
        return str(v)

    def sentinel(self) -> Any:
        """A canonical in-domain value, used to check and fingerprint the template."""
        return self._typed(self.allowed[0]) if self.allowed is not None else self._typed(self.min)

    def validate(self) -> None:
        if not _NAME.match(self.name or ""):
            raise InvalidInput("parameter names are lower-case letters, digits and _", code="invalid_parameter_spec")
        if self.type not in PARAM_TYPES:
            raise InvalidInput(f"parameter type must be one of {', '.join(PARAM_TYPES)}", code="invalid_parameter_spec")
        if self.allowed is None and self.min is None:
            raise InvalidInput(f"parameter '{self.name}' needs an allowed set or a range", code="invalid_parameter_spec")
        if self.type == "string" and self.allowed is None:
            raise InvalidInput(f"string parameter '{self.name}' needs an allowed set", code="invalid_parameter_spec")
        try:
            if self.allowed is not None:
                if not self.allowed or any(str(a).strip() == "" for a in self.allowed):
                    raise ValueError
                [self._typed(a) for a in self.allowed]
            if self.min is not None and self._typed(self.min) > self._typed(self.max):
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidInput(f"parameter '{self.name}' has an invalid domain", code="invalid_parameter_spec") from None


def parse_parameter_spec(text: str) -> ParameterSpec:
    """``name:type:a|b|c`` or ``name:type:lo..hi`` (the CLI's spelling)."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise InvalidInput("a parameter is declared as name:type:a|b|c or name:type:lo..hi",
                           code="invalid_parameter_spec")
    name, ptype, domain = parts
    if ".." in domain and "|" not in domain:
        lo, hi = domain.split("..", 1)
        spec = ParameterSpec(name, ptype, None, lo, hi)
    else:
        spec = ParameterSpec(name, ptype, tuple(v for v in domain.split("|")))
    spec.validate()
    return spec


def _literal(value: Any) -> sqlglot.exp.Expr:
    exp = sqlglot.exp
    if isinstance(value, bool) or value is None:
        raise InvalidInput("unsupported parameter value", code="parameter_out_of_domain")
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def placeholders(sql: str) -> set[str]:
    try:
        trees = [t for t in sqlglot.parse(sql, read="duckdb") if t is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, RecursionError):
        raise QueryRejected("parse_error", "the template's SQL does not parse") from None
    if len(trees) != 1:
        raise QueryRejected("multiple_statements", "a template holds exactly one statement")
    return {p.name for p in trees[0].find_all(sqlglot.exp.Placeholder)}


def bind(sql: str, specs: list[ParameterSpec], values: dict[str, Any]) -> str:
    """Validate ``values`` against ``specs`` and bind them into the parsed
    statement as literals; returns SQL generated from the bound AST."""
    by_name = {s.name: s for s in specs}
    unknown = set(values) - set(by_name)
    if unknown:
        raise InvalidInput(f"unknown parameter(s): {', '.join(sorted(unknown))}", code="unknown_parameter",
                           parameters=sorted(unknown))
    missing = set(by_name) - set(values)
    if missing:
        raise InvalidInput(f"missing parameter(s): {', '.join(sorted(missing))}", code="missing_parameter",
                           parameters=sorted(missing))
    typed = {name: by_name[name].convert(v) for name, v in values.items()}
    tree = sqlglot.parse_one(sql, read="duckdb")
    for node in list(tree.find_all(sqlglot.exp.Placeholder)):
        node.replace(_literal(typed[node.name]))
    return tree.sql(dialect="duckdb", comments=False)


def _check_licence_open(s: Session, licence_id: int) -> None:
    """Refuse a decision under a licence that is revoked or past its end."""
    lic = existing_row(s, Licence, licence_id)
    status = licence_status(lic)
    if status != LicenceStatus.ACTIVE:
        raise Conflict(f"licence {licence_id} is {status}: nothing under it is decided any more",
                       code=f"licence_{status}", licence=licence_id)


def _may_decide(s: Session, user: User, ds: Dataset) -> bool:
    if user.role == Role.ADMIN or user.id == ds.owner_id:
        return True
    return s.execute(select(ApprovalDelegate).where(ApprovalDelegate.dataset_id == ds.id,
                                                    ApprovalDelegate.user_id == user.id)).first() is not None


def delegate(inst: Instance, actor_name: str, dataset: str, reviewer: str) -> None:
    with inst.store.transaction() as s:
        user, ds = get_user(s, actor_name), get_dataset(s, dataset)
        if user.role != Role.ADMIN and user.id != ds.owner_id:
            raise Forbidden("only the dataset's owner delegates approvals")
        rev = get_user(s, reviewer)
        if rev.role != Role.REVIEWER:
            raise InvalidInput(f"'{reviewer}' is not a reviewer", code="not_a_reviewer")
        if s.execute(select(ApprovalDelegate).where(ApprovalDelegate.dataset_id == ds.id,
                                                    ApprovalDelegate.user_id == rev.id)).first() is None:
            s.add(ApprovalDelegate(dataset_id=ds.id, user_id=rev.id))
            audit.append(s, inst.signer, actor_of(user), "approvals.delegate", "dataset", ds.id, {"reviewer": reviewer})


def set_approval_mode(inst: Instance, actor: Actor, licence_id: int, mode: str, reason: str = "") -> None:
    if member_of(ApprovalMode, mode) is None:
        raise InvalidInput(f"approval must be one of {', '.join(ApprovalMode)}", code="invalid_approval_mode")
    with inst.store.transaction() as s:
        lic = s.get(Licence, licence_id)
        if lic is None:
            raise NotFound(f"no licence {licence_id}", code="unknown_licence")
        ds = existing_row(s, Dataset, lic.dataset_id)
        if actor.role != Role.ADMIN and actor.name != existing_row(s, User, ds.owner_id).name:
            raise Forbidden("only the dataset's owner or an admin changes a licence's approval mode")
        old = lic.approval_mode
        lic.approval_mode = mode
        audit.append(s, inst.signer, actor, "licence.set_approval", "licence", lic.id,
                     {"from": old, "to": mode, "reason": reason})


# --- templates ---------------------------------------------------------------

def propose_template(inst: Instance, operator: str, dataset: str, *, title: str, purpose: str, sql: str,
                     parameters: list[ParameterSpec], epsilon_per_run: float, max_runs: int | None = None,
                     max_epsilon: float | None = None, confidential: bool = False) -> int:
    from sandbox.datasets import policy_hash

    if not title.strip() or not purpose.strip():
        raise InvalidInput("a template needs a title and a purpose", code="missing_purpose")
    for spec in parameters:
        spec.validate()
    names = placeholders(sql)
    declared = {p.name for p in parameters}
    if names != declared:
        raise InvalidInput("the declared parameters must be exactly the SQL's :placeholders "
                           f"(in SQL: {', '.join(sorted(names)) or 'none'}; declared: {', '.join(sorted(declared)) or 'none'})",
                           code="parameter_mismatch")
    loss = PrivacyLoss(epsilon_per_run)
    if loss.epsilon <= 0 or (max_runs is not None and max_runs < 1) or (max_epsilon is not None and max_epsilon <= 0):
        raise InvalidInput("ε per run, the run cap and the ε cap must be positive", code="invalid_budget")
    with inst.store.transaction() as s:
        user = get_user(s, operator)
        ds = get_dataset(s, dataset)
        lic = active_licence(s, ds, user)
        cap = min(b.max_epsilon_per_query for b in s.execute(select(Budget).where(
            Budget.dataset_id == ds.id, (Budget.scope == "dataset") | (Budget.licence_id == lic.id))).scalars())
        if not TOLERANCE.within(loss.epsilon, 0.0, PrivacyLoss(cap)):
            raise InvalidInput(f"ε per run exceeds the per-query cap ({cap:g})", code="invalid_budget")
        v = latest_version(s, ds)
        policy = version_policy(v)
        bound = bind(sql, parameters, {p.name: p.sentinel() for p in parameters})
        from sandbox.service import plan_for

        plan = plan_for(inst, bound, v, lic, salt="template", policy=policy)
        t = QueryTemplate(licence_id=lic.id, dataset_id=ds.id, author_id=user.id, title=title.strip(),
                          purpose=purpose.strip(), sql=sql, parameters=[p.to_dict() for p in parameters],
                          epsilon_per_run=loss.epsilon, max_runs=max_runs, max_epsilon=max_epsilon,
                          confidential=confidential, fingerprint=plan.fingerprint, policy_hash=policy_hash(policy))
        s.add(t)
        s.flush()
        audit.append(s, inst.signer, actor_of(user), "template.propose", "template", t.id, {
            "licence": lic.id, "title": t.title, "purpose": t.purpose, "fingerprint": t.fingerprint,
            "epsilon_per_run": t.epsilon_per_run, "max_runs": max_runs, "max_epsilon": max_epsilon,
        })
        notices.on_approval_waiting(s, inst.settings, t)
        return t.id


def decide_template(inst: Instance, approver: str, template_id: int, decision: str, reason: str = "") -> str:
    from sandbox.datasets import policy_hash

    status = {"approve": "approved", "return": "returned", "reject": "rejected"}.get(decision)
    if status is None:
        raise InvalidInput("decision must be approve, return or reject", code="invalid_decision")
    if decision != "approve" and not reason.strip():
        raise InvalidInput("returning or rejecting needs a reason", code="missing_reason")
    close_expired(inst)         # a licence past its end has no pending templates left to decide
    with inst.store.transaction() as s:
        user = get_user(s, approver)
        t = s.get(QueryTemplate, template_id)
        if t is None:
            raise NotFound(f"no template {template_id}", code="unknown_template")
        ds = existing_row(s, Dataset, t.dataset_id)
        if not _may_decide(s, user, ds):
            raise Forbidden("only the dataset's owner or a delegated reviewer decides templates")
        if user.id == t.author_id:
            raise Forbidden("nobody approves their own template", code="self_review")
        if t.status not in PENDING_TEMPLATE_STATES:
            raise Conflict(f"template {template_id} is {t.status}", code="template_not_pending")
        _check_licence_open(s, t.licence_id)
        t.status = status
        t.decided_by = user.id
        t.decision_reason = reason
        t.decided_at = datetime.now(UTC)
        t.policy_hash = policy_hash(version_policy(latest_version(s, ds)))
        audit.append(s, inst.signer, actor_for_owner(s, user, ds.owner_id), f"template.{decision}", "template", t.id,
                     {"reason": reason})
        notices.on_approval_decided(s, inst.settings, t)
        return status


@dataclass(frozen=True, slots=True)
class TemplateView:
    """A query template with its use so far, and the licence it belongs to.
    ``sql`` is None where the public sees a confidential template."""

    id: int
    licence_id: int
    title: str
    purpose: str
    status: str
    epsilon_per_run: float
    max_runs: int | None
    max_epsilon: float | None
    runs_used: int
    epsilon_used: float
    confidential: bool
    parameters: tuple[ParameterSpec, ...]
    decision_reason: str
    sql: str | None
    dataset: str
    operator: str
    approval_mode: str          # the licence's

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "licence_id": self.licence_id, "title": self.title, "purpose": self.purpose,
            "status": self.status, "epsilon_per_run": self.epsilon_per_run, "max_runs": self.max_runs,
            "max_epsilon": self.max_epsilon, "runs_used": self.runs_used, "epsilon_used": self.epsilon_used,
            "confidential": self.confidential, "parameters": [p.to_dict() for p in self.parameters],
            "decision_reason": self.decision_reason}
        if self.sql is not None:
            out["sql"] = self.sql
        out.update(dataset=self.dataset, operator=self.operator, approval_mode=self.approval_mode)
        return out


def _licence_facts(s: Session, licence_id: int) -> tuple[str, str, str]:
    """The dataset, operator and approval mode of a licence."""
    lic = existing_row(s, Licence, licence_id)
    return existing_row(s, Dataset, lic.dataset_id).name, existing_row(s, User, lic.operator_id).name, \
        lic.approval_mode


def template_view(s: Session, t: QueryTemplate, *, public: bool = False) -> TemplateView:
    dataset, operator, mode = _licence_facts(s, t.licence_id)
    return TemplateView(
        id=t.id, licence_id=t.licence_id, title=t.title, purpose=t.purpose, status=t.status,
        epsilon_per_run=t.epsilon_per_run, max_runs=t.max_runs, max_epsilon=t.max_epsilon, runs_used=t.runs_used,
        epsilon_used=t.epsilon_used, confidential=t.confidential,
        parameters=tuple(ParameterSpec.from_dict(p) for p in t.parameters or ()),
        decision_reason=t.decision_reason, sql=None if public and t.confidential else t.sql,
        dataset=dataset, operator=operator, approval_mode=mode)


def list_templates(inst: Instance, *, dataset: str | None = None, licence_id: int | None = None,
                   status: str | None = None, public: bool = False) -> list[TemplateView]:
    with inst.store.read() as s:
        stmt = select(QueryTemplate).order_by(QueryTemplate.id)
        if dataset:
            stmt = stmt.where(QueryTemplate.dataset_id == get_dataset(s, dataset).id)
        if licence_id:
            stmt = stmt.where(QueryTemplate.licence_id == licence_id)
        if status:
            stmt = stmt.where(QueryTemplate.status == status)
        return [template_view(s, t, public=public) for t in s.execute(stmt).scalars()]


# --- requests (``each``) ------------------------------------------------------

def request_query(inst: Instance, operator: str, dataset: str, sql: str, *, purpose: str,
                  epsilon: float) -> int:
    if not purpose.strip():
        raise InvalidInput("a request needs a purpose", code="missing_purpose")
    loss = PrivacyLoss(epsilon)
    with inst.store.transaction() as s:
        user = get_user(s, operator)
        ds = get_dataset(s, dataset)
        lic = active_licence(s, ds, user)
        from sandbox.service import plan_for

        plan = plan_for(inst, sql, latest_version(s, ds), lic, salt="request")
        r = QueryRequest(licence_id=lic.id, dataset_id=ds.id, operator_id=user.id, sql=sql, purpose=purpose.strip(),
                         epsilon=loss.epsilon, fingerprint=plan.fingerprint)
        s.add(r)
        s.flush()
        audit.append(s, inst.signer, actor_of(user), "request.submit", "query_request", r.id,
                     {"licence": lic.id, "fingerprint": plan.fingerprint, "epsilon": loss.epsilon,
                      "purpose": r.purpose})
        notices.on_approval_waiting(s, inst.settings, r)
        return r.id


def decide_request(inst: Instance, approver: str, request_id: int, decision: str, reason: str = "") -> str:
    status = {"approve": "approved", "reject": "rejected"}.get(decision)
    if status is None:
        raise InvalidInput("decision must be approve or reject", code="invalid_decision")
    if decision == "reject" and not reason.strip():
        raise InvalidInput("rejecting needs a reason", code="missing_reason")
    close_expired(inst)         # a licence past its end has no pending requests left to decide
    with inst.store.transaction() as s:
        user = get_user(s, approver)
        r = s.get(QueryRequest, request_id)
        if r is None:
            raise NotFound(f"no query request {request_id}", code="unknown_request")
        if not _may_decide(s, user, existing_row(s, Dataset, r.dataset_id)):
            raise Forbidden("only the dataset's owner or a delegated reviewer decides requests")
        if r.status != "pending":
            raise Conflict(f"request {request_id} is {r.status}", code="request_not_pending")
        _check_licence_open(s, r.licence_id)
        r.status, r.decided_by, r.reason = status, user.id, reason
        r.decided_at = datetime.now(UTC)
        audit.append(s, inst.signer, actor_for_owner(s, user, existing_row(s, Dataset, r.dataset_id).owner_id),
                     f"request.{decision}", "query_request", r.id, {"reason": reason})
        notices.on_approval_decided(s, inst.settings, r)
        return status


@dataclass(frozen=True, slots=True)
class QueryRequestView:
    """A query submitted for approval, and the licence it runs under."""

    id: int
    licence_id: int
    sql: str
    purpose: str
    epsilon: float
    status: str                 # pending | approved | rejected | ran | cancelled
    reason: str
    run_id: str | None
    dataset: str
    operator: str
    approval_mode: str          # the licence's

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "licence_id": self.licence_id, "sql": self.sql, "purpose": self.purpose,
                "epsilon": self.epsilon, "status": self.status, "reason": self.reason, "run_id": self.run_id,
                "dataset": self.dataset, "operator": self.operator, "approval_mode": self.approval_mode}


def list_requests(inst: Instance, *, dataset: str | None = None, status: str | None = None,
                  operator: str | None = None) -> list[QueryRequestView]:
    with inst.store.read() as s:
        stmt = select(QueryRequest).order_by(QueryRequest.id)
        if dataset:
            stmt = stmt.where(QueryRequest.dataset_id == get_dataset(s, dataset).id)
        if status:
            stmt = stmt.where(QueryRequest.status == status)
        if operator:
            stmt = stmt.where(QueryRequest.operator_id == get_user(s, operator).id)
        return [QueryRequestView(r.id, r.licence_id, r.sql, r.purpose, r.epsilon, r.status, r.reason, r.run_id,
                                 *_licence_facts(s, r.licence_id))
                for r in s.execute(stmt).scalars()]


# --- the gate every run passes -------------------------------------------------

@dataclass(frozen=True)
class RunGate:
    """What a licence's approval mode lets run: the SQL, the ε, and the template
    or request whose counters the run consumes."""

    sql: str
    epsilon: float | None
    template_id: int | None = None
    request_id: int | None = None


def gate_run(s: Session, lic: Licence, sql: str | None, epsilon: float | None, *,
             template_id: int | None = None, params: dict[str, Any] | None = None,
             request_id: int | None = None, policy_hash_now: str = "") -> RunGate:
    mode = lic.approval_mode
    if request_id is not None:
        r = s.get(QueryRequest, request_id)
        if r is None or r.licence_id != lic.id:
            raise NotFound(f"no query request {request_id} on your licence", code="unknown_request")
        if r.status == "ran":
            raise Conflict(f"request {request_id} has already run; submit a new request", code="request_already_ran")
        if r.status != "approved":
            raise Conflict(f"request {request_id} is {r.status}, not approved", code="request_not_approved")
        return RunGate(r.sql, r.epsilon, request_id=r.id)
    if template_id is not None:
        t = s.get(QueryTemplate, template_id)
        if t is None or t.licence_id != lic.id:
            raise NotFound(f"no template {template_id} on your licence", code="unknown_template")
        if t.status != "approved":
            raise Conflict(f"template {template_id} is {t.status}, not approved", code="template_not_approved")
        if policy_hash_now and t.policy_hash != policy_hash_now:
            raise Conflict(f"the dataset's policy changed since template {template_id} was approved; "
                           "it must be approved again", code="template_needs_reapproval")
        specs = [ParameterSpec.from_dict(p) for p in t.parameters]
        bound = bind(t.sql, specs, dict(params or {}))
        return RunGate(bound, t.epsilon_per_run, template_id=t.id)
    if params:
        raise InvalidInput("parameters are only given with a template", code="unexpected_parameters")
    if mode == ApprovalMode.TEMPLATES:
        raise Forbidden("this licence runs only approved templates: run one with --template, or propose one",
                        code="template_required")
    if mode == ApprovalMode.EACH:
        raise Forbidden("this licence requires each query to be approved: submit it as a request first",
                        code="approval_required")
    if sql is None:
        raise InvalidInput("no SQL given", code="missing_sql")
    return RunGate(sql, epsilon)


def consume(s: Session, gate: RunGate, run_id: str, loss: PrivacyLoss) -> None:
    """Take the template's or request's allowance for this run, atomically (a
    conditional UPDATE in the reservation's transaction)."""
    if gate.template_id is not None:
        result = s.execute(
            update(QueryTemplate)
            .where(QueryTemplate.id == gate.template_id, QueryTemplate.status == "approved",
                   (QueryTemplate.max_runs.is_(None)) | (QueryTemplate.runs_used + 1 <= QueryTemplate.max_runs),
                   (QueryTemplate.max_epsilon.is_(None))
                   | (QueryTemplate.epsilon_used + loss.epsilon
                      <= QueryTemplate.max_epsilon * TOLERANCE.factor + TOLERANCE.epsilon))
            .values(runs_used=QueryTemplate.runs_used + 1, epsilon_used=QueryTemplate.epsilon_used + loss.epsilon)
            .execution_options(synchronize_session=False))
        if rowcount(result) != 1:
            raise Conflict(f"template {gate.template_id} has used its allowance of runs or ε",
                           code="template_cap_reached")
    if gate.request_id is not None:
        result = s.execute(
            update(QueryRequest)
            .where(QueryRequest.id == gate.request_id, QueryRequest.status == "approved")
            .values(status="ran", run_id=run_id)
            .execution_options(synchronize_session=False))
        if rowcount(result) != 1:
            raise Conflict(f"request {gate.request_id} has already run; submit a new request",
                           code="request_already_ran")
