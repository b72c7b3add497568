"""Webhooks: who receives which events, the URL rules, and the worker that delivers them.

Owners and admins manage their organization's webhooks (URL, the events to send; a secret is
generated and shown once). Deliveries are rows of the outbox (`services.outbox`), written in
the transaction of the event; the notify worker (`flask kargo notify`, `run_once`) sends them,
never a web request, so a slow or failing receiver never delays the portal:

- due rows are taken oldest first, only the oldest pending one per (webhook, subject), so the
  events of one deployment arrive in order even across retries;
- a row is claimed by one conditional UPDATE (`claimed_until`), so several workers never send
  the same row at once, and a crashed worker's claim lapses;
- the POST has a timeout (WEBHOOK_TIMEOUT_SECONDS), follows no redirect, and is signed:
  `X-Kargo-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the timestamp
  in `X-Kargo-Timestamp`;
- a 2xx answer delivers; anything else is retried with exponential backoff
  (WEBHOOK_RETRY_BASE_SECONDS doubling, at most WEBHOOK_RETRY_MAX_SECONDS) until
  WEBHOOK_MAX_ATTEMPTS, then the row is marked failed. Every attempt is logged with its status
  and response time, and any delivery can be sent again.

Target URLs are http(s) without credentials; when the operator lists WEBHOOK_ALLOWED_HOSTS
only those hosts are accepted, and otherwise loopback, private and link-local addresses are
refused (checked again at send time, after DNS) unless WEBHOOK_ALLOW_PRIVATE_TARGETS is on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import smtplib
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import (
    Delivery,
    DeliveryAttempt,
    MailPreference,
    User,
    Webhook,
    utcnow,
    valid_id,
)
from app.services import accounts, deployments, history, outbox, transactions
from app.services.errors import Forbidden, NotFound, QuotaExceeded, ValidationError
from app.telemetry import metrics

URL_MAX_LENGTH = 2000
OWNERS_AND_ADMINS = "Only owners and admins manage webhooks."
SIGNATURE_HEADER = "X-Kargo-Signature"
TIMESTAMP_HEADER = "X-Kargo-Timestamp"
EVENT_HEADER = "X-Kargo-Event"
DELIVERY_HEADER = "X-Kargo-Delivery"
EVENT_LABELS = {
    "deployment.started": "A deployment started",
    "deployment.preempted": "A deployment was preempted (or moved back to the queue)",
    "deployment.failed": "A deployment failed",
    "deployment.restarted": "A deployment restarted after waiting",
    "deployment.queued_long": "A deployment has been queued longer than the threshold",
    "invite.redeemed": "An invite was redeemed",
    "cluster.capacity_changed": "A cluster's capacity changed",
}


def can_manage_webhooks(actor: User) -> bool:
    return accounts.can_see_admin(actor)


def _require(actor: User) -> None:
    if not can_manage_webhooks(actor):
        raise Forbidden(OWNERS_AND_ADMINS)


# --- URL rules ------------------------------------------------------------------------------


def _allowed_hosts() -> list[str] | None:
    hosts = current_app.config.get("WEBHOOK_ALLOWED_HOSTS")
    return [host.lower() for host in hosts] if hosts else None


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not ip.is_global or ip.is_multicast


def url_problem(url: object) -> str | None:
    """Why this URL cannot receive webhooks, or None."""
    if not isinstance(url, str) or not url.strip():
        return "Enter the URL that receives the events."
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:
        return f"At most {URL_MAX_LENGTH} characters."
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        return "A URL has no spaces or control characters."
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number, or out of range, raises here
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Only http:// and https:// URLs can receive webhooks."
    if parts.username is not None or parts.password is not None:
        return "Credentials in the URL are not allowed: check the signature instead."
    host = (parts.hostname or "").lower()
    if not host:
        return "The URL needs a host name."
    allowed = _allowed_hosts()
    if allowed is not None:
        if host not in allowed:
            return "This Kargo sends webhooks only to: " + ", ".join(allowed) + "."
        return None
    if current_app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "Webhooks cannot be sent to this machine."
    try:
        if _private(host):
            return "Webhooks cannot be sent to private, loopback or link-local addresses."
    except ValueError:
        pass  # a name: checked again after DNS, at send time
    return None


def _target_problem(url: str) -> str | None:
    """The URL rules again at send time, with the addresses its host resolves to."""
    if problem := url_problem(url):
        return problem
    if _allowed_hosts() is not None or current_app.config["WEBHOOK_ALLOW_PRIVATE_TARGETS"]:
        return None
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    if any(_private(str(info[4][0]).split("%")[0]) for info in infos):
        return f"{parts.hostname} resolves to a private address"
    return None


def _clean_events(events: object) -> list[str]:
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError("Choose at least one event.", {"events": "choose at least one event"})
    unknown = [e for e in events if not isinstance(e, str) or e not in outbox.SUBSCRIBABLE]
    if unknown:
        message = "unknown events; choose from " + ", ".join(outbox.SUBSCRIBABLE)
        raise ValidationError("Unknown event: " + ", ".join(map(str, unknown)), {"events": message})
    return [event for event in outbox.SUBSCRIBABLE if event in events]


# --- webhooks -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookView:
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    pending: int
    failed: int


@dataclass(frozen=True, slots=True)
class AttemptView:
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    webhook_id: int | None
    event: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    body: str
    log: list[AttemptView]


def _view(hook: Webhook, counts: dict[tuple[int, str], int]) -> WebhookView:
    return WebhookView(
        hook.id,
        hook.url,
        list(hook.events or []),
        hook.active,
        hook.created_at,
        counts.get((hook.id, "pending"), 0),
        counts.get((hook.id, "failed"), 0),
    )


def _counts(hook_ids: list[int]) -> dict[tuple[int, str], int]:
    if not hook_ids:
        return {}
    rows = db.session.execute(
        sa.select(Delivery.webhook_id, Delivery.status, sa.func.count(Delivery.id))
        .where(Delivery.webhook_id.in_(hook_ids), Delivery.status != "delivered")
        .group_by(Delivery.webhook_id, Delivery.status)
    )
    return {(hook_id, status): count for hook_id, status, count in rows}


def list_webhooks(actor: User) -> list[WebhookView]:
    _require(actor)
    hooks = list(
        db.session.scalars(
            sa.select(Webhook)
            .where(Webhook.organization_id == actor.organization_id)
            .order_by(Webhook.id)
        )
    )
    counts = _counts([hook.id for hook in hooks])
    return [_view(hook, counts) for hook in hooks]


def _find(actor: User, webhook_id: int) -> Webhook:
    _require(actor)
    hook = None
    if valid_id(webhook_id):
        hook = db.session.scalar(
            sa.select(Webhook).where(
                Webhook.id == webhook_id, Webhook.organization_id == actor.organization_id
            )
        )
    if hook is None:
        raise NotFound("No such webhook in your organization.")
    return hook


def get_webhook(actor: User, webhook_id: int) -> WebhookView:
    hook = _find(actor, webhook_id)
    return _view(hook, _counts([hook.id]))


def _audit_subject(hook: Webhook) -> history.Subject:
    return history.Subject("webhook", hook.id, urlsplit(hook.url).hostname)


def create_webhook(actor: User, url: object, events: object) -> tuple[WebhookView, str]:
    """A new webhook and its signing secret (shown only now). ValidationError on bad input,
    QuotaExceeded beyond MAX_WEBHOOKS_PER_ORGANIZATION."""
    _require(actor)
    problems = {"url": url_problem(url)}
    try:
        clean_events = _clean_events(events)
    except ValidationError as exc:
        problems.update(exc.fields)
        clean_events = []
    problems = {field: problem for field, problem in problems.items() if problem}
    if problems:
        raise ValidationError("The webhook was not saved: please correct the fields.", problems)
    assert isinstance(url, str)
    organization_id, who, actor_id = actor.organization_id, history.actor_of(actor), actor.id
    secret = "whsec_" + secrets.token_urlsafe(32)
    transactions.begin_write()
    transactions.lock_organization(organization_id)
    existing = db.session.scalar(
        sa.select(sa.func.count(Webhook.id)).where(Webhook.organization_id == organization_id)
    )
    ceiling = current_app.config["MAX_WEBHOOKS_PER_ORGANIZATION"]
    if existing >= ceiling:
        db.session.rollback()
        raise QuotaExceeded(
            f"Your organization has {existing} webhooks, the most allowed ({ceiling}).",
            {"url": f"at most {ceiling} webhooks per organization"},
        )
    hook = Webhook(
        organization_id=organization_id,
        url=url.strip(),
        secret=secret,
        events=clean_events,
        active=True,
        created_by_id=actor_id,
    )
    db.session.add(hook)
    db.session.flush()
    history.record(
        organization_id,
        who,
        "webhook.created",
        _audit_subject(hook),
        f"Added a webhook to {hook.url} for " + ", ".join(clean_events) + ".",
        {"url": hook.url, "events": clean_events},
    )
    db.session.commit()
    return _view(hook, {}), secret


def delete_webhook(actor: User, webhook_id: int) -> None:
    hook = _find(actor, webhook_id)
    hook_id, organization_id, who = hook.id, hook.organization_id, history.actor_of(actor)
    subject, url = _audit_subject(hook), hook.url
    db.session.rollback()
    transactions.begin_write()
    deleted = db.session.execute(
        sa.delete(Webhook)
        .where(Webhook.id == hook_id, Webhook.organization_id == organization_id)
        .execution_options(synchronize_session=False)
    )
    if deleted.rowcount != 1:
        db.session.rollback()
        raise NotFound("No such webhook in your organization.")
    db.session.execute(sa.delete(Delivery).where(Delivery.webhook_id == hook_id))
    history.record(
        organization_id,
        who,
        "webhook.deleted",
        subject,
        f"Deleted the webhook to {url}.",
        {"url": url},
    )
    db.session.commit()


def send_test(actor: User, webhook_id: int) -> DeliveryView:
    """Queue a `webhook.test` delivery for this webhook (the worker sends it)."""
    hook = _find(actor, webhook_id)
    hook_id, organization_id = hook.id, hook.organization_id
    who = history.actor_of(actor)
    now = utcnow()
    row = {
        "organization_id": organization_id,
        "at": now,
        "actor_kind": who.kind,
        "actor_id": who.id,
        "actor_name": who.name,
        "subject_kind": "webhook",
        "subject_id": hook_id,
        "subject_name": urlsplit(hook.url).hostname,
        "cluster_id": None,
        "message": f"A test from Kargo, sent by {who.name}.",
        "data": {},
    }
    db.session.rollback()
    transactions.begin_write()
    delivery = Delivery(
        organization_id=organization_id,
        channel="webhook",
        webhook_id=hook_id,
        event="webhook.test",
        ordering_key=f"webhook:{hook_id}",
        body=outbox.body_of(None, "webhook.test", row),
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    db.session.add(delivery)
    db.session.commit()
    return _delivery_view(delivery, [])


def _delivery_view(delivery: Delivery, log: list[AttemptView]) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        status=delivery.status,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        delivered_at=delivery.delivered_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_duration_ms=delivery.last_duration_ms,
        body=delivery.body,
        log=log,
    )


def deliveries(actor: User, webhook_id: int, limit: int = 50) -> list[DeliveryView]:
    """The webhook's newest deliveries with their attempts, newest first."""
    hook = _find(actor, webhook_id)
    rows = list(
        db.session.scalars(
            sa.select(Delivery)
            .where(Delivery.webhook_id == hook.id)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )
    logs: dict[int, list[AttemptView]] = {row.id: [] for row in rows}
    if rows:
        for attempt in db.session.scalars(
            sa.select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(list(logs)))
            .order_by(DeliveryAttempt.id)
        ):
            logs[attempt.delivery_id].append(
                AttemptView(attempt.at, attempt.status_code, attempt.error, attempt.duration_ms)
            )
    return [_delivery_view(row, logs[row.id]) for row in rows]


