"""API routes of data products, reviews, the catalog document, the transparency
register and data requests (registered on the API blueprint of ``web.api``)."""

from __future__ import annotations

from sandbox.vocabulary import PUBLIC, Role
from web.api import api
from web.auth import principal
from web.openapi import paged
from web.products_views import product_file, svc
from web.schemas import (
    DataRequestCreate, DataRequestDecision, DataRequestListQuery, DataRequestOut, Document, DraftCreate,
    ProductDownloadQuery, ProductListQuery, ProductOut, ProductSummaryOut, ReleasedOut, ReviewDecision,
    SubmitRequest, WithdrawRequest,
)
from web import access


def me() -> str | None:
    return principal().name


@api.route("/products", roles=(PUBLIC,), query=ProductListQuery, response=ProductSummaryOut, many=True,
           summary="Data products the caller may see (the public: released ones)", tag="products")
def list_products(query: ProductListQuery):
    rows = [p.to_dict() for p in svc().list_products(access.inst(), me(), state=query.state, dataset=query.dataset)]
    return paged(rows, query)


@api.route("/products/<int:product_id>", roles=(PUBLIC,), response=ProductOut,
           summary="A data product: tables with intervals, versions, checks and reviews", tag="products")
def show_product(product_id: int):
    return svc().get_product(access.inst(), me(), product_id).to_dict()


@api.route("/products/<int:product_id>/download", roles=(PUBLIC,), query=ProductDownloadQuery,
           media=("application/zip", "text/csv", "application/json", "application/vnd.apache.parquet"),
           summary="Download a released product (zip with signed manifest) or one of its tables", tag="products")
def download_product(product_id: int, query: ProductDownloadQuery):
    return product_file(product_id, query.format, query.version, query.table)


@api.route("/products", "POST", roles=(Role.OPERATOR,), body=DraftCreate, response=ProductOut, status=201,
           summary="Draft a product from query runs", tag="products")
def draft_product(body: DraftCreate):
    return svc().draft_product(access.inst(), me(), title=body.title, run_ids=body.run_ids,
                               description=body.description, purpose=body.purpose).to_dict()


@api.route("/products/<int:product_id>/submit", "POST", roles=(Role.OPERATOR,), body=SubmitRequest,
           response=ProductOut, summary="Submit a draft for review (runs the automatic checks)", tag="products")
def submit_product(product_id: int, body: SubmitRequest):
    return svc().submit_product(access.inst(), me(), product_id, attestation=body.attestation).to_dict()


@api.route("/products/<int:product_id>/reviews", "POST", roles=(Role.REVIEWER,), body=ReviewDecision,
           response=ProductOut, summary="Approve, return or reject a submitted product", tag="review")
def review_product(product_id: int, body: ReviewDecision):
    return svc().review_product(access.inst(), me(), product_id, body.decision, body.reason).to_dict()


@api.route("/products/<int:product_id>/release", "POST", roles=(Role.OPERATOR, Role.ADMIN), response=ReleasedOut,
           summary="Release an approved product: write and sign its package", tag="products")
def release_product(product_id: int):
    d = svc().release_product(access.inst(), me(), product_id).to_dict()
    d.pop("path", None)
    return d


@api.route("/products/<int:product_id>/withdraw", "POST", roles=(Role.OPERATOR, Role.ADMIN), body=WithdrawRequest,
           response=ProductOut, summary="Withdraw a product", tag="products")
def withdraw_product(product_id: int, body: WithdrawRequest):
    return svc().withdraw_product(access.inst(), me(), product_id, body.reason).to_dict()


@api.route("/review-queue", roles=(Role.REVIEWER,), query=ProductListQuery, response=ProductSummaryOut, many=True,
           summary="Products waiting for review", tag="review")
def review_queue(query: ProductListQuery):
    rows = [p.to_dict() for p in svc().list_products(access.inst(), me(), state="submitted", dataset=query.dataset)]
    return paged(rows, query)


@api.route("/catalog", roles=(PUBLIC,), response=Document, summary="The catalog as DCAT-AP JSON-LD",
           tag="catalog")
def catalog():
    from flask import request

    return svc().catalog_jsonld(access.inst(), base_url=request.host_url.rstrip("/"))


@api.route("/register", roles=(PUBLIC,), response=Document, summary="The transparency register",
           tag="catalog")
def transparency_register():
    return svc().transparency_register(access.inst()).to_dict()


@api.route("/requests", roles=(PUBLIC,), query=DataRequestListQuery, response=DataRequestOut, many=True,
           summary="Data requests", tag="requests")
def list_requests(query: DataRequestListQuery):
    return paged([r.to_dict() for r in svc().list_data_requests(access.inst(), me(), status=query.status)], query)


@api.route("/requests", "POST", roles=(PUBLIC,), body=DataRequestCreate, response=DataRequestOut, status=201,
           summary="File a data request", tag="requests")
def file_request(body: DataRequestCreate):
    from flask import url_for

    r = svc().file_request(access.inst(), me(), title=body.title, description=body.description,
                           contact=body.contact, dataset=body.dataset).to_dict()
    return {**r, "url": url_for("products.request_page", request_id=r["id"], _external=True),
            "api_url": url_for("api.get_request", request_id=r["id"], _external=True)}


@api.route("/requests/<int:request_id>", roles=(PUBLIC,), response=DataRequestOut,
           summary="One data request, to follow it", tag="requests")
def get_request(request_id: int):
    return svc().get_data_request(access.inst(), me(), request_id).to_dict()


@api.route("/requests/<int:request_id>/decision", "POST", roles=(Role.OWNER, Role.ADMIN), body=DataRequestDecision,
           response=DataRequestOut, summary="Accept, decline or link a data request to a product", tag="requests")
def decide_request(request_id: int, body: DataRequestDecision):
    return svc().decide_data_request(access.inst(), me(), request_id, body.decision, body.reason,
                                     product_id=body.product_id).to_dict()
