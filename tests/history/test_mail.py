"""Mail to the person concerned, through a real SMTP server (aiosmtpd) on 127.0.0.1.

When SMTP is configured, the submitter of a deployment gets a mail when it is preempted,
when it starts after waiting, and when it fails, as their profile's choices say; the mails go
through the same outbox and notify worker as webhooks.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from app.models import Delivery, Event, utcnow
from app.services import clusters, deployments, history, notifications
from app.services.errors import ValidationError
from tests.factories import make_org, make_user


class Inbox:
    def __init__(self) -> None:
        self.mails: list = []
        self.refuse = 0  # how many next messages to refuse with a 451

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            self.refuse -= 1
            return "451 try again later"
        self.mails.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_port() -> int:
    return _free_port()


@pytest.fixture
def app_config(smtp_port) -> dict:
    return {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": smtp_port,
        "SMTP_TIMEOUT_SECONDS": 5,
        "MAIL_FROM": "kargo@example.com",
        "PUBLIC_URL": "https://kargo.example.com",
        "MAIL_STARTED_AFTER_WAIT_SECONDS": 60,
    }


@pytest.fixture
def inbox(smtp_port) -> Iterator[Inbox]:
    handler = Inbox()
    # aiosmtpd waits 5 s for its server thread by default: too little on a loaded machine.
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port, ready_timeout=60)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner", display_name="Olga")


@pytest.fixture
def dev(owner):
    member = make_user(owner.organization, role="member", display_name="Dev")
    notifications.update_mail_settings(member, " dev@example.com ", True, True, True)
    return member


@pytest.fixture
def pool(owner):
    return clusters.create_cluster(owner, "pool", {"cpu": "4"})


def test_preempted_and_restarted_are_mailed(db, owner, dev, pool, inbox) -> None:
    mine = deployments.submit(dev, pool.id, "web:1", "mine", 100, {"cpu": "3"}).deployment
    theirs = deployments.submit(owner, pool.id, "db:1", "theirs", 900, {"cpu": "2"}).deployment
    deployments.delete(owner, theirs.id)
    notifications.run_once()

    subjects = [message["Subject"] for _, message in inbox.mails]
    assert subjects == [
        "Your deployment mine was preempted",
        "Your deployment mine started again after being preempted",
    ]
    recipients, preempted = inbox.mails[0]
    assert recipients == ["dev@example.com"] and preempted["From"] == "kargo@example.com"
    body = preempted.get_payload()
    assert f"Preempted by #{theirs.id} theirs" in body
    assert f"https://kargo.example.com/deployments/{mine.id}" in body


def test_a_start_without_waiting_sends_nothing(db, dev, pool, inbox) -> None:
    deployments.submit(dev, pool.id, "web:1", "quick", 100, {"cpu": "1"})
    notifications.run_once()
    assert inbox.mails == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


def test_a_start_after_waiting_says_how_long(app, db, owner, dev, pool, inbox) -> None:
    deployments.submit(owner, pool.id, "web:1", "big", 100, {"cpu": "4"})
    waiting = deployments.submit(dev, pool.id, "web:1", "late", 100, {"cpu": "1"}).deployment
    submitted = utcnow().replace(microsecond=0)
    db.session.execute(
        sa.update(Event)
        .where(Event.subject_id == waiting.id, Event.action == "deployment.submitted")
        .values(at=submitted - timedelta(days=365))  # replace(year=...) fails on 29 February
    )
    db.session.commit()
    big = next(
        d for d in deployments.list_deployments(owner, None, None, 1, 10).items if d.name == "big"
    )
    deployments.delete(owner, big.id)
    notifications.run_once()
    ((_, message),) = inbox.mails
    assert message["Subject"].startswith("Your deployment late started after waiting ")


def test_failed_is_mailed_when_the_reconciler_records_it(db, dev, pool, inbox) -> None:
    mine = deployments.submit(dev, pool.id, "web:1", "mine", 100, {"cpu": "1"}).deployment
    db.session.rollback()
    from app.services import transactions

    transactions.begin_write()
    history.record(
        dev.organization_id,
        history.RECONCILER,
        "deployment.failed",
        history.Subject("deployment", mine.id, "mine"),
        "Container exited with code 1.",
        {"exit_code": 1},
        cluster_id=pool.id,
    )
    db.session.commit()
    notifications.run_once()
    ((_, message),) = inbox.mails
    assert message["Subject"] == "Your deployment mine failed"
    assert "Container exited with code 1." in message.get_payload()


def test_choices_are_respected(db, owner, dev, pool, inbox) -> None:
    notifications.update_mail_settings(dev, "dev@example.com", False, True, True)
    mine = deployments.submit(dev, pool.id, "web:1", "mine", 100, {"cpu": "3"}).deployment
    deployments.submit(owner, pool.id, "db:1", "theirs", 900, {"cpu": "2"})
    notifications.run_once()
    assert inbox.mails == []
    assert mine.id


def test_a_refused_mail_is_retried(app, db, owner, dev, pool, inbox) -> None:
    inbox.refuse = 1
    deployments.submit(dev, pool.id, "web:1", "mine", 100, {"cpu": "3"})
    deployments.submit(owner, pool.id, "db:1", "theirs", 900, {"cpu": "2"})
    assert notifications.run_once().retried == 1
    delivery = db.session.scalar(sa.select(Delivery))
    assert delivery.channel == "email" and "451" in delivery.last_error
    db.session.execute(sa.update(Delivery).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert notifications.run_once().delivered == 1
    assert len(inbox.mails) == 1


def test_without_smtp_nothing_is_queued(app, db, owner, dev, pool) -> None:
    app.config["SMTP_HOST"] = ""
    deployments.submit(dev, pool.id, "web:1", "mine", 100, {"cpu": "3"})
    deployments.submit(owner, pool.id, "db:1", "theirs", 900, {"cpu": "2"})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) == 0


@pytest.mark.parametrize("email", ["not-an-address", "a@b", "x" * 250 + "@example.com", "a b@c.d"])
def test_bad_addresses_are_refused(dev, email) -> None:
    with pytest.raises(ValidationError) as refused:
        notifications.update_mail_settings(dev, email, True, True, True)
    assert "email" in refused.value.fields
    assert notifications.mail_settings(dev).email == "dev@example.com"


def test_the_profile_page_saves_the_choices(client, login_as, dev) -> None:
    login_as(client, dev)
    page = client.get("/profile").get_data(as_text=True)
    assert "Mail about your deployments" in page and 'value="dev@example.com"' in page
    saved = client.post("/profile/mail", data={"email": "new@example.com", "on_failed": "1"})
    assert saved.status_code == 302
    settings = notifications.mail_settings(dev)
    assert (settings.email, settings.on_preempted, settings.on_started, settings.on_failed) == (
        "new@example.com",
        False,
        False,
        True,
    )
    refused = client.post("/profile/mail", data={"email": "nope"})
    assert refused.status_code == 422 and "not an email address" in refused.get_data(as_text=True)
