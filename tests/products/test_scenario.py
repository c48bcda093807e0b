"""The whole path through the real services: a registered conditional dataset,
a licence, three real DP queries, a product reviewed by two reviewers,
released, verified, catalogued and registered; then a re-run on a new dataset
version that charges its own ε while version 1 stays verifiable."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import rdflib
from sqlalchemy import select

from products.manifest import verify_path
from products.service import (
    catalog_jsonld, draft_product, export_product, get_product, list_products, release_product, rerun_product, review_product,
    submit_product, transparency_register,
)
from queries.errors import Forbidden
from sandbox.audit import Actor, verify_chain
from sandbox.datasets import add_dataset
from sandbox.demo.data import write_health
from sandbox.licences import grant_licence
from sandbox.persistence.models import Budget
from sandbox.service import run_query
from sandbox.users import add_user

OWNER = Actor("owner1", "owner")
QUERIES = (
    "SELECT COUNT(*) AS visits FROM visits",
    "SELECT SUM(cost) AS total_cost FROM visits",
    "SELECT COUNT(*) AS costly_visits FROM visits WHERE cost > 500",   # ~250 visits: never all noise
)


@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_draft_review_release_verify_catalog_register_rerun(make_instance, tmp_path):
    inst = make_instance()
    admin = Actor("setup", "admin")
    for name, role in [("owner1", "owner"), ("operator1", "operator"), ("reviewer1", "reviewer"),
                       ("reviewer2", "reviewer")]:
        add_user(inst, admin, name, role, "long enough password", organisation=f"{name} org")
    write_health(tmp_path / "v1", people=1500)
    add_dataset(inst, OWNER, tmp_path / "v1" / "policy.toml")
    grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=5.0, delta=1e-6,
                  purpose="clinic planning", expires=date.today() + timedelta(days=30))
    runs = [run_query(inst, "operator1", "health", sql, epsilon=0.4).run_id for sql in QUERIES]

    pid = draft_product(inst, "operator1", title="People in the health register", run_ids=runs,
                        purpose="clinic planning").id
    d = submit_product(inst, "operator1", pid, attestation="I am responsible for this product.")
    assert {c.name for c in d.checks} >= {"small_counts", "wide_intervals", "differencing"}
    assert not [c for c in d.checks if c.status == "fail"]
    with pytest.raises(Forbidden):
        review_product(inst, "operator1", pid, "approve", "checked")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    assert review_product(inst, "reviewer2", pid, "approve", "checked").state == "approved"
    pkg = release_product(inst, "operator1", pid)
    assert verify_path(pkg.path, inst.signer.public_pem()).ok
    manifest = json.loads((pkg.path / "manifest.json").read_text())
    assert [t["sql"] for t in manifest["tables"]] == list(QUERIES)
    assert manifest["privacy"]["epsilon"] == pytest.approx(1.2)
    assert manifest["tables"][0]["mechanisms"] and manifest["dataset"]["version"] == 1

    doc = catalog_jsonld(inst, "https://example.org")
    g = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    prov = rdflib.URIRef("http://www.w3.org/ns/prov#wasDerivedFrom")
    assert g.value(rdflib.URIRef(f"https://example.org/products/{pid}/v1"), prov) == \
        rdflib.URIRef("https://example.org/datasets/health/v1")

    reg = transparency_register(inst).to_dict()
    assert reg["budgets"][0]["epsilon_spent"] == pytest.approx(1.2)
    assert reg["products"][0]["id"] == pid

    # a new dataset version: the re-run charges its own ε, version 1 stays
    write_health(tmp_path / "v2", people=1600)
    assert add_dataset(inst, OWNER, tmp_path / "v2" / "policy.toml").number == 2
    d = rerun_product(inst, "operator1", pid)
    assert d.state == "draft" and [v.dataset_version for v in d.versions] == [1, 2]
    public = get_product(inst, None, pid)          # the public still sees version 1, released
    assert public.state == "released" and [v.number for v in public.versions] == [1]
    assert [p.id for p in list_products(inst, None, state="released")] == [pid]
    with inst.store.read() as s:
        spent = s.execute(select(Budget.spent_epsilon).where(Budget.scope == "dataset")).scalar_one()
    assert spent == pytest.approx(2.4)
    submit_product(inst, "operator1", pid, attestation="I am responsible for version 2.")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    review_product(inst, "reviewer2", pid, "approve", "checked")
    v2 = release_product(inst, "operator1", pid)
    assert v2.version == 2 and verify_path(v2.path).ok
    assert verify_path(export_product(inst, None, pid, tmp_path / "old", version=1, as_zip=True)).ok
    assert [v.number for v in get_product(inst, None, pid).versions] == [1, 2]
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok
