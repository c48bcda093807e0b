"""The product services, in one place for the web layer and the CLI.

See the package docstring (``products/__init__.py``) for the signatures.
"""

from __future__ import annotations

from products.catalog import catalog_jsonld
from products.data_requests import decide_data_request, file_request, get_data_request, list_data_requests
from products.lifecycle import (
    draft_product, edit_product, get_product, list_products, review_product, submit_product, withdraw_product,
)
from products.manifest import verify_path
from products.model import (
    CheckResult, DataRequestView, ProductDetail, ProductSummary, ReleasedPackage, ReviewRecord,
    VerificationReport, VersionInfo,
)
from products.register import DisclosureReport, TransparencyRegister, disclosure_report, transparency_register
from products.release import export_product, package_path, release_product, rerun_product

DEFAULT_ATTESTATION = ("I have checked this product, I am responsible for its content, and I attest that it "
                       "serves the purpose of my licence.")

__all__ = [
    "draft_product", "edit_product", "submit_product", "review_product", "withdraw_product", "get_product",
    "list_products", "release_product", "rerun_product", "package_path", "export_product", "verify_path",
    "catalog_jsonld", "transparency_register", "disclosure_report", "file_request", "list_data_requests",
    "get_data_request",
    "decide_data_request", "CheckResult", "DataRequestView", "ProductDetail", "ProductSummary", "ReleasedPackage",
    "ReviewRecord", "VerificationReport", "VersionInfo", "DisclosureReport", "TransparencyRegister",
    "DEFAULT_ATTESTATION",
]
