"""Accounts, organizations, roles, invites, login sessions, password resets and API tokens.

Knows nothing of clusters or deployments. Passwords are hashed with scrypt (werkzeug) and never
stored or logged in clear; session keys, invite and reset codes and API tokens are random
secrets stored only as SHA-256 hashes.

Every rule about people lives here, once, for the HTML pages and the JSON API alike. Each
action is one function taking the acting user first (so that an audit trail can record who did
what):

- validation (`username_problem`, `password_problem`, `display_name_problem`,
  `organization_name_problem`, `label_problem`, `quota_problem`): pure functions the forms
  reuse for field-level messages; the services run them again, so nothing invalid is written;
- sign-up and login (`signup`, `authenticate`), login sessions (`open_session`,
  `load_session_user`, `end_session`), the profile (`profile`, `update_profile`,
  `change_password`);
- invites (`create_invite`, `invite_status`, `redeem_invite`, `revoke_invite`,
  `reopen_invite`, `list_invites`) and password reset links (`create_password_reset`,
  `password_reset_status`, `reset_password`);
- members and roles (`list_members`, `members_admin`, `change_role`, `deactivate`,
  `reactivate`), settings (`organization_settings`, `update_settings`);
- API tokens (`issue_token`, `login_token`, `create_token`, `list_tokens`, `revoke_api_token`,
  `user_for_token`, `revoke_token`).

Who may do what is decided by the `can_*` functions below; the services enforce them and the
pages call the same functions to offer only what the viewer may do. Owners and admins manage
invites (only owners invite owners); only owners change roles, deactivate or reactivate
members, issue password reset links and edit the organization's settings. The last active
owner can never be demoted or deactivated: the check and the update run in one write
transaction that holds the organization's lock (`SELECT ... FOR NO KEY UPDATE` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite), so two owners demoting each other at once cannot both succeed.

Sessions are rows: the signed cookie carries only a random key, and a request is logged in
while a live row has that key's hash. Logging out deletes the row; a password change deletes
the user's other rows and revokes their API tokens; deactivation does both for every one of
them, so reactivating brings back nothing.

Every change an organization would want to audit (sign-ups, redeemed invites, invites made,
revoked and re-opened, roles, deactivations, settings and quota, password changes and resets,
personal API tokens, and failed logins of a known username, without the password) is recorded
through `history.record` in the transaction of the change itself.

Errors are domain errors (`app.services.errors`) whose `fields` map a field name to a message:
`username`, `password`, `current_password`, `display_name`, `organization_name`, `name`,
`label`, `deployment_quota`, `role`, `expires_in_days`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import (
    ROLES,
    ApiToken,
    Credential,
    Invite,
    LoginSession,
    Organization,
    PasswordReset,
    User,
    utcnow,
    valid_id,
)
from app.services import history, transactions
from app.services.errors import (
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    Unauthorized,
    ValidationError,
)

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{3,40}")
USERNAME_MAX_LENGTH = 40
DISPLAY_NAME_MAX_LENGTH = 80
ORGANIZATION_NAME_MAX_LENGTH = 100
LABEL_MAX_LENGTH = 80
TOKEN_NAME_MAX_LENGTH = 80
# scrypt accepts any length; a cap keeps a megabyte "password" from costing a request.
PASSWORD_MAX_LENGTH = 256
# Session keys, invite and reset codes and API tokens are secrets.token_urlsafe(32): 43
# URL-safe characters. Anything outside this shape is rejected before it reaches the database.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
# Characters that reorder the text around them (U+202E shows "exe.txt" as "txt.exe"): never
# part of a name someone else will read.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
SESSION, TOKEN = "session", "token"
LOGIN_TOKEN_NAME = "API login"

INVALID_CREDENTIALS = "Invalid username or password."
USERNAME_TAKEN = "This username is taken. Choose another one."
INVITE_STATES = ("active", "used", "expired", "revoked", "invalid")


@dataclass(frozen=True)
class LinkProblem:
    title: str
    message: str
    status: int


# What a person opening an unusable invite link is told, per state.
INVITE_PROBLEMS = {
    "invalid": LinkProblem(
        "Invite link not valid",
        "This invite link is not valid. Check that you copied the whole link, "
        "or ask for a new one.",
        404,
    ),
    "used": LinkProblem(
        "Invite link already used",
        "This invite link has already been used. Each link works once: ask an owner or "
        "admin of the organization for a new one.",
        410,
    ),
    "expired": LinkProblem(
        "Invite link expired",
        "This invite link has expired. Ask an owner or admin of the organization to re-open "
        "it or to send you a new one.",
        410,
    ),
    "revoked": LinkProblem(
        "Invite link revoked",
        "This invite link was revoked by the organization. Ask an owner or admin for a new one.",
        410,
    ),
}

# What a person opening an unusable password reset link is told, per state.
RESET_PROBLEMS = {
    "invalid": LinkProblem(
        "Reset link not valid",
        "This password reset link is not valid. Check that you copied the whole link, "
        "or ask an owner of your organization for a new one.",
        404,
    ),
    "used": LinkProblem(
        "Reset link already used",
        "This password reset link has already been used. Each link works once: ask an owner "
        "for a new one if you need to reset your password again.",
        410,
    ),
    "expired": LinkProblem(
        "Reset link expired",
        "This password reset link has expired. Ask an owner of your organization for a new one.",
        410,
    ),
    "revoked": LinkProblem(
        "Reset link replaced",
        "This password reset link was replaced by a newer one or withdrawn. Use the newest "
        "link an owner gave you.",
        410,
    ),
}


# ---------------------------------------------------------------------------------------------
# Who may do what (the services enforce these; the pages use them to offer actions)
# ---------------------------------------------------------------------------------------------


def can_manage_invites(actor: User) -> bool:
    """Create, revoke and re-open invites: owners and admins."""
    return actor.active and actor.role in ("owner", "admin")


def can_invite_as(actor: User, role: str) -> bool:
    """Only an owner may invite another owner."""
    return (
        can_manage_invites(actor) and role in ROLES and (role != "owner" or actor.role == "owner")
    )


def can_manage_members(actor: User) -> bool:
    """Change roles, deactivate, reactivate, issue reset links, edit settings: owners."""
    return actor.active and actor.role == "owner"


def can_see_admin(actor: User) -> bool:
    """The admin pages (members and invites) are for owners and admins."""
    return can_manage_invites(actor)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


DEACTIVATED = "This account has been deactivated."
OWNERS_ONLY = "Only an owner of the organization can do this."
OWNERS_AND_ADMINS = "Only an owner or an admin of the organization can do this."


# ---------------------------------------------------------------------------------------------
# Passwords
# ---------------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


_dummy_hash: str | None = None


def _burn_password_check(password: str) -> None:
    """Spend the time of a real check so unknown usernames are not told apart by timing."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    check_password_hash(_dummy_hash, password)