def resend(actor: User, delivery_id: int) -> DeliveryView:
    """Send a delivery again: a new pending row with the same body (the old one's log stays)."""
    _require(actor)
    original = None
    if valid_id(delivery_id):
        original = db.session.scalar(
            sa.select(Delivery).where(
                Delivery.id == delivery_id,
                Delivery.organization_id == actor.organization_id,
                Delivery.channel == "webhook",
            )
        )
    if original is None:
        raise NotFound("No such delivery in your organization.")
    values = {
        "organization_id": original.organization_id,
        "channel": "webhook",
        "webhook_id": original.webhook_id,
        "event_id": original.event_id,
        "event": original.event,
        "ordering_key": original.ordering_key,
        "body": original.body,
    }
    db.session.rollback()
    transactions.begin_write()
    now = utcnow()
    copy = Delivery(**values, status="pending", attempts=0, created_at=now, next_attempt_at=now)
    db.session.add(copy)
    db.session.commit()
    return _delivery_view(copy, [])


# --- the worker -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a 3xx is an answer, not a new target
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def sign(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "v1=" + digest.hexdigest()


def post(url: str, body: str, headers: dict[str, str], timeout: float) -> Outcome:
    """POST `body`; the status (or the error) and how long it took. Never raises."""
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Kargo-Webhooks", **headers},
    )
    started = time.monotonic()
    status, error = None, None
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(1024)
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, reset, TLS, bad URL
        error = (type(exc).__name__ + ": " + str(exc))[:300]
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


