"""The catalog export conforms to DCAT-AP 3.0.1: pyshacl finds 0 violations
against shapes for every mandatory property (tests/products/shapes), and the
shapes do catch the defects the export once had."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import rdflib

from products.service import catalog_jsonld, draft_product
from products_world import CITY_ROWS, CITY_SQL, release
from test_catalog_register import add_dataset_row

SHAPES = Path(__file__).parent / "shapes" / "dcat_ap_3_0_1.ttl"
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


def violations(doc) -> list[str]:
    from pyshacl import validate

    data = rdflib.Graph().parse(data=json.dumps(doc), format="json-ld")
    shapes = rdflib.Graph().parse(SHAPES, format="turtle")
    conforms, report, text = validate(data, shacl_graph=shapes, inference="none", allow_warnings=False)
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    found = [str(report.value(r, sh.resultPath)) + " on " + str(report.value(r, sh.focusNode))
             for r in report.subjects(rdflib.RDF.type, sh.ValidationResult)]
    assert conforms == (not found)
    return found


@pytest.fixture
def exported(sqlite_world):
    w = sqlite_world
    add_dataset_row(w.inst, "tax", "restricted")
    add_dataset_row(w.inst, "transport", "open")
    release(w, [w.run(CITY_SQL, CITY_ROWS)], title="Visits by city")
    draft_product(w.inst, "operator1", title="secret draft", run_ids=[w.run(CITY_SQL, CITY_ROWS)])
    return catalog_jsonld(w.inst, "https://data.example.org")


def _nodes(doc, kind):
    return [n for n in doc["@graph"] if n.get("@type") == kind or kind in (n.get("@type") or [])]


def test_the_export_has_no_violation(exported):
    assert violations(exported) == []
    dists = [d for d in _nodes(exported, "dcat:Distribution") if "spdx:checksum" in d]
    assert dists and all(d["dcat:mediaType"]["@id"].startswith("http://www.iana.org/assignments/media-types/")
                         for d in dists)
    assert all(d["spdx:checksum"]["spdx:checksumValue"]["@type"] == "xsd:hexBinary" for d in dists)
    cat = _nodes(exported, "dcat:Catalog")[0]
    assert cat["dct:publisher"]
    health = next(n for n in _nodes(exported, "dcat:DatasetSeries") if n["@id"].endswith("/datasets/health"))
    assert health["dcat:keyword"] and health["dcat:contactPoint"] and health["dct:accrualPeriodicity"]
    assert {"@id": "http://publications.europa.eu/resource/authority/data-theme/HEAL"} in health["dcat:theme"]


@pytest.mark.parametrize("breakage", ["string media type", "no access URL", "untyped checksum",
                                      "version without description", "catalog without publisher"])
def test_the_shapes_catch_each_defect(exported, breakage):
    doc = copy.deepcopy(exported)
    dist = next(d for d in _nodes(doc, "dcat:Distribution") if "spdx:checksum" in d)
    version = next(n for n in _nodes(doc, "dcat:Dataset") if "/datasets/" in n["@id"])
    if breakage == "string media type":
        dist["dcat:mediaType"] = "text/csv"
    elif breakage == "no access URL":
        del dist["dcat:accessURL"]
    elif breakage == "untyped checksum":
        dist["spdx:checksum"]["spdx:checksumValue"] = dist["spdx:checksum"]["spdx:checksumValue"]["@value"]
    elif breakage == "version without description":
        del version["dct:description"]
    else:
        del _nodes(doc, "dcat:Catalog")[0]["dct:publisher"]
    assert violations(doc)