# ---------------------------------------------------------------------------------------------
# Validation rules (pure; shared with the forms)
# ---------------------------------------------------------------------------------------------


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS for ch in text)


def username_problem(username: str | None) -> str | None:
    username = (username or "").strip()
    if not username:
        return "Enter a username."
    if len(username) < 3 or len(username) > USERNAME_MAX_LENGTH:
        return f"A username is 3 to {USERNAME_MAX_LENGTH} characters long."
    if not USERNAME_PATTERN.fullmatch(username):
        return "Use only letters, digits, dots, dashes and underscores."
    return None


def password_problem(password: str | None, username: str | None) -> str | None:
    password = password or ""
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    if not password:
        return "Enter a password."
    if len(password) < minimum:
        return f"Use at least {minimum} characters."
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"Use at most {PASSWORD_MAX_LENGTH} characters."
    key = (username or "").strip().lower()
    if key and key in password.lower():
        return "The password must not contain your username."
    return None


def _name_problem(value: str | None, what: str, maximum: int, required: bool = True) -> str | None:
    value = (value or "").strip()
    if not value:
        return f"Enter {what}." if required else None
    if len(value) > maximum:
        return f"Use at most {maximum} characters."
    if _has_control_characters(value):
        return "Remove the control characters (including those that reverse the text)."
    return None


def display_name_problem(display_name: str | None) -> str | None:
    return _name_problem(display_name, "a display name", DISPLAY_NAME_MAX_LENGTH)


def organization_name_problem(name: str | None) -> str | None:
    return _name_problem(name, "an organization name", ORGANIZATION_NAME_MAX_LENGTH)


def label_problem(label: str | None) -> str | None:
    """An invite's label is optional: who it is for, in the inviter's words."""
    return _name_problem(label, "a label", LABEL_MAX_LENGTH, required=False)


def token_name_problem(name: str | None) -> str | None:
    return _name_problem(name, "a name for the token", TOKEN_NAME_MAX_LENGTH)


def role_problem(role: object) -> str | None:
    if role not in ROLES:
        return "Choose owner, admin or member."
    return None


def quota_maximum() -> int:
    """The operator's ceiling on an organization's deployment quota (MAX_ORGANIZATION_QUOTA)."""
    return current_app.config["MAX_ORGANIZATION_QUOTA"]


def quota_problem(quota: object) -> str | None:
    message = f"Enter a whole number from 0 to {quota_maximum():,}."
    if isinstance(quota, bool) or not isinstance(quota, int):
        return message
    if quota < 0 or quota > quota_maximum():
        return message
    return None


def parse_quota(quota: object) -> object:
    """An int, or a numeric string (forms, padded JSON strings) read as one; else unchanged."""
    if isinstance(quota, str) and re.fullmatch(r"\s*\d{1,9}\s*", quota):
        return int(quota)
    return quota


def token_lifetime_problem(days: object) -> str | None:
    longest = current_app.config["API_TOKEN_MAX_TTL_DAYS"]
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= longest:
        return f"Choose from 1 to {longest} days."
    return None


def parse_days(days: object) -> object:
    if isinstance(days, str) and re.fullmatch(r"\s*\d{1,5}\s*", days):
        return int(days)
    return days


def _account_problems(username: str, password: str, display_name: str) -> dict[str, str]:
    problems = {
        "username": username_problem(username),
        "password": password_problem(password, username),
        "display_name": display_name_problem(display_name),
    }
    return {field: message for field, message in problems.items() if message}


def _raise_if(problems: dict[str, str | None]) -> None:
    found = {field: message for field, message in problems.items() if message}
    if found:
        raise ValidationError("Please correct the highlighted fields.", fields=found)


def _username_taken(username: str) -> bool:
    key = username.strip().lower()
    return db.session.scalar(sa.select(User.id).where(User.username_key == key)) is not None


def _taken() -> Conflict:
    return Conflict(USERNAME_TAKEN, fields={"username": USERNAME_TAKEN}, code="username_taken")


# ---------------------------------------------------------------------------------------------
# Transactions and secrets
# ---------------------------------------------------------------------------------------------


def _begin_write(organization_id: int | None = None) -> None:
    """Start the transaction that will write, holding the write lock from its first statement.

    SQLite: `BEGIN IMMEDIATE` (a deferred transaction that read first could fail to upgrade
    under concurrency). PostgreSQL: when `organization_id` is given, the organization row is
    locked, which serializes rules that read then write (the last owner).
    """
    transactions.begin_write()
    if organization_id is not None:
        transactions.lock_organization(organization_id)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _ttl(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[name])


def _well_formed(secret: object) -> bool:
    return isinstance(secret, str) and SECRET_PATTERN.fullmatch(secret) is not None


def _member(user: User) -> history.Subject:
    return history.Subject("user", user.id, user.display_name)


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


