"""JSON output shared by the resources: timestamps, quantities, people.

Quantities leave the API as JSON numbers in display units (cores, GiB, whole units), converted
by `app.quantities.to_display` from the exact integers the services hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app import quantities
from app.models import Organization, User


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`: the database stores naive UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def amounts(by_kind: Mapping[str, int]) -> dict[str, int | float]:
    return {kind: quantities.to_display(kind, amount) for kind, amount in by_kind.items()}


def person(user_id: int | None, display_name: str | None) -> dict[str, Any] | None:
    """Who created something; null once that user is gone."""
    if user_id is None:
        return None
    return {"id": user_id, "display_name": display_name}


def organization_summary(organization: Organization) -> dict[str, Any]:
    return {"id": organization.id, "name": organization.name}


def user(account: User) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role,
        "organization": organization_summary(account.organization),
    }


def wait(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A deployment's structured wait reason, its amounts in display units like every other
    quantity of the API (the database keeps base units)."""
    if data is None:
        return None
    out = dict(data)
    kind = out.get("kind")
    for field in ("needed", "free", "held"):
        amount = out.get(field)
        if kind is not None and isinstance(amount, int):
            out[field] = quantities.to_display(kind, amount)
    return out


def member(account: Any) -> dict[str, Any]:
    """A member of the organization (a User or the accounts service's MemberView)."""
    return {
        "id": account.id,
        "username": account.username,
        "display_name": account.display_name,
        "role": account.role,
        "active": account.active,
        "last_login_at": timestamp(account.last_login_at),
    }


def invite(view: Any) -> dict[str, Any]:
    """A row of the invites list (the accounts service's InviteView)."""
    return {
        "id": view.id,
        "label": view.label,
        "role": view.role,
        "state": view.state,
        "created_by": view.created_by,
        "created_at": timestamp(view.created_at),
        "expires_at": timestamp(view.expires_at),
        "used_by": view.used_by,
        "used_at": timestamp(view.used_at),
        "revoked_at": timestamp(view.revoked_at),
    }


def api_token(view: Any) -> dict[str, Any]:
    """A personal API token, never its secret (the accounts service's TokenView)."""
    return {
        "id": view.id,
        "name": view.name,
        "created_at": timestamp(view.created_at),
        "expires_at": timestamp(view.expires_at),
        "last_used_at": timestamp(view.last_used_at),
        "current": view.is_current,
    }


def settings(saved: Any) -> dict[str, Any]:
    """Organization settings (the accounts service's OrganizationSettings)."""
    return {
        "name": saved.name,
        "deployment_quota": saved.deployment_quota,
        "members_can_create_clusters": saved.members_can_create_clusters,
        "member_max_priority": saved.member_max_priority,
        "admin_max_priority": saved.admin_max_priority,
    }
