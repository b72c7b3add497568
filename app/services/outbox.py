"""The outbox: deliveries written in the transaction of the event they carry.

`history.record_all` hands every batch of new events to `enqueue`; for each event whose action
a webhook of its organization subscribes to, one `deliveries` row is added to the same
transaction (so a rolled-back change sends nothing, and a committed one is sent even if Kargo
restarts before the worker runs). Mail to the person whose deployment an event concerns is
enqueued here the same way, when SMTP is configured and their preferences ask for it.
The notify worker (`services.notifications.run_once`) reads the rows; nothing here sends.

Any service that records an event of a subscribable action through `history.record` enqueues
its deliveries this way; the runtime's reconciler records `deployment.failed` and
`cluster.capacity_changed` (docs/webhooks.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from app.extensions import db
from app.models import Delivery, Event, MailPreference, User, Webhook

# History actions a webhook may subscribe to, under the event names receivers see.
EVENTS: dict[str, str] = {
    "deployment.started": "deployment.started",
    "deployment.restarted": "deployment.restarted",
    "deployment.preempted": "deployment.preempted",
    "deployment.repacked": "deployment.preempted",
    "deployment.evicted": "deployment.preempted",
    "deployment.failed": "deployment.failed",
    "deployment.queued_long": "deployment.queued_long",
    "invite.redeemed": "invite.redeemed",
    "cluster.capacity_changed": "cluster.capacity_changed",
    "webhook.test": "webhook.test",
}
SUBSCRIBABLE = (
    "deployment.started",
    "deployment.preempted",
    "deployment.failed",
    "deployment.restarted",
    "deployment.queued_long",
    "invite.redeemed",
    "cluster.capacity_changed",
)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds") + "Z"


def body_of(event_id: int | None, event: str, row: Mapping[str, Any]) -> str:
    """The JSON a receiver gets for one event (the exact bytes that are signed)."""
    return json.dumps(
        {
            "event": event,
            "event_id": event_id,
            "occurred_at": _timestamp(row["at"]),
            "organization_id": row["organization_id"],
            "actor": {"kind": row["actor_kind"], "id": row["actor_id"], "name": row["actor_name"]},
            "subject": {
                "kind": row["subject_kind"],
                "id": row["subject_id"],
                "name": row["subject_name"],
            },
            "cluster_id": row["cluster_id"],
            "message": row["message"],
            "data": row["data"] or {},
        },
        sort_keys=True,
        separators=(",", ":"),
    )


# History actions that mail the person who submitted the deployment, by preference.
MAIL_TOPICS: dict[str, str] = {
    "deployment.preempted": "preempted",
    "deployment.repacked": "preempted",
    "deployment.evicted": "preempted",
    "deployment.started": "started",
    "deployment.restarted": "started",
    "deployment.failed": "failed",
}


def wanted(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Does any of these events concern a subscriber at all (is `enqueue` worth a query)?"""
    if any(row["action"] in EVENTS for row in rows):
        return True
    return mail_configured() and any(row["action"] in MAIL_TOPICS for row in rows)


def mail_configured() -> bool:
    return bool(current_app.config.get("SMTP_HOST"))


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} minute{'s' * (minutes != 1)}"


def _mail(row: Mapping[str, Any], topic: str, waited: float | None, to: str) -> str:
    name = row["subject_name"] or f"#{row['subject_id']}"
    subjects = {
        "preempted": f"Your deployment {name} was preempted",
        "started": f"Your deployment {name} started again after being preempted"
        if row["action"] == "deployment.restarted"
        else f"Your deployment {name} started after waiting {_minutes(waited or 0)}",
        "failed": f"Your deployment {name} failed",
    }
    link = ""
    if public := (current_app.config.get("PUBLIC_URL") or "").rstrip("/"):
        link = f"\n\n{public}/deployments/{row['subject_id']}"
    text = (
        f"{subjects[topic]}.\n\n{row['message']}{link}\n\n"
        "You get this mail because of your notification settings on your Kargo profile."
    )
    return json.dumps({"to": to, "subject": subjects[topic], "text": text}, sort_keys=True)


