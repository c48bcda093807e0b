"""Pages and API routes of data products, the transparency register and data
requests. They call ``products.service``; while that package is not installed
the pages say so and the API answers ``503 products_unavailable``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template

from queries.errors import SandboxError
from web import access
from web.auth import allow

bp = Blueprint("products", __name__)

PUBLIC = {"public", "owner", "operator", "reviewer", "admin"}
EXPECTED_ROLES: dict[str, set[str]] = {
    "products.product_list": PUBLIC, "products.product_page": PUBLIC, "products.create_draft": {"operator"},
    "products.drafts": {"operator"}, "products.review_queue": {"reviewer"}, "products.register_page": PUBLIC,
    "products.requests_page": PUBLIC,
}


class ProductsUnavailable(SandboxError):
    code = "products_unavailable"
    status = 503


def svc():
    s = access.products_service()
    if s is None:
        raise ProductsUnavailable("data products are not available on this instance yet")
    return s


def catalog_products(q: str = "") -> list[dict[str, Any]]:
    return []


@bp.get("/products")
@allow("public")
def product_list():
    return render_template("unavailable.html", title="Data products")


@bp.get("/products/<int:product_id>")
@allow("public")
def product_page(product_id: int):
    return render_template("unavailable.html", title="Data products")


@bp.post("/products/drafts")
@allow("operator")
def create_draft():
    svc()


@bp.get("/operator/drafts")
@allow("operator")
def drafts():
    return render_template("unavailable.html", title="Drafts")


@bp.get("/review")
@allow("reviewer")
def review_queue():
    return render_template("unavailable.html", title="Review queue")


@bp.get("/register")
@allow("public")
def register_page():
    return render_template("unavailable.html", title="Transparency register")


@bp.get("/requests")
@allow("public")
def requests_page():
    return render_template("unavailable.html", title="Data requests")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
