"""Resource quotas of an organization (docs/scheduling.md, "Fair use"): set by owners, read by
the deployments service when it builds a decision.

Owns the `resource_quotas` table. A quota caps what running deployments hold of one kind: for
the whole organization, for every member separately, or for one member; on one cluster or
across all; for deployments of a priority range. Knows nothing of deployments (their use
against a quota is counted by `services.deployments`, and `services.organizations` puts the
two together for the owners' page).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import QUOTA_SCOPES, ResourceQuota, User, valid_id
from app.quantities import format_amount, parse_requests
from app.services import clusters, history, transactions
from app.services.errors import Forbidden, NotFound, ValidationError

SCOPE_WORDS = {
    "organization": "the whole organization",
    "each_member": "each member",
    "member": "one member",
}
# How many quotas an organization may hold: each is read on every decision of its clusters.
MAX_QUOTAS = 100


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """One quota as the deployments service applies it."""

    id: int
    scope: str  # organization | each_member | member
    user_id: int | None
    cluster_id: int | None  # None: across all the organization's clusters
    kind: str
    amount: int  # base units
    min_priority: int
    max_priority: int

    def applies(self, creator_id: int | None, priority: int) -> bool:
        """Does it count a deployment of this creator and priority (on a cluster it covers)?"""
        if not self.min_priority <= priority <= self.max_priority:
            return False
        if self.scope == "member":
            return creator_id == self.user_id
        if self.scope == "each_member":
            return creator_id is not None
        return True

    def describe(self, member_name: str | None = None, cluster_name: str | None = None) -> str:
        """ "each member: at most 8 gpu at priority 501-1000 on every cluster" """
        who = member_name if self.scope == "member" and member_name else SCOPE_WORDS[self.scope]
        text = f"{who}: at most {format_amount(self.kind, self.amount)}"
        if (self.min_priority, self.max_priority) != (0, 1000):
            text += f" at priority {self.min_priority}-{self.max_priority}"
        where = f"on cluster {cluster_name}" if self.cluster_id else "across all clusters"
        return f"{text} {where}"


def can_manage_quotas(actor: User) -> bool:
    """Owners set quotas (as they set every organization-wide rule)."""
    return actor.role == "owner" and actor.active


def _rule_of(row: ResourceQuota) -> QuotaRule:
    return QuotaRule(
        row.id,
        row.scope,
        row.user_id,
        row.cluster_id,
        row.kind,
        row.amount,
        row.min_priority,
        row.max_priority,
    )


def rules_for(organization_id: int, cluster_id: int | None = None) -> list[QuotaRule]:
    """The organization's quotas (those covering `cluster_id` when given), oldest first."""
    query = sa.select(ResourceQuota).where(ResourceQuota.organization_id == organization_id)
    if cluster_id is not None:
        query = query.where(
            sa.or_(ResourceQuota.cluster_id.is_(None), ResourceQuota.cluster_id == cluster_id)
        )
    return [_rule_of(row) for row in db.session.scalars(query.order_by(ResourceQuota.id))]


def _parse_priority_bound(value: object, default: int, key: str, errors: dict[str, str]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 4:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        errors[key] = "give a priority from 0 to 1000"
        return default
    return value


def create(actor: User, raw: Mapping[str, object]) -> QuotaRule:
    """Add a quota (owners). `raw`: `scope` (organization, each_member or member), `user_id`
    (for member), `cluster_id` (None: every cluster), `kind`, `amount` (a quantity such as 8,
    "2.5" cores or "16Gi"), `min_priority` and `max_priority` (default 0 and 1000).
    Raises Forbidden, ValidationError (fields named after the keys); nothing is written then."""
    if not can_manage_quotas(actor):
        raise Forbidden("Only an owner of the organization can set quotas.")
    errors: dict[str, str] = {}
    scope = raw.get("scope")
    if scope not in QUOTA_SCOPES:
        errors["scope"] = "choose organization, each_member or member"
    user_id = raw.get("user_id")
    if isinstance(user_id, str) and user_id.strip().isdigit():
        user_id = int(user_id.strip())
    if scope == "member":
        member = db.session.get(User, user_id) if valid_id(user_id) else None
        if member is None or member.organization_id != actor.organization_id:
            errors["user_id"] = "choose a member of your organization"
    else:
        user_id = None
    cluster_id = raw.get("cluster_id")
    if isinstance(cluster_id, str):
        cluster_id = int(cluster_id) if cluster_id.strip().isdigit() else cluster_id.strip() or None
    if cluster_id is not None:
        try:
            if not valid_id(cluster_id):
                raise NotFound("No such cluster.")
            clusters.snapshot(cluster_id, actor.organization_id)  # type: ignore[arg-type]
        except NotFound:
            errors["cluster_id"] = "choose a cluster of your organization, or none for all"
    kind = raw.get("kind")
    amount = 0
    if not isinstance(kind, str) or not kind.strip():
        errors["kind"] = "give the resource kind, such as cpu, ram or gpu"
    else:
        kind = kind.strip().lower()
        parsed, problems = parse_requests({kind: raw.get("amount")})
        if problems:
            for key, message in problems.items():
                errors["amount" if key == kind else "kind"] = message
        else:
            amount = parsed.get(kind, 0)
    low = _parse_priority_bound(raw.get("min_priority"), 0, "min_priority", errors)
    high = _parse_priority_bound(raw.get("max_priority"), 1000, "max_priority", errors)
    if low > high and "min_priority" not in errors and "max_priority" not in errors:
        errors["max_priority"] = "the highest priority must not be below the lowest"
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ResourceQuota)
        .where(ResourceQuota.organization_id == actor.organization_id)
    )
    if count >= MAX_QUOTAS:
        errors["scope"] = f"an organization holds at most {MAX_QUOTAS} quotas"
    if errors:
        first = next(iter(errors.values()))
        raise ValidationError(f"The quota was not added: {first}.", errors)
    transactions.begin_write()
    row = ResourceQuota(
        organization_id=actor.organization_id,
        scope=scope,
        user_id=user_id,
        cluster_id=cluster_id,
        kind=kind,
        amount=amount,
        min_priority=low,
        max_priority=high,
    )
    db.session.add(row)
    db.session.flush()
    rule = _rule_of(row)
    history.record(
        actor.organization_id,
        history.actor_of(actor),
        "quota.created",
        history.Subject("quota", row.id, f"{kind} quota"),
        f"Quota set: {rule.describe()}.",
        {"scope": scope, "kind": kind, "amount": amount, "cluster_id": cluster_id},
    )
    db.session.commit()
    return rule


def delete(actor: User, quota_id: int) -> None:
    """Remove a quota (owners); NotFound for another organization's."""
    if not can_manage_quotas(actor):
        raise Forbidden("Only an owner of the organization can remove quotas.")
    row = db.session.get(ResourceQuota, quota_id) if valid_id(quota_id) else None
    if row is None or row.organization_id != actor.organization_id:
        raise NotFound("No such quota.")
    rule = _rule_of(row)
    transactions.begin_write()
    db.session.execute(sa.delete(ResourceQuota).where(ResourceQuota.id == quota_id))
    history.record(
        actor.organization_id,
        history.actor_of(actor),
        "quota.deleted",
        history.Subject("quota", quota_id, f"{rule.kind} quota"),
        f"Quota removed: {rule.describe()}.",
    )
    db.session.commit()
