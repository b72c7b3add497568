"""Forms of the admin pages: a member's role, a new invite and the organization's settings.

Row actions (deactivate, reactivate, revoke, re-open, reset link) carry no fields: their CSRF
token is checked by CSRFProtect for every POST, so they need no form class.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField
from wtforms import ValidationError as FieldError

from app.models import ROLES
from app.services import accounts as accounts_service

ROLE_CHOICES = [(role, role.title()) for role in ROLES]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class RoleForm(FlaskForm):
    # A plain string: the service refuses an unknown role with its own message.
    role = StringField("Role")
    submit = SubmitField("Change role")


class InviteForm(FlaskForm):
    label = StringField("Who is it for? (optional)", filters=[_strip])
    role = SelectField("Role", default="member")
    submit = SubmitField("Create invite link")

    def __init__(self, *args, roles: list[tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = roles

    def validate_label(self, field) -> None:
        if message := accounts_service.label_problem(field.data):
            raise FieldError(message)


class SettingsForm(FlaskForm):
    name = StringField("Organization name", filters=[_strip])
    deployment_quota = StringField("Deployment quota")
    members_can_create_clusters = BooleanField("Members may create clusters")
    member_max_priority = StringField("Highest priority members may use")
    admin_max_priority = StringField("Highest priority admins may use")
    submit = SubmitField("Save settings")

    def validate_name(self, field) -> None:
        if message := accounts_service.organization_name_problem(field.data):
            raise FieldError(message)

    def validate_deployment_quota(self, field) -> None:
        quota = accounts_service.parse_quota(field.data)
        if message := accounts_service.quota_problem(quota):
            raise FieldError(message)


class QuotaForm(FlaskForm):
    """Add a resource quota; the quotas service parses and checks every field."""

    scope = SelectField(
        "Applies to",
        choices=[
            ("organization", "The whole organization"),
            ("each_member", "Each member"),
            ("member", "One member"),
        ],
        default="each_member",
    )
    user_id = SelectField("Member (for one member)", default="")
    cluster_id = SelectField("Cluster", default="")
    kind = StringField("Resource kind", filters=[_strip], default="gpu")
    amount = StringField("At most", filters=[_strip])
    min_priority = StringField("From priority", filters=[_strip], default="0")
    max_priority = StringField("To priority", filters=[_strip], default="1000")
    submit = SubmitField("Add quota")
