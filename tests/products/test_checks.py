"""Automatic disclosure checks as reviewers see them."""

from __future__ import annotations

import pytest

from products.service import draft_product, review_product, submit_product
from products_world import CITY_ROWS, CITY_SQL, release
from queries.errors import InvalidInput


def checks_of(w, run_ids, author="operator1"):
    pid = draft_product(w.inst, author, title="t", run_ids=run_ids).id
    d = submit_product(w.inst, author, pid, attestation="ok")
    return pid, {(c.name, c.table): c for c in d.checks}


def test_small_counts_wide_intervals_and_partition_selection(sqlite_world):
    w = sqlite_world
    clean = w.run("SELECT sex, COUNT(*) AS n FROM people GROUP BY sex", [["F", 1500.0], ["M", 1450.0]])
    noisy = w.run("SELECT diagnosis, COUNT(*) AS n FROM people GROUP BY diagnosis",
                  [["J06", 3.0], ["I10", 40.0]], half_width=12.0)
    _, checks = checks_of(w, [clean, noisy])
    assert {c.status for (name, t), c in checks.items() if t == clean} == {"pass"}
    small = checks[("small_counts", noisy)]
    assert small.status == "warn" and dict(small.details)["cells"] == 1
    wide = checks[("wide_intervals", noisy)]
    assert wide.status == "warn" and dict(wide.details)["cells"] == 1     # 3 ± 12
    selected = checks[("partition_selection", noisy)]     # diagnosis has no public domain
    assert selected.status == "warn" and dict(selected.details) == {"selected": True}
    assert "group(s)" not in selected.message           # how many were dropped is never known


def test_a_table_with_nothing_to_release_fails_and_needs_a_reason(sqlite_world):
    w = sqlite_world
    tiny = w.run("SELECT COUNT(*) AS n FROM people WHERE age > 118", [[2.0]])
    pid, checks = checks_of(w, [tiny])
    assert checks[("empty_table", tiny)].status == "fail"
    with pytest.raises(InvalidInput) as e:
        review_product(w.inst, "reviewer1", pid, "approve")
    assert e.value.code == "override_reason_required"
    review_product(w.inst, "reviewer1", pid, "approve", "an empty table is acceptable here")


def test_differencing_warning_on_a_pair_isolating_one_group(sqlite_world):
    """COUNT over everyone over 30, then the same without Oslo: the difference is Oslo."""
    w = sqlite_world
    everyone = w.run("SELECT COUNT(*) AS n FROM people WHERE age > 30", [[2100.0]], epsilon=0.5)
    release(w, [everyone], title="Adults")
    but_one = w.run("SELECT COUNT(*) AS n FROM people WHERE age > 30 AND city <> 'Oslo'", [[1800.0]], epsilon=0.3)
    _, checks = checks_of(w, [but_one])
    diff = checks[("differencing", but_one)]
    assert diff.status == "warn"
    details = dict(diff.details)
    assert details["combined_epsilon"] == pytest.approx(0.8)
    assert details["matches"][0]["run_id"] == everyone and "one filter" in details["matches"][0]["why"]


def test_differencing_on_same_fingerprint_and_overlapping_groups(sqlite_world):
    w = sqlite_world
    first = w.run(CITY_SQL, CITY_ROWS)
    release(w, [first])
    again = w.run("select city, count(*) as n from people group by city", CITY_ROWS)   # same meaning
    overlap = w.run("SELECT city, COUNT(*) AS visits FROM people GROUP BY city", [["Oslo", 119.0]])
    unrelated = w.run("SELECT sex, AVG(income) AS mean FROM people GROUP BY sex", [["F", 51000.0], ["M", 50000.0]])
    _, checks = checks_of(w, [again, unrelated])
    assert "the same query" in checks[("differencing", again)].message
    assert checks[("differencing", unrelated)].status == "pass"
    _, checks = checks_of(w, [overlap])
    assert checks[("differencing", overlap)].status == "warn"


def test_differencing_inside_one_product(sqlite_world):
    w = sqlite_world
    a = w.run("SELECT COUNT(*) AS n FROM people WHERE sex = 'F'", [[1500.0]])
    b = w.run("SELECT COUNT(*) AS n FROM people WHERE sex = 'F' AND age < 90", [[1490.0]])
    _, checks = checks_of(w, [a, b])
    assert checks[("differencing", a)].status == "warn" and checks[("differencing", b)].status == "warn"
    assert "this product" in checks[("differencing", b)].message
