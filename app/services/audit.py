"""The audit log as people read it: who may see which entries, filters, pages and the export.

Owners and admins read their whole organization's log; members read the history of the
deployments they submitted and of their own account. The entries themselves are written by
every other service through `history.record`, in the transaction of the change they describe;
this module only reads them (and prunes them past the retention period).

Filters arrive as text (a query string) and are checked here, once, for the page, the CSV
export and the API: a bad value raises ValidationError naming the field, and nothing is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app

from app.models import MAX_ID, User, utcnow
from app.services import accounts, history
from app.services.errors import ValidationError

DIGITS = re.compile(r"[0-9]{1,10}")
SUBJECT_KINDS = ("deployment", "cluster", "user", "invite", "organization", "token", "webhook")
ACTION_PATTERN_MAX = 48
CSV_COLUMNS = (
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "action",
    "subject_kind",
    "subject_id",
    "subject_name",
    "cluster_id",
    "message",
    "data",
)


def sees_everything(viewer: User) -> bool:
    """Owners and admins read the whole log; members only their own part of it."""
    return accounts.can_see_admin(viewer)


def _an_id(text: str) -> bool:
    return DIGITS.fullmatch(text) is not None and 0 < int(text) <= MAX_ID


def _when(value: str, field: str, errors: dict[str, str]) -> datetime | None:
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        errors[field] = (
            "must be a date or time in ISO 8601, such as 2026-05-01 or 2026-05-01T12:00Z"
        )
        return None
    return moment


def parse_filter(viewer: User, raw: Mapping[str, str | None]) -> history.Filter:
    """The filter these query values ask for, within what `viewer` may read.

    Keys: actor (a user id or scheduler, reconciler, system), action (such as invite.revoked,
    or invite for every invite action), subject_kind, subject_id, since and until (ISO 8601,
    UTC when no offset is given; until is exclusive). Empty values mean any.
    """
    values = {key: (value or "").strip() for key, value in raw.items() if value is not None}
    errors: dict[str, str] = {}
    actor = values.get("actor") or None
    if actor is not None and actor not in history.COMPONENTS and not _an_id(actor):
        errors["actor"] = "must be a user id or one of " + ", ".join(history.COMPONENTS)
    action = values.get("action") or None
    if action is not None and (
        len(action) > ACTION_PATTERN_MAX
        or not all(part.isidentifier() for part in action.split("."))
        or action.count(".") > 1
    ):
        errors["action"] = "must be an action such as invite.revoked, or its first part (invite)"
    subject_kind = values.get("subject_kind") or None
    if subject_kind is not None and subject_kind not in SUBJECT_KINDS:
        errors["subject_kind"] = "must be one of " + ", ".join(SUBJECT_KINDS)
    subject_id = None
    if raw_id := values.get("subject_id"):
        if _an_id(raw_id):
            subject_id = int(raw_id)
        else:
            errors["subject_id"] = "must be an object id (a positive integer)"
    since = _when(values["since"], "since", errors) if values.get("since") else None
    until = _when(values["until"], "until", errors) if values.get("until") else None
    if since is not None and until is not None and until <= since:
        errors["until"] = "must be later than since"
    if errors:
        raise ValidationError(
            "Check the filter: " + "; ".join(f"{k} {v}" for k, v in errors.items()), fields=errors
        )
    return history.Filter(
        actor=actor,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        since=since,
        until=until,
        only_of_user=None if sees_everything(viewer) else viewer.id,
    )


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[history.EventView]
    total: int
    page: int
    size: int
    # (kind, id) of subjects that were deleted since: shown without a link.
    gone: frozenset[tuple[str, int]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


def entries(viewer: User, wanted: history.Filter, page: int, size: int) -> AuditPage:
    """One page (0-based) of the entries `viewer` may read that match `wanted`, newest first."""
    if wanted.only_of_user is None and not sees_everything(viewer):
        wanted = history.Filter(**{**_fields(wanted), "only_of_user": viewer.id})
    items, total = history.search(viewer.organization_id, wanted, page * size, size)
    gone = history.gone(
        viewer.organization_id,
        ((item.subject_kind, item.subject_id) for item in items if item.subject_id),
    )
    return AuditPage(items, total, page, size, frozenset(gone))


def _fields(wanted: history.Filter) -> dict:
    return {name: getattr(wanted, name) for name in history.Filter.__slots__}


def export(viewer: User, wanted: history.Filter) -> Iterator[history.EventView]:
    """Every entry `viewer` may read that matches `wanted`, newest first (the CSV export)."""
    if wanted.only_of_user is None and not sees_everything(viewer):
        wanted = history.Filter(**{**_fields(wanted), "only_of_user": viewer.id})
    return iter(history.scan(viewer.organization_id, wanted))


def filter_choices(viewer: User) -> tuple[list[tuple[str, str]], list[str]]:
    """(actor choices as (value, label), actions) for the page's filter form."""
    organization_id = viewer.organization_id
    people = [(str(user_id), name) for user_id, name in history.actors(organization_id)]
    components = [(name, name) for name in history.COMPONENTS]
    return people + components, history.actions(organization_id)


def retention() -> timedelta:
    return timedelta(days=current_app.config["HISTORY_RETENTION_DAYS"])


def prune(now: datetime | None = None) -> int:
    """Delete audit entries older than HISTORY_RETENTION_DAYS; how many were deleted."""
    return history.prune((now or utcnow()) - retention())