def _mails(notable: Sequence[tuple[Mapping[str, Any], int]]) -> list[dict[str, Any]]:
    """Mail deliveries for the people whose deployments these events concern (the submitter,
    named by the deployment's `deployment.submitted` entry), as their preferences ask."""
    if not mail_configured():
        return []
    rows = [(row, event_id) for row, event_id in notable if row["action"] in MAIL_TOPICS]
    ids = {row["subject_id"] for row, _ in rows if row["subject_kind"] == "deployment"}
    if not ids:
        return []
    submitted = {
        subject_id: (actor_id, at)
        for subject_id, actor_id, at in db.session.execute(
            sa.select(Event.subject_id, Event.actor_id, Event.at).where(
                Event.subject_kind == "deployment",
                Event.subject_id.in_(ids),
                Event.action == "deployment.submitted",
                Event.actor_kind == "user",
            )
        )
    }
    people = {actor_id for actor_id, _ in submitted.values() if actor_id is not None}
    if not people:
        return []
    preferences = {
        preference.user_id: preference
        for preference in db.session.scalars(
            sa.select(MailPreference)
            .join(User, User.id == MailPreference.user_id)
            .where(
                MailPreference.user_id.in_(people),
                MailPreference.email != "",
                User.active.is_(True),
            )
        )
    }
    threshold = current_app.config["MAIL_STARTED_AFTER_WAIT_SECONDS"]
    mails = []
    for row, event_id in rows:
        actor_id, submitted_at = submitted.get(row["subject_id"], (None, None))
        preference = preferences.get(actor_id)
        if preference is None:
            continue
        topic = MAIL_TOPICS[row["action"]]
        if not getattr(preference, f"on_{topic}"):
            continue
        waited = None
        if row["action"] == "deployment.started":
            waited = (row["at"] - submitted_at).total_seconds() if submitted_at else 0
            if waited < threshold:
                continue  # started at once: nothing to tell
        mails.append(
            {
                "organization_id": row["organization_id"],
                "channel": "email",
                "webhook_id": None,
                "user_id": preference.user_id,
                "event_id": event_id,
                "event": row["action"],
                "ordering_key": f"deployment:{row['subject_id']}",
                "body": _mail(row, topic, waited, preference.email),
                "status": "pending",
                "attempts": 0,
                "created_at": row["at"],
                "next_attempt_at": row["at"],
            }
        )
    return mails


def enqueue(rows: Sequence[Mapping[str, Any]], ids: Sequence[int]) -> int:
    """Add a delivery per (event, subscribed active webhook) to the current transaction."""
    notable = [
        (row, event_id)
        for row, event_id in zip(rows, ids, strict=True)
        if row["action"] in EVENTS or row["action"] in MAIL_TOPICS
    ]
    if not notable:
        return 0
    deliveries = _mails(notable)
    notable = [(row, event_id) for row, event_id in notable if row["action"] in EVENTS]
    organizations = {row["organization_id"] for row, _ in notable}
    hooks = (
        notable
        and db.session.execute(
            sa.select(Webhook.id, Webhook.organization_id, Webhook.events).where(
                Webhook.organization_id.in_(organizations), Webhook.active.is_(True)
            )
        ).all()
    )
    for row, event_id in notable if hooks else []:
        event = EVENTS[row["action"]]
        for hook_id, organization_id, events in hooks:
            if organization_id != row["organization_id"] or event not in (events or []):
                continue
            deliveries.append(
                {
                    "organization_id": organization_id,
                    "channel": "webhook",
                    "webhook_id": hook_id,
                    "event_id": event_id,
                    "event": event,
                    "ordering_key": f"{row['subject_kind']}:{row['subject_id']}"[:64],
                    "body": body_of(event_id, event, row),
                    "status": "pending",
                    "attempts": 0,
                    "created_at": row["at"],
                    "next_attempt_at": row["at"],
                }
            )
    if deliveries:
        db.session.execute(sa.insert(Delivery), deliveries)
    return len(deliveries)
