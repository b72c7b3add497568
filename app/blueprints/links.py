"""Absolute links that the pages and the JSON API both hand out: invites and password resets.

They are built under PUBLIC_URL. Production refuses to start without it or without a
TRUSTED_HOSTS allow-list (see config.py): a link built from the request's Host header alone
would let anyone who can reach Kargo with `Host: evil.example` mint links to their own site.
"""

from __future__ import annotations

from flask import current_app, url_for


def _absolute(endpoint: str, **values: str) -> str:
    public_url = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if public_url:
        return public_url + url_for(endpoint, **values)
    # Only reached with a TRUSTED_HOSTS allow-list (or outside production): Flask refuses a
    # Host header that is not on the list before the request gets here.
    return url_for(endpoint, **values, _external=True)


def invite_link(code: str) -> str:
    """The link an invitee opens."""
    return _absolute("accounts.invite", code=code)


def password_reset_link(code: str) -> str:
    """The link a member opens to choose a new password."""
    return _absolute("accounts.reset_password", code=code)
