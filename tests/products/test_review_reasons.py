"""Reasons must say something: approving over a warning, returning, rejecting,
withdrawing and declining a data request refuse an empty reason and one made only
of spaces and zero-width/format characters (service and CLI); a CLI reviewer sees
the SQL and the noisy values with the cells a warning is about."""

from __future__ import annotations

import json

import pytest
from cli_identity import SignedInRunner
from products_world import PASSWORD

from products.reasons import clean_reason
from products.service import (
    decide_data_request, draft_product, file_request, review_product, submit_product, withdraw_product,
)
from products_world import CITY_ROWS, CITY_SQL
from queries.errors import InvalidInput
from sandbox.cli import main

INVISIBLE = ("\u200b", "\ufeff", "\u2060", " \u200b\t\n", "\u200c\u200d\u00a0", "\u180e", "\u2028")


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invisible_reason_is_no_reason(text):
    assert clean_reason(text) == ""
    assert clean_reason(text + "Fine." + text) == "Fine."


def _submitted(w, rows=CITY_ROWS) -> int:
    run = w.run(CITY_SQL, rows)
    pid = draft_product(w.inst, "operator1", title="Visits by city", run_ids=[run]).id
    submit_product(w.inst, "operator1", pid, attestation="ok")
    return pid


def test_the_service_refuses_invisible_reasons(sqlite_world):
    w = sqlite_world
    pid = _submitted(w)                                   # Trondheim 5.2: a small count warns

    def code(*args):
        with pytest.raises(InvalidInput) as e:
            args[0](w.inst, *args[1:])
        return e.value.code

    assert code(review_product, "reviewer1", pid, "approve", "") == "override_reason_required"
    for text in INVISIBLE:
        assert code(review_product, "reviewer1", pid, "approve", text) == "invisible_reason"
        assert code(review_product, "reviewer1", pid, "reject", text) == "invisible_reason"
        assert code(withdraw_product, "operator1", pid, text) == "invisible_reason"
    assert code(review_product, "reviewer1", pid, "return", "") == "missing_reason"
    d = review_product(w.inst, "reviewer1", pid, "approve", "\ufeffSuppressed at release.\u200b")
    assert [r.reason for r in d.reviews] == ["Suppressed at release."]

    request = file_request(w.inst, None, title="More", description="why", contact="a@example.org")
    for text in INVISIBLE:
        with pytest.raises(InvalidInput) as e:
            decide_data_request(w.inst, "owner1", request.id, "decline", text)
        assert e.value.code == "invisible_reason"


def test_a_clean_table_is_approved_without_a_reason(sqlite_world):
    w = sqlite_world
    pid = _submitted(w, [["Oslo", 120.4], ["Bergen", 88.0]])
    assert review_product(w.inst, "reviewer1", pid, "approve").approvals == 1


def test_a_cli_reviewer_sees_sql_values_and_flagged_cells_and_invisible_reasons_fail(sqlite_world):
    w = sqlite_world
    pid = str(_submitted(w))
    home = str(w.inst.home)
    cli = SignedInRunner(PASSWORD)
    shown = cli.invoke(main, ["product", "show", "--home", home, "--as", "reviewer1", pid])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert CITY_SQL in out                                      # the SQL
    assert "Trondheim" in out and "120.4" in out                 # the noisy values
    assert "[117.4, 123.4]" in out                               # with their intervals
    assert "small_counts: (3, n)" in out                         # the flagged cell: row 3, column n
    assert "granted for:" in out
    as_json = json.loads(cli.invoke(main, ["product", "show", "--home", home, "--as", "reviewer1", pid,
                                           "--json"]).output)
    assert as_json["tables"][0]["sql"] == CITY_SQL and as_json["licence_purpose"]
    for text in ("\u200b", "\ufeff \u2060"):
        refused = cli.invoke(main, ["product", "decide", "--home", home, "--as", "reviewer1", pid, "approve",
                                    "--reason", text])
        assert refused.exit_code == 1 and "invisible_reason" in refused.output
    refused = cli.invoke(main, ["product", "decide", "--home", home, "--as", "reviewer1", pid, "approve"])
    assert refused.exit_code == 1 and "override_reason_required" in refused.output
    ok = cli.invoke(main, ["product", "decide", "--home", home, "--as", "reviewer1", pid, "approve",
                           "--reason", "Small counts are suppressed."])
    assert ok.exit_code == 0 and "Small counts are suppressed." in ok.output
