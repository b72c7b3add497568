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
from app.services import outbox


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
    """Add many events in one statement (a mass preemption writes one per victim).

    Events a webhook may subscribe to also put their deliveries in the outbox, in the same
    transaction (`outbox.enqueue`): whoever records such an event notifies its subscribers.
    """
    rows = list(entries)
    if not rows:
        return
    if not outbox.wanted(rows):
        db.session.execute(sa.insert(Event), rows)
        return
    ids = db.session.scalars(
        sa.insert(Event).returning(Event.id, sort_by_parameter_order=True), rows
    ).all()
    outbox.enqueue(rows, ids)


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


# ---------------------------------------------------------------------------------------------
# The audit log: filtered, paged and exported reads, and retention
# ---------------------------------------------------------------------------------------------

COMPONENTS = ("scheduler", "reconciler", "system")


@dataclass(frozen=True, slots=True)
class Filter:
    """Which entries an audit reader asks for; None means any.

    `actor` is a user id (as a string of digits) or a component name; `action` is a whole
    action ("invite.revoked") or its subject part ("invite"); `only_of_user` limits the entries
    to a member's own: their deployments (those they submitted) and their own account.
    """

    actor: str | None = None
    action: str | None = None
    subject_kind: str | None = None
    subject_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    only_of_user: int | None = None


def _conditions(organization_id: int, wanted: Filter) -> list[Any]:
    conditions: list[Any] = [Event.organization_id == organization_id]
    if wanted.actor is not None:
        if wanted.actor in COMPONENTS:
            conditions.append(Event.actor_kind == wanted.actor)
        else:
            conditions += [Event.actor_kind == "user", Event.actor_id == int(wanted.actor)]
    if wanted.action is not None:
        if "." in wanted.action:
            conditions.append(Event.action == wanted.action)
        else:
            conditions.append(Event.action.startswith(wanted.action + ".", autoescape=True))
    if wanted.subject_kind is not None:
        conditions.append(Event.subject_kind == wanted.subject_kind)
    if wanted.subject_id is not None:
        conditions.append(Event.subject_id == wanted.subject_id)
    if wanted.since is not None:
        conditions.append(Event.at >= wanted.since)
    if wanted.until is not None:
        conditions.append(Event.at < wanted.until)
    if wanted.only_of_user is not None:
        submitted = sa.select(Event.subject_id).where(
            Event.organization_id == organization_id,
            Event.action == "deployment.submitted",
            Event.actor_kind == "user",
            Event.actor_id == wanted.only_of_user,
        )
        conditions.append(
            sa.or_(
                sa.and_(Event.subject_kind == "deployment", Event.subject_id.in_(submitted)),
                sa.and_(Event.subject_kind == "user", Event.subject_id == wanted.only_of_user),
            )
        )
    return conditions


def search(
    organization_id: int, wanted: Filter, start: int, limit: int
) -> tuple[list[EventView], int]:
    """One page of an organization's entries matching `wanted`, newest first, and the total."""
    conditions = _conditions(organization_id, wanted)
    total = db.session.scalar(sa.select(sa.func.count(Event.id)).where(*conditions)) or 0
    rows = db.session.scalars(
        sa.select(Event).where(*conditions).order_by(Event.id.desc()).offset(start).limit(limit)
    ).all()
    return [_view(event) for event in rows], total


def scan(organization_id: int, wanted: Filter, chunk: int = 500) -> Iterable[EventView]:
    """Every entry matching `wanted`, newest first, read in chunks by id (the CSV export)."""
    conditions = _conditions(organization_id, wanted)
    below: int | None = None
    while True:
        query = sa.select(Event).where(*conditions)
        if below is not None:
            query = query.where(Event.id < below)
        rows = db.session.scalars(query.order_by(Event.id.desc()).limit(chunk)).all()
        if not rows:
            return
        for event in rows:
            yield _view(event)
        below = rows[-1].id


def gone(organization_id: int, subjects: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (kind, id) subjects have a deletion entry: pages do not link to them."""
    wanted = {(kind, subject_id) for kind, subject_id in subjects if subject_id is not None}
    if not wanted:
        return set()
    rows = db.session.execute(
        sa.select(Event.subject_kind, Event.subject_id).where(
            Event.subject_kind.in_({kind for kind, _ in wanted}),
            Event.subject_id.in_({subject_id for _, subject_id in wanted}),
            Event.organization_id == organization_id,
            Event.action.endswith(".deleted"),
        )
    )
    return {(kind, subject_id) for kind, subject_id in rows} & wanted


def actors(organization_id: int) -> list[tuple[int, str]]:
    """(user id, newest name) of every user who appears as an actor (the filter's choices)."""
    rows = db.session.execute(
        sa.select(Event.actor_id, Event.actor_name, sa.func.max(Event.id))
        .where(Event.organization_id == organization_id, Event.actor_kind == "user")
        .group_by(Event.actor_id, Event.actor_name)
    ).all()
    newest: dict[int, tuple[int, str]] = {}
    for actor_id, name, last in rows:
        if actor_id is not None and (actor_id not in newest or last > newest[actor_id][0]):
            newest[actor_id] = (last, name or f"user #{actor_id}")
    return sorted(((i, name) for i, (_, name) in newest.items()), key=lambda item: item[1])


def actions(organization_id: int) -> list[str]:
    """The distinct actions an organization's log holds (the filter's choices)."""
    return list(
        db.session.scalars(
            sa.select(Event.action)
            .where(Event.organization_id == organization_id)
            .distinct()
            .order_by(Event.action)
        )
    )


def prune(before: datetime, batch: int = 5000) -> int:
    """Delete entries older than `before`, in batches (each its own transaction); the count.

    Ids are never reused, so a reader that remembers the last id it saw is not confused.
    """
    deleted = 0
    while True:
        ids = db.session.scalars(
            sa.select(Event.id).where(Event.at < before).order_by(Event.id).limit(batch)
        ).all()
        if not ids:
            db.session.commit()
            return deleted
        db.session.execute(
            sa.delete(Event).where(Event.id.in_(ids)).execution_options(synchronize_session=False)
        )
        db.session.commit()
        deleted += len(ids)


def latest(
    subject_kind: str, subject_ids: Iterable[int], actions: Iterable[str]
) -> dict[int, datetime]:
    """The time of each subject's newest event among `actions` (subjects without one are left
    out): when a deployment was last sent back to the queue, or last reported waiting."""
    ids = list(subject_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(Event.subject_id, sa.func.max(Event.at))
        .where(
            Event.subject_kind == subject_kind,
            Event.subject_id.in_(ids),
            Event.action.in_(list(actions)),
        )
        .group_by(Event.subject_id)
    )
    return {subject_id: at for subject_id, at in rows}
