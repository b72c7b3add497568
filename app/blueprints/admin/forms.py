"""Forms of the admin pages: a member's role and the organization's settings.

Row actions (deactivate, reactivate, revoke, re-open, create invite) carry no fields: their CSRF
token is checked by CSRFProtect for every POST, so they need no form class.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms import ValidationError as FieldError

from app.models import ROLES
from app.services import accounts as accounts_service

ROLE_CHOICES = [(role, role.title()) for role in ROLES]


class RoleForm(FlaskForm):
    # A plain string: the service refuses an unknown role with its own message.
    role = StringField("Role")
    submit = SubmitField("Change role")


class SettingsForm(FlaskForm):
    name = StringField(
        "Organization name", filters=[lambda v: v.strip() if isinstance(v, str) else v]
    )
    deployment_quota = StringField("Deployment quota")
    submit = SubmitField("Save settings")

    def validate_name(self, field) -> None:
        if message := accounts_service.organization_name_problem(field.data):
            raise FieldError(message)

    def validate_deployment_quota(self, field) -> None:
        quota = accounts_service.parse_quota(field.data)
        if message := accounts_service.quota_problem(quota):
            raise FieldError(message)
