"""Organization settings, the one place where the accounts and deployments domains meet.

Accounts know nothing of deployments, but an owner who sets the quota below what exists must be
told what that means. `update_settings` saves through `services.accounts` (which enforces who
may and what is valid) and then counts the organization's deployments through
`services.deployments`, so the page and the API give the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.models import User
from app.quantities import format_amount
from app.services import accounts, clusters, deployments, quotas
from app.services.errors import Forbidden


@dataclass(frozen=True)
class SettingsSaved:
    settings: accounts.OrganizationSettings
    deployments: int  # deployments (running and queued) the organization has now

    @property
    def quota_reached(self) -> bool:
        return self.deployments >= self.settings.deployment_quota

    @property
    def message(self) -> str:
        """What was saved and, when the quota is already used up, what follows from it."""
        text = "Organization settings saved."
        if not self.quota_reached:
            return text
        quota, count = self.settings.deployment_quota, self.deployments
        exist = f"{count} deployment{'s' * (count != 1)} exist{'s' * (count == 1)}"
        if quota == 0:
            return f"{text} {exist}; with a quota of 0, every new one is refused."
        return (
            f"{text} {exist}; nothing is stopped, but new ones are refused until fewer than "
            f"{quota} remain."
        )


def update_settings(
    actor: User,
    name: str,
    deployment_quota: object,
    members_can_create_clusters: bool | None = None,
    member_max_priority: object = None,
    admin_max_priority: object = None,
) -> SettingsSaved:
    """Save the organization's settings (owners only) and report the quota against use.

    The priority rights (`member_max_priority`, `admin_max_priority`: a number 0..1000 or a
    tier name; None keeps each) are parsed by the deployments service, which enforces them.
    """
    if not accounts.can_manage_members(actor):
        raise Forbidden(accounts.OWNERS_ONLY)
    rights = deployments.parse_priority_rights(
        {"member_max_priority": member_max_priority, "admin_max_priority": admin_max_priority}
    )
    settings = accounts.update_settings(
        actor, name, deployment_quota, members_can_create_clusters, **rights
    )
    return SettingsSaved(settings, deployments.organization_count(actor.organization_id))


@dataclass(frozen=True)
class QuotaLine:
    """One holder's use of a quota: the organization, or one member."""

    who: str
    used: int
    limit: int
    used_text: str
    limit_text: str

    @property
    def percent(self) -> int:
        return 100 if self.limit == 0 else min(100, self.used * 100 // self.limit)

    @property
    def full(self) -> bool:
        return self.used >= self.limit


@dataclass(frozen=True)
class QuotaUse:
    """A quota with its use against it, for the owners' page and the API."""

    rule: quotas.QuotaRule
    description: str
    cluster_name: str | None
    member_name: str | None
    lines: list[QuotaLine] = field(default_factory=list)


def quota_overview(actor: User) -> list[QuotaUse]:
    """Every quota of the organization with what running deployments hold against it (per
    member for "each member" quotas). Owners only."""
    if not quotas.can_manage_quotas(actor):
        raise Forbidden("Only an owner of the organization can see and set quotas.")
    organization_id = actor.organization_id
    rules = quotas.rules_for(organization_id)
    holdings = deployments.running_holdings(organization_id)
    names = {
        member.id: member.display_name for member in accounts.organization_overview(actor).members
    }
    cluster_names = clusters.names(organization_id)
    overview = []
    for rule in rules:
        relevant = [
            h
            for h in holdings
            if (rule.cluster_id is None or h.cluster_id == rule.cluster_id)
            and rule.applies(h.created_by_id, h.priority)
        ]
        if rule.scope == "each_member":
            per: dict[int | None, int] = {member_id: 0 for member_id in names}
            for h in relevant:
                per[h.created_by_id] = per.get(h.created_by_id, 0) + h.requests.get(rule.kind, 0)
            holders: Mapping[int | None, int] = per
        else:
            total = sum(h.requests.get(rule.kind, 0) for h in relevant)
            holders = {rule.user_id if rule.scope == "member" else None: total}
        lines = [
            QuotaLine(
                "the organization" if holder is None else names.get(holder, f"user #{holder}"),
                used,
                rule.amount,
                format_amount(rule.kind, used),
                format_amount(rule.kind, rule.amount),
            )
            for holder, used in sorted(holders.items(), key=lambda kv: (-kv[1], str(kv[0])))
        ]
        member_name = names.get(rule.user_id) if rule.user_id is not None else None
        cluster_name = cluster_names.get(rule.cluster_id) if rule.cluster_id else None
        overview.append(
            QuotaUse(
                rule, rule.describe(member_name, cluster_name), cluster_name, member_name, lines
            )
        )
    return overview


@dataclass(frozen=True)
class QuotaChoices:
    """What the quota form offers: (id, name) of members and of clusters."""

    members: list[tuple[str, str]]
    clusters: list[tuple[str, str]]


def quota_choices(actor: User) -> QuotaChoices:
    """The members and clusters a quota may name (owners)."""
    if not quotas.can_manage_quotas(actor):
        raise Forbidden("Only an owner of the organization can see and set quotas.")
    members = accounts.organization_overview(actor).members
    names = clusters.names(actor.organization_id)
    return QuotaChoices(
        [(str(m.id), m.display_name) for m in members],
        [(str(i), name) for i, name in sorted(names.items(), key=lambda kv: kv[1])],
    )
