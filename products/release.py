"""Releasing approved products as signed packages, re-running them on new
dataset versions, and handing out their files.

A release of version N lives in ``<home>/products/<id>/v<N>/``::

    manifest.json   manifest.sig   tables/table_1.parquet|csv|json ...

It is written to a temporary folder, signed, renamed into place and recorded
in the same store transaction as the state change and its audit record, so a
failure leaves neither files nor a half-released product behind.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from products.checks import suppressed_table
from products.lifecycle import (
    cancel_products_of_ended_licences, can_see, detail, get_product_row, iso, latest_version, now, tables_of,
    versions_of, _require_licence,
)
from products.manifest import manifest_bytes, read_manifest, sign_package, zip_folder
from products.model import ProductDetail, ReleasedPackage
from products.package import library_versions, write_table
from queries.errors import Conflict, Forbidden, InvalidInput, NotFound
from sandbox import audit
from sandbox.datasets import published_digest
from sandbox.instance import Instance
from sandbox.notifications import outbox as notices
from sandbox.persistence.models import (
    Dataset, DatasetVersion, Licence, Product, ProductReview, ProductVersion, QueryRun, User,
)
from sandbox.persistence.store import existing_row, lock_for_update
from sandbox.users import actor_of, get_user
from sandbox.vocabulary import ProductState, Role

FORMAT = "dp-sandbox/data-product"
FORMAT_VERSION = 1
TERMS = "https://creativecommons.org/licenses/by/4.0/"


def product_dir(inst: Instance, product_id: int, number: int) -> Path:
    return inst.home / "products" / str(product_id) / f"v{number}"


def manifest_sha256(manifest: dict[str, Any] | None) -> str | None:
    return hashlib.sha256(manifest_bytes(manifest)).hexdigest() if manifest else None


def _manifest_body(s, inst: Instance, p: Product, v: ProductVersion, tables_meta: list[dict[str, Any]],
                   released_by: str, released_at: str) -> dict[str, Any]:
    ds = s.get(Dataset, p.dataset_id)
    dv = s.get(DatasetVersion, v.dataset_version_id)
    lic = s.get(Licence, p.licence_id)
    author = s.get(User, p.author_id)
    reviews = s.execute(select(ProductReview, User).join(User, User.id == ProductReview.reviewer_id)
                        .where(ProductReview.product_id == p.id, ProductReview.round == p.review_round,
                               ProductReview.decision == "approve").order_by(ProductReview.id)).all()
    accounting = lic.accounting
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": "data_product",
        "product": {"id": p.id, "version": v.number, "title": p.title, "description": p.description,
                    "purpose": p.purpose, "author": author.name, "organisation": author.organisation,
                    "attestation": p.attestation, "chart_hints": dict(v.chart_hints or {})},
        "dataset": {"id": ds.id, "name": ds.name, "title": ds.title, "publisher": ds.publisher,
                    "classification": ds.classification, "privacy_unit": ds.privacy_unit,
                    "version": dv.number, "digest": published_digest(inst, dv, ds.classification),
                    "policy_hash": dv.policy_hash},
        "licence": {"id": lic.id, "operator": author.name, "purpose": lic.purpose, "tables": lic.tables,
                    "granted_at": iso(lic.created_at), "expires_at": iso(lic.expires_at), "accounting": accounting},
        "terms_of_use": TERMS,
        "privacy": {"epsilon": float(v.epsilon), "delta": float(v.delta), "accounting": accounting,
                    "small_count_threshold": inst.settings.small_count_threshold,
                    "note": "every value is the output of an OpenDP measurement charged to the budgets above; "
                            "cells under the small-count threshold are suppressed as post-processing"},
        "tables": tables_meta,
        "reviews": [{"reviewer": u.name, "decision": r.decision, "reason": r.reason, "time": iso(r.created_at)}
                    for r, u in reviews],
        "released_at": released_at, "released_by": released_by,
        "software": library_versions(),
    }


def release_product(inst: Instance, user: str, product_id: int) -> ReleasedPackage:
    """Write and sign the approved product's newest version; only then mark it released."""
    cancel_products_of_ended_licences(inst)
    written: list[Path] = []
    try:
        return _release(inst, user, product_id, written)
    except BaseException:
        for folder in written:          # the store rolled back (even at commit): drop the files too
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _release(inst: Instance, user: str, product_id: int, written: list[Path]) -> ReleasedPackage:
    from products.data_requests import close_requests_for

    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = s.execute(lock_for_update(select(Product).where(Product.id == product_id), s)).scalar_one_or_none()
        if p is None:
            raise NotFound(f"no product {product_id}", code="unknown_product")
        if u.role != Role.ADMIN and u.id != p.author_id:
            raise Forbidden("only the product's author or an admin releases it", code="not_author")
        if p.state != ProductState.APPROVED:
            raise Conflict(f"a {p.state} product cannot be released; it must be approved first", code="wrong_state")
        _require_licence(s, p)
        v = latest_version(s, p)
        threshold = inst.settings.small_count_threshold
        final = product_dir(inst, p.id, v.number)
        if final.exists():
            raise Conflict(f"version {v.number} of product {p.id} already has files", code="already_released")
        tmp = final.parent / f".v{v.number}.{uuid.uuid4().hex[:8]}.tmp"
        written.append(tmp)
        released_at = now()
        try:
            tables_meta = []
            for i, t in enumerate(tables_of(s, list(v.run_ids)), start=1):
                rows, intervals, n_supp = suppressed_table(t, threshold)
                name = f"table_{i}"
                table_files = write_table(tmp / "tables", name, t.columns, rows, intervals,
                                          float(t.result.get("alpha", 0.05)))
                hint = (v.chart_hints or {}).get(t.run_id) or (v.chart_hints or {}).get(name) or {}
                tables_meta.append({
                    "name": name, "title": hint.get("title", "") if isinstance(hint, dict) else "",
                    "run_id": t.run_id, "sql": t.sql, "fingerprint": t.fingerprint, "plan": t.plan,
                    "columns": t.columns, "rows": len(rows), "epsilon": t.epsilon, "delta": t.delta,
                    "alpha": t.result.get("alpha"), "mechanisms": t.result.get("mechanisms", []),
                    "suppressed_cells": n_supp, "files": [f"tables/{f}" for f in table_files],
                })
            body = _manifest_body(s, inst, p, v, tables_meta, u.name, iso(released_at))
            sha = sign_package(tmp, body, inst.signer)
            manifest = read_manifest(tmp)
            written.append(final)
            tmp.rename(final)
            old = p.state
            p.state, p.updated_at = ProductState.RELEASED, released_at
            v.manifest, v.signature = manifest, (final / "manifest.sig").read_text().strip()
            v.path, v.released_at = str(final), released_at
            audit.append(s, inst.signer, actor_of(u), "product.release", "product", p.id, {
                "from": old, "to": ProductState.RELEASED, "version": v.number, "manifest_sha256": sha,
                "epsilon": float(v.epsilon), "delta": float(v.delta), "key_id": inst.signer.key_id()})
            notices.on_product_decided(s, inst.settings, p)
            close_requests_for(s, inst, actor_of(u), p.id)
            s.flush()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        files = tuple(sorted(manifest["files"])) + ("manifest.json", "manifest.sig")
        return ReleasedPackage(p.id, v.number, final, files, sha, inst.signer.key_id())


