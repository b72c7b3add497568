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
