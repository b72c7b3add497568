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
) -> SettingsSaved:
    """Save the organization's settings (owners only) and report the quota against use."""
    settings = accounts.update_settings(actor, name, deployment_quota, members_can_create_clusters)
    return SettingsSaved(settings, deployments.organization_count(actor.organization_id))
