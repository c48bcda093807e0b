"""The whole sharing path on SQLite and PostgreSQL: the responsibility list, an
unconditional grant, an exact pull with a signed manifest, exact SQL, and every
delivery audited and counted."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from sharing_world import TAX, write_registry


def test_unconditional_grant_through_to_a_verified_pull(world, tmp_path):
    from products.sharing_extract import verify_extract, write_extract
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.feedback import responsibility_list

    inst = world.inst
    entries = {e.dataset: e for e in responsibility_list(inst, "taxclerk")}
    assert set(entries) == {"registry", "benefits"}              # 'none' is not on the list
    reg = entries["registry"]
    assert (reg.provider, reg.sharing_class, reg.update_frequency) == ("Health Department", "unconditional", "monthly")
    assert reg.columns == ("people.person_id", "people.age", "people.city")
    assert reg.update_status.value == "on_time" and "share request --dataset registry" in reg.how_to_request
    assert entries["benefits"].conditions and entries["benefits"].columns == ("claims.region", "claims.amount")

    grant = request_share(inst, "taxclerk", dataset="registry", columns=["person_id", "people.age"],
                          purpose="Assess property tax relief", basis="Tax Act s. 12")
    assert grant.status.value == "granted" and grant.columns == ("people.person_id", "people.age")

    out = tmp_path / "registry.parquet"
    receipt = write_extract(inst, "taxclerk", grant.id, out, "parquet", where="age >= 40")
    table = pq.read_table(out)
    assert table.column_names == ["person_id", "age"]           # granted columns only, no city, no income
    expected = sorted((i, 20 + (i * 7) % 60) for i in range(1, 13) if 20 + (i * 7) % 60 >= 40)
    assert sorted(zip(*(c.to_pylist() for c in table.columns))) == expected
    assert receipt.rows == len(expected)

    report = verify_extract(out, inst.signer.public_pem())
    assert report.ok, report.problems
    manifest = json.loads((tmp_path / "registry.parquet.manifest.json").read_text())
    assert manifest["grant"]["id"] == grant.id and manifest["recipient"] == {"user": "taxclerk", "department": TAX}
    assert manifest["dataset"]["name"] == "registry" and manifest["dataset"]["version"] == 1
    out.write_bytes(out.read_bytes()[:-1] + b"\0")
    assert not verify_extract(out, inst.signer.public_pem()).ok


def test_exact_sql_over_granted_columns_and_formats(world, tmp_path):
    from products.sharing_extract import write_extract
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.delivery import run_shared_query

    inst = world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["age", "city"],
                          purpose="Plan tax offices", basis="Tax Act s. 3")
    result = run_shared_query(inst, "taxclerk", grant.id,
                              "SELECT city, COUNT(*) AS n, MIN(age) AS youngest FROM people GROUP BY city ORDER BY city")
    assert result.columns == ("city", "n", "youngest")
    ages = {c: [20 + (i * 7) % 60 for i in range(1, 13) if ("Oslo", "Bergen", "Tromso")[i % 3] == c]
            for c in ("Bergen", "Oslo", "Tromso")}
    assert result.rows == tuple((c, len(a), min(a)) for c, a in sorted(ages.items()))     # exact, not noised
    csv_path, json_path = tmp_path / "x.csv", tmp_path / "x.json"
    write_extract(inst, "taxclerk", grant.id, csv_path, "csv")
    write_extract(inst, "taxclerk", grant.id, json_path, "json")
    assert csv_path.read_text().splitlines()[0] == '"age","city"'
    lines = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert len(lines) == 12 and set(lines[0]) == {"age", "city"}


@pytest.mark.parametrize("sql, code", [
    ("SELECT income FROM people", "column_not_granted"),
    ("SELECT * FROM people WHERE income > 0", "column_not_granted"),
    ("SELECT people FROM people", "column_not_granted"),
    ("SELECT * FROM claims", "table_not_granted"),
    ("SELECT * FROM read_csv('people.csv')", "construct_not_allowed"),
    ("DELETE FROM people", "not_select"),
    ("SELECT getenv('HOME')", "function_not_allowed"),
    ("SELECT 1; SELECT 2", "multiple_statements"),
])
def test_exact_sql_refusals_change_nothing(sqlite_world, sql, code):
    from queries.errors import QueryRejected
    from sandbox.persistence.models import AuditRecord, ShareDelivery
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.delivery import run_shared_query

    inst = sqlite_world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["age", "city"],
                          purpose="Plan tax offices", basis="Tax Act s. 3")
    before = _state(inst)
    with pytest.raises(QueryRejected) as err:
        run_shared_query(inst, "taxclerk", grant.id, sql)
    assert err.value.code == code
    assert _state(inst) == before
    _ = (AuditRecord, ShareDelivery)


def _state(inst):
    from sandbox.persistence.models import AuditRecord, ShareDelivery, ShareRequest

    with inst.store.read() as s:
        return (s.execute(select(AuditRecord.seq).order_by(AuditRecord.seq.desc()).limit(1)).scalar(),
                len(s.execute(select(ShareDelivery)).all()),
                [(r.id, r.status, r.last_version) for r in s.execute(select(ShareRequest)).scalars()])


def test_incremental_pull_after_a_new_version_notifies_and_delivers_the_difference(world, tmp_path):
    from products.sharing_extract import write_extract
    from sandbox.audit import Actor
    from sandbox.datasets import add_dataset
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.feedback import notifications

    inst = world.inst
    grant = request_share(inst, "taxclerk", dataset="registry", columns=["person_id", "age"],
                          purpose="Assess relief", basis="Tax Act s. 12")
    first = write_extract(inst, "taxclerk", grant.id, tmp_path / "v1.parquet")
    assert (first.version, first.rows, first.base_version) == (1, 12, None)

    # version 2: ages move for every 4th person, two people join
    policy = write_registry(world.source / "registry2", rows=14)
    folder = policy.parent
    lines = (folder / "people.csv").read_text().splitlines()
    for i in range(1, 15, 4):
        pid, age, city, income = lines[i].split(",")
        lines[i] = ",".join((pid, str(int(age) + 1), city, income))
    (folder / "people.csv").write_text("\n".join(lines) + "\n")
    add_dataset(inst, Actor("owner1", "owner"), policy)
    notes = notifications(inst, "taxclerk")
    assert [(n.dataset, n.version, n.kind) for n in notes] == [("registry", 2, "new_version")]

    second = write_extract(inst, "taxclerk", grant.id, tmp_path / "v2.parquet", incremental=True)
    changed = {1, 5, 9, 13}
    assert (second.version, second.base_version) == (2, 1)
    got = sorted(pq.read_table(tmp_path / "v2.parquet").column("person_id").to_pylist())
    assert got == sorted(changed | {14})            # changed rows and new rows, nothing else
    assert second.rows_removed == len(changed & set(range(1, 13)))
    manifest = json.loads((tmp_path / "v2.parquet.manifest.json").read_text())
    assert manifest["delivery"] == {"mode": "incremental", "base_version": 1, "rows": len(got),
                                    "rows_removed": second.rows_removed}


def test_usage_figures_match_the_audit_log(world, tmp_path):
    from sandbox.persistence.models import AuditRecord
    from sandbox.sharing.grants import request_share
    from sandbox.sharing.delivery import run_shared_query
    from products.sharing_extract import write_extract
    from sandbox.sharing.usage import sharing_usage, usage_totals

    inst = world.inst
    g1 = request_share(inst, "taxclerk", dataset="registry", columns=["age"], purpose="p", basis="b")
    g2 = request_share(inst, "taxboss", dataset="registry", columns=["city"], purpose="p", basis="b")
    write_extract(inst, "taxclerk", g1.id, tmp_path / "a.parquet", where="age < 50")
    write_extract(inst, "taxboss", g2.id, tmp_path / "b.csv", "csv")
    run_shared_query(inst, "taxclerk", g1.id, "SELECT age FROM people WHERE age > 30")
    run_shared_query(inst, "taxboss", g2.id, "SELECT COUNT(*) FROM people")

    rows = sharing_usage(inst)
    with inst.store.read() as s:
        records = s.execute(select(AuditRecord).where(AuditRecord.action.in_(("share.pull", "share.query")))).scalars().all()
        grants = s.execute(select(AuditRecord).where(AuditRecord.action.in_(("share.grant", "share.decide")))).scalars().all()
    totals = usage_totals(rows)
    assert totals["pulls"] == sum(r.action == "share.pull" for r in records) == 2
    assert totals["queries"] == sum(r.action == "share.query" for r in records) == 2
    assert totals["rows"] == sum(r.payload["rows"] for r in records)
    assert totals["grants"] == len(grants) == 2
    assert [(r.dataset, r.provider, r.recipient) for r in rows] == [("registry", "Health Department", TAX)]
    assert sharing_usage(inst, user="owner1") == rows

    # the same figures in the transparency register and the signed disclosure report
    from datetime import date

    from products.manifest import verify_path
    from products.register import disclosure_report, transparency_register

    assert transparency_register(inst).sharing == tuple(rows)
    report = disclosure_report(inst, date.today().year, out=tmp_path / "report")
    assert list(report.sharing) == [r.to_dict() for r in rows]
    assert json.loads((tmp_path / "report" / "report.json").read_text())["sharing"] == [r.to_dict() for r in rows]
    assert "Sharing between departments" in (tmp_path / "report" / "report.html").read_text()
    assert verify_path(tmp_path / "report", inst.signer.public_pem()).ok
