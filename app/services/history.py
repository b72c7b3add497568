"""History: the append-only record of what happened in an organization.

Owns the `events` table. One table serves three readers:
- the audit log of an organization (owners and admins: every change and who made it);
- the timeline of one subject, such as a deployment's page (submitted, started, preempted by
  #N, container exited with code 1, deleted);
- background workers (webhooks, mail), which read new rows and never write back into them.

`record` adds a row to the current transaction and never commits: the caller's commit lands
the change and its entry together, and a rollback removes both. Every other service calls it
in the transaction of the change it makes; this module knows nothing about their tables.

Actors are the people who act (`actor_of(user)`) or the system's own components
(`SCHEDULER`, `RECONCILER`, `SYSTEM`); both are stored by value, so an entry still reads right
after the user is renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app.extensions import db
from app.models import Event, User, utcnow


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a user (`id` set) or a component of Kargo."""

    kind: str  # "user" | "scheduler" | "reconciler" | "system"
    id: int | None
    name: str


SCHEDULER = Actor("scheduler", None, "scheduler")
RECONCILER = Actor("reconciler", None, "reconciler")
SYSTEM = Actor("system", None, "Kargo")


def actor_of(user: User) -> Actor:
    return Actor("user", user.id, user.display_name)


@dataclass(frozen=True, slots=True)
class Subject:
    """What it happened to: a kind ("deployment", "cluster", "user", ...), an id and a name."""

    kind: str
    id: int | None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class EventView:
    """One entry as pages and the API show it."""

    id: int
    at: datetime
    actor_kind: str
    actor_id: int | None
    actor_name: str | None
    action: str
    subject_kind: str
    subject_id: int | None
    subject_name: str | None
    cluster_id: int | None
    message: str
    data: dict[str, Any]


MESSAGE_MAX = 500


def entry(
    organization_id: int,
    actor: Actor,
    action: str,
    subject: Subject,
    message: str,
    data: Mapping[str, Any] | None = None,
    cluster_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The column values of one event, for `record_all` (a bulk insert)."""
    if len(message) > MESSAGE_MAX:
        message = message[: MESSAGE_MAX - 1] + "…"
    return {
        "organization_id": organization_id,
        "at": at or utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.name[:80] if actor.name else None,
        "action": action,
        "subject_kind": subject.kind,
        "subject_id": subject.id,
        "subject_name": subject.name[:100] if subject.name else None,
        "cluster_id": cluster_id,
        "message": message,
        "data": dict(data) if data else None,
    }


def record(
    organization_id: int,
    actor: Actor,
    action: str,
    subject: Subject,
    message: str,
    data: Mapping[str, Any] | None = None,
    cluster_id: int | None = None,
) -> None:
    """Add one event to the current transaction (the caller commits it with its change)."""
    record_all([entry(organization_id, actor, action, subject, message, data, cluster_id)])


def record_all(entries: Iterable[Mapping[str, Any]]) -> None:
    """Add many events in one statement (a mass preemption writes one per victim)."""
    rows = list(entries)
    if rows:
        db.session.execute(sa.insert(Event), rows)


def _view(event: Event) -> EventView:
    return EventView(
        id=event.id,
        at=event.at,
        actor_kind=event.actor_kind,
        actor_id=event.actor_id,
        actor_name=event.actor_name,
        action=event.action,
        subject_kind=event.subject_kind,
        subject_id=event.subject_id,
        subject_name=event.subject_name,
        cluster_id=event.cluster_id,
        message=event.message,
        data=dict(event.data or {}),
    )


def of_subject(
    organization_id: int, subject_kind: str, subject_id: int, limit: int = 100
) -> list[EventView]:
    """The newest `limit` events of one subject, oldest first (a timeline).

    The caller has checked that the viewer may see the subject; the organization is part of
    the query all the same, so an id of another organization shows nothing.
    """
    newest = db.session.scalars(
        sa.select(Event)
        .where(
            Event.organization_id == organization_id,
            Event.subject_kind == subject_kind,
            Event.subject_id == subject_id,
        )
        .order_by(Event.id.desc())
        .limit(limit)
    ).all()
    return [_view(event) for event in reversed(newest)]


def recent(cluster_id: int, action: str, since: datetime) -> list[tuple[int | None, datetime]]:
    """(subject id, time) of a cluster's events of one action since `since`, oldest first
    (the repack's hourly budget and cooldown read the moves it made)."""
    return [
        (subject_id, at)
        for subject_id, at in db.session.execute(
            sa.select(Event.subject_id, Event.at)
            .where(Event.cluster_id == cluster_id, Event.action == action, Event.at >= since)
            .order_by(Event.at)
        )
    ]
