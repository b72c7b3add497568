"""Accounts, organizations, roles, invites and API tokens.

Knows nothing of clusters or deployments. Passwords are hashed with scrypt (werkzeug) and never
stored or logged in clear; invite codes and API tokens are stored only as SHA-256 hashes.

Every rule about people lives here, once, for the HTML pages and the JSON API alike:

- validation (`username_problem`, `password_problem`, `display_name_problem`,
  `organization_name_problem`, `quota_problem`): pure functions the forms reuse for field-level
  messages; the services run them again, so nothing invalid is ever written;
- sign-up, login (`signup`, `authenticate`), invites (`create_invite`, `invite_status`,
  `redeem_invite`, `revoke_invite`, `reopen_invite`, `list_invites`), members and roles
  (`list_members`, `members_admin`, `change_role`, `set_active`), settings (`update_settings`)
  and API tokens (`issue_token`, `user_for_token`, `revoke_token`).

Roles: owners and admins manage invites (create, revoke, re-open); only owners change roles,
deactivate or reactivate members and edit the organization's settings. The last active owner
can never be demoted or deactivated: the check and the update run in one write transaction that
holds the organization's lock (`SELECT ... FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE` on
SQLite), so two owners demoting each other at once cannot both succeed.

Errors are domain errors (`app.services.errors`) whose `fields` map a field name to a message:
`username`, `password`, `display_name`, `organization_name`, `name`, `deployment_quota`, `role`.
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
from app.models import ROLES, ApiToken, Invite, Organization, User, utcnow
from app.services import transactions
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
# scrypt accepts any length; a cap keeps a megabyte "password" from costing a request.
PASSWORD_MAX_LENGTH = 256
QUOTA_MAX = 1_000_000
# Invite codes and API tokens are secrets.token_urlsafe(32): 43 URL-safe characters. Anything
# outside this shape is rejected before it reaches the database.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")

INVALID_CREDENTIALS = "Invalid username or password."
USERNAME_TAKEN = "This username is taken. Choose another one."
INVITE_STATES = ("active", "used", "expired", "revoked", "invalid")


@dataclass(frozen=True)
class InviteProblem:
    title: str
    message: str
    status: int


# What a person opening an unusable invite link is told, per state.
INVITE_PROBLEMS = {
    "invalid": InviteProblem(
        "Invite link not valid",
        "This invite link is not valid. Check that you copied the whole link, "
        "or ask for a new one.",
        404,
    ),
    "used": InviteProblem(
        "Invite link already used",
        "This invite link has already been used. Each link works once: ask an owner or "
        "admin of the organization for a new one.",
        410,
    ),
    "expired": InviteProblem(
        "Invite link expired",
        "This invite link has expired. Ask an owner or admin of the organization to re-open "
        "it or to send you a new one.",
        410,
    ),
    "revoked": InviteProblem(
        "Invite link revoked",
        "This invite link was revoked by the organization. Ask an owner or admin for a new one.",
        410,
    ),
}


# ---------------------------------------------------------------------------------------------
# Passwords and the session loader
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


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's user loader: `<id>:<session_version>`; a stale version logs the user out."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit() or len(user_id) > 18:
        return None
    user = db.session.scalar(sa.select(User).where(User.id == int(user_id)))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


# ---------------------------------------------------------------------------------------------
# Validation rules (pure; shared with the forms)
# ---------------------------------------------------------------------------------------------


def _has_control_characters(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text)


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


def _name_problem(value: str | None, what: str, maximum: int) -> str | None:
    value = (value or "").strip()
    if not value:
        return f"Enter {what}."
    if len(value) > maximum:
        return f"Use at most {maximum} characters."
    if _has_control_characters(value):
        return "Remove the control characters."
    return None


def display_name_problem(display_name: str | None) -> str | None:
    return _name_problem(display_name, "a display name", DISPLAY_NAME_MAX_LENGTH)


def organization_name_problem(name: str | None) -> str | None:
    return _name_problem(name, "an organization name", ORGANIZATION_NAME_MAX_LENGTH)


def quota_problem(quota: object) -> str | None:
    if isinstance(quota, bool) or not isinstance(quota, int):
        return f"Enter a whole number from 0 to {QUOTA_MAX:,}."
    if quota < 0 or quota > QUOTA_MAX:
        return f"Enter a whole number from 0 to {QUOTA_MAX:,}."
    return None


def parse_quota(quota: object) -> object:
    """An int, or a numeric string (forms, padded JSON strings) read as one; else unchanged."""
    if isinstance(quota, str) and re.fullmatch(r"\s*\d{1,9}\s*", quota):
        return int(quota)
    return quota


def _account_problems(username: str, password: str, display_name: str) -> dict[str, str]:
    problems = {
        "username": username_problem(username),
        "password": password_problem(password, username),
        "display_name": display_name_problem(display_name),
    }
    return {field: message for field, message in problems.items() if message}


def _raise_if(problems: dict[str, str]) -> None:
    if problems:
        raise ValidationError("Please correct the highlighted fields.", fields=problems)


def _username_taken(username: str) -> bool:
    key = username.strip().lower()
    return db.session.scalar(sa.select(User.id).where(User.username_key == key)) is not None


def _taken() -> Conflict:
    return Conflict(USERNAME_TAKEN, fields={"username": USERNAME_TAKEN}, code="username_taken")


# ---------------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------------


def _begin_write(organization_id: int | None = None) -> None:
    """Start the transaction that will write, holding the write lock from its first statement.

    SQLite: `BEGIN IMMEDIATE` (a deferred transaction that read first could fail to upgrade
    under concurrency). PostgreSQL: when `organization_id` is given, the organization row is
    locked `FOR UPDATE`, which serializes rules that read then write (the last owner).
    """
    transactions.begin_write()
    if db.engine.dialect.name != "sqlite" and organization_id is not None:
        db.session.execute(
            sa.select(Organization.id)
            .where(Organization.id == organization_id)
            # NO KEY UPDATE: no conflict with the KEY SHARE locks of foreign-key inserts.
            .with_for_update(key_share=True)
        )


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _ttl(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[name])


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
        deployment_quota=current_app.config["DEFAULT_DEPLOYMENT_QUOTA"],
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
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _taken() from None
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
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    if not user.active:
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
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_by: str | None
    used_at: datetime | None
    revoked_at: datetime | None
    can_revoke: bool
    can_reopen: bool


def _require(actor: User, *roles: str) -> None:
    if not actor.active or actor.role not in roles:
        if roles == ("owner",):
            raise Forbidden("Only an owner of the organization can do this.")
        raise Forbidden("Only an owner or an admin of the organization can do this.")


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
    actor_is_owner = actor.role == "owner" and actor.active
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
                can_change_role=actor_is_owner and m.active and not last_owner,
                can_deactivate=actor_is_owner and m.active and not last_owner,
                can_reactivate=actor_is_owner and not m.active,
            )
        )
    return views


def organization_overview(actor: User) -> OrganizationView:
    """The actor's organization and its members; any active member may see it."""
    _require(actor, *ROLES)
    organization = actor.organization
    return OrganizationView(
        id=organization.id,
        name=organization.name,
        deployment_quota=organization.deployment_quota,
        members=_member_views(actor, _members_of(organization.id)),
        can_administer=actor.role in ("owner", "admin"),
        can_manage_roles=actor.role == "owner",
    )


