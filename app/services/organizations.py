"""Organization settings, the one place where the accounts and deployments domains meet.

Accounts know nothing of deployments, but an owner who sets the quota below what exists must be
told what that means. `update_settings` saves through `services.accounts` (which enforces who
may and what is valid) and then counts the organization's deployments through
`services.deployments`, so the page and the API give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models import User
from app.services import accounts, deployments
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
