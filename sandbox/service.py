"""The query service: checked SQL → reserved budget → worker → noise → charge.

The order is the architecture's: parse and plan (refusals cost nothing), reserve
the whole query's privacy loss atomically, execute the bounded SQL in a worker,
release with OpenDP, then store the noisy result, turn the reservation into a
charge and write the audit record in one transaction — only then return it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any, NoReturn, cast

from sqlalchemy import Table, func, insert, select, update

import privacy
from privacy.model import CostEstimate, NoisyRelease, PrivacyLoss
from privacy.vocabulary import Accounting, AccountingOption
from queries import plan_query
from queries.parse import whole_span
from queries.errors import (ExecutionFailed, Forbidden, InvalidInput, NotFound, QueryRejected, RateLimited,
                            RunFailed, SandboxError)
from queries.model import BoundedPlan
from queries.policy import DatasetPolicy
from queries.resources import ResourceNeed, check_resources, estimate_need
from queries.vocabulary import Classification, Engine
from sandbox import audit, ledger
from sandbox.persistence.store import existing_row, lock_for_update, rowcount
from sandbox.datasets import get_dataset, get_version
from sandbox.execution.engine import check_runnable, engine_of
from sandbox.instance import Instance
from sandbox.licences import active_licence
from sandbox.persistence.models import Budget, Dataset, DatasetVersion, Licence, QueryRun, User
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import Role, RunStatus

log = logging.getLogger("dp_sandbox.service")
_RUNS = cast(Table, QueryRun.__table__)
_INSERT_RUN = insert(_RUNS)


@dataclass(frozen=True)
class CheckedQuery:
    plan: BoundedPlan
    cost: CostEstimate
    licence_id: int
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "dataset_version": self.version, "licence_id": self.licence_id,
                "cost": self.cost.to_dict(), "plan": self.plan.summary(), "notes": list(self.plan.notes)}


@dataclass(frozen=True)
class QueryResult:
    run_id: str
    release: NoisyRelease
    dataset_version: int

    def to_dict(self) -> dict[str, Any]:
        r = self.release.to_dict()
        return {"ok": True, "run_id": self.run_id, "dataset_version": self.dataset_version,
                "columns": r["columns"], "rows": r["rows"], "intervals": r["intervals"], "alpha": r["alpha"],
                "cost": {"epsilon": r["epsilon"], "delta": r["delta"]},
                "mechanisms": r["mechanisms"], "notes": r["notes"]}


def _number(value: object, what: str, code: str) -> float:
    """A finite, positive, normal float (no subnormal: it would vanish in noise scales)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{what} must be a number", code=code)
    v = float(value)
    if not math.isfinite(v) or v <= 0 or v < 2.2250738585072014e-308:
        raise InvalidInput(f"{what} must be a finite number greater than 0", code=code)
    return v


def _requested_loss(inst: Instance, plan: BoundedPlan, budgets: list[Budget], lic: Licence,
                    epsilon: float | None, target: tuple[str, float] | None = None) -> PrivacyLoss:
    """The (ε, δ) a run asks for: the given ε, or the smallest ε that meets an
    accuracy target (capped by the per-query cap, raised to the floor), or the
    default ε. An ε under the floor is refused before anything is reserved."""
    per_q_eps = min(b.max_epsilon_per_query for b in budgets)
    per_q_delta = min(b.max_delta_per_query for b in budgets)
    floor = ledger.epsilon_floor(budgets, min(inst.settings.min_epsilon_per_query, per_q_eps))
    needs_delta = plan.partition_selection or lic.accounting == Accounting.ZCDP
    delta = per_q_delta if needs_delta else 0.0
    if target is not None:
        if epsilon is not None:
            raise InvalidInput("give either an ε or an accuracy target, not both", code="invalid_budget")
        output, half_width = target
        half_width = _number(half_width, "the target half-width", "invalid_target")
        if output not in {o.name for o in plan.outputs}:
            raise InvalidInput(f"the query has no output column '{output}'", code="unknown_output", output=output)
        epsilon = max(privacy.epsilon_for_width(plan, output, half_width, delta=delta, alpha=inst.settings.alpha,
                                                cap=per_q_eps, accounting=Accounting(lic.accounting)), floor)
    if epsilon is None:   # the default: never the whole per-query cap in one run
        epsilon = max(min(inst.settings.default_epsilon, per_q_eps / 2), floor)
    loss = PrivacyLoss(_number(epsilon, "epsilon", "invalid_budget"), 0.0)
    ledger.check_floor(loss, floor)
    return PrivacyLoss(loss.epsilon, delta)


