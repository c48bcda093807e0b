"""Notifications: the outbox is written with each change, for the right people,
and delivered at least once to a real webhook receiver and a real SMTP server,
with retries, back-off and a final failed state; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from notify_servers import start_hook, start_mailbox
from products.data_requests import decide_data_request, file_request
from queries.errors import Conflict, InvalidInput
from sandbox.approvals import decide_request, request_query
from sandbox.audit import verify_chain
from sandbox.datasets import add_dataset
from sandbox.demo.data import write_health
from sandbox.licences import grant_licence, revoke_licence
from sandbox.notifications.delivery import Deliverer, deliver_due, start_background
from sandbox.notifications.outbox import list_notices, set_address
from sandbox.notifications.vocabulary import Channel, DeliveryStatus, NoticeKind
from sandbox.persistence.models import AuditRecord, Notification, NotificationDelivery
from scenario import OWNER, build

SECRET = "webhook secret for tests"
SQL = "SELECT COUNT(*) AS n FROM people WHERE age > 40"


@pytest.fixture
def hook():
    h = start_hook()
    yield h
    h.close()


@pytest.fixture
def mailbox():
    box = start_mailbox()
    yield box
    box.close()


def kinds(inst, user: str) -> list[NoticeKind]:
    return [n.kind for n in reversed(list_notices(inst, user))]


def audit_actions(inst, action: str) -> list[AuditRecord]:
    with inst.store.read() as s:
        return list(s.execute(select(AuditRecord).where(AuditRecord.action == action)).scalars())


def aware(d: datetime) -> datetime:
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def deliveries(inst) -> list[NotificationDelivery]:
    with inst.store.read() as s:
        return list(s.execute(select(NotificationDelivery).order_by(NotificationDelivery.id)).scalars())


def test_each_audience_hears_of_its_events_and_the_webhook_gets_signed_bodies(make_instance, store_url, tmp_path,
                                                                               hook):
    inst = make_instance(store_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    lic = build(inst, tmp_path / "src", approval="each")

    # owner: a query request waits; operator: it was decided
    rid = request_query(inst, "operator1", "health", SQL, purpose="count older people", epsilon=0.5)
    assert kinds(inst, "owner1") == [NoticeKind.APPROVAL_WAITING]
    decide_request(inst, "owner1", rid, "reject", reason="the purpose does not need it")
    [decided] = list_notices(inst, "operator1")
    assert decided.kind == NoticeKind.APPROVAL_DECIDED and decided.facts["status"] == "rejected"
    assert decided.audience == "operator" and "rejected" in decided.text

    # requesters: signed in (their user) and anonymous (their e-mail contact)
    req = file_request(inst, "operator2", title="Clinic visits by year", description="planning",
                       contact="op2@example.org")
    decide_data_request(inst, "owner1", req.id, "decline", reason="not held here")
    assert kinds(inst, "operator2") == [NoticeKind.REQUEST_FILED, NoticeKind.REQUEST_ANSWERED]
    assert list_notices(inst, "operator2")[0].facts["status"] == "declined"
    file_request(inst, None, title="Anything on pharmacies", description="a thesis", contact="anon@example.org")

    # operators: a new version of a dataset they hold a licence on; their licence revoked
    write_health(tmp_path / "src2", people=3_100)
    add_dataset(inst, OWNER, tmp_path / "src2" / "policy.toml")
    revoke_licence(inst, OWNER, lic, reason="project ended")
    assert kinds(inst, "operator1") == [NoticeKind.APPROVAL_DECIDED, NoticeKind.NEW_VERSION,
                                        NoticeKind.LICENCE_REVOKED]
    new_version = list_notices(inst, "operator1")[1]
    assert new_version.facts == {"dataset": "health", "version": 2, "licence": lic}
    assert kinds(inst, "operator2") == [NoticeKind.REQUEST_FILED, NoticeKind.REQUEST_ANSWERED]   # no licence
    assert kinds(inst, "reviewer1") == []

    with inst.store.read() as s:
        total = s.query(Notification).count()
        anonymous = s.execute(select(Notification).where(Notification.recipient_id.is_(None))).scalar_one()
    assert total == 7 and anonymous.address == "anon@example.org"
    assert deliveries(inst) == []                    # the deliverer adds a row per channel

    report = deliver_due(inst)
    assert (report.delivered, report.retrying, report.failed) == (7, 0, 0)
    hook.verify(SECRET)
    bodies = hook.bodies()
    assert sorted(b["id"] for b in bodies) == sorted(d.notification_id for d in deliveries(inst))
    raw = b"".join(body for _, body in hook.received).decode()
    # nothing sensitive or free-text leaves: no SQL, purpose, reason or contact
    for secret_text in (SQL, "count older people", "the purpose does not need it", "not held here",
                        "anon@example.org", "op2@example.org", "project ended"):
        assert secret_text not in raw
    by_kind = {b["kind"]: b for b in bodies}
    assert by_kind["licence_revoked"]["recipient"] == "operator1"
    assert by_kind["licence_revoked"]["facts"] == {"licence": lic, "dataset": "health"}
    assert by_kind["approval_waiting"]["audience"] == "owner"
    assert all(d.status == DeliveryStatus.DELIVERED and d.attempts == 1 for d in deliveries(inst))
    assert len(audit_actions(inst, "notification.deliver")) == 7
    assert deliver_due(inst).delivered == 0          # delivered once, not again
    with inst.store.read() as s:
        assert verify_chain(s, inst.signer.public).ok


def test_a_failed_delivery_is_retried_with_back_off_and_finally_marked_failed(make_instance, store_url, tmp_path,
                                                                               hook):
    inst = make_instance(store_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET,
                         notify_max_attempts=3, notify_retry_s=30.0)
    lic = build(inst, tmp_path / "src")
    hook.statuses[:] = [503]
    revoke_licence(inst, OWNER, lic, reason="ended")

    before = datetime.now(UTC)
    first = deliver_due(inst)
    after = datetime.now(UTC)
    assert (first.delivered, first.retrying) == (0, 1) and first.errors == ["webhook answered HTTP 503"]
    [d] = deliveries(inst)
    assert d.status == DeliveryStatus.PENDING and d.attempts == 1 and d.last_error == "webhook answered HTTP 503"
    assert before + timedelta(seconds=30) <= aware(d.next_attempt_at) <= after + timedelta(seconds=30)
    assert deliver_due(inst).delivered == 0          # not due yet: nothing is sent
    assert len(hook.received) == 1

    with inst.store.transaction() as s:              # the back-off has passed
        s.execute(update(NotificationDelivery).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert deliver_due(inst).delivered == 1
    [d] = deliveries(inst)
    assert d.status == DeliveryStatus.DELIVERED and d.attempts == 2 and len(hook.received) == 2
    hook.verify(SECRET)
    # the same notice both times: receivers deduplicate by X-DPS-Delivery
    assert hook.received[0][1] == hook.received[1][1]

    # a receiver that never answers well: three attempts, doubling waits, then failed (audited)
    hook.statuses[:] = [500] * 10
    lic2 = grant_licence(inst, OWNER, dataset="health", operator="operator2", epsilon=1.0, delta=1e-6,
                         purpose="tests", expires=date.today() + timedelta(days=30))
    revoke_licence(inst, OWNER, lic2)
    scheduled = []
    for _ in range(3):
        before = datetime.now(UTC)
        report = deliver_due(inst)
        d = deliveries(inst)[-1]
        scheduled.append((before, aware(d.next_attempt_at), datetime.now(UTC)))
        with inst.store.transaction() as s:
            s.execute(update(NotificationDelivery).where(NotificationDelivery.id == d.id)
                      .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert report.failed == 1
    d = deliveries(inst)[-1]
    assert d.status == DeliveryStatus.FAILED and d.attempts == 3 and d.last_error == "webhook answered HTTP 500"
    for (before, at, after), wait in zip(scheduled[:2], (30, 60), strict=True):      # 30 s, then 60 s
        assert before + timedelta(seconds=wait) <= at <= after + timedelta(seconds=wait)
    [failed] = audit_actions(inst, "notification.fail")
    assert failed.payload == {"channel": "webhook", "attempts": 3, "error": "webhook answered HTTP 500"}
    assert deliver_due(inst).failed == 0 and len(hook.received) == 5
    assert list_notices(inst, "operator2")[0].deliveries[0].status == DeliveryStatus.FAILED   # still readable


def test_an_unreachable_receiver_never_blocks_the_change(make_instance, store_url, tmp_path):
    from notify_servers import free_port

    inst = make_instance(store_url, notify_webhook_url=f"http://127.0.0.1:{free_port()}/",
                         notify_webhook_secret=SECRET, notify_timeout_s=2.0)
    lic = build(inst, tmp_path / "src")
    revoke_licence(inst, OWNER, lic)                 # commits; nothing is contacted
    assert kinds(inst, "operator1") == [NoticeKind.LICENCE_REVOKED]
    with pytest.raises(Conflict):                    # a refused change leaves no notice behind
        revoke_licence(inst, OWNER, lic)
    assert kinds(inst, "operator1") == [NoticeKind.LICENCE_REVOKED]
    report = deliver_due(inst)
    assert report.retrying == 1 and report.errors == ["webhook unreachable (ConnectionRefusedError)"]


def test_email_goes_to_users_with_an_address_through_a_real_smtp_server(make_instance, store_url, tmp_path,
                                                                         mailbox):
    inst = make_instance(store_url, smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_from="dps@example.org")
    lic = build(inst, tmp_path / "src", approval="each")
    set_address(inst, "operator1", "operator1@example.org")
    with pytest.raises(InvalidInput) as bad:
        set_address(inst, "owner1", "not an address")
    assert bad.value.code == "invalid_email"
    rid = request_query(inst, "operator1", "health", SQL, purpose="count", epsilon=0.5)   # owner1: no address
    decide_request(inst, "owner1", rid, "approve")
    revoke_licence(inst, OWNER, lic)
    file_request(inst, None, title="Pharmacies", description="why", contact="+47 22 33 44 55")   # a phone: no mail
    file_request(inst, "operator1", title="Clinic\r\nBcc: x@example.org", description="d", contact="o@example.org")
    report = deliver_due(inst)
    assert report.delivered == 3                     # operator1's three notices; owner1 has no address
    assert [(d.channel, d.status) for d in deliveries(inst)] == [
        (Channel.EMAIL, DeliveryStatus.SKIPPED), (Channel.EMAIL, DeliveryStatus.DELIVERED),
        (Channel.EMAIL, DeliveryStatus.DELIVERED), (Channel.EMAIL, DeliveryStatus.DELIVERED)]
    # a phone contact is told nothing (no notice is written); a title cannot add a header
    assert [m["To"] for m in mailbox.messages] == ["operator1@example.org"] * 3
    assert mailbox.messages[2]["Bcc"] is None
    assert "(Clinic Bcc: x@example.org)" in " ".join(mailbox.messages[2]["Subject"].split())
    first = mailbox.messages[0]
    assert first["From"] == "dps@example.org" and first["Subject"].startswith("[dp-sandbox] Your query request")
    text = first.get_payload(decode=True).decode("utf-8")
    assert "approved" in text and "查询申请" in text and SQL not in text
    address_records = audit_actions(inst, "notification.address")
    assert len(address_records) == 1 and "operator1@example.org" not in json.dumps(address_records[0].payload)


def test_an_expiring_licence_is_announced_once_per_end_date(make_instance, store_url, tmp_path):
    inst = make_instance(store_url, notify_expiry_days=7)
    build(inst, tmp_path / "src")                    # operator1's licence ends in 30 days: not yet
    soon = grant_licence(inst, OWNER, dataset="health", operator="operator2", epsilon=1.0, delta=1e-6,
                         purpose="tests", expires=date.today() + timedelta(days=3))
    assert deliver_due(inst).queued == 1
    assert deliver_due(inst).queued == 0
    [notice] = list_notices(inst, "operator2")
    assert notice.kind == NoticeKind.LICENCE_EXPIRING and notice.facts["licence"] == soon
    assert kinds(inst, "operator1") == []
    [record] = audit_actions(inst, "notification.queue")
    assert record.object_id == str(soon) and record.payload["recipients"] == 1


def test_two_deliverers_at_once_deliver_every_notice(make_instance, store_url, tmp_path, hook):
    inst = make_instance(store_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    build(inst, tmp_path / "src", approval="each")
    for _ in range(6):
        request_query(inst, "operator1", "health", SQL, purpose="count", epsilon=0.5)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            deliver_due(inst, limit=2)
        except BaseException as e:   # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(d.status == DeliveryStatus.DELIVERED for d in deliveries(inst))
    assert {b["id"] for b in hook.bodies()} == {d.notification_id for d in deliveries(inst)}
    assert len(audit_actions(inst, "notification.deliver")) == 6


def test_the_background_deliverer_sends_without_being_asked(make_instance, tmp_path, hook):
    inst = make_instance(notify_webhook_url=hook.url, notify_webhook_secret=SECRET, notify_poll_s=0.05)
    lic = build(inst, tmp_path / "src")
    deliverer = start_background(inst)
    assert isinstance(deliverer, Deliverer)
    try:
        revoke_licence(inst, OWNER, lic)
        done = threading.Event()
        for _ in range(400):
            if [d.status for d in deliveries(inst)] == [DeliveryStatus.DELIVERED]:
                done.set()
                break
            done.wait(0.05)
        assert done.is_set()
    finally:
        deliverer.stop(timeout=10)
    assert [b["kind"] for b in hook.bodies()] == ["licence_revoked"]
    assert start_background(make_instance(name="quiet")) is None     # no channel: no thread


def test_a_webhook_without_a_secret_or_with_a_bad_url_is_refused(make_instance):
    inst = make_instance(notify_webhook_url="http://127.0.0.1:9/")
    with pytest.raises(InvalidInput) as err:
        deliver_due(inst)
    assert err.value.code == "webhook_secret_missing"
    inst = make_instance(name="other", notify_webhook_url="ftp://example.org/", notify_webhook_secret=SECRET)
    with pytest.raises(InvalidInput) as err:
        deliver_due(inst)
    assert err.value.code == "invalid_setting"


def test_a_channel_covers_the_notices_written_after_it_was_first_configured(make_instance, store_url, tmp_path,
                                                                             hook):
    """The process making a change need not be configured for delivery: the
    deliverer sends what others wrote, from the moment its channel was first seen."""
    plain = make_instance(store_url)
    lic = build(plain, tmp_path / "src")
    revoke_licence(plain, OWNER, lic)                # before any webhook was configured: never sent
    deliverer = make_instance(store_url, notify_webhook_url=hook.url, notify_webhook_secret=SECRET)
    assert deliver_due(deliverer).delivered == 0
    lic2 = grant_licence(plain, OWNER, dataset="health", operator="operator2", epsilon=1.0, delta=1e-6,
                         purpose="tests", expires=date.today() + timedelta(days=30))
    revoke_licence(plain, OWNER, lic2)               # written by a process with no channel
    assert deliver_due(deliverer).delivered == 1
    assert [(b["kind"], b["recipient"]) for b in hook.bodies()] == [("licence_revoked", "operator2")]
    assert [d.status for d in deliveries(plain)] == [DeliveryStatus.DELIVERED]
    assert [n.deliveries for n in list_notices(plain, "operator1")] == [()]     # still readable, never sent


def test_the_cli_lists_notices_sets_the_address_and_delivers(make_instance, store_url, tmp_path, hook):
    from cli_identity import SignedInRunner
    from sandbox.cli import main
    from scenario import PASSWORD

    inst = make_instance(store_url)
    lic = build(inst, tmp_path / "src")
    home = str(inst.settings.home_path)
    runner = SignedInRunner(PASSWORD)
    env = {"DPS_DATABASE_URL": inst.settings.database_url}
    revoke_licence(inst, OWNER, lic)

    out = runner.invoke(main, ["notifications", "list", "--home", home, "--as", "operator1"], env=env)
    assert out.exit_code == 0, out.output
    assert f"Your licence {lic} on dataset health was revoked." in out.output
    out = runner.invoke(main, ["notifications", "list", "--home", home, "--as", "operator1", "--json",
                               "--lang", "zh"], env=env)
    [notice] = json.loads(out.output)
    assert notice["kind"] == "licence_revoked" and "已被撤销" in notice["text"] and notice["deliveries"] == []
    out = runner.invoke(main, ["notifications", "list", "--home", home, "--as", "reviewer1"], env=env)
    assert out.exit_code == 0 and "no notices" in out.output

    bad = runner.invoke(main, ["notifications", "address", "not-an-address", "--home", home, "--as", "operator1"],
                        env=env)
    assert bad.exit_code == 1 and "invalid_email" in bad.output
    ok = runner.invoke(main, ["notifications", "address", "op1@example.org", "--home", home, "--as", "operator1"],
                       env=env)
    assert ok.exit_code == 0 and "operator1: op1@example.org" in ok.output

    no_channel = runner.invoke(main, ["notifications", "deliver", "--loop", "--home", home], env=env)
    assert no_channel.exit_code == 1 and "no_notification_channel" in no_channel.output
    lic2 = grant_licence(inst, OWNER, dataset="health", operator="operator1", epsilon=1.0, delta=1e-6,
                         purpose="tests", expires=date.today() + timedelta(days=30))
    webhook = {**env, "DPS_NOTIFY_WEBHOOK_URL": hook.url, "DPS_NOTIFY_WEBHOOK_SECRET": SECRET}
    first = runner.invoke(main, ["notifications", "deliver", "--home", home, "--json"], env=webhook)
    assert first.exit_code == 0 and json.loads(first.output)["delivered"] == 0   # the channel starts here
    revoke_licence(inst, OWNER, lic2)
    sent = runner.invoke(main, ["notifications", "deliver", "--home", home], env=webhook)
    assert sent.exit_code == 0 and "delivered 1, retrying 0, failed 0" in sent.output
    hook.verify(SECRET)
    assert [b["facts"]["licence"] for b in hook.bodies()] == [lic2]
    status = runner.invoke(main, ["notifications", "status", "--home", home, "--json"], env=env)
    assert json.loads(status.output) == {"notices": 2, "deliveries": {"webhook": {"delivered": 1}},
                                         "channels": {"webhook": 1}}
    human = runner.invoke(main, ["notifications", "status", "--home", home], env=env)
    assert human.output.splitlines() == ["notices 2", "webhook: delivered 1"]
    secretless = runner.invoke(main, ["notifications", "deliver", "--home", home],
                               env={**env, "DPS_NOTIFY_WEBHOOK_URL": hook.url})
    assert secretless.exit_code == 1 and "webhook_secret_missing" in secretless.output


def test_reviewers_hear_of_a_classification_change_waiting(make_instance, store_url, tmp_path):
    from sandbox.classification import reclassify
    from sandbox.demo.data import write_transport

    inst = make_instance(store_url)
    build(inst, tmp_path / "health", people=300)
    add_dataset(inst, OWNER, write_transport(tmp_path / "transport"))
    reclassify(inst, OWNER, "transport", "restricted", "stop publishing for now")     # at once: nobody is asked
    assert kinds(inst, "reviewer1") == []
    asked = reclassify(inst, OWNER, "transport", "open", "checked again: bus counts only")
    for reviewer in ("reviewer1", "reviewer2"):
        [notice] = list_notices(inst, reviewer)
        assert notice.kind == NoticeKind.CLASSIFICATION_WAITING and notice.audience == "reviewer"
        assert notice.facts == {"request": asked.change_id, "dataset": "transport", "from": "restricted",
                                "to": "open"}
        assert "bus counts" not in notice.text            # the reason stays with the request
    assert kinds(inst, "owner1") == []
