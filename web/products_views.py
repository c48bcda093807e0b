"""Pages of data products, the review screen, the transparency register and
data requests. They call ``products.service``."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for

from queries.errors import InvalidInput, SandboxError
from sandbox.vocabulary import PUBLIC, ProductState, ReadAction, Role
from web import access
from web.audit_reads import recorded_read
from web.auth import allow, principal
from web.charts import bar_chart
from web.downloads import file_response

if TYPE_CHECKING:
    from products.model import ProductDetail

bp = Blueprint("products", __name__)

DRAFT_STATES = (ProductState.DRAFT, ProductState.RETURNED, ProductState.SUBMITTED, ProductState.APPROVED)   # not yet released, rejected or withdrawn


def svc():
    """``products.service``, imported when a products page is first served."""
    import products.service

    return products.service


def me() -> str | None:
    return principal().name


# --- helpers shared with the API ---------------------------------------------------

def catalog_products(q: str = "") -> list[dict[str, Any]]:
    words = [w.lower() for w in q.split()]
    out = []
    for p in svc().list_products(access.inst(), None, state=ProductState.RELEASED):
        text = " ".join((p.title, p.dataset)).lower()
        if all(w in text for w in words):
            out.append({**p.to_dict(), "version": max(p.released_versions or (p.latest_version,))})
    return out


def product_zip(product_id: int, version: int | None) -> tuple[bytes, str]:
    out = Path(tempfile.mkdtemp(prefix="dps-export-"))
    try:
        path = svc().export_product(access.inst(), me(), product_id, out, version=version, as_zip=True)
        return path.read_bytes(), path.name
    finally:
        shutil.rmtree(out, ignore_errors=True)


@recorded_read(ReadAction.PRODUCT_DOWNLOAD, "product", "product_id", "fmt", "version", "table")
def product_file(product_id: int, fmt: str, version: int | None, table: int):
    """The zip of a released version, or one table in one format.

    A table of a released version is the signed file itself
    (``tables/table_<n>.<fmt>`` of the package, listed in its manifest). A product
    with no released version yet (a draft its author or a reviewer may see) gets
    a file built from the draft's results, labelled unsigned in its name and in
    the ``X-DPS-Signed: no`` header."""
    if fmt == "zip":
        data, name = product_zip(product_id, version)
        resp = file_response(data, "zip", name)
        resp.mimetype = "application/zip"
        return resp
    detail = svc().get_product(access.inst(), me(), product_id)
    released = any(v.released_at for v in detail.versions)
    if released:
        from products.manifest import read_manifest

        folder = svc().package_path(access.inst(), me(), product_id, version)
        manifest = read_manifest(folder)
        names = [t["name"] for t in manifest.get("tables", [])]
        if not 1 <= table <= len(names):
            raise InvalidInput(f"the product has {len(names)} table(s)", code="unknown_table")
        rel = f"tables/{names[table - 1]}.{fmt}"
        if rel not in manifest.get("files", {}):
            raise InvalidInput(f"this version has no {fmt} file of table {table}", code="unknown_table")
        resp = file_response((folder / rel).read_bytes(), fmt,
                             f"product-{product_id}-v{manifest['product']['version']}-{names[table - 1]}.{fmt}")
        manifest_url = url_for("products.package_file", product_id=product_id,
                               version=manifest["product"]["version"], path="manifest.json")
        resp.headers["X-DPS-Signed"] = f"yes; manifest={manifest_url}"
        return resp
    tables = detail.tables
    if not 1 <= table <= len(tables):
        raise InvalidInput(f"the product has {len(tables)} table(s)", code="unknown_table")
    t = tables[table - 1]
    resp = file_response(unsigned_table_bytes(t, fmt), fmt, f"product-{product_id}-table_{table}-UNSIGNED-draft.{fmt}")
    resp.headers["X-DPS-Signed"] = "no; draft results, not a released package"
    return resp


def unsigned_table_bytes(t: dict[str, Any], fmt: str) -> bytes:
    """One draft table in the package's own layout (same columns as the signed files)."""
    from products.package import write_table

    out = Path(tempfile.mkdtemp(prefix="dps-draft-"))
    try:
        write_table(out, "table", list(t["columns"]), t["rows"], t.get("intervals") or [],
                    float(t.get("alpha") or 0.05))
        return (out / f"table.{fmt}").read_bytes()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def verification(product_id: int) -> dict[str, Any] | None:
    """Signature status and manifest of the newest released version, if any."""
    from products.manifest import read_manifest
    from sandbox.audit import instance_public_keys

    s = svc()
    try:
        folder = s.package_path(access.inst(), me(), product_id)
    except SandboxError:
        return None
    report = s.verify_path(folder, instance_public_keys(access.inst())).to_dict()
    report.pop("path", None)
    return {"report": report, "manifest": read_manifest(folder)}


