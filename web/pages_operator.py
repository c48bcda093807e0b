"""Operator pages: the SQL editor with preview and run, runs and their results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, redirect, render_template, request, url_for

from queries.errors import InvalidInput, QueryRejected, SandboxError
from sandbox.vocabulary import LicenceStatus, ReadAction, Role
from web import access
from web.audit_reads import recorded_read
from web.approval_access import epsilon_or_target
from web.auth import allow, principal, user_name
from web.charts import bar_chart, highlight_span
from web.downloads import result_file

if TYPE_CHECKING:
    from sandbox.datasets import TableView
    from sandbox.licences import LicenceView

bp = Blueprint("operator", __name__, url_prefix="/operator")


def _licences():
    return [lic for lic in access.visible_licences(principal()) if lic.status == LicenceStatus.ACTIVE]


def _editor(status: int = 200, **ctx):
    licences = _licences()
    ctx.setdefault("dataset", licences[0].dataset if licences else "")
    ctx.setdefault("sql", "")
    ctx.setdefault("epsilon", "")
    ctx.setdefault("target_output", "")
    ctx.setdefault("half_width", "")
    budget = next((lic.budget for lic in licences if lic.dataset == ctx["dataset"]), None)
    schema = licensed_schema(next((lic for lic in licences if lic.dataset == ctx["dataset"]), None))
    return render_template("operator_editor.html", licences=licences, budget=budget, schema=schema, **ctx), status


def licensed_schema(licence: LicenceView | None) -> list[TableView]:
    """The tables a licence covers in its dataset's newest version, each column with
    its class, type, bounds and public domain: the policy's facts, never data."""
    from sandbox.datasets import show_dataset

    if licence is None:
        return []
    tables = show_dataset(access.inst(), licence.dataset).tables
    allowed = licence.tables
    return [t for t in tables if not allowed or t.name in allowed]


@bp.get("/")
@allow(Role.OPERATOR)
def editor():
    licences = _licences()
    return _editor(dataset=request.args.get("dataset") or (licences[0].dataset if licences else ""),
                   sql=request.args.get("sql", ""))


@bp.post("/")
@allow(Role.OPERATOR)
def submit():
    from sandbox.service import run_query
    from sandbox.preview import preview_query

    f = request.form
    dataset, sql, eps_text = f.get("dataset", ""), f.get("sql", ""), f.get("epsilon", "").strip()
    output, width_text = f.get("target_output", "").strip(), f.get("half_width", "").strip()
    ctx: dict[str, Any] = {"dataset": dataset, "sql": sql, "epsilon": eps_text, "target_output": output, "half_width": width_text}
    try:
        epsilon, target = epsilon_or_target(eps_text, output, width_text)
        if f.get("action") == "run":
            result = run_query(access.inst(), user_name(), dataset, sql, epsilon=epsilon, target=target)
            return redirect(url_for("operator.run_page", run_id=result.run_id))
        checked = preview_query(access.inst(), user_name(), dataset, sql, epsilon=epsilon, target=target)
        return _editor(preview=checked, **ctx)
    except QueryRejected as exc:
        span = exc.span.to_dict() if exc.span else None
        return _editor(exc.status, rejected=exc, span=span, highlighted=highlight_span(sql, span), **ctx)
    except SandboxError as exc:
        return _editor(exc.status, failed=exc, **ctx)


@bp.get("/runs")
@allow(Role.OPERATOR)
def runs():
    from sandbox.service import list_runs

    return render_template("operator_runs.html", runs=list_runs(access.inst(), user_name()))


@bp.get("/runs/<run_id>")
@allow(Role.OPERATOR)
def run_page(run_id: str):
    from sandbox.service import get_run

    run = get_run(access.inst(), user_name(), run_id)
    chart = bar_chart(run.result) if run.result else ""
    budget = next((lic.budget for lic in _licences() if lic.dataset == run.dataset), None)
    return render_template("operator_run.html", run=run, chart=chart, budget=budget)


@bp.get("/runs/<run_id>/result.<any(csv,json,parquet):fmt>")
@allow(Role.OPERATOR)
@recorded_read(ReadAction.RUN_DOWNLOAD, "query_run", "run_id", "fmt")
def run_download(run_id: str, fmt: str):
    from sandbox.service import get_run

    run = get_run(access.inst(), user_name(), run_id)
    if not run.result:
        raise InvalidInput("this run has no released result", code="no_result")
    return result_file(run.result, fmt, f"run-{run_id[:8]}")
