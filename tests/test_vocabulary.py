"""Every fixed vocabulary: each word of each StrEnum is documented in docs/vocabulary.md,
has an English and a Chinese label (web/i18n_terms.py), and is exactly what the API's
OpenAPI document accepts wherever the API takes the field."""

from __future__ import annotations

import inspect
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

import privacy.vocabulary
import products.sharing_extract
import products.vocabulary
import queries.sharing_policy
import queries.vocabulary
import sandbox.sharing.delivery
import sandbox.sharing.feedback
import sandbox.sharing.grants
import sandbox.notifications.vocabulary
import sandbox.vocabulary
from privacy.vocabulary import AUTO, Accounting, Mechanism, NoiseFamily
from products.sharing_extract import ExtractFormat
from products.vocabulary import DataRequestStatus
from queries.sharing_policy import SharingClass, UpdateFrequency
from queries.vocabulary import AggregateKind, Classification, ColumnClass, ColumnType, Engine
from sandbox.sharing.delivery import DeliveryKind
from sandbox.sharing.feedback import DemandStatus, ObjectionStatus, UpdateStatus
from sandbox.sharing.grants import GrantStatus, ShareDecision
from sandbox.notifications.vocabulary import Channel, DeliveryStatus, NoticeKind
from sandbox.vocabulary import PUBLIC, ApprovalMode, LicenceStatus, OrganisationKind, ProductState, Role, RunStatus
from sandbox.vocabulary import ChainAction, HeadPlace
from sandbox.vocabulary import OperationAction
from sandbox.vocabulary import Credential, LoginSurface
from sandbox.vocabulary import ClassificationChangeStatus, ClassificationDecision
from sandbox.vocabulary import ReadAction
from web.i18n_terms import TERMS_EN, TERMS_ZH

DOC = Path(__file__).resolve().parents[1] / "docs" / "vocabulary.md"
# the vocabulary modules, and the sharing modules that keep their own StrEnums beside their rules
MODULES = (queries.vocabulary, privacy.vocabulary, sandbox.vocabulary, products.vocabulary,
           queries.sharing_policy, sandbox.sharing.grants, sandbox.sharing.feedback, sandbox.sharing.delivery,
           products.sharing_extract, sandbox.notifications.vocabulary)

# enum -> (its kind in the label tables, the API fields that take it as (model, field))
VOCABULARIES: dict[type[StrEnum], tuple[str, tuple[tuple[str, str], ...]]] = {
    Role: ("role", (("UserCreate", "role"), ("UserOut", "role"), ("Me", "role"))),
    ApprovalMode: ("approval mode", (("LicenceGrant", "approval"), ("ApprovalModeChange", "mode"))),
    LicenceStatus: ("licence status", (("LicenceOut", "status"),)),
    ProductState: ("product state", (("ProductListQuery", "state"), ("ProductSummaryOut", "state"),
                                     ("ProductOut", "state"))),
    RunStatus: ("run status", (("RunSummary", "status"), ("RunDetail", "status"))),
    DataRequestStatus: ("request status", (("DataRequestListQuery", "status"), ("DataRequestOut", "status"))),
    Classification: ("data class", (("DatasetListQuery", "classification"), ("DatasetSummary", "classification"),
                                    ("DatasetDetail", "classification"))),
    ColumnClass: ("column class", ()),
    ColumnType: ("column type", ()),
    Engine: ("engine", ()),
    AggregateKind: ("aggregate", ()),
    Accounting: ("accounting", (("LicenceGrant", "accounting"),)),
    NoiseFamily: ("noise family", ()),
    Mechanism: ("mechanism", ()),
    SharingClass: ("sharing class", ()),
    UpdateFrequency: ("update frequency", ()),
    OrganisationKind: ("organisation kind", ()),
    ClassificationChangeStatus: ("classification change status", (("ClassificationChangeOut", "status"),
                                                                   ("ClassificationListQuery", "status"))),
    ClassificationDecision: ("classification decision", (("ClassificationDecisionIn", "decision"),)),
    ReadAction: ("read action", ()),
    ChainAction: ("chain action", ()),
    HeadPlace: ("head place", ()),
    OperationAction: ("operation action", ()),
    LoginSurface: ("login surface", ()),
    Credential: ("credential", ()),
    GrantStatus: ("grant status", (("ShareListQuery", "status"),)),
    ShareDecision: ("share decision", (("ShareDecisionIn", "decision"),)),
    UpdateStatus: ("update status", ()),
    ObjectionStatus: ("objection status", ()),
    DemandStatus: ("demand status", ()),
    DeliveryKind: ("delivery kind", ()),
    ExtractFormat: ("extract format", (("ExtractQuery", "format"),)),
    NoticeKind: ("notice kind", (("NoticeOut", "kind"),)),
    Channel: ("delivery channel", (("NoticeDeliveryOut", "channel"),)),
    DeliveryStatus: ("delivery status", (("NoticeDeliveryOut", "status"),)),
}