def _backoff(attempts: int) -> timedelta:
    config = current_app.config
    seconds = config["WEBHOOK_RETRY_BASE_SECONDS"] * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, config["WEBHOOK_RETRY_MAX_SECONDS"]))


def _due(now: datetime, limit: int) -> list[int]:
    """Ids of the deliveries to send now: the oldest pending one of each line (a webhook's or
    a person's mail about one subject), when it is due and nobody holds it."""
    heads = (
        sa.select(sa.func.min(Delivery.id))
        .where(Delivery.status == "pending")
        .group_by(Delivery.channel, Delivery.webhook_id, Delivery.user_id, Delivery.ordering_key)
    )
    return list(
        db.session.scalars(
            sa.select(Delivery.id)
            .where(
                Delivery.id.in_(heads),
                Delivery.next_attempt_at <= now,
                sa.or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
            )
            .order_by(Delivery.id)
            .limit(limit)
        )
    )


def _claim(delivery_id: int, now: datetime) -> tuple[Delivery, Webhook | None] | None:
    transactions.begin_write()
    lease = now + timedelta(seconds=current_app.config["DELIVERY_CLAIM_SECONDS"])
    claimed = db.session.execute(
        sa.update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.status == "pending",
            sa.or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now),
        )
        .values(claimed_until=lease)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return None
    delivery = db.session.scalar(
        sa.select(Delivery)
        .where(Delivery.id == delivery_id)
        .execution_options(populate_existing=True)
    )
    hook = db.session.get(Webhook, delivery.webhook_id) if delivery.webhook_id else None
    db.session.commit()
    return delivery, hook