# --- pages -------------------------------------------------------------------------

@bp.get("/products")
@allow(PUBLIC)
def product_list():
    rows = [p.to_dict() for p in svc().list_products(access.inst(), me(), state=ProductState.RELEASED)]
    return render_template("products.html", products=rows, heading="Released data products")


@bp.get("/products/<int:product_id>")
@allow(PUBLIC)
def product_page(product_id: int, error: SandboxError | None = None, status: int = 200):
    product = svc().get_product(access.inst(), me(), product_id)
    hints: dict[str, Any] = {}
    for v in product.versions:
        hints.update(v.chart_hints or {})
    charts = [bar_chart(t, "", hints.get(t.get("run_id", "")) or hints.get(f"table_{i}"))
              for i, t in enumerate(product.tables, start=1)]
    ver = verification(product_id) if any(v.released_at for v in product.versions) else None
    return render_template("product.html", p=product.to_dict(), charts=charts, ver=ver, error=error,
                           flags=check_flags(product),
                           table_no={t.get("run_id"): i for i, t in enumerate(product.tables, start=1)},
                           default_attestation=svc().DEFAULT_ATTESTATION), status


def check_flags(p: ProductDetail) -> list[dict[str, Any]]:
    """Per table of the product, what its warning checks are about: ``cells``
    maps "row,column" to the names of the checks that flag that cell, ``table``
    lists the checks about the whole table (name, status, message)."""
    out = []
    for t in p.tables:
        cells: dict[str, list[str]] = {}
        whole = []
        for c in p.checks:
            if c.table != t.get("run_id") or c.status == "pass":
                continue
            positions = dict(c.details).get("positions")
            if positions:
                for r, col in positions:
                    cells.setdefault(f"{r},{col}", []).append(c.name)
            else:
                whole.append(c.to_dict())
        out.append({"cells": cells, "table": whole})
    return out


@bp.get("/products/<int:product_id>/download.<any(zip,csv,json,parquet):fmt>")
@allow(PUBLIC)
def product_download(product_id: int, fmt: str):
    version = request.args.get("version", type=int)
    return product_file(product_id, fmt, version, request.args.get("table", 1, type=int))


def _act(product_id: int, action, done: str | None = None):
    try:
        action()
    except SandboxError as exc:
        return product_page(product_id, error=exc, status=exc.status)
    if done:
        flash(done, "ok")
    return redirect(url_for("products.product_page", product_id=product_id))


REVIEW_DONE = {"approve": "Your approval is recorded.", "return": "The product was returned to its author.",
               "reject": "The product was rejected."}


@bp.post("/products/drafts")
@allow(Role.OPERATOR)
def create_draft():
    f = request.form
    run_ids = [r for r in f.get("run_ids", "").replace(",", " ").split() if r]
    p = svc().draft_product(access.inst(), me(), title=f.get("title", ""), run_ids=run_ids,
                            description=f.get("description", ""), purpose=f.get("purpose", ""))
    flash("Draft created.", "ok")
    return redirect(url_for("products.product_page", product_id=p.id))