@dataclass(frozen=True)
class Ended:
    """How many login sessions and API tokens an action ended."""

    sessions: int = 0
    tokens: int = 0

    def describe(self) -> str:
        parts = []
        if self.sessions:
            parts.append(f"{self.sessions} other session{'s' * (self.sessions > 1)}")
        if self.tokens:
            parts.append(f"{self.tokens} API token{'s' * (self.tokens > 1)}")
        return " and ".join(parts)


def _end_credentials(user_id: int, keep: Credential | None = None) -> Ended:
    """Delete the user's login sessions and revoke their live API tokens, except `keep`.

    Runs inside the caller's write transaction; the caller commits.
    """
    sessions = sa.delete(LoginSession).where(LoginSession.user_id == user_id)
    if keep is not None and keep.kind == SESSION:
        sessions = sessions.where(LoginSession.id != keep.id)
    now = utcnow()
    tokens = (
        sa.update(ApiToken)
        .where(
            ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now
        )
        .values(revoked_at=now)
    )
    if keep is not None and keep.kind == TOKEN:
        tokens = tokens.where(ApiToken.id != keep.id)
    ended_sessions = db.session.execute(sessions.execution_options(synchronize_session=False))
    ended_tokens = db.session.execute(tokens.execution_options(synchronize_session=False))
    return Ended(sessions=ended_sessions.rowcount, tokens=ended_tokens.rowcount)


# ---------------------------------------------------------------------------------------------
# Sign-up and login
# ---------------------------------------------------------------------------------------------


def signup(username: str, password: str, display_name: str, organization_name: str) -> User:
    """Create an organization and its first user, its owner. Raises ValidationError/Conflict."""
    username, display_name = (username or "").strip(), (display_name or "").strip()
    organization_name = (organization_name or "").strip()
    problems = _account_problems(username, password, display_name)
    if message := organization_name_problem(organization_name):
        problems["organization_name"] = message
    _raise_if(problems)
    if _username_taken(username):
        raise _taken()
    password_hash = hash_password(password)  # slow: outside the write lock

    _begin_write()
    organization = Organization(
        name=organization_name,
        deployment_quota=min(current_app.config["DEFAULT_DEPLOYMENT_QUOTA"], quota_maximum()),
    )
    user = User(
        organization=organization,
        username=username,
        username_key=username.lower(),
        display_name=display_name,
        password_hash=password_hash,
        role="owner",
        last_login_at=utcnow(),  # signing up logs the new owner in
    )
    db.session.add_all([organization, user])
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _taken() from None
    history.record(
        organization.id,
        history.actor_of(user),
        "user.signed_up",
        _member(user),
        f"{display_name} ({username}) signed up and created organization {organization_name}.",
        {"username": username, "role": "owner", "organization": organization_name},
    )
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User:
    """The user with these credentials, with `last_login_at` updated. Raises Unauthorized.

    A wrong username and a wrong password get the same message. A deactivated account is named
    as such only after the correct password, so it reveals nothing to a guesser.
    """
    username, password = (username or "").strip(), password or ""
    user = None
    if USERNAME_PATTERN.fullmatch(username) and len(password) <= PASSWORD_MAX_LENGTH:
        user = db.session.scalar(sa.select(User).where(User.username_key == username.lower()))
    if user is None:
        _burn_password_check(password[:PASSWORD_MAX_LENGTH])
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    if not verify_password(user, password):
        _record_failed_login(user, "wrong password")
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    if not user.active:
        _record_failed_login(user, "account deactivated")
        raise Unauthorized(
            "This account has been deactivated. Ask an owner of your organization to "
            "reactivate it.",
            code="account_deactivated",
        )
    user_id = user.id
    _begin_write()
    db.session.execute(sa.update(User).where(User.id == user_id).values(last_login_at=utcnow()))
    db.session.commit()
    return db.session.get(User, user_id)


def _record_failed_login(user: User, reason: str) -> None:
    """Record a failed login of an existing username in its organization (never the password
    tried; an unknown username belongs to no organization and is only rate-limited)."""
    organization_id, subject = user.organization_id, _member(user)
    username = user.username
    _begin_write()
    history.record(
        organization_id,
        history.SYSTEM,
        "user.login_failed",
        subject,
        f"Failed login as {username}: {reason}.",
        {"username": username, "reason": reason},
    )
    db.session.commit()


# ---------------------------------------------------------------------------------------------
# Login sessions (server-side: the cookie holds only a key)
# ---------------------------------------------------------------------------------------------


def open_session(user: User) -> str:
    """Start a login session for `user` (just authenticated or just created); return its key.

    The key goes into the signed cookie (Flask-Login's user id, see `User.get_id`); only its
    hash is stored. The user's expired sessions are cleared on the way.
    """
    if not user.active:
        raise Unauthorized("This account has been deactivated.", code="account_deactivated")
    user_id = user.id
    key = secrets.token_urlsafe(32)
    _begin_write()
    now = utcnow()
    db.session.execute(
        sa.delete(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.expires_at <= now)
        .execution_options(synchronize_session=False)
    )
    row = LoginSession(
        user_id=user_id,
        key_hash=_sha256(key),
        created_at=now,
        expires_at=now + _ttl("SESSION_LIFETIME_SECONDS"),
    )
    db.session.add(row)
    db.session.flush()
    credential = Credential(SESSION, row.id, key)
    db.session.commit()
    user.credential = credential
    return key


