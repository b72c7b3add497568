"""Webhooks: the outbox written with the event, and the notify worker against real receivers.

Receivers are `http.server` instances on 127.0.0.1 in a thread (allowed by
WEBHOOK_ALLOWED_HOSTS here; loopback is refused by default). They check the signature, answer
500 on demand and record what arrived in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from app.models import Delivery, DeliveryAttempt, Event, utcnow
from app.services import accounts, clusters, deployments, history, notifications
from app.services.errors import Forbidden, NotFound, QuotaExceeded, ValidationError
from tests.factories import DEFAULT_PASSWORD, make_org, make_user

ALL = list(notifications.EVENT_LABELS)


class Receiver:
    """A webhook receiver on 127.0.0.1: verifies signatures, answers the statuses queued."""

    def __init__(self, secret: str = "") -> None:
        self.secret = secret
        self.received: list[dict] = []
        self.statuses: list[int] = []  # answered in turn; 200 once empty
        self.hold = False  # True: answer nothing until the receiver stops (a hung receiver)
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                timestamp = self.headers["X-Kargo-Timestamp"]
                expected = (
                    "v1="
                    + hmac.new(
                        receiver.secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256
                    ).hexdigest()
                )
                receiver.received.append(
                    {
                        "body": json.loads(body),
                        "signed": hmac.compare_digest(expected, self.headers["X-Kargo-Signature"]),
                        "event": self.headers["X-Kargo-Event"],
                        "age": abs(time.time() - int(timestamp)),
                    }
                )
                if receiver.hold:
                    receiver.released.wait(timeout=120)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_config() -> dict:
    # A receiver here answers at once; the timeout is only reached on a very loaded machine.
    return {"WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"], "WEBHOOK_TIMEOUT_SECONDS": 30}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner", display_name="Olga")


@pytest.fixture
def pool(owner):
    return clusters.create_cluster(owner, "pool", {"cpu": "4"})


def _hook(owner, receiver: Receiver, events=None):
    view, secret = notifications.create_webhook(owner, receiver.url, events or ALL)
    receiver.secret = secret
    return view


def _drain(rounds: int = 1) -> notifications.Summary:
    total = notifications.Summary()
    for _ in range(rounds):
        summary = notifications.run_once()
        total = notifications.Summary(
            total.delivered + summary.delivered,
            total.retried + summary.retried,
            total.failed + summary.failed,
            total.long_waits + summary.long_waits,
        )
    return total


def test_events_reach_the_receiver_signed_and_in_order(db, owner, pool, receiver) -> None:
    _hook(owner, receiver)
    low = deployments.submit(owner, pool.id, "web:1", "low", 100, {"cpu": "3"}).deployment
    high = deployments.submit(owner, pool.id, "db:1", "high", 900, {"cpu": "2"}).deployment
    deployments.delete(owner, high.id)

    summary = _drain()
    assert summary.delivered == 4
    assert all(item["signed"] and item["age"] < 60 for item in receiver.received)
    mine = [item["event"] for item in receiver.received if item["body"]["subject"]["id"] == low.id]
    assert mine == ["deployment.started", "deployment.preempted", "deployment.restarted"]
    preempted = next(i["body"] for i in receiver.received if i["event"] == "deployment.preempted")
    assert preempted["data"] == {"preempted_by": high.id, "preemptor_priority": 900}
    assert preempted["actor"]["kind"] == "scheduler" and preempted["cluster_id"] == pool.id
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Delivery).where(Delivery.status == "delivered")
        )
        == 4
    )


def test_a_500_is_retried_with_backoff_and_later_events_of_that_deployment_wait(
    app, db, owner, pool, receiver
) -> None:
    _hook(owner, receiver)
    receiver.statuses = [500]
    low = deployments.submit(owner, pool.id, "web:1", "low", 100, {"cpu": "3"}).deployment
    other = deployments.submit(owner, pool.id, "web:1", "other", 100, {"cpu": "1"}).deployment
    high = deployments.submit(owner, pool.id, "db:1", "high", 900, {"cpu": "3"}).deployment

    before = utcnow()
    first = _drain()
    after = utcnow()
    # low's "started" got the 500; its "preempted" waits behind it; the others went through.
    assert first.retried == 1
    assert [i["event"] for i in receiver.received if i["body"]["subject"]["id"] == low.id] == [
        "deployment.started"
    ]
    failed = db.session.scalar(
        sa.select(Delivery).where(Delivery.attempts == 1, Delivery.status == "pending")
    )
    assert failed.last_status_code == 500
    # Due the retry base after the failure, which happened during the drain.
    base = timedelta(seconds=app.config["WEBHOOK_RETRY_BASE_SECONDS"])
    assert before + base <= failed.next_attempt_at <= after + base
    assert _drain().delivered == 0  # not due yet

    db.session.execute(sa.update(Delivery).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert _drain(2).delivered == 2
    events_of_low = [i["event"] for i in receiver.received if i["body"]["subject"]["id"] == low.id]
    assert events_of_low == ["deployment.started", "deployment.started", "deployment.preempted"]
    assert {i["body"]["subject"]["id"] for i in receiver.received} >= {other.id, high.id}
    attempts = db.session.scalars(
        sa.select(DeliveryAttempt.status_code)
        .where(DeliveryAttempt.delivery_id == failed.id)
        .order_by(DeliveryAttempt.id)
    ).all()
    assert attempts == [500, 200]


def test_after_the_last_attempt_a_delivery_fails_for_good(app, db, owner, pool, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 2
    _hook(owner, receiver, ["deployment.started"])
    receiver.statuses = [503, 502]
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    assert _drain().retried == 1
    db.session.execute(sa.update(Delivery).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert _drain().failed == 1
    delivery = db.session.scalar(sa.select(Delivery))
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, 502)


def test_a_slow_receiver_times_out_and_is_retried(app, db, owner, pool, receiver) -> None:
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 1
    _hook(owner, receiver, ["deployment.started"])
    receiver.hold = True  # it never answers while the test runs: the timeout must fire
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    assert receiver.received == []  # the request only queued it: no web request ever sends
    assert _drain().retried == 1
    delivery = db.session.scalar(sa.select(Delivery))
    assert "timed out" in delivery.last_error and delivery.last_duration_ms >= 900


def test_only_subscribed_events_are_queued_with_the_change(db, owner, pool, receiver) -> None:
    _hook(owner, receiver, ["deployment.preempted"])
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_a_rolled_back_change_leaves_no_delivery(db, owner, pool, receiver, monkeypatch):
    _hook(owner, receiver)

    def fail_after_recording(*args, **kwargs):
        raise RuntimeError("the change fails after its events were recorded")

    real = history.record_all

    def record_then_fail(entries):
        real(entries)
        db.session.flush()
        fail_after_recording()

    monkeypatch.setattr(history, "record_all", record_then_fail)
    with pytest.raises(RuntimeError):
        deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    db.session.rollback()
    monkeypatch.undo()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_invite_redeemed_and_test_button(db, owner, receiver) -> None:
    hook = _hook(owner, receiver, ["invite.redeemed"])
    _, code = accounts.create_invite(owner, "Gus")
    accounts.redeem_invite(code, "gus", DEFAULT_PASSWORD, "Gus")
    notifications.send_test(owner, hook.id)
    _drain()
    assert [item["event"] for item in receiver.received] == ["invite.redeemed", "webhook.test"]
    assert receiver.received[0]["body"]["data"]["username"] == "gus"
    assert all(item["signed"] for item in receiver.received)


def test_resend_sends_the_same_body_again(db, owner, pool, receiver) -> None:
    hook = _hook(owner, receiver, ["deployment.started"])
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    _drain()
    (delivered,) = notifications.deliveries(owner, hook.id)
    assert delivered.status == "delivered" and delivered.log[0].status_code == 200
    notifications.resend(owner, delivered.id)
    _drain()
    assert len(receiver.received) == 2
    assert receiver.received[0]["body"] == receiver.received[1]["body"]
    assert [d.status for d in notifications.deliveries(owner, hook.id)] == ["delivered"] * 2


def test_long_waits_are_reported_once(app, db, owner, pool, receiver) -> None:
    _hook(owner, receiver, ["deployment.queued_long"])
    deployments.submit(owner, pool.id, "web:1", "big", 100, {"cpu": "4"})
    waiting = deployments.submit(owner, pool.id, "web:1", "late", 100, {"cpu": "1"}).deployment
    later = utcnow() + timedelta(seconds=app.config["QUEUED_TOO_LONG_SECONDS"] + 60)
    assert notifications.run_once(now=later).long_waits == 1
    assert notifications.run_once(now=later + timedelta(minutes=5)).long_waits == 0
    _drain()
    (item,) = receiver.received
    assert item["event"] == "deployment.queued_long" and item["body"]["subject"]["id"] == waiting.id
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Event)
            .where(Event.action == "deployment.queued_long")
        )
        == 1
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://127.0.0.1/x", "http"),
        ("http://user:pw@127.0.0.1/x", "Credentials"),
        ("http://10.0.0.5/x", "only to"),
        ("javascript:alert(1)", "http"),
        ("http://127.0.0.1:99999/x", "valid URL"),
        ("http://127.0.0.1/a b", "spaces"),
        ("", "Enter"),
    ],
)
def test_bad_urls_are_refused(db, owner, url, problem) -> None:
    with pytest.raises(ValidationError) as refused:
        notifications.create_webhook(owner, url, ALL)
    assert problem in refused.value.fields["url"]


def test_without_an_allow_list_private_targets_are_refused(app, owner) -> None:
    app.config["WEBHOOK_ALLOWED_HOSTS"] = None
    for url in (
        "http://127.0.0.1/x",
        "http://localhost/x",
        "https://[::1]/x",
        "http://169.254.169.254/latest",
        "http://192.168.1.2/",
    ):
        assert "cannot be sent" in notifications.url_problem(url)
    assert notifications.url_problem("https://hooks.example.com/kargo") is None
    app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = True
    assert notifications.url_problem("http://127.0.0.1/x") is None


def test_events_are_checked_and_members_are_refused(db, owner, receiver) -> None:
    with pytest.raises(ValidationError) as refused:
        notifications.create_webhook(owner, receiver.url, ["deployment.exploded"])
    assert "events" in refused.value.fields
    with pytest.raises(ValidationError):
        notifications.create_webhook(owner, receiver.url, [])
    member = make_user(owner.organization, role="member")
    with pytest.raises(Forbidden):
        notifications.create_webhook(member, receiver.url, ALL)
    stranger = make_user(make_org(), role="owner")
    hook = _hook(owner, receiver)
    with pytest.raises(NotFound):
        notifications.send_test(stranger, hook.id)


def test_webhooks_per_organization_are_bounded(app, db, owner, receiver) -> None:
    app.config["MAX_WEBHOOKS_PER_ORGANIZATION"] = 1
    _hook(owner, receiver)
    with pytest.raises(QuotaExceeded):
        _hook(owner, receiver)


def test_the_notify_command_runs_one_pass(runner, owner, pool, receiver) -> None:
    _hook(owner, receiver, ["deployment.started"])
    deployments.submit(owner, pool.id, "web:1", "a", 100, {"cpu": "1"})
    result = runner.invoke(args=["kargo", "notify", "--once"])
    assert result.exit_code == 0, result.output
    assert "Delivered 1, to retry 0, failed 0" in result.output
    assert len(receiver.received) == 1
