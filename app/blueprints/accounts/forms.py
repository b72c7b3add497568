"""Forms of the accounts pages: sign-up, login and joining through an invite.

The rules themselves live in `app.services.accounts`; the inline validators below call the same
pure rule functions so every field shows its own message on the first submit. The services check
everything again (and the uniqueness the forms cannot see) before writing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, SubmitField
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


class ProfileForm(FlaskForm):
    display_name = StringField("Display name", filters=[_strip])
    submit = SubmitField("Save display name")

    def validate_display_name(self, field) -> None:
        _check(accounts_service.display_name_problem(field.data))


class _NewPasswordFields(FlaskForm):
    """A new password typed twice; `username` is the account's, for the password rules."""

    password = PasswordField("New password")
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            InputRequired(message="Type the new password again."),
            EqualTo("password", message="The two passwords do not match."),
        ],
    )
    username = ""

    def validate_password(self, field) -> None:
        _check(accounts_service.password_problem(field.data, self.username))


class PasswordForm(_NewPasswordFields):
    current_password = PasswordField(
        "Current password", validators=[InputRequired(message="Enter your current password.")]
    )
    submit = SubmitField("Change password")


class ResetPasswordForm(_NewPasswordFields):
    submit = SubmitField("Set new password")


# Lifetimes offered on the tokens page, in days (the service accepts any from 1 to the maximum).
TOKEN_LIFETIMES = (7, 30, 90, 365)


class TokenForm(FlaskForm):
    name = StringField("Token name", filters=[_strip])
    expires_in_days = SelectField("Expires after", default="30")
    submit = SubmitField("Create token")

    def __init__(self, *args, longest: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        days = [d for d in TOKEN_LIFETIMES if d <= longest] or [longest]
        self.expires_in_days.choices = [(str(d), f"{d} days") for d in days]

    def validate_name(self, field) -> None:
        _check(accounts_service.token_name_problem(field.data))


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