def list_members(actor: User) -> list[MemberView]:
    """Members of the actor's organization (any active member may list them)."""
    _require(actor, *ROLES)
    return _member_views(actor, _members_of(actor.organization_id))


def members_admin(actor: User) -> OrganizationView:
    """The members admin page: owners and admins only; the flags say what the actor may do."""
    _require(actor, "owner", "admin")
    return organization_overview(actor)


# ---------------------------------------------------------------------------------------------
# Roles and deactivation (owners only)
# ---------------------------------------------------------------------------------------------


def _member_for_update(actor: User, user_id: int) -> User:
    """Open the organization's write transaction and load one of its members in it.

    The actor's role is checked again under the lock: an owner demoted a moment ago by another
    owner must not act on the strength of a role read before the lock was taken.
    """
    organization_id = actor.organization_id
    _begin_write(organization_id)
    if actor in db.session:
        db.session.refresh(actor)
    if not actor.active or actor.role != "owner":
        db.session.rollback()
        raise Forbidden("Only an owner of the organization can do this.")
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
    _require(actor, "owner")
    if role not in ROLES:
        raise ValidationError(
            "Choose owner, admin or member.", fields={"role": "Choose owner, admin or member."}
        )
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
    target.role = role
    db.session.commit()
    return target


def set_active(actor: User, user_id: int, active: bool) -> User:
    """Deactivate (ending every session) or reactivate a member. Owners only.

    The last active owner can never be deactivated. Nothing the member created is touched.
    """
    _require(actor, "owner")
    target = _member_for_update(actor, user_id)
    if target.active == active:
        db.session.rollback()
        return target
    if not active and target.role == "owner" and _active_owner_count(target.organization_id) <= 1:
        db.session.rollback()
        raise Conflict(
            "The last owner cannot be deactivated. Make another member an owner first.",
            code="last_owner",
        )
    target.active = active
    if not active:
        target.session_version = target.session_version + 1
    db.session.commit()
    return target


