"""The public catalog as DCAT-AP JSON-LD.

* Every dataset (all classifications; restricted ones as metadata only) is a
  ``dcat:DatasetSeries``; each registered version is a ``dcat:Dataset`` in it
  (``dcat:inSeries``, ``dcat:version``, ``dcat:prev``, ``dct:identifier`` =
  content hash); the series names its ``dcat:first`` and ``dcat:last``.
* ``dct:accessRights`` uses the EU access-right vocabulary: open → PUBLIC,
  conditional → RESTRICTED, restricted → NON_PUBLIC.
* Every product with a released version is a ``dcat:DatasetSeries``; each
  released version is a ``dcat:Dataset`` with ``prov:wasDerivedFrom`` the
  dataset version it was computed from, ``dct:license``, and one
  ``dcat:Distribution`` per file with its SHA-256 (``spdx:checksum``). Withdrawn
  products stay listed with ``adms:status`` Withdrawn.
* DCAT-AP 3.0.1: every dataset and series has a description, keywords, EU data
  themes (from the keywords), a vCard contact point (the data-request page) and
  an accrual periodicity; every distribution has an ``accessURL``, an IANA
  media-type IRI and a ``xsd:hexBinary`` checksum; the catalog names its
  publisher. ``tests/products/test_dcat_ap.py`` validates it with pyshacl.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from products.lifecycle import iso
from products.release import TERMS, manifest_sha256
from queries.vocabulary import Classification
from sandbox.datasets import published_digest
from sandbox.instance import Instance
from sandbox.persistence.models import Dataset, DatasetVersion, Product, ProductVersion, User
from sandbox.persistence.store import existing_row
from sandbox.vocabulary import ProductState

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "prov": "http://www.w3.org/ns/prov#",
    "adms": "http://www.w3.org/ns/adms#",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
}
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
# keyed by the stored word (a Classification member is that word)
ACCESS_RIGHTS: dict[str, str] = {Classification.OPEN: ACCESS + "PUBLIC", Classification.CONDITIONAL: ACCESS + "RESTRICTED",
                                 Classification.RESTRICTED: ACCESS + "NON_PUBLIC"}
IANA = "http://www.iana.org/assignments/media-types/"
MEDIA = {"parquet": IANA + "application/vnd.apache.parquet", "csv": IANA + "text/csv",
         "json": IANA + "application/json", "sig": IANA + "text/plain"}
THEME = "http://publications.europa.eu/resource/authority/data-theme/"
# EU data themes from a dataset's keywords (first match); GOVE when none matches.
THEMES_BY_KEYWORD = {"health": "HEAL", "hospital": "HEAL", "clinic": "HEAL", "transport": "TRAN", "traffic": "TRAN",
                     "ridership": "TRAN", "census": "SOCI", "population": "SOCI", "education": "EDUC",
                     "tax": "ECON", "income": "ECON", "economy": "ECON", "energy": "ENER", "environment": "ENVI",
                     "agriculture": "AGRI", "justice": "JUST", "crime": "JUST", "science": "TECH", "region": "REGI"}
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/IRREG"   # versions come when owners register them
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
FORMATS = {"parquet": FILE_TYPE + "PARQUET", "csv": FILE_TYPE + "CSV", "json": FILE_TYPE + "JSON"}
WITHDRAWN = "http://purl.org/adms/status/Withdrawn"
COMPLETED = "http://purl.org/adms/status/Completed"


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _when(value: str | None) -> dict[str, str] | None:
    return {"@value": value, "@type": "xsd:dateTime"} if value else None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def _clean(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if v not in (None, "", [])}


def themes(keywords: list[str]) -> list[dict[str, str]]:
    """EU data themes of a dataset, from its keywords."""
    found = [THEMES_BY_KEYWORD[w] for k in keywords for w in re.findall(r"[a-z]+", k.lower())
             if w in THEMES_BY_KEYWORD]
    return [_ref(THEME + t) for t in dict.fromkeys(found or ["GOVE"])]


def _version_description(ds: Dataset, v: DatasetVersion) -> str:
    """A version's description. Row counts are exact facts: they are published for
    open data only (a private table's row count is the number of people in it)."""
    tables = len((v.policy or {}).get("tables") or [])
    size = ""
    if ds.classification == Classification.OPEN and isinstance(v.row_counts, dict):
        size = f"{sum(v.row_counts.values())} rows in "
    return f"Version {v.number} of {ds.title}: {size}{tables} table(s), registered {iso(v.created_at)[:10]}."


def catalog_jsonld(inst: Instance, base_url: str | None = None) -> dict[str, Any]:
    """The whole public catalog as one JSON-LD document (``@context`` + ``@graph``)."""
    base = (base_url or f"http://{inst.settings.host}:{inst.settings.port}").rstrip("/")
    graph: list[dict[str, Any]] = []
    agents: dict[str, dict[str, Any]] = {}

    def agent(name: str) -> dict[str, str]:
        iri = f"{base}/agents/{_slug(name)}"
        agents.setdefault(iri, {"@id": iri, "@type": "foaf:Agent", "foaf:name": name})
        return _ref(iri)

    contacts: dict[str, dict[str, Any]] = {}

    def contact(name: str) -> dict[str, str]:
        """A vCard for the publisher: data requests are how the public reaches it."""
        iri = f"{base}/agents/{_slug(name)}#contact"
        contacts.setdefault(iri, {"@id": iri, "@type": ["vcard:Kind", "vcard:Organization"], "vcard:fn": name,
                                  "vcard:hasURL": _ref(f"{base}/requests")})
        return _ref(iri)

    catalog_entries: list[dict[str, str]] = []
    with inst.store.read() as s:
        owners = {u.id: u for u in s.execute(select(User)).scalars()}
        version_iri: dict[int, str] = {}
        for ds in s.execute(select(Dataset).order_by(Dataset.name)).scalars():
            series = f"{base}/datasets/{ds.name}"
            publisher = ds.publisher or owners[ds.owner_id].organisation or owners[ds.owner_id].name
            versions = s.execute(select(DatasetVersion).where(DatasetVersion.dataset_id == ds.id)
                                 .order_by(DatasetVersion.number)).scalars().all()
            keywords = (list((versions[-1].policy or {}).get("keywords") or []) if versions else []) or [ds.name]
            described = {"dct:description": ds.description or ds.title, "dcat:keyword": keywords,
                         "dcat:theme": themes(keywords + [ds.name, ds.title]), "dcat:contactPoint": contact(publisher),
                         "dct:accrualPeriodicity": _ref(FREQUENCY)}
            members = []
            for v in versions:
                iri = f"{series}/v{v.number}"
                version_iri[v.id] = iri
                members.append(_ref(iri))
                graph.append(_clean({
                    "@id": iri, "@type": "dcat:Dataset", "dct:title": f"{ds.title} (version {v.number})",
                    "dcat:inSeries": _ref(series), "dcat:version": str(v.number),
                    "dct:identifier": published_digest(inst, v, ds.classification),
                    "dcat:prev": members[-2] if len(members) > 1 else None,
                    "dct:issued": _when(iso(v.created_at)), "dct:accessRights": _ref(ACCESS_RIGHTS[ds.classification]),
                    "dct:publisher": agent(publisher), **described,
                    "dct:description": _version_description(ds, v),
                }))
            node = {
                "@id": series, "@type": "dcat:DatasetSeries", "dct:identifier": ds.name, "dct:title": ds.title,
                "dct:publisher": agent(publisher), **described,
                "dct:accessRights": _ref(ACCESS_RIGHTS[ds.classification]),
                "dct:issued": _when(iso(ds.created_at)), "dcat:landingPage": _ref(series),
                "dcat:first": members[0] if members else None, "dcat:last": members[-1] if members else None,
            }
            if ds.classification == Classification.OPEN:
                node["dcat:distribution"] = [_ref(f"{series}/distribution")]
                graph.append({"@id": f"{series}/distribution", "@type": "dcat:Distribution",
                              "dcat:accessURL": _ref(series), "dct:license": _ref(TERMS)})
            graph.append(_clean(node))
            catalog_entries.append(_ref(series))

        rows = s.execute(select(ProductVersion, Product).join(Product, Product.id == ProductVersion.product_id)
                         .where(ProductVersion.released_at.is_not(None))
                         .order_by(Product.id, ProductVersion.number)).all()
        by_product: dict[int, list[tuple[ProductVersion, Product]]] = {}
        for pv, p in rows:
            by_product.setdefault(p.id, []).append((pv, p))
        for pid, items in by_product.items():
            p = items[0][1]
            ds = existing_row(s, Dataset, p.dataset_id)
            author = owners[p.author_id]
            series = f"{base}/products/{pid}"
            status = WITHDRAWN if p.state == ProductState.WITHDRAWN else COMPLETED
            members = []
            for pv, _ in items:
                assert pv.released_at is not None   # the query selects released versions only
                iri = f"{series}/v{pv.number}"
                members.append(_ref(iri))
                dists = []
                for path, meta in sorted(((pv.manifest or {}).get("files") or {}).items()):
                    ext = path.rsplit(".", 1)[-1]
                    diri = f"{iri}/files/{path}"
                    dists.append(_ref(diri))
                    graph.append(_clean({
                        "@id": diri, "@type": "dcat:Distribution", "dct:title": path,
                        "dcat:accessURL": _ref(diri), "dcat:downloadURL": _ref(diri),
                        "dcat:mediaType": _ref(MEDIA[ext]) if ext in MEDIA else None,
                        "dct:format": _ref(FORMATS[ext]) if ext in FORMATS else None,
                        "dcat:byteSize": {"@value": str(meta.get("bytes")), "@type": "xsd:nonNegativeInteger"},
                        "spdx:checksum": {"@type": "spdx:Checksum",
                                          "spdx:algorithm": _ref("http://spdx.org/rdf/terms#checksumAlgorithm_sha256"),
                                          "spdx:checksumValue": {"@value": meta.get("sha256"),
                                                                 "@type": "xsd:hexBinary"}},
                        "dct:license": _ref(TERMS),
                    }))
                manifest_iri = f"{iri}/files/manifest.json"
                graph.append({"@id": manifest_iri, "@type": "dcat:Distribution", "dct:title": "manifest.json",
                              "dcat:accessURL": _ref(manifest_iri), "dcat:downloadURL": _ref(manifest_iri),
                              "dcat:mediaType": _ref(MEDIA["json"]),
                              "dct:description": f"signed manifest (Ed25519, manifest.sig); SHA-256 "
                                                 f"{manifest_sha256(pv.manifest)}"})
                dists.append(_ref(manifest_iri))
                derived = version_iri.get(pv.dataset_version_id) if pv.dataset_version_id else None
                graph.append(_clean({
                    "@id": iri, "@type": "dcat:Dataset", "dct:title": f"{p.title} (version {pv.number})",
                    "dct:description": f"Version {pv.number} of {p.title}, released {iso(pv.released_at)[:10]}. "
                                       f"{p.description or ''}".strip(),
                    "dcat:inSeries": _ref(series), "dcat:version": str(pv.number),
                    "dcat:prev": members[-2] if len(members) > 1 else None,
                    "dct:issued": _when(iso(pv.released_at)), "dct:accessRights": _ref(ACCESS_RIGHTS[Classification.OPEN]),
                    "dct:license": _ref(TERMS), "dct:publisher": agent(ds.publisher or "dp-sandbox"),
                    "dct:creator": agent(author.organisation or author.name),
                    "prov:wasDerivedFrom": _ref(derived or f"{base}/datasets/{ds.name}"),
                    "dcat:distribution": dists, "adms:status": _ref(status),
                    "dcat:keyword": ["differential privacy", ds.name], "dcat:theme": themes([ds.name, ds.title]),
                    "dcat:contactPoint": contact(ds.publisher or "dp-sandbox"),
                }))
            graph.append(_clean({
                "@id": series, "@type": "dcat:DatasetSeries", "dct:identifier": f"product-{pid}",
                "dct:title": p.title, "dct:description": p.description or p.title,
                "dct:accessRights": _ref(ACCESS_RIGHTS[Classification.OPEN]), "dct:license": _ref(TERMS),
                "dcat:keyword": ["differential privacy", ds.name], "dcat:theme": themes([ds.name, ds.title]),
                "dcat:contactPoint": contact(ds.publisher or "dp-sandbox"),
                "dct:accrualPeriodicity": _ref(FREQUENCY),
                "dct:publisher": agent(ds.publisher or "dp-sandbox"),
                "prov:wasDerivedFrom": _ref(f"{base}/datasets/{ds.name}"),
                "adms:status": _ref(status), "adms:versionNotes": p.withdraw_reason or None,
                "dcat:first": members[0], "dcat:last": members[-1], "dcat:landingPage": _ref(series),
            }))
            catalog_entries.append(_ref(series))
    catalog = {"@id": f"{base}/catalog", "@type": "dcat:Catalog", "dct:title": "dp-sandbox catalog",
               "dct:description": "Datasets and released differentially private data products.",
               "dct:publisher": agent("dp-sandbox"),      # the instance that publishes the catalog
               "dcat:dataset": catalog_entries, "foaf:homepage": _ref(base + "/")}
    return {"@context": CONTEXT, "@graph": [catalog, *graph, *agents.values(), *contacts.values()]}