def _finish(
    delivery_id: int, outcome: Outcome, give_up: bool = False, channel: str = "webhook"
) -> str:
    """Log the attempt and settle the row: delivered, retried later or failed for good."""
    config = current_app.config
    transactions.begin_write()
    delivery = db.session.get(Delivery, delivery_id)
    now = utcnow()
    db.session.add(
        DeliveryAttempt(
            delivery_id=delivery_id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    delivery.attempts += 1
    delivery.claimed_until = None
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.last_duration_ms = outcome.duration_ms
    if outcome.ok:
        delivery.status, delivery.delivered_at, result = "delivered", now, "delivered"
    elif give_up or delivery.attempts >= config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status, result = "failed", "failed"
    else:
        delivery.next_attempt_at, result = now + _backoff(delivery.attempts), "retry"
    db.session.commit()
    if channel == "webhook":
        metrics.WEBHOOK_DELIVERIES.labels(outcome=result).inc()
    return result


@dataclass(frozen=True, slots=True)
class Summary:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    long_waits: int = 0


def run_once(
    now: datetime | None = None, send: Callable[[str, str, dict[str, str], float], Outcome] = post
) -> Summary:
    """One pass of the notify worker: report long waits, then send what is due, at most
    NOTIFY_BATCH_SIZE deliveries. Each round sends the oldest due delivery of every
    (webhook, subject) line; a settled one lets the next of its line go in the next round."""
    config = current_app.config
    long_waits = deployments.record_long_waits(config["QUEUED_TOO_LONG_SECONDS"], now)
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    now = now or utcnow()
    budget = config["NOTIFY_BATCH_SIZE"]
    while budget > 0:
        due = _due(now, budget)
        sent = sum(1 for delivery_id in due if _send(delivery_id, now, counts, send))
        budget -= sent
        if not sent:
            break
    db.session.rollback()
    return Summary(counts["delivered"], counts["retry"], counts["failed"], long_waits)


def _send(
    delivery_id: int,
    now: datetime,
    counts: dict[str, int],
    send: Callable[[str, str, dict[str, str], float], Outcome],
) -> bool:
    """Claim, send and settle one delivery; False when another worker holds it."""
    db.session.rollback()
    claimed = _claim(delivery_id, now)
    if claimed is None:
        return False
    delivery, hook = claimed
    body, event, channel = delivery.body, delivery.event, delivery.channel
    if channel == "email":
        db.session.rollback()
        counts[_finish(delivery_id, mail(body), channel=channel)] += 1
        return True
    if hook is None:
        db.session.rollback()
        counts[_finish(delivery_id, Outcome(None, "the webhook was deleted", 0), True)] += 1
        return True
    url, secret, active = hook.url, hook.secret, hook.active
    db.session.rollback()  # no transaction is held while a receiver answers
    if not active:
        counts[_finish(delivery_id, Outcome(None, "the webhook is disabled", 0), True)] += 1
        return True
    if problem := _target_problem(url):
        counts[_finish(delivery_id, Outcome(None, problem[:300], 0), True)] += 1
        return True
    timestamp = int(time.time())
    headers = {
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery_id),
    }
    timeout = float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"])
    counts[_finish(delivery_id, send(url, body, headers, timeout))] += 1
    return True


def mail(body: str) -> Outcome:
    """Send one queued mail through the configured SMTP server. Never raises."""
    config = current_app.config
    message = json.loads(body)
    email = EmailMessage()
    email["From"] = config["MAIL_FROM"]
    email["To"] = message["to"]
    email["Subject"] = message["subject"]
    email.set_content(message["text"])
    started = time.monotonic()
    status, error = None, None
    if not config.get("SMTP_HOST"):
        return Outcome(None, "SMTP is not configured", 0)
    try:
        with smtplib.SMTP(
            config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT_SECONDS"]
        ) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(email)
            status = 250
    except (OSError, smtplib.SMTPException) as exc:
        code = getattr(exc, "smtp_code", None)
        error = (type(exc).__name__ + (f" {code}" if code else "") + ": " + str(exc))[:300]
    return Outcome(status, error, int((time.monotonic() - started) * 1000))


def run_forever(interval: float, stop: Callable[[], bool] = lambda: False) -> None:
    """The worker's loop: a pass, then a pause of `interval` seconds, until `stop()`."""
    while not stop():
        run_once()
        db.session.remove()
        time.sleep(interval)


def prune(before: datetime) -> int:
    """Delete settled deliveries (and their attempts) created before `before`."""
    ids = list(
        db.session.scalars(
            sa.select(Delivery.id).where(Delivery.status != "pending", Delivery.created_at < before)
        )
    )
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        db.session.execute(sa.delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(chunk)))
        db.session.execute(sa.delete(Delivery).where(Delivery.id.in_(chunk)))
        db.session.commit()
    db.session.commit()
    return len(ids)


