"""Public pages: the catalog, dataset pages, open-data downloads, sign-in."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from queries.errors import InvalidInput, SandboxError
from queries.vocabulary import Classification
from sandbox.vocabulary import PUBLIC, Role
from web import access
from web.auth import allow, csrf_token, login, principal
from web.downloads import file_response, table_bytes

bp = Blueprint("public", __name__)


class BadNext(InvalidInput):
    code = "invalid_next"


def safe_next(target: str | None) -> str | None:
    """The local path to go to after sign-in, or None for the default.

    Browsers drop tabs and line breaks from URLs and read ``\\`` as ``/``, so
    ``/\t/evil.example`` is ``//evil.example``: a target holding a control
    character is refused outright (``invalid_next``), and the rest is judged
    after the normalisation a browser would apply."""
    if not target:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        raise BadNext("the page to return to after signing in is not a valid address")
    normal = target.replace("\\", "/")
    parts = urlsplit(normal)
    if (not normal.startswith("/") or normal.startswith("//") or parts.scheme or parts.netloc
            or normal != target):
        return None
    return target


@bp.get("/")
@allow(PUBLIC)
def catalog():
    q = request.args.get("q", "")[:200]
    cls = request.args.get("classification") or None
    pub = request.args.get("publisher") or None
    datasets = access.search_datasets(q, cls if cls in set(Classification) else None, pub)
    from web.products_views import catalog_products

    products = catalog_products(q)
    return render_template("catalog.html", datasets=datasets, products=products, q=q, cls=cls, pub=pub,
                           publishers=access.publishers(), classifications=list(Classification))


@bp.get("/datasets/<name>")
@allow(PUBLIC)
def dataset(name: str):
    d = access.dataset_detail(principal(), name)
    return render_template("dataset.html", d=d, manage=access.may_manage(principal(), d.owner))


@bp.get("/datasets/<name>/download.<any(csv,json,parquet):fmt>")
@allow(PUBLIC)
def download(name: str, fmt: str):
    table = request.args.get("table") or None
    data = access.open_table(name, table)
    stem = f"{name}-{table}" if table else name
    return file_response(table_bytes(data, fmt), fmt, f"{stem}.{fmt}")


@bp.get("/datasets/<name>/mock.<any(csv,json,parquet):fmt>")
@allow(PUBLIC)
def mock(name: str, fmt: str):
    table = request.args.get("table") or None
    data = access.mock_table(name, table)
    stem = f"{name}-{table}-mock" if table else f"{name}-mock"
    return file_response(table_bytes(data, fmt), fmt, f"{stem}.{fmt}")


@bp.get("/login")
@allow(PUBLIC)
def login_form():
    return render_template("login.html", next=request.args.get("next", ""), error=None)


@bp.post("/login")
@allow(PUBLIC)
def login_submit():
    from web.sessions import end_session, start_session

    name = request.form.get("user", "")
    try:
        target = safe_next(request.form.get("next"))
        user = login(name, request.form.get("password", ""))
    except SandboxError as exc:
        msg = ("Too many attempts. Try again in a few minutes." if exc.status == 429
               else "The page to return to is not a valid address." if exc.code == BadNext.code
               else "This account is deactivated. Ask an administrator." if exc.code == "user_inactive"
               else "Wrong user name or password.")
        return render_template("login.html", next="", error=msg, user=name), exc.status
    lang = session.get("lang")
    end_session(access.inst(), session.get("sid", ""))
    session.clear()          # a fresh session (and CSRF token) on sign-in
    session["sid"] = start_session(access.inst(), user)
    session["user"], session["role"] = user.name, user.role
    if lang:
        session["lang"] = lang
    csrf_token()
    return redirect(target or workspace(user.role))


@bp.post("/logout")
@allow(PUBLIC)
def logout():
    from web.sessions import end_session

    lang = session.get("lang")
    end_session(access.inst(), session.get("sid", ""))
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("public.catalog"))


WORKSPACES: dict[str, str] = {Role.OWNER: "owner.datasets", Role.OPERATOR: "operator.editor", Role.REVIEWER: "products.review_queue",
              Role.ADMIN: "admin.overview"}


def workspace(role: str) -> str:
    """Where a role lands after signing in."""
    return url_for(WORKSPACES.get(role, "public.catalog"))


@bp.get("/.well-known/dp-sandbox/signing-key.pem")
@allow(PUBLIC)
def signing_key():
    return access.signing_key()["public_key_pem"], 200, {"Content-Type": "application/x-pem-file"}


__all__ = ["bp", "flash"]