def _check_concurrency(inst: Instance, s, user: User) -> None:
    """Refuse a run while the operator already has ``max_concurrent_runs`` in flight,
    so one licence cannot hold every worker. The operator's row is locked first, so
    concurrent requests from many processes count each other."""
    if s.get_bind().dialect.name != "sqlite":     # SQLite: BEGIN IMMEDIATE already serialises writers
        s.execute(lock_for_update(select(User.id).where(User.id == user.id), s)).all()
    # a run whose process died stays "reserved": only recent ones count
    since = datetime.now(UTC) - timedelta(seconds=inst.settings.query_timeout_s + 180)
    in_flight = s.execute(select(func.count()).select_from(QueryRun).where(
        QueryRun.operator_id == user.id, QueryRun.status == RunStatus.RESERVED, QueryRun.created_at >= since)).scalar_one()
    limit = inst.settings.max_concurrent_runs
    if in_flight >= limit:
        raise RateLimited(f"you already have {in_flight} run(s) in flight; at most {limit} at once",
                          code="too_many_runs", limit=limit)


def response_deadline(elapsed: float, floor_s: float, ratio: float) -> float:
    """The first point of the grid ``floor_s · ratio^k`` at or after ``elapsed`` (in
    seconds): a run answers then, so its response time shows only which grid
    interval its duration fell in. ``ratio`` ≤ 1 keeps only the floor."""
    if floor_s <= 0:
        return elapsed
    point = floor_s
    if ratio > 1:
        while point < elapsed:
            point *= ratio
    return max(point, elapsed)


def _answer_at(inst: Instance, started: float, *, failed: bool) -> None:
    st = inst.settings
    elapsed = time.monotonic() - started
    # a failed run answers at the wall-clock limit whatever failed, and when
    deadline = response_deadline(max(elapsed, st.query_timeout_s) if failed else elapsed,
                                 st.min_response_ms / 1000.0, st.response_grid_ratio)
    pause = deadline - (time.monotonic() - started)
    if pause > 0:
        time.sleep(pause)


def plan_for(inst: Instance, sql: str, v: DatasetVersion, lic: Licence, *, salt: str,
             policy=None) -> BoundedPlan:
    """Plan ``sql`` on version ``v`` under licence ``lic``, with the cost bounds of the
    instance: public-table fan-out from the version's public statistics."""
    return _salted(_template_plan(*plan_key(inst, sql, v, lic, policy)), salt)


def plan_key(inst: Instance, sql: str, v: DatasetVersion, lic: Licence, policy=None) -> tuple:
    """What a plan depends on: the SQL, the policy, the licence's tables, the public
    statistics and the fan-out bound; the salt only enters the plan's parameters.
    So a plan is made once per key (LRU, per process: :func:`_template_plan`) and
    each run gets a copy with its own salt. A refusal is not cached."""
    from sandbox.datasets import public_stats_of

    public_stats_of(v, inst)                        # computed and set on v if it has none yet
    policy_text = _policy_text(v) if policy is None else json.dumps(policy.to_dict(), sort_keys=True, default=str)
    return (sql, policy_text, frozenset(lic.tables) if lic.tables else None,
            json.dumps(v.public_stats or {}, sort_keys=True), inst.settings.max_fan_out)


@functools.lru_cache(maxsize=512)
def _need_of(key: tuple) -> ResourceNeed:
    """The resource need of a cached plan: from the plan, the policy's row bounds and
    the public tables' sizes, all in the key (``queries.resources``)."""
    from sandbox.datasets import typed_public_stats

    return estimate_need(_template_plan(*key), _policy_of(key[1])[0], typed_public_stats(json.loads(key[3])))


