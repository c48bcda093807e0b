"""Notices of the product and data-request life: reviewers hear of a product
waiting, its author of each review, a return and the release; a requester of
their request answered and closed by the release (SQLite and PostgreSQL)."""

from __future__ import annotations

from products.data_requests import decide_data_request, file_request
from products.service import draft_product, release_product, review_product, submit_product
from products_world import CITY_ROWS, CITY_SQL
from sandbox.notifications.outbox import list_notices
from sandbox.notifications.vocabulary import NoticeKind


def kinds(inst, user: str) -> list[NoticeKind]:
    return [n.kind for n in reversed(list_notices(inst, user))]


def test_the_product_life_tells_reviewers_authors_and_requesters(world):
    inst = world.inst
    run = world.run(CITY_SQL, CITY_ROWS)
    req = file_request(inst, "operator2", title="Visits per city", description="planning", contact="o2@example.org",
                       dataset="health")
    pid = draft_product(inst, "operator1", title="Visits per city", run_ids=[run], purpose="planning").id
    decide_data_request(inst, "owner1", req.id, "link", product_id=pid)
    assert kinds(inst, "operator2") == [NoticeKind.REQUEST_FILED, NoticeKind.REQUEST_ANSWERED]

    submit_product(inst, "operator1", pid, attestation="I am responsible.")
    for reviewer in ("reviewer1", "reviewer2", "reviewer3"):
        assert kinds(inst, reviewer) == [NoticeKind.PRODUCT_WAITING]
    assert kinds(inst, "operator1") == []                      # the author is not told of their own submission
    review_product(inst, "reviewer1", pid, "return", "the title is unclear")
    submit_product(inst, "operator1", pid, attestation="I am responsible.")
    review_product(inst, "reviewer1", pid, "approve", "checked")
    review_product(inst, "reviewer2", pid, "approve", "checked")
    release_product(inst, "operator1", pid)

    assert kinds(inst, "operator1") == [NoticeKind.PRODUCT_RETURNED, NoticeKind.PRODUCT_REVIEWED,
                                        NoticeKind.PRODUCT_REVIEWED, NoticeKind.PRODUCT_RELEASED]
    states = [n.facts["state"] for n in reversed(list_notices(inst, "operator1"))]
    assert states == ["returned", "submitted", "approved", "released"]
    assert kinds(inst, "reviewer1") == [NoticeKind.PRODUCT_WAITING, NoticeKind.PRODUCT_WAITING]
    assert kinds(inst, "operator2") == [NoticeKind.REQUEST_FILED, NoticeKind.REQUEST_ANSWERED,
                                        NoticeKind.REQUEST_CLOSED]
    closed = list_notices(inst, "operator2")[0]
    assert closed.facts["product"] == pid and "the title is unclear" not in str(list_notices(inst, "operator1"))