@bp.post("/products/<int:product_id>/submit")
@allow(Role.OPERATOR)
def submit(product_id: int):
    return _act(product_id, lambda: svc().submit_product(access.inst(), me(), product_id,
                                                         attestation=request.form.get("attestation", "")),
                "Submitted for review.")


@bp.post("/products/<int:product_id>/review")
@allow(Role.REVIEWER)
def review(product_id: int):
    f = request.form
    return _act(product_id, lambda: svc().review_product(access.inst(), me(), product_id, f.get("decision", ""),
                                                         f.get("reason", "")),
                REVIEW_DONE.get(f.get("decision", "")))


@bp.post("/products/<int:product_id>/release")
@allow(Role.OPERATOR, Role.ADMIN)
def release(product_id: int):
    return _act(product_id, lambda: svc().release_product(access.inst(), me(), product_id), "Released.")


@bp.post("/products/<int:product_id>/withdraw")
@allow(Role.OPERATOR, Role.ADMIN)
def withdraw(product_id: int):
    return _act(product_id, lambda: svc().withdraw_product(access.inst(), me(), product_id,
                                                           request.form.get("reason", "")), "Withdrawn.")


@bp.get("/operator/drafts")
@allow(Role.OPERATOR)
def drafts():
    rows = [p.to_dict() for p in svc().list_products(access.inst(), me())
            if p.author == me() and p.state in DRAFT_STATES]
    return render_template("products.html", products=rows, heading="Drafts")


@bp.get("/review")
@allow(Role.REVIEWER)
def review_queue():
    rows = [p.to_dict() for p in svc().list_products(access.inst(), me(), state=ProductState.SUBMITTED)]
    return render_template("products.html", products=rows, heading="Review queue")


@bp.get("/register")
@allow(PUBLIC)
def register_page():
    return render_template("register.html", register=svc().transparency_register(access.inst()).to_dict())


@bp.get("/requests")
@allow(PUBLIC)
def requests_page(error: SandboxError | None = None, status: int = 200):
    rows = [r.to_dict() for r in svc().list_data_requests(access.inst(), me())]
    from sandbox.datasets import list_datasets

    triage = principal().role in (Role.OWNER, Role.ADMIN)
    released = [p.to_dict() for p in svc().list_products(access.inst(), me(), state=ProductState.RELEASED)] if triage else []
    return render_template("requests.html", requests=rows, error=error,
                           datasets=[d.name for d in list_datasets(access.inst())],
                           triage=triage, released=released), status


@bp.post("/requests")
@allow(PUBLIC)
def file_request():
    f = request.form
    try:
        filed = svc().file_request(access.inst(), me(), title=f.get("title", ""),
                                   description=f.get("description", ""), contact=f.get("contact", ""),
                                   dataset=f.get("dataset") or None)
    except SandboxError as exc:
        return requests_page(error=exc, status=exc.status)
    flash("Request received.", "ok")
    return redirect(url_for("products.request_page", request_id=filed.id, filed=1))


@bp.get("/requests/<int:request_id>")
@allow(PUBLIC)
def request_page(request_id: int):
    """One request, where its requester follows it."""
    r = svc().get_data_request(access.inst(), me(), request_id).to_dict()
    return render_template("request.html", r=r, filed=request.args.get("filed") == "1",
                           link=url_for("products.request_page", request_id=request_id, _external=True))


@bp.post("/requests/<int:request_id>/decision")
@allow(Role.OWNER, Role.ADMIN)
def decide_request(request_id: int):
    f = request.form
    try:
        svc().decide_data_request(access.inst(), me(), request_id, f.get("decision", ""), f.get("reason", ""),
                                  product_id=f.get("product_id", type=int))
    except SandboxError as exc:
        return requests_page(error=exc, status=exc.status)
    return redirect(url_for("products.requests_page"))


