"""Forms of the accounts pages: sign-up, login and joining through an invite.

The rules themselves live in `app.services.accounts`; the inline validators below call the same
pure rule functions so every field shows its own message on the first submit. The services check
everything again (and the uniqueness the forms cannot see) before writing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms import ValidationError as FieldError
from wtforms.validators import EqualTo, InputRequired

from app.services import accounts as accounts_service
from app.services.errors import DomainError


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _check(message: str | None) -> None:
    if message:
        raise FieldError(message)


class _NewAccountFields(FlaskForm):
    """Username, display name and password (twice): shared by sign-up and invite forms."""

    username = StringField("Username", filters=[_strip])
    display_name = StringField("Display name", filters=[_strip])
    password = PasswordField("Password")
    confirm = PasswordField(
        "Confirm password",
        validators=[
            InputRequired(message="Type the password again."),
            EqualTo("password", message="The two passwords do not match."),
        ],
    )

    def validate_username(self, field) -> None:
        _check(accounts_service.username_problem(field.data))

    def validate_display_name(self, field) -> None:
        _check(accounts_service.display_name_problem(field.data))

    def validate_password(self, field) -> None:
        _check(accounts_service.password_problem(field.data, self.username.data))


class SignupForm(_NewAccountFields):
    organization_name = StringField("Organization name", filters=[_strip])
    submit = SubmitField("Create organization")

    def validate_organization_name(self, field) -> None:
        _check(accounts_service.organization_name_problem(field.data))


class InviteSignupForm(_NewAccountFields):
    submit = SubmitField("Join organization")


class LoginForm(FlaskForm):
    username = StringField(
        "Username", filters=[_strip], validators=[InputRequired(message="Enter your username.")]
    )
    password = PasswordField("Password", validators=[InputRequired(message="Enter your password.")])
    next = HiddenField()
    submit = SubmitField("Log in")


def show_domain_error(form: FlaskForm, error: DomainError) -> None:
    """Put a service error's field messages next to their fields, the rest above the form."""
    for name, message in error.fields.items():
        if name in form._fields:
            form[name].errors = [*form[name].errors, message]
        else:
            form.form_errors.append(message)
    if not error.fields:
        form.form_errors.append(error.message)


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None: `next` must never leave Kargo.

    Rejects absolute URLs, scheme-relative `//host`, backslashes (browsers read `/\\host` as
    `//host`) and control characters (browsers drop tabs and newlines inside URLs).
    """
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
