"""Public pages: the catalog, dataset pages, open-data downloads, sign-in."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from queries.errors import SandboxError
from web import access
from web.auth import allow, csrf_token, login, principal
from web.downloads import file_response, table_bytes

bp = Blueprint("public", __name__)


def safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("public.catalog")


@bp.get("/")
@allow("public")
def catalog():
    q = request.args.get("q", "")[:200]
    cls = request.args.get("classification") or None
    pub = request.args.get("publisher") or None
    datasets = access.search_datasets(q, cls if cls in ("open", "conditional", "restricted") else None, pub)
    products = []
    svc = access.products_service()
    if svc is not None:
        from web.products_views import catalog_products

        products = catalog_products(q)
    return render_template("catalog.html", datasets=datasets, products=products, q=q, cls=cls, pub=pub,
                           publishers=access.publishers())


@bp.get("/datasets/<name>")
@allow("public")
def dataset(name: str):
    d = access.dataset_detail(principal(), name)
    return render_template("dataset.html", d=d, manage=access.may_manage(principal(), d["owner"]))


@bp.get("/datasets/<name>/download.<any(csv,json,parquet):fmt>")
@allow("public")
def download(name: str, fmt: str):
    table = request.args.get("table") or None
    data = access.open_table(name, table)
    stem = f"{name}-{table}" if table else name
    return file_response(table_bytes(data, fmt), fmt, f"{stem}.{fmt}")


@bp.get("/datasets/<name>/mock.<any(csv,json,parquet):fmt>")
@allow("public")
def mock(name: str, fmt: str):
    table = request.args.get("table") or None
    data = access.mock_table(name, table)
    stem = f"{name}-{table}-mock" if table else f"{name}-mock"
    return file_response(table_bytes(data, fmt), fmt, f"{stem}.{fmt}")


@bp.get("/login")
@allow("public")
def login_form():
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@bp.post("/login")
@allow("public")
def login_submit():
    name = request.form.get("user", "")
    target = safe_next(request.form.get("next"))
    try:
        user = login(name, request.form.get("password", ""))
    except SandboxError as exc:
        msg = ("Too many attempts. Try again in a few minutes." if exc.status == 429
               else "Wrong user name or password.")
        return render_template("login.html", next=target, error=msg, user=name), exc.status
    lang = session.get("lang")
    session.clear()          # a fresh session (and CSRF token) on sign-in
    session["user"], session["role"] = user.name, user.role
    if lang:
        session["lang"] = lang
    csrf_token()
    return redirect(target)


@bp.post("/logout")
@allow("public")
def logout():
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("public.catalog"))


@bp.get("/.well-known/dp-sandbox/signing-key.pem")
@allow("public")
def signing_key():
    return access.signing_key()["public_key_pem"], 200, {"Content-Type": "application/x-pem-file"}


__all__ = ["bp", "flash"]