# ---------------------------------------------------------------------------------------------
# Organization settings (owners only)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrganizationSettings:
    name: str
    deployment_quota: int


def organization_settings(actor: User) -> OrganizationSettings:
    """The settings form's current values. Owners only."""
    _require(actor, "owner")
    return OrganizationSettings(actor.organization.name, actor.organization.deployment_quota)


def update_settings(actor: User, name: str, deployment_quota: object) -> Organization:
    _require(actor, "owner")
    name = (name or "").strip()
    deployment_quota = parse_quota(deployment_quota)
    problems = {
        "name": organization_name_problem(name),
        "deployment_quota": quota_problem(deployment_quota),
    }
    _raise_if({field: message for field, message in problems.items() if message})
    organization_id = actor.organization_id
    _begin_write(organization_id)
    organization = db.session.get(Organization, organization_id)
    organization.name = name
    organization.deployment_quota = deployment_quota
    db.session.commit()
    return organization


# ---------------------------------------------------------------------------------------------
# Invites
# ---------------------------------------------------------------------------------------------


def _state_of(invite: Invite, now: datetime) -> str:
    if invite.used_at is not None:
        return "used"
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at <= now:
        return "expired"
    return "active"


def _find_invite(code: str | None) -> Invite | None:
    if not isinstance(code, str) or not SECRET_PATTERN.fullmatch(code):
        return None
    return db.session.scalar(sa.select(Invite).where(Invite.code_hash == _sha256(code)))


def create_invite(actor: User) -> tuple[Invite, str]:
    """A fresh single-use invite for the actor's organization and its code, shown only now."""
    _require(actor, "owner", "admin")
    organization_id, actor_id = actor.organization_id, actor.id
    code = secrets.token_urlsafe(32)  # 256 bits
    _begin_write()
    now = utcnow()
    invite = Invite(
        organization_id=organization_id,
        code_hash=_sha256(code),
        created_by_id=actor_id,
        created_at=now,
        expires_at=now + _ttl("INVITE_TTL_SECONDS"),
    )
    db.session.add(invite)
    db.session.commit()
    return invite, code


def invite_status(code: str | None) -> tuple[str, Organization | None]:
    """The state of a code (active, used, expired, revoked, invalid) and its organization."""
    invite = _find_invite(code)
    if invite is None:
        return "invalid", None
    return _state_of(invite, utcnow()), db.session.get(Organization, invite.organization_id)


def _invite_unusable(state: str) -> NotFound | Gone:
    problem = INVITE_PROBLEMS[state]
    if state == "invalid":
        return NotFound(problem.message, code="invite_invalid")
    return Gone(problem.message, code=f"invite_{state}")