@bp.get("/catalog.jsonld")
@allow(PUBLIC)
def catalog_jsonld():
    import json

    from flask import Response

    doc = svc().catalog_jsonld(access.inst(), base_url=request.host_url.rstrip("/"))
    return Response(json.dumps(doc, ensure_ascii=False, default=str), mimetype="application/ld+json")


@bp.post("/products/<int:product_id>/edit")
@allow(Role.OPERATOR)
def edit(product_id: int):
    f = request.form
    return _act(product_id, lambda: svc().edit_product(access.inst(), me(), product_id, title=f.get("title"),
                                                       description=f.get("description"),
                                                       purpose=f.get("purpose")))


@bp.post("/products/<int:product_id>/rerun")
@allow(Role.OPERATOR)
def rerun(product_id: int):
    text = request.form.get("dataset_version", "").strip()

    def action():
        if text and not text.isdigit():
            raise InvalidInput("the dataset version is a whole number", code="invalid_form")
        svc().rerun_product(access.inst(), me(), product_id, dataset_version=int(text) if text else None)

    return _act(product_id, action)


@bp.get("/products/<int:product_id>/v<int:version>/files/<path:path>")
@allow(PUBLIC)
@recorded_read(ReadAction.PRODUCT_FILE, "product", "product_id", "version", "path")
def package_file(product_id: int, version: int, path: str):
    """A file of a released version, read-only: the catalog's download IRIs."""
    from werkzeug.security import safe_join

    from queries.errors import NotFound

    folder = svc().package_path(access.inst(), me(), product_id, version)
    target = safe_join(str(folder), path)
    resolved = Path(target).resolve() if target is not None else None
    if resolved is None or folder.resolve() not in resolved.parents or not resolved.is_file():
        raise NotFound(f"product {product_id} version {version} has no file '{path[:200]}'", code="no_such_file")
    import mimetypes

    from flask import Response

    mimetype = "application/vnd.apache.parquet" if path.endswith(".parquet") else (
        mimetypes.guess_type(path)[0] or "application/octet-stream")
    resp = Response(resolved.read_bytes(), mimetype=mimetype)   # released files are small; no open handle kept
    if not path.endswith((".json", ".csv", ".html", ".txt", ".md")):
        resp.headers["Content-Disposition"] = f'attachment; filename="{resolved.name}"'
    resp.headers["Cache-Control"] = "public, max-age=3600, immutable"
    return resp


# --- the annual disclosure report ------------------------------------------------------

def _report_years() -> list[int]:
    folder = access.inst().home / "register"
    if not folder.is_dir():
        return []
    return sorted((int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "report.json").is_file()),
                  reverse=True)


@bp.get("/register/reports")
@allow(PUBLIC)
def disclosure_page(error: SandboxError | None = None, status: int = 200):
    from datetime import date

    return render_template("disclosure.html", years=_report_years(), error=error, this_year=date.today().year,
                           may_build=principal().role in (Role.OWNER, Role.REVIEWER, Role.ADMIN)), status


@bp.post("/register/reports")
@allow(Role.OWNER, Role.REVIEWER, Role.ADMIN)
def disclosure_build():
    text = request.form.get("year", "").strip()
    try:
        if not text.isdigit():
            raise InvalidInput("year must be a four-digit year", code="invalid_year")
        report = svc().disclosure_report(access.inst(), int(text))
    except SandboxError as exc:
        return disclosure_page(error=exc, status=exc.status)
    flash("Report published.", "ok")
    return redirect(url_for("products.disclosure_year", year=report.year))


@bp.get("/register/reports/<int:year>")
@allow(PUBLIC)
def disclosure_year(year: int):
    from web.api_approvals import stored_report

    return render_template("disclosure_report.html", r=stored_report(year))


def register(app: Flask) -> None:
    app.register_blueprint(bp)