def _check_resources(inst: Instance, engine: Engine, plan: BoundedPlan, key: tuple) -> None:
    """Refuse, before anything is reserved, a plan whose need (from public facts
    alone) exceeds the engine's limits: ``resources_exceeded`` (DuckDB's memory and
    spill space), ``rows_read_exceeded`` (Spark), ``spark_unsupported`` and
    ``spark_missing_*``."""
    need = _need_of(key)
    check_runnable(engine, plan.bounded_sql, need, inst.settings.spark_max_rows_read)
    if engine is Engine.DUCKDB:
        check_resources(need, memory_mb=inst.settings.worker_memory_mb, spill_mb=inst.settings.worker_spill_mb)


def _salted(template: BoundedPlan, salt: str) -> BoundedPlan:
    return replace(template, params={**template.params, "salt": salt})


def _policy_text(v: DatasetVersion) -> str:
    return json.dumps(v.policy, sort_keys=True, default=str)


@functools.lru_cache(maxsize=64)
def _policy_of(policy_text: str) -> tuple[DatasetPolicy, str]:
    """A stored policy (its canonical JSON) as the typed policy, and its hash."""
    from sandbox.datasets import policy_hash

    policy = DatasetPolicy.from_dict(json.loads(policy_text))
    return policy, policy_hash(policy)


@functools.lru_cache(maxsize=512)
def _template_plan(sql: str, policy_text: str, tables: frozenset[str] | None, stats_text: str,
                   max_fan_out: int) -> BoundedPlan:
    from sandbox.datasets import typed_public_stats

    return plan_query(sql, _policy_of(policy_text)[0], tables=tables, salt="",
                      public_stats=typed_public_stats(json.loads(stats_text)), max_fan_out=max_fan_out)


@functools.lru_cache(maxsize=512)
def _cost_of(plan_key: tuple, loss: PrivacyLoss, accounting: AccountingOption, alpha: float) -> CostEstimate:
    """The cost estimate of a cached plan (see :func:`_template_plan`) at ``loss``:
    its OpenDP design depends on the plan and the loss alone, never on the salt."""
    return privacy.estimate_cost(_template_plan(*plan_key), loss, accounting=accounting, alpha=alpha)


def _context(s, user: User, dataset: str, version: int | None):
    ds = get_dataset(s, dataset)
    if ds.classification == Classification.RESTRICTED:
        raise Forbidden(f"dataset '{dataset}' is restricted: it is listed but never queryable", code="dataset_restricted",
                        dataset=dataset)
    if ds.classification == Classification.OPEN:
        raise Forbidden(f"dataset '{dataset}' is open data: download it from the catalog instead",
                        code="dataset_open", dataset=dataset)
    if user.role != Role.OPERATOR:
        raise Forbidden("only operators run queries", code="wrong_role")
    lic = active_licence(s, ds, user)
    v = get_version(s, ds, version)
    budgets = ledger.budget_rows(s, ds.id, lic.id)
    return ds, lic, v, budgets


def check_query(inst: Instance, user_name: str, dataset: str, sql: str, *, epsilon: float | None = None,
                version: int | None = None, target: tuple[str, float] | None = None) -> CheckedQuery:
    """Plan and cost a query without touching data or budget."""
    with inst.store.read() as s:
        user = get_user(s, user_name)
        ds, lic, v, budgets = _context(s, user, dataset, version)
        key = plan_key(inst, sql, v, lic)
        try:
            plan = _salted(_template_plan(*key), "preview")
        except QueryRejected as exc:
            log.info("query refused: %s (dataset %s, operator %s)", exc.code, dataset, user_name)
            raise
        _check_resources(inst, engine_of(_policy_of(key[1])[0], inst.settings.engine), plan, key)
        loss = _requested_loss(inst, plan, budgets, lic, epsilon, target)
        cost = _cost_of(key, loss, lic.accounting, inst.settings.alpha)
        return CheckedQuery(plan, cost, lic.id, v.number)