def redeem_invite(code: str, username: str, password: str, display_name: str) -> User:
    """Create a member of the invite's organization and mark the invite used, atomically.

    Single use under concurrency: the invite is claimed by one conditional UPDATE (still unused,
    unrevoked and unexpired) in the same transaction as the user's insert; when it claims no row
    the user is rolled back. Raises NotFound (unknown code), Gone (used, expired, revoked),
    ValidationError or Conflict (username taken).
    """
    invite = _find_invite(code)
    state = "invalid" if invite is None else _state_of(invite, utcnow())
    if state != "active":
        raise _invite_unusable(state)
    invite_id, organization_id = invite.id, invite.organization_id
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
        role="member",
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
        .where(
            Invite.id == invite_id,
            Invite.used_at.is_(None),
            Invite.revoked_at.is_(None),
            Invite.expires_at > now,
        )
        .values(used_at=now, used_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        invite = db.session.get(Invite, invite_id)
        raise _invite_unusable(_state_of(invite, utcnow()) if invite else "invalid")
    db.session.commit()
    return user


def _invite_for_update(actor: User, invite_id: int) -> Invite:
    organization_id = actor.organization_id
    _begin_write()
    invite = db.session.scalar(
        sa.select(Invite).where(Invite.id == invite_id, Invite.organization_id == organization_id)
    )
    if invite is None:
        db.session.rollback()
        raise NotFound("No such invite in your organization.")
    return invite


def revoke_invite(actor: User, invite_id: int) -> Invite:
    """Revoke an active invite (owners and admins: they manage invites)."""
    _require(actor, "owner", "admin")
    invite = _invite_for_update(actor, invite_id)
    now = utcnow()
    state = _state_of(invite, now)
    if state != "active":
        db.session.rollback()
        raise Conflict(f"Only an active invite can be revoked; this one is {state}.")
    invite.revoked_at = now
    db.session.commit()
    return invite


def reopen_invite(actor: User, invite_id: int) -> Invite:
    """Give an unused, expired invite a fresh expiry. A used or revoked invite stays closed."""
    _require(actor, "owner", "admin")
    invite = _invite_for_update(actor, invite_id)
    now = utcnow()
    state = _state_of(invite, now)
    if state != "expired":
        db.session.rollback()
        reason = {
            "used": "a used invite can never be re-opened",
            "revoked": "a revoked invite stays revoked; create a new one",
            "active": "it is still active",
        }[state]
        raise Conflict(f"This invite cannot be re-opened: {reason}.")
    invite.expires_at = now + _ttl("INVITE_TTL_SECONDS")
    db.session.commit()
    return invite


def list_invites(actor: User) -> list[InviteView]:
    """Every invite of the actor's organization, newest first, with its state and creator."""
    _require(actor, "owner", "admin")
    invites = db.session.scalars(
        sa.select(Invite)
        .where(Invite.organization_id == actor.organization_id)
        .options(joinedload(Invite.created_by), joinedload(Invite.used_by))
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    )
    now = utcnow()
    views = []
    for invite in invites:
        state = _state_of(invite, now)
        views.append(
            InviteView(
                id=invite.id,
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
        )
    return views


# ---------------------------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------------------------


def issue_token(user: User) -> tuple[ApiToken, str]:
    """A bearer token for `user`, stored as its SHA-256, expiring after API_TOKEN_TTL_SECONDS."""
    if not user.active:
        raise Unauthorized("This account has been deactivated.", code="account_deactivated")
    user_id = user.id
    token = secrets.token_urlsafe(32)
    _begin_write()
    now = utcnow()
    api_token = ApiToken(
        user_id=user_id,
        token_hash=_sha256(token),
        created_at=now,
        expires_at=now + _ttl("API_TOKEN_TTL_SECONDS"),
    )
    db.session.add(api_token)
    db.session.commit()
    return api_token, token


def login_token(username: str, password: str) -> tuple[ApiToken, str]:
    """Check the credentials like the login page does and issue a bearer token for them."""
    return issue_token(authenticate(username, password))


def user_for_token(token: str | None) -> User | None:
    """The active user a live token belongs to; None for unknown, expired or revoked tokens."""
    if not isinstance(token, str) or not SECRET_PATTERN.fullmatch(token):
        return None
    return db.session.scalar(
        sa.select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == _sha256(token),
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > utcnow(),
            User.active.is_(True),
        )
    )


def revoke_token(token: str | None) -> bool:
    """Revoke a token (logout). True when a live token was revoked."""
    if not isinstance(token, str) or not SECRET_PATTERN.fullmatch(token):
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