def rerun_product(inst: Instance, user: str, product_id: int, *, dataset_version: int | None = None) -> ProductDetail:
    """Re-run a released product's queries on another dataset version (each run
    charges its own ε) as a new draft version; earlier versions stay released."""
    from sandbox.datasets import get_version
    from sandbox.service import run_query

    with inst.store.read() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        if p.author_id != u.id:
            raise Forbidden("only the product's author re-runs it", code="not_author")
        if p.state != ProductState.RELEASED:
            raise Conflict(f"only a released product is re-run (this one is {p.state})", code="wrong_state")
        ds = existing_row(s, Dataset, p.dataset_id)
        v = latest_version(s, p)
        target = get_version(s, ds, dataset_version)
        if target.id == v.dataset_version_id:
            raise Conflict(f"version {v.number} already uses dataset version {target.number}",
                           code="same_dataset_version")
        queries = [(r.sql, r.epsilon) for r in (existing_row(s, QueryRun, rid) for rid in v.run_ids)]
        ds_name, number, target_number = ds.name, v.number, target.number
        hints = dict(v.chart_hints or {})
    new_runs = [run_query(inst, user, ds_name, sql, epsilon=eps, version=target_number).run_id
                for sql, eps in queries]
    with inst.store.transaction() as s:
        u = get_user(s, user)
        p = get_product_row(s, product_id)
        if p.state != ProductState.RELEASED or latest_version(s, p).number != number:
            raise Conflict("the product changed while its queries ran; draft the new runs by hand",
                           code="concurrent_change")
        runs = [existing_row(s, QueryRun, rid) for rid in new_runs]
        old_ids = latest_version(s, p).run_ids
        remap = {o: n for o, n in zip(old_ids, new_runs)}
        nv = ProductVersion(product_id=p.id, number=number + 1, run_ids=new_runs,
                            chart_hints={remap.get(k, k): h for k, h in hints.items()},
                            dataset_version_id=runs[0].version_id, epsilon=sum(r.epsilon for r in runs),
                            delta=sum(r.delta for r in runs))
        s.add(nv)
        p.licence_id = runs[0].licence_id
        p.state, p.updated_at, p.attestation = ProductState.DRAFT, now(), ""
        s.flush()
        audit.append(s, inst.signer, actor_of(u), "product.rerun", "product", p.id, {
            "from": ProductState.RELEASED, "to": ProductState.DRAFT, "version": nv.number, "dataset_version": target_number,
            "runs": new_runs, "epsilon": float(nv.epsilon), "delta": float(nv.delta)})
        return detail(s, inst, p, u)


def package_path(inst: Instance, user: str | None, product_id: int, version: int | None = None) -> Path:
    """The folder of a released version (the newest released one by default)."""
    with inst.store.read() as s:
        viewer = get_user(s, user) if user else None
        p = get_product_row(s, product_id)
        if not can_see(s, p, viewer):
            raise NotFound(f"no product {product_id}", code="unknown_product")
        released = [v for v in versions_of(s, p) if v.released_at is not None]
        if version is not None:
            released = [v for v in released if v.number == version]
        if not released:
            raise NotFound(f"product {product_id} has no released version"
                           + (f" {version}" if version is not None else ""), code="not_released")
        folder = released[-1].path
    path = Path(folder) if folder is not None else None
    if path is None or not path.is_dir():
        raise NotFound(f"the files of product {product_id} are missing from this instance", code="files_missing")
    return path


def export_product(inst: Instance, user: str | None, product_id: int, out: str | Path, *,
                   version: int | None = None, as_zip: bool = False) -> Path:
    """Copy a released version's package into ``out`` (as a folder or a zip)."""
    src = package_path(inst, user, product_id, version)
    out = Path(out)
    name = f"product-{product_id}-{src.name}"
    if as_zip:
        return zip_folder(src, out / f"{name}.zip", name)
    dest = out / name
    if dest.exists():
        raise InvalidInput(f"{dest} already exists", code="export_exists")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    return dest
