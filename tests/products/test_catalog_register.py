"""The DCAT-AP catalog (parsed with rdflib), the transparency register, the
signed disclosure report, and data requests."""

from __future__ import annotations

import json
from datetime import date

import pytest
import rdflib
from rdflib.namespace import DCTERMS, PROV, RDF
from sqlalchemy import select

from products.manifest import verify_path
from products.service import (
    catalog_jsonld, decide_data_request, disclosure_report, draft_product, file_request, list_data_requests,
    transparency_register, withdraw_product,
)
from products_world import CITY_ROWS, CITY_SQL, release
from queries.errors import Conflict, Forbidden, InvalidInput
from sandbox.persistence.models import Dataset, DatasetVersion, User

DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")   # DCAT 3 terms (rdflib ships DCAT 2)
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"


def add_dataset_row(inst, name, classification):
    with inst.store.transaction() as s:
        owner = s.execute(select(User).where(User.name == "owner1")).scalar_one()
        ds = Dataset(name=name, title=name.title(), description="", publisher="Tax Office", owner_id=owner.id,
                     classification=classification)
        s.add(ds)
        s.flush()
        s.add(DatasetVersion(dataset_id=ds.id, number=1, content_hash="c" * 64, policy_hash="d" * 64, path="/x",
                             wrapped_key=b"k", policy={}, row_counts={}, quality={}, created_by=owner.id))


# rdflib's own JSON-LD parser still builds a ConjunctiveGraph internally
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_catalog_is_dcat_with_provenance(sqlite_world):
    w = sqlite_world
    add_dataset_row(w.inst, "tax", "restricted")
    add_dataset_row(w.inst, "transport", "open")
    pid = release(w, [w.run(CITY_SQL, CITY_ROWS)], title="Visits by city")
    draft_product(w.inst, "operator1", title="secret draft", run_ids=[w.run(CITY_SQL, CITY_ROWS)])
    doc = catalog_jsonld(w.inst, "https://data.example.org")
    g = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    base = "https://data.example.org"
    health, tax, transport = (rdflib.URIRef(f"{base}/datasets/{n}") for n in ("health", "tax", "transport"))
    assert (health, RDF.type, DCAT.DatasetSeries) in g
    assert g.value(health, DCTERMS.accessRights) == rdflib.URIRef(ACCESS + "RESTRICTED")
    assert g.value(tax, DCTERMS.accessRights) == rdflib.URIRef(ACCESS + "NON_PUBLIC")
    assert g.value(transport, DCTERMS.accessRights) == rdflib.URIRef(ACCESS + "PUBLIC")
    assert g.value(tax, DCAT.distribution) is None                       # metadata only
    hv1 = rdflib.URIRef(f"{base}/datasets/health/v1")
    assert g.value(hv1, DCAT.inSeries) == health
    product_v1 = rdflib.URIRef(f"{base}/products/{pid}/v1")
    assert (product_v1, RDF.type, DCAT.Dataset) in g
    assert g.value(product_v1, PROV.wasDerivedFrom) == hv1
    assert g.value(product_v1, DCTERMS.license) is not None
    assert len(list(g.objects(product_v1, DCAT.distribution))) == 4      # 3 table files + manifest
    publisher = g.value(health, DCTERMS.publisher)
    assert str(g.value(publisher, rdflib.URIRef("http://xmlns.com/foaf/0.1/name"))) == "Health Agency"
    titles = {str(t) for t in g.objects(None, DCTERMS.title)}
    assert "secret draft" not in titles and "Visits by city" in titles
    withdraw_product(w.inst, "admin1", pid, "wrong input")
    g = rdflib.Graph().parse(data=json.dumps(catalog_jsonld(w.inst, base)), format="json-ld")
    assert str(g.value(product_v1, rdflib.URIRef("http://www.w3.org/ns/adms#status"))).endswith("Withdrawn")


def test_register_and_signed_disclosure_report(sqlite_world, tmp_path):
    w = sqlite_world
    pid = release(w, [w.run(CITY_SQL, CITY_ROWS, epsilon=0.7)], title="Visits by city")
    withdraw_product(w.inst, "admin1", pid, "superseded")
    reg = transparency_register(w.inst).to_dict()
    assert [(l["operator"], l["purpose"]) for l in reg["licences"]] == [("operator1", "service planning"),
                                                                        ("operator2", "other study")]
    assert reg["products"][0]["id"] == pid and reg["products"][0]["state"] == "withdrawn"
    budget = reg["budgets"][0]
    assert budget["epsilon_spent"] == pytest.approx(0.7) and budget["epsilon_remaining"] == pytest.approx(19.3)
    assert reg["withdrawals"][0]["reason"] == "superseded"
    year = date.today().year
    report = disclosure_report(w.inst, year, out=tmp_path / "report")
    d = report.to_dict()
    agency = d["agencies"][0]
    assert agency["agency"] == "Health Agency" and agency["products"][0]["id"] == pid
    op = next(o for o in d["operators"] if o["operator"] == "operator1")
    assert op["licences"][0]["purpose"] == "service planning" and op["epsilon_spent"] == pytest.approx(0.7)
    assert "operator1" in (report.path / "report.html").read_text()
    r = verify_path(report.path, w.inst.signer.public_pem())
    assert r.ok and r.kind == "disclosure_report"
    (report.path / "report.json").write_text("{}")
    assert not verify_path(report.path).ok
    empty = disclosure_report(w.inst, 2001, out=tmp_path / "2001").to_dict()
    assert empty["operators"] == [] and empty["agencies"][0]["products"] == []


def test_data_requests(sqlite_world):
    w = sqlite_world
    inst = w.inst
    with pytest.raises(InvalidInput):
        file_request(inst, None, title="x", description="y", contact="not a contact")
    r = file_request(inst, None, title="Visits per city", description="for a news story",
                     contact="reporter@example.org", dataset="health")
    other = file_request(inst, None, title="Tax data", description="curiosity", contact="+47 22 00 00 00")
    public = list_data_requests(inst, None)
    assert [x.id for x in public] == [r.id, other.id]
    assert all(x.contact is None for x in public) and "contact" not in public[0].to_dict()
    assert list_data_requests(inst, "owner1")[0].contact == "reporter@example.org"
    with pytest.raises(Forbidden):
        decide_data_request(inst, "operator1", r.id, "accept")
    with pytest.raises(InvalidInput):
        decide_data_request(inst, "owner1", other.id, "decline")
    assert decide_data_request(inst, "owner1", other.id, "decline", "no such dataset here").status == "declined"
    with pytest.raises(Conflict):
        decide_data_request(inst, "owner1", other.id, "accept")
    assert decide_data_request(inst, "owner1", r.id, "accept").status == "accepted"
    pid = draft_product(inst, "operator1", title="Visits by city", run_ids=[w.run(CITY_SQL, CITY_ROWS)]).id
    assert decide_data_request(inst, "owner1", r.id, "link", product_id=pid).status == "accepted"
    from products.service import release_product, review_product, submit_product

    submit_product(inst, "operator1", pid, attestation="ok")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    review_product(inst, "reviewer2", pid, "approve", "checked")
    release_product(inst, "operator1", pid)
    closed = list_data_requests(inst, None, status="closed")
    assert [(x.id, x.product_id) for x in closed] == [(r.id, pid)] and closed[0].closed_at