def run_query(inst: Instance, user_name: str, dataset: str, sql: str | None = None, *,
              epsilon: float | None = None, version: int | None = None, template_id: int | None = None,
              params: dict[str, Any] | None = None, request_id: int | None = None,
              target: tuple[str, float] | None = None) -> QueryResult:
    """Run a query under the licence's approval mode: plain SQL (``automatic``),
    an approved template with parameter values, or an approved request."""
    from sandbox import approvals
    from sandbox.execution.storage import unwrap_key
    from sandbox.audit.view import refusals_recorded

    started = time.monotonic()
    salt = secrets.token_hex(16)
    run_id = str(uuid.uuid4())
    # 1-3. plan, cost and reserve, in one write transaction; a refusal there is recorded once it has rolled back.
    with refusals_recorded(inst, user_name, dataset, sql, epsilon=epsilon, template=template_id,
                           request=request_id), inst.store.transaction() as s:
        user = get_user(s, user_name)
        ds, lic, v, budgets = _context(s, user, dataset, version)
        if user.role == Role.OPERATOR:
            _check_concurrency(inst, s, user)
        policy_text = _policy_text(v)
        policy, phash = _policy_of(policy_text)
        gate = approvals.gate_run(s, lic, sql, epsilon, template_id=template_id, params=params,
                                  request_id=request_id, policy_hash_now=phash)
        sql = gate.sql
        key = plan_key(inst, sql, v, lic)
        try:
            plan = _salted(_template_plan(*key), salt)
        except QueryRejected as exc:
            log.info("query refused: %s (dataset %s, operator %s)", exc.code, dataset, user_name)
            raise
        engine = engine_of(policy, inst.settings.engine)
        _check_resources(inst, engine, plan, key)      # before anything is reserved
        loss = _requested_loss(inst, plan, budgets, lic, gate.epsilon,
                               target if gate.template_id is None and gate.request_id is None else None)
        cost = _cost_of(key, loss, lic.accounting, inst.settings.alpha)
        charge = ledger.QueryLoss.of(cost.loss, cost.mechanisms)
        levels = ledger.reserve(s, ds.id, lic.id, run_id, charge, budgets)
        approvals.consume(s, gate, run_id, cost.loss)
        summary = plan.summary()
        s.connection().execute(_INSERT_RUN, dict(
            id=run_id, licence_id=lic.id, dataset_id=ds.id, version_id=v.id, operator_id=user.id, sql=sql,
            fingerprint=plan.fingerprint, plan=summary, status=RunStatus.RESERVED, epsilon=cost.loss.epsilon,
            delta=cost.loss.delta, created_at=datetime.now(UTC)))
        audit.append(s, inst.signer, actor_of(user), "query.reserve", "query_run", run_id, {
            "dataset": ds.name, "version": v.number, "licence": lic.id, "fingerprint": plan.fingerprint,
            "engine": str(engine), "epsilon": cost.loss.epsilon, "delta": cost.loss.delta,
            "template": gate.template_id, "request": gate.request_id,
            "levels": levels, "reserved": charge.to_payload(),   # what the ledger moved, level by level
        })
        ids = (ds.id, lic.id, v.number, v.path, v.wrapped_key, lic.accounting, actor_of(user), ds.name)
    ds_id, lic_id, v_number, v_path, wrapped, accounting, actor, ds_name = ids
    finish = functools.partial(_finish, inst, run_id, ds_id, lic_id, charge, levels=levels)

    def failed(cause: str, error_id: str | None = None) -> NoReturn:
        """The one outcome of a run that touched data and produced nothing: charged,
        stored as run_failed, answered at the wall-clock limit; the cause is logged
        as a code under the error id, never shown."""
        error_id = error_id or uuid.uuid4().hex[:16]
        log.warning("run failed: cause=%s error_id=%s fingerprint=%s", cause, error_id, plan.fingerprint)
        finish(None, actor, "run_failed", charged=True)
        _answer_at(inst, started, failed=True)
        raise RunFailed(error_id) from None

    # 4. execute. From here on the query has touched data: it is charged whatever happens.
    try:
        data_key = unwrap_key(wrapped, inst.master_key)
    except SandboxError:
        finish(None, actor, "key_error", charged=False)
        raise
    try:
        exact = inst.engine(engine).execute(Path(v_path), data_key, plan.bounded_sql, plan.params,
                                            fingerprint=plan.fingerprint)
        release = privacy.release(plan, exact, loss, accounting=accounting, alpha=inst.settings.alpha, cost=cost)
    except ExecutionFailed as exc:
        if exc.code == "query_invalid":   # failed on an empty copy of the schema: no data involved
            finish(None, actor, exc.code, charged=False)
            raise QueryRejected("query_invalid", "the query cannot run on this dataset's schema (it fails even "
                                "with no rows); nothing was charged", whole_span(sql)) from None
        # anything else touched data: one outcome, charged, answered at the wall-clock limit
        failed(exc.code, exc.error_id)
    except Exception as exc:  # a bug after execution: the same outcome; only the exception's type is logged
        failed(f"release_failed ({type(exc).__name__})")
    # 5-6. store, charge and audit together; only then return, on the response-time grid.
    try:
        finish(release, actor, None, charged=True)
    except Exception as exc:   # the result could not be stored: charge the run as failed, never leave it in flight
        failed(f"store_failed ({type(exc).__name__})")
    _answer_at(inst, started, failed=False)
    return QueryResult(run_id, release, v_number)