def _documented(enum: type[StrEnum]) -> list[str]:
    """The words listed in the table of ``enum``'s section of docs/vocabulary.md."""
    text = DOC.read_text(encoding="utf-8")
    name = f"`{enum.__module__}.{enum.__name__}`"
    sections = re.split(r"(?m)^## ", text)
    section = next((s for s in sections if s.splitlines()[0].endswith(name)), None)
    assert section is not None, f"docs/vocabulary.md has no section for {name}"
    return re.findall(r"(?m)^\| `([^`]+)` \|", section)


def test_every_vocabulary_module_enum_is_pinned():
    defined = {obj for module in MODULES for _, obj in inspect.getmembers(module, inspect.isclass)
               if issubclass(obj, StrEnum) and obj is not StrEnum and obj.__module__ == module.__name__}
    assert defined == set(VOCABULARIES)


@pytest.mark.parametrize("enum", list(VOCABULARIES), ids=lambda e: e.__name__)
def test_every_word_is_documented(enum):
    listed = _documented(enum)
    assert sorted(listed) == sorted(enum), f"docs/vocabulary.md lists {listed} for {enum.__name__}"
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("enum", list(VOCABULARIES), ids=lambda e: e.__name__)
def test_every_word_has_an_english_and_a_chinese_label(enum):
    kind = VOCABULARIES[enum][0]
    for word in enum:
        en, zh = TERMS_EN[kind].get(word), TERMS_ZH[kind].get(word)
        assert en and en.strip(), f"no English label for {enum.__name__}.{word.name}"
        assert zh and re.search(r"[\u4e00-\u9fff]", zh), f"no Chinese label for {enum.__name__}.{word.name}"


def test_the_words_beside_the_enums_have_labels_and_docs():
    text = DOC.read_text(encoding="utf-8")
    for kind, word in (("role", PUBLIC), ("accounting", AUTO)):
        assert TERMS_EN[kind].get(word) and TERMS_ZH[kind].get(word), word
        assert f"`{word}`" in text, word


def _enum_of(schema: dict[str, Any], components: dict[str, Any]) -> list[str] | None:
    """The words a property schema accepts: its enum, through a $ref or one arm of anyOf."""
    if "enum" in schema:
        return schema["enum"]
    if "$ref" in schema:
        return _enum_of(components[schema["$ref"].rsplit("/", 1)[1]], components)
    for arm in schema.get("anyOf", []):
        found = _enum_of(arm, components)
        if found is not None:
            return found
    return None


@pytest.fixture(scope="module")
def openapi():
    from web.api import API_VERSION, PREFIX, api
    from web.openapi import openapi_document

    return api, openapi_document(api, PREFIX, API_VERSION)


@pytest.mark.parametrize("enum", [e for e, (_, fields) in VOCABULARIES.items() if fields], ids=lambda e: e.__name__)
def test_the_api_accepts_exactly_the_words(enum, openapi):
    api, doc = openapi
    components = doc["components"]["schemas"]
    for model, field in VOCABULARIES[enum][1]:
        if model in components:
            prop = components[model]["properties"][field]
        else:       # a query string: its fields are the parameters of the routes that take it
            params = [p for op in api.operations if op.query is not None and op.query.__name__ == model
                      for p in doc["paths"][_path_of(op)][op.method.lower()]["parameters"]
                      if p["name"] == field]
            assert params, f"no route takes {model}.{field}"
            prop = params[0]["schema"]
        assert _enum_of(prop, components) == list(enum), f"{model}.{field}"


def _path_of(op: Any) -> str:
    from web.api import PREFIX
    from web.openapi import openapi_path

    return PREFIX + openapi_path(op.rule)


def test_a_word_outside_the_vocabulary_is_refused_with_a_clear_error():
    from pydantic import ValidationError

    from web.schemas import ApprovalModeChange

    assert ApprovalModeChange.model_validate({"mode": "each"}).mode is ApprovalMode.EACH
    with pytest.raises(ValidationError) as err:
        ApprovalModeChange.model_validate({"mode": "sometimes"})
    assert "automatic" in str(err.value) and "each" in str(err.value)


def test_the_cli_offers_exactly_the_words():
    from sandbox.cli.admin import user_add
    from sandbox.cli.datasets import ACCOUNTINGS, APPROVAL_MODES

    assert ACCOUNTINGS == list(Accounting)          # written out so the CLI starts without OpenDP
    assert APPROVAL_MODES == list(ApprovalMode)
    role = next(p for p in user_add.params if p.name == "role")
    assert list(role.type.choices) == list(Role)

    from products.sharing_cli import org_add

    kind = next(p for p in org_add.params if p.name == "kind")
    assert list(kind.type.choices) == list(OrganisationKind)