def payload(delivery: DeliveryView) -> dict:
    """The JSON a delivery carries, parsed (for pages and the API)."""
    return json.loads(delivery.body)


# --- mail preferences (each user, for themselves) -------------------------------------------

EMAIL_MAX_LENGTH = 254
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class MailSettings:
    email: str
    on_preempted: bool
    on_started: bool
    on_failed: bool
    smtp_configured: bool


def mail_settings(actor: User) -> MailSettings:
    """The actor's mail address and choices (defaults: no address, every mail)."""
    preference = db.session.scalar(
        sa.select(MailPreference).where(MailPreference.user_id == actor.id)
    )
    configured = outbox.mail_configured()
    if preference is None:
        return MailSettings("", True, True, True, configured)
    return MailSettings(
        preference.email,
        preference.on_preempted,
        preference.on_started,
        preference.on_failed,
        configured,
    )


def email_problem(email: object) -> str | None:
    if not isinstance(email, str):
        return "Enter an email address."
    if len(email) > EMAIL_MAX_LENGTH:
        return f"At most {EMAIL_MAX_LENGTH} characters."
    if email and not EMAIL_PATTERN.fullmatch(email):
        return "This is not an email address (name@example.com)."
    return None


def update_mail_settings(
    actor: User, email: object, on_preempted: bool, on_started: bool, on_failed: bool
) -> MailSettings:
    """Save where and which mails the actor gets; an empty address means none."""
    email = email.strip() if isinstance(email, str) else email
    if problem := email_problem(email):
        raise ValidationError(problem, {"email": problem})
    assert isinstance(email, str)
    user_id = actor.id
    transactions.begin_write()
    preference = db.session.scalar(
        sa.select(MailPreference).where(MailPreference.user_id == user_id)
    )
    if preference is None:
        preference = MailPreference(user_id=user_id)
        db.session.add(preference)
    preference.email = email
    preference.on_preempted = bool(on_preempted)
    preference.on_started = bool(on_started)
    preference.on_failed = bool(on_failed)
    preference.updated_at = utcnow()
    db.session.commit()
    return MailSettings(
        email, bool(on_preempted), bool(on_started), bool(on_failed), outbox.mail_configured()
    )