def _finish(inst: Instance, run_id: str, ds_id: int, lic_id: int, reserved: ledger.QueryLoss,
            release: NoisyRelease | None, actor, error_code: str | None, *, charged: bool,
            levels: list[int] | None = None) -> None:
    with inst.store.transaction() as s:
        spent_q = ledger.QueryLoss.of(release.loss, release.mechanisms) if release is not None else reserved
        spent = spent_q.loss
        if charged:
            settled = ledger.charge(s, ds_id, lic_id, run_id, reserved, spent_q, levels)
        else:
            settled = ledger.cancel(s, ds_id, lic_id, run_id, reserved, levels)
        status = RunStatus.CHARGED if release is not None else RunStatus.FAILED
        values: dict[str, Any] = {"status": status, "error_code": error_code, "finished_at": datetime.now(UTC),
                                  "result": release.to_dict() if release is not None else None}
        if not charged:
            values.update(epsilon=0.0, delta=0.0)
        if rowcount(s.connection().execute(update(_RUNS).where(_RUNS.c.id == run_id).values(**values))) != 1:
            raise LookupError(f"the store has no query_runs row {run_id!r}")
        audit.append(s, inst.signer, actor, "query.run" if release is not None else "query.fail", "query_run", run_id, {
            "status": status, "error_code": error_code,
            "epsilon": spent.epsilon if charged else 0.0, "delta": spent.delta if charged else 0.0,
            "charged": charged, "settled": settled.to_payload(),
        })


@dataclass(frozen=True, slots=True)
class RunView:
    """A stored run: its SQL, status and charge, and the released (noisy) result."""

    run_id: str
    dataset: str
    version: int
    sql: str
    fingerprint: str
    status: str
    epsilon: float
    delta: float
    result: dict[str, Any] | None      # the release's JSON form (NoisyRelease.to_dict), None when it failed
    error_code: str | None
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "dataset": self.dataset, "version": self.version, "sql": self.sql,
            "fingerprint": self.fingerprint, "status": self.status, "epsilon": self.epsilon, "delta": self.delta,
            "result": self.result, "error_code": self.error_code, "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class RunListing:
    """One run in a list of runs."""

    run_id: str
    sql: str
    status: str
    epsilon: float
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "sql": self.sql, "status": self.status, "epsilon": self.epsilon,
                "created_at": self.created_at}


def get_run(inst: Instance, user_name: str, run_id: str) -> RunView:
    with inst.store.read() as s:
        user = get_user(s, user_name)
        run = s.get(QueryRun, run_id)
        if run is None or (user.role == Role.OPERATOR and run.operator_id != user.id):
            raise NotFound(f"no query run {run_id}", code="unknown_run")
        return RunView(
            run_id=run.id, dataset=existing_row(s, Dataset, run.dataset_id).name,
            version=existing_row(s, DatasetVersion, run.version_id).number, sql=run.sql,
            fingerprint=run.fingerprint, status=run.status, epsilon=run.epsilon, delta=run.delta,
            result=run.result, error_code=run.error_code, created_at=run.created_at.isoformat(),
        )


def list_runs(inst: Instance, user_name: str, dataset: str | None = None) -> list[RunListing]:
    with inst.store.read() as s:
        user = get_user(s, user_name)
        stmt = select(QueryRun).order_by(QueryRun.created_at.desc())
        if user.role == Role.OPERATOR:
            stmt = stmt.where(QueryRun.operator_id == user.id)
        if dataset:
            stmt = stmt.where(QueryRun.dataset_id == get_dataset(s, dataset).id)
        return [RunListing(r.id, r.sql, r.status, r.epsilon, r.created_at.isoformat())
                for r in s.execute(stmt).scalars()]
