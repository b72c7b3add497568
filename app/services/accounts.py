"""Accounts, organizations, roles, invites and API tokens.

Knows nothing of clusters or deployments. Passwords are hashed with scrypt (werkzeug) and never
stored or logged in clear; invite codes and API tokens are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import User


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's user loader: `<id>:<session_version>`; a stale version logs the user out."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None
    user = db.session.scalar(sa.select(User).where(User.id == int(user_id)))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user
