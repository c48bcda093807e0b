"""Data products: drafts, automatic disclosure checks, review, signed releases,
the catalog, the transparency register and data requests.

Public API (all in ``products.service``; every function takes the instance and
the acting user's name, or ``None`` for the public, and returns frozen
dataclasses with ``to_dict()``; errors are ``queries.errors`` classes with
specific codes)::

    # lifecycle (products.lifecycle)
    draft_product(inst, user, *, title, run_ids, description="", purpose="", chart_hints=None) -> ProductDetail
    edit_product(inst, user, product_id, *, title=None, description=None, purpose=None,
                 run_ids=None, chart_hints=None) -> ProductDetail
    submit_product(inst, user, product_id, *, attestation) -> ProductDetail
    review_product(inst, user, product_id, decision, reason="") -> ProductDetail   # approve|return|reject
    withdraw_product(inst, user, product_id, reason) -> ProductDetail
    get_product(inst, user_or_None, product_id) -> ProductDetail
    list_products(inst, user_or_None, *, state=None, dataset=None) -> list[ProductSummary]
    # release (products.release)
    release_product(inst, user, product_id) -> ReleasedPackage
    rerun_product(inst, user, product_id, *, dataset_version=None) -> ProductDetail
    package_path(inst, user_or_None, product_id, version=None) -> pathlib.Path
    export_product(inst, user_or_None, product_id, out, *, version=None, as_zip=False) -> pathlib.Path
    # offline verification (products.manifest; needs no instance)
    verify_path(path, public_key_pem=None) -> VerificationReport
    # catalog and register (products.catalog, products.register)
    catalog_jsonld(inst, base_url=None) -> dict                     # DCAT-AP JSON-LD document
    transparency_register(inst) -> TransparencyRegister
    disclosure_report(inst, year, *, out=None) -> DisclosureReport  # .to_dict(), .to_html(), .path
    # data requests (products.data_requests)
    file_request(inst, user_or_None, *, title, description, contact, dataset=None) -> DataRequestView
    list_data_requests(inst, user_or_None, *, status=None) -> list[DataRequestView]
    decide_data_request(inst, user, request_id, decision, reason="", product_id=None) -> DataRequestView
        # decision: accept | decline | link (link needs product_id; closes it if the product is released)

See docs/products.md for states, checks, the package layout and the manifest.
"""