def load_session_user(key: str) -> User | None:
    """Flask-Login's user loader: the active user of a live session with this key, or None."""
    if not _well_formed(key):
        return None
    row = db.session.execute(
        sa.select(User, LoginSession.id)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(
            LoginSession.key_hash == _sha256(key),
            LoginSession.expires_at > utcnow(),
            User.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    user, session_id = row
    user.credential = Credential(SESSION, session_id, key)
    return user


def end_session(actor: User) -> None:
    """Log out: delete the login session the actor is using. Its cookie opens nothing again."""
    credential = actor.credential
    if credential is None or credential.kind != SESSION:
        return
    _begin_write()
    db.session.execute(
        sa.delete(LoginSession)
        .where(LoginSession.id == credential.id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# ---------------------------------------------------------------------------------------------
# Read models for the pages
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileView:
    username: str
    display_name: str
    role: str
    organization_name: str
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class MemberView:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    last_login_at: datetime | None
    is_you: bool
    # What the viewer may do to this member (owners only; never to the last active owner).
    is_last_owner: bool = False
    can_change_role: bool = False
    can_deactivate: bool = False
    can_reactivate: bool = False
    can_reset_password: bool = False


@dataclass(frozen=True)
class OrganizationView:
    id: int
    name: str
    deployment_quota: int
    members: list[MemberView]
    can_administer: bool
    can_manage_roles: bool


@dataclass(frozen=True)
class InviteView:
    id: int
    label: str
    role: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None
    used_at: datetime | None
    revoked_at: datetime | None
    can_revoke: bool
    can_reopen: bool


def profile(actor: User) -> ProfileView:
    return ProfileView(
        username=actor.username,
        display_name=actor.display_name,
        role=actor.role,
        organization_name=actor.organization.name,
        created_at=actor.created_at,
        last_login_at=actor.last_login_at,
    )


_ROLE_ORDER = sa.case({"owner": 0, "admin": 1, "member": 2}, value=User.role)


def _members_of(organization_id: int) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.organization_id == organization_id)
            .order_by(User.active.desc(), _ROLE_ORDER, sa.func.lower(User.display_name), User.id)
        )
    )


def _member_views(actor: User, members: list[User]) -> list[MemberView]:
    active_owners = sum(1 for m in members if m.role == "owner" and m.active)
    manages = can_manage_members(actor)
    views = []
    for m in members:
        last_owner = m.role == "owner" and m.active and active_owners <= 1
        views.append(
            MemberView(
                id=m.id,
                username=m.username,
                display_name=m.display_name,
                role=m.role,
                active=m.active,
                last_login_at=m.last_login_at,
                is_you=m.id == actor.id,
                is_last_owner=last_owner,
                can_change_role=manages and m.active and not last_owner,
                can_deactivate=manages and m.active and not last_owner,
                can_reactivate=manages and not m.active,
                can_reset_password=manages and m.active and m.id != actor.id,
            )
        )
    return views


def organization_overview(actor: User) -> OrganizationView:
    """The actor's organization and its members; any active member may see it."""
    _require(actor.active, DEACTIVATED)
    organization = actor.organization
    return OrganizationView(
        id=organization.id,
        name=organization.name,
        deployment_quota=organization.deployment_quota,
        members=_member_views(actor, _members_of(organization.id)),
        can_administer=can_see_admin(actor),
        can_manage_roles=can_manage_members(actor),
    )


def list_members(actor: User) -> list[MemberView]:
    """Members of the actor's organization (any active member may list them)."""
    _require(actor.active, DEACTIVATED)
    return _member_views(actor, _members_of(actor.organization_id))


def members_admin(actor: User) -> OrganizationView:
    """The members admin page: owners and admins only; the flags say what the actor may do."""
    _require(can_see_admin(actor), OWNERS_AND_ADMINS)
    return organization_overview(actor)


# ---------------------------------------------------------------------------------------------
# The profile: display name and password (any active user, for themselves)
# ---------------------------------------------------------------------------------------------


def update_profile(actor: User, display_name: str) -> User:
    """Change the actor's display name."""
    display_name = (display_name or "").strip()
    _raise_if({"display_name": display_name_problem(display_name)})
    user_id, organization_id = actor.id, actor.organization_id
    _begin_write()
    user = db.session.get(User, user_id)
    before = user.display_name
    if before != display_name:
        user.display_name = display_name
        history.record(
            organization_id,
            history.Actor("user", user_id, display_name),
            "user.renamed",
            _member(user),
            f"{before} is now called {display_name}.",
            {"before": {"display_name": before}, "after": {"display_name": display_name}},
        )
    db.session.commit()
    return user


def change_password(actor: User, current_password: str, new_password: str) -> Ended:
    """Change the actor's password (the current one is required) and end every other login
    session and API token of theirs; the session or token of this request stays valid."""
    current_password, new_password = current_password or "", new_password or ""
    if not verify_password(actor, current_password[:PASSWORD_MAX_LENGTH]):
        message = "This is not your current password."
        raise ValidationError(message, fields={"current_password": message})
    problem = password_problem(new_password, actor.username)
    if problem is None and new_password == current_password:
        problem = "Choose a password different from the current one."
    _raise_if({"password": problem})
    password_hash = hash_password(new_password)  # slow: outside the write lock
    user_id, keep, who = actor.id, actor.credential, history.actor_of(actor)
    organization_id = actor.organization_id
    _begin_write()
    user = db.session.get(User, user_id)
    user.password_hash = password_hash
    ended = _end_credentials(user_id, keep=keep)
    history.record(
        organization_id,
        who,
        "user.password_changed",
        _member(user),
        f"{user.display_name} changed their password"
        + (f"; {ended.describe()} ended." if ended.describe() else "."),
        {"ended_sessions": ended.sessions, "ended_tokens": ended.tokens},
    )
    db.session.commit()
    return ended


# ---------------------------------------------------------------------------------------------
# Roles and deactivation (owners only)
# ---------------------------------------------------------------------------------------------


def _member_for_update(actor: User, user_id: int) -> User:
    """Open the organization's write transaction and load one of its members in it.

    The actor's role is checked again under the lock: an owner demoted a moment ago by another
    owner must not act on the strength of a role read before the lock was taken.
    """
    _require(can_manage_members(actor), OWNERS_ONLY)
    if not valid_id(user_id):  # beyond the id column: no such member (not a driver error)
        raise NotFound("No such member in your organization.")
    organization_id = actor.organization_id
    _begin_write(organization_id)
    if actor in db.session:
        db.session.refresh(actor)
    if not can_manage_members(actor):
        db.session.rollback()
        raise Forbidden(OWNERS_ONLY)
    target = db.session.scalar(
        sa.select(User).where(User.id == user_id, User.organization_id == organization_id)
    )
    if target is None:
        db.session.rollback()
        raise NotFound("No such member in your organization.")
    return target


def _active_owner_count(organization_id: int) -> int:
    return db.session.scalar(
        sa.select(sa.func.count(User.id)).where(
            User.organization_id == organization_id, User.role == "owner", User.active.is_(True)
        )
    )


def change_role(actor: User, user_id: int, role: str) -> User:
    """Set a member's role. Owners only; the last active owner keeps the owner role."""
    _require(can_manage_members(actor), OWNERS_ONLY)
    if problem := role_problem(role):
        raise ValidationError(problem, fields={"role": problem})
    target = _member_for_update(actor, user_id)
    if target.role == role:
        db.session.rollback()
        return target
    if (
        target.role == "owner"
        and target.active
        and _active_owner_count(target.organization_id) <= 1
    ):
        db.session.rollback()
        raise Conflict(
            "The last owner cannot be demoted. Make another member an owner first.",
            code="last_owner",
        )
    before = target.role
    target.role = role
    history.record(
        target.organization_id,
        history.actor_of(actor),
        "user.role_changed",
        _member(target),
        f"{target.display_name} changed from {before} to {role}.",
        {"before": {"role": before}, "after": {"role": role}},
    )
    db.session.commit()
    return target


def deactivate(actor: User, user_id: int) -> tuple[User, Ended]:
    """Deactivate a member: every login session ends and every API token is revoked, for
    good (reactivating restores neither). Owners only; never the last active owner. Nothing
    the member created is touched."""
    target = _member_for_update(actor, user_id)
    if not target.active:
        db.session.rollback()
        return target, Ended()
    if target.role == "owner" and _active_owner_count(target.organization_id) <= 1:
        db.session.rollback()
        raise Conflict(
            "The last owner cannot be deactivated. Make another member an owner first.",
            code="last_owner",
        )
    target.active = False
    ended = _end_credentials(target.id)
    history.record(
        target.organization_id,
        history.actor_of(actor),
        "user.deactivated",
        _member(target),
        f"Deactivated {target.display_name}"
        + (f"; {ended.describe()} ended." if ended.describe() else "."),
        {
            "before": {"active": True},
            "after": {"active": False},
            "ended_sessions": ended.sessions,
            "ended_tokens": ended.tokens,
        },
    )
    db.session.commit()
    return target, ended


def reactivate(actor: User, user_id: int) -> User:
    """Let a deactivated member log in again (with a new session; old tokens stay revoked)."""
    target = _member_for_update(actor, user_id)
    if target.active:
        db.session.rollback()
        return target
    target.active = True
    history.record(
        target.organization_id,
        history.actor_of(actor),
        "user.reactivated",
        _member(target),
        f"Reactivated {target.display_name}.",
        {"before": {"active": False}, "after": {"active": True}},
    )
    db.session.commit()
    return target


# ---------------------------------------------------------------------------------------------
# Organization settings (owners only)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationSettings:
    name: str
    deployment_quota: int
    members_can_create_clusters: bool
    member_max_priority: int = 800  # the highest priority members may use
    admin_max_priority: int = 1000  # the highest priority admins may use (owners: any)


def _settings_of(organization: Organization) -> OrganizationSettings:
    return OrganizationSettings(
        organization.name,
        organization.deployment_quota,
        organization.members_can_create_clusters,
        organization.member_max_priority,
        organization.admin_max_priority,
    )


def organization_settings(actor: User) -> OrganizationSettings:
    """The settings form's current values. Owners only."""
    _require(can_manage_members(actor), OWNERS_ONLY)
    return _settings_of(actor.organization)


def update_settings(
    actor: User,
    name: str,
    deployment_quota: object,
    members_can_create_clusters: bool | None = None,
    member_max_priority: int | None = None,
    admin_max_priority: int | None = None,
) -> OrganizationSettings:
    """Rename the organization, set its quota (up to MAX_ORGANIZATION_QUOTA), whether
    members may create clusters and the highest priority members and admins may use (already
    parsed integers 0..1000; None keeps each). Owners only."""
    _require(can_manage_members(actor), OWNERS_ONLY)
    name = (name or "").strip()
    deployment_quota = parse_quota(deployment_quota)
    _raise_if(
        {
            "name": organization_name_problem(name),
            "deployment_quota": quota_problem(deployment_quota),
        }
    )
    organization_id, who = actor.organization_id, history.actor_of(actor)
    _begin_write(organization_id)
    organization = db.session.get(Organization, organization_id)
    before = _settings_of(organization)
    organization.name = name
    organization.deployment_quota = deployment_quota
    if members_can_create_clusters is not None:
        organization.members_can_create_clusters = bool(members_can_create_clusters)
    if member_max_priority is not None:
        organization.member_max_priority = member_max_priority
    if admin_max_priority is not None:
        organization.admin_max_priority = admin_max_priority
    after = _settings_of(organization)
    changed = [
        field
        for field in before.__dataclass_fields__
        if getattr(before, field) != getattr(after, field)
    ]
    if changed:
        history.record(
            organization_id,
            who,
            "organization.settings_changed",
            history.Subject("organization", organization_id, name),
            "Changed "
            + ", ".join(
                f"{field.replace('_', ' ')} from {getattr(before, field)} "
                f"to {getattr(after, field)}"
                for field in changed
            )
            + ".",
            {
                "before": {field: getattr(before, field) for field in changed},
                "after": {field: getattr(after, field) for field in changed},
            },
        )
    db.session.commit()
    return after


# ---------------------------------------------------------------------------------------------
# Invites
# ---------------------------------------------------------------------------------------------


def _state_of(row: Invite | PasswordReset, now: datetime) -> str:
    if row.used_at is not None:
        return "used"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= now:
        return "expired"
    return "active"


def _live(model, now: datetime) -> tuple:
    """The conditions of a usable invite or reset: unused, unrevoked, unexpired."""
    return (model.used_at.is_(None), model.revoked_at.is_(None), model.expires_at > now)


def _find_invite(code: str | None) -> Invite | None:
    if not _well_formed(code):
        return None
    return db.session.scalar(sa.select(Invite).where(Invite.code_hash == _sha256(code)))


def create_invite(actor: User, label: str = "", role: str = "member") -> tuple[Invite, str]:
    """A fresh single-use invite for the actor's organization and its code, shown only now.

    `label` says who it is for; `role` is what the invitee becomes (only owners invite owners).
    """
    _require(can_manage_invites(actor), OWNERS_AND_ADMINS)
    label = (label or "").strip()
    role = (role or "member").strip().lower() if isinstance(role, str) else role
    problems = {"label": label_problem(label), "role": role_problem(role)}
    if not problems["role"] and not can_invite_as(actor, role):
        problems["role"] = "Only an owner can invite another owner."
    _raise_if(problems)
    organization_id, actor_id, who = actor.organization_id, actor.id, history.actor_of(actor)
    code = secrets.token_urlsafe(32)  # 256 bits
    _begin_write()
    now = utcnow()
    invite = Invite(
        organization_id=organization_id,
        code_hash=_sha256(code),
        created_by_id=actor_id,
        label=label,
        role=role,
        created_at=now,
        expires_at=now + _ttl("INVITE_TTL_SECONDS"),
    )
    db.session.add(invite)
    db.session.flush()
    history.record(
        organization_id,
        who,
        "invite.created",
        history.Subject("invite", invite.id, label or None),
        f"Invited {label or 'someone'} as {role}.",
        {"label": label, "role": role, "expires_at": _stamp(invite.expires_at)},
    )
    db.session.commit()
    return invite, code


def invite_status(code: str | None) -> tuple[str, Organization | None]:
    """The state of a code (active, used, expired, revoked, invalid) and its organization."""
    invite = _find_invite(code)
    if invite is None:
        return "invalid", None
    return _state_of(invite, utcnow()), db.session.get(Organization, invite.organization_id)


def _link_unusable(problems: dict[str, LinkProblem], prefix: str, state: str) -> NotFound | Gone:
    problem = problems[state]
    if state == "invalid":
        return NotFound(problem.message, code=f"{prefix}_invalid")
    return Gone(problem.message, code=f"{prefix}_{state}")


def _invite_unusable(state: str) -> NotFound | Gone:
    return _link_unusable(INVITE_PROBLEMS, "invite", state)


def redeem_invite(code: str, username: str, password: str, display_name: str) -> User:
    """Create a member of the invite's organization (with the invite's role) and mark the
    invite used, atomically.

    Single use under concurrency: the invite is claimed by one conditional UPDATE (still unused,
    unrevoked and unexpired) in the same transaction as the user's insert; when it claims no row
    the user is rolled back. Raises NotFound (unknown code), Gone (used, expired, revoked),
    ValidationError or Conflict (username taken).
    """
    invite = _find_invite(code)
    state = "invalid" if invite is None else _state_of(invite, utcnow())
    if state != "active":
        raise _invite_unusable(state)
    invite_id, organization_id, role = invite.id, invite.organization_id, invite.role
    invite_label = invite.label
    username, display_name = (username or "").strip(), (display_name or "").strip()
    _raise_if(_account_problems(username, password, display_name))
    if _username_taken(username):
        raise _taken()
    password_hash = hash_password(password)  # slow: outside the write lock

    _begin_write()
    user = User(
        organization_id=organization_id,
        username=username,
        username_key=username.lower(),
        display_name=display_name,
        password_hash=password_hash,
        role=role,
        last_login_at=utcnow(),  # joining logs the new member in
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _taken() from None
    now = utcnow()
    claimed = db.session.execute(
        sa.update(Invite)
        .where(Invite.id == invite_id, *_live(Invite, now))
        .values(used_at=now, used_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        invite = db.session.get(Invite, invite_id)
        raise _invite_unusable(_state_of(invite, utcnow()) if invite else "invalid")
    history.record(
        organization_id,
        history.actor_of(user),
        "invite.redeemed",
        history.Subject("invite", invite_id, invite_label or None),
        f"{display_name} ({username}) joined as {role} with invite "
        f"{invite_label or '#' + str(invite_id)}.",
        {"user_id": user.id, "username": username, "role": role},
    )
    db.session.commit()
    return user


def _when(moment: datetime, now: datetime) -> str:
    if now - moment < timedelta(minutes=5):
        return "just now"
    return f"on {moment:%Y-%m-%d at %H:%M} UTC"


def _invite_refusal(invite: Invite, now: datetime, doing: str) -> Conflict:
    """Why an invite change did not happen, as the invite is now (it may have just changed)."""
    state = _state_of(invite, now)
    if state == "used":
        who = invite.used_by.display_name if invite.used_by else "someone"
        reason = f"it was redeemed by {who} {_when(invite.used_at, now)}"
    elif state == "revoked":
        reason = f"it was revoked {_when(invite.revoked_at, now)}; a revoked invite stays revoked"
    elif state == "expired":
        reason = "it has expired; re-open it instead"
    else:
        reason = "it is still active"
    return Conflict(f"This invite was not {doing}: {reason}.", code=f"invite_{state}")


def _change_invite(
    actor: User, invite_id: int, allowed: tuple, values: dict, doing: str, action: str
) -> Invite:
    """Apply `values` to one invite of the actor's organization only if it is still in the
    state `allowed` describes: one conditional UPDATE, so a redemption racing with a revoke
    either wins (and the revoke reports it) or finds the invite revoked. Never both."""
    _require(can_manage_invites(actor), OWNERS_AND_ADMINS)
    if not valid_id(invite_id):
        raise NotFound("No such invite in your organization.")
    organization_id, who = actor.organization_id, history.actor_of(actor)
    _begin_write()
    mine = (Invite.id == invite_id, Invite.organization_id == organization_id)
    before = db.session.scalar(sa.select(Invite.expires_at).where(*mine))
    changed = db.session.execute(
        sa.update(Invite)
        .where(*mine, *allowed)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    invite = db.session.scalar(
        sa.select(Invite)
        .where(*mine)
        .options(joinedload(Invite.used_by))
        .execution_options(populate_existing=True)
    )
    if invite is None:
        db.session.rollback()
        raise NotFound("No such invite in your organization.")
    if changed.rowcount != 1:
        refusal = _invite_refusal(invite, utcnow(), doing)
        db.session.rollback()
        raise refusal
    changes = {"before": {}, "after": {}}
    for column, value in values.items():
        changes["before"][column] = _stamp(before) if column == "expires_at" else None
        changes["after"][column] = _stamp(value)
    history.record(
        organization_id,
        who,
        action,
        history.Subject("invite", invite.id, invite.label or None),
        f"Invite {invite.label or '#' + str(invite.id)} was {doing}.",
        changes,
    )
    db.session.commit()
    return invite


def revoke_invite(actor: User, invite_id: int) -> Invite:
    """Revoke an active invite (owners and admins). Conflict, with the truth, otherwise."""
    now = utcnow()
    return _change_invite(
        actor, invite_id, _live(Invite, now), {"revoked_at": now}, "revoked", "invite.revoked"
    )


def reopen_invite(actor: User, invite_id: int) -> Invite:
    """Give an unused, expired invite a fresh expiry. A used or revoked invite stays closed."""
    now = utcnow()
    expired = (Invite.used_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at <= now)
    values = {"expires_at": now + _ttl("INVITE_TTL_SECONDS")}
    return _change_invite(actor, invite_id, expired, values, "re-opened", "invite.reopened")


def list_invites(actor: User) -> list[InviteView]:
    """Every invite of the actor's organization, newest first, with its state and creator."""
    _require(can_manage_invites(actor), OWNERS_AND_ADMINS)
    invites = db.session.scalars(
        sa.select(Invite)
        .where(Invite.organization_id == actor.organization_id)
        .options(joinedload(Invite.created_by), joinedload(Invite.used_by))
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    )
    now = utcnow()
    return [_invite_view(invite, now) for invite in invites]


def _invite_view(invite: Invite, now: datetime) -> InviteView:
    state = _state_of(invite, now)
    return InviteView(
        id=invite.id,
        label=invite.label,
        role=invite.role,
        state=state,
        created_by=invite.created_by.display_name,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        used_by=invite.used_by.display_name if invite.used_by else None,
        used_at=invite.used_at,
        revoked_at=invite.revoked_at,
        can_revoke=state == "active",
        can_reopen=state == "expired",
    )


def invite_view(invite: Invite) -> InviteView:
    """The list row of one invite (for the API's answer to a change)."""
    return _invite_view(invite, utcnow())


# ---------------------------------------------------------------------------------------------
# Password reset links (owners issue them; there may be no email)
# ---------------------------------------------------------------------------------------------


def _find_reset(code: str | None) -> PasswordReset | None:
    if not _well_formed(code):
        return None
    return db.session.scalar(
        sa.select(PasswordReset)
        .where(PasswordReset.code_hash == _sha256(code))
        .options(joinedload(PasswordReset.user))
    )


def create_password_reset(actor: User, user_id: int) -> tuple[PasswordReset, str]:
    """A single-use link for an active member to choose a new password (owners only).

    Any earlier unused link for that member stops working: only the newest one is valid.
    The code is shown once; only its hash is stored.
    """
    target = _member_for_update(actor, user_id)
    if target.id == actor.id:
        db.session.rollback()
        raise Conflict("Change your own password on your profile page.", code="own_password")
    if not target.active:
        db.session.rollback()
        raise Conflict(
            f"{target.display_name} is deactivated: reactivate them first.", code="inactive"
        )
    now = utcnow()
    db.session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == target.id, *_live(PasswordReset, now))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    code = secrets.token_urlsafe(32)
    reset = PasswordReset(
        organization_id=target.organization_id,
        user_id=target.id,
        code_hash=_sha256(code),
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + _ttl("PASSWORD_RESET_TTL_SECONDS"),
    )
    db.session.add(reset)
    history.record(
        target.organization_id,
        history.actor_of(actor),
        "user.password_reset_issued",
        _member(target),
        f"Issued a password reset link for {target.display_name}.",
        {"expires_at": _stamp(reset.expires_at)},
    )
    db.session.commit()
    return reset, code


def password_reset_status(code: str | None) -> tuple[str, User | None]:
    """The state of a reset code (active, used, expired, revoked, invalid) and whose it is."""
    reset = _find_reset(code)
    if reset is None:
        return "invalid", None
    state = _state_of(reset, utcnow())
    if state == "active" and not reset.user.active:
        state = "revoked"
    return state, reset.user


def reset_password(code: str, new_password: str) -> User:
    """Set a new password through a reset link, once: the link is claimed by one conditional
    UPDATE in the same transaction, and every session and API token of the user ends."""
    reset = _find_reset(code)
    state = "invalid" if reset is None else _state_of(reset, utcnow())
    if state != "active":
        raise _link_unusable(RESET_PROBLEMS, "reset", state)
    reset_id, user_id, username = reset.id, reset.user_id, reset.user.username
    _raise_if({"password": password_problem(new_password, username)})
    password_hash = hash_password(new_password or "")  # slow: outside the write lock
    _begin_write()
    now = utcnow()
    claimed = db.session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.id == reset_id, *_live(PasswordReset, now))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user = db.session.get(User, user_id)
    if claimed.rowcount != 1 or not user.active:
        db.session.rollback()
        reset = db.session.get(PasswordReset, reset_id)
        state = _state_of(reset, utcnow()) if reset else "invalid"
        raise _link_unusable(RESET_PROBLEMS, "reset", "revoked" if state == "active" else state)
    user.password_hash = password_hash
    user.last_login_at = now  # the new password logs them in
    ended = _end_credentials(user_id)
    history.record(
        user.organization_id,
        history.actor_of(user),
        "user.password_reset",
        _member(user),
        f"{user.display_name} set a new password with a reset link"
        + (f"; {ended.describe()} ended." if ended.describe() else "."),
        {"ended_sessions": ended.sessions, "ended_tokens": ended.tokens},
    )
    db.session.commit()
    return user


# ---------------------------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenView:
    id: int
    name: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    is_current: bool  # the token of this very request


def _token_view(token: ApiToken, actor: User) -> TokenView:
    credential = actor.credential
    return TokenView(
        id=token.id,
        name=token.name,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        is_current=credential is not None
        and credential.kind == TOKEN
        and credential.id == token.id,
    )


def _new_token(
    user_id: int, name: str, lifetime: timedelta, audit: User | None = None
) -> tuple[ApiToken, str]:
    """Store a new token. `audit` (the acting user) records a personal token's creation; the
    short-lived tokens of API logins are logins, not changes, and are not recorded."""
    secret = secrets.token_urlsafe(32)
    who = history.actor_of(audit) if audit is not None else None
    organization_id = audit.organization_id if audit is not None else None
    _begin_write()
    now = utcnow()
    api_token = ApiToken(
        user_id=user_id,
        token_hash=_sha256(secret),
        name=name,
        created_at=now,
        expires_at=now + lifetime,
    )
    db.session.add(api_token)
    if who is not None and organization_id is not None:
        db.session.flush()
        history.record(
            organization_id,
            who,
            "token.created",
            history.Subject("token", api_token.id, name),
            f"Created API token {name}, valid until {api_token.expires_at:%Y-%m-%d}.",
            {"name": name, "expires_at": _stamp(api_token.expires_at)},
        )
    db.session.commit()
    return api_token, secret


def issue_token(user: User) -> tuple[ApiToken, str]:
    """A bearer token for `user` (the API login), expiring after API_TOKEN_TTL_SECONDS."""
    if not user.active:
        raise Unauthorized("This account has been deactivated.", code="account_deactivated")
    return _new_token(user.id, LOGIN_TOKEN_NAME, _ttl("API_TOKEN_TTL_SECONDS"))


def login_token(username: str, password: str) -> tuple[ApiToken, str]:
    """Check the credentials like the login page does and issue a bearer token for them."""
    return issue_token(authenticate(username, password))


def create_token(actor: User, name: str, expires_in_days: object) -> tuple[TokenView, str]:
    """A named personal token (for a CI pipeline) living `expires_in_days` days, at most
    API_TOKEN_MAX_TTL_DAYS. The secret is returned once; only its hash is stored."""
    _require(actor.active, DEACTIVATED)
    name = (name or "").strip() if isinstance(name, str) else ""
    days = parse_days(expires_in_days)
    _raise_if({"name": token_name_problem(name), "expires_in_days": token_lifetime_problem(days)})
    api_token, secret = _new_token(actor.id, name, timedelta(days=days), audit=actor)
    return _token_view(api_token, actor), secret


def list_tokens(actor: User) -> list[TokenView]:
    """The actor's live tokens (not revoked, not expired), newest first."""
    tokens = db.session.scalars(
        sa.select(ApiToken)
        .where(
            ApiToken.user_id == actor.id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > utcnow(),
        )
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    return [_token_view(token, actor) for token in tokens]


def revoke_api_token(actor: User, token_id: int) -> TokenView:
    """Revoke one of the actor's own live tokens; NotFound for any other id."""
    if not valid_id(token_id):
        raise NotFound("No such token.")
    actor_id, organization_id, who = actor.id, actor.organization_id, history.actor_of(actor)
    _begin_write()
    revoked = db.session.execute(
        sa.update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.user_id == actor_id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > utcnow(),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    token = db.session.get(ApiToken, token_id)
    if revoked.rowcount != 1 or token is None:
        db.session.rollback()
        raise NotFound("No such token: it may have been revoked or expired already.")
    view = _token_view(token, actor)
    history.record(
        organization_id,
        who,
        "token.revoked",
        history.Subject("token", token.id, token.name),
        f"Revoked API token {token.name}.",
        {"name": token.name},
    )
    db.session.commit()
    return view


def user_for_token(token: str | None) -> User | None:
    """The active user a live token belongs to; None for unknown, expired or revoked tokens.

    Marks the token used, at most once per TOKEN_LAST_USED_INTERVAL_SECONDS (a small write,
    not one per request).
    """
    if not _well_formed(token):
        return None
    now = utcnow()
    row = db.session.execute(
        sa.select(User, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == _sha256(token),
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
            User.active.is_(True),
        )
    ).first()
    if row is None:
        return None
    user, token_id, last_used_at = row
    stale_before = now - _ttl("TOKEN_LAST_USED_INTERVAL_SECONDS")
    if last_used_at is None or last_used_at < stale_before:
        _begin_write()
        db.session.execute(
            sa.update(ApiToken)
            .where(
                ApiToken.id == token_id,
                sa.or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < stale_before),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    user.credential = Credential(TOKEN, token_id)
    return user


def revoke_token(token: str | None) -> bool:
    """Revoke a token (the API logout). True when a live token was revoked."""
    if not _well_formed(token):
        return False
    _begin_write()
    result = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.token_hash == _sha256(token), ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1
