"""Rate limits that the pages and the JSON API share (their values come from config.py).

Every limit here is a shared limit: its counter is one per key whichever page or API route
spent it, so a guesser gains nothing by switching between the login page and the API login.
Counters live in RATELIMIT_STORAGE_URI: Redis in production (docker-compose), so every worker
and instance counts together; `memory://` counts per worker process (development, tests).

Logins count failed attempts only, under three keys:

- per client address (LOGIN_RATE_LIMIT_PER_CLIENT): one client guessing many usernames;
- per client address and username (LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME): one client guessing
  one user's password. It is the tight one, and it cannot lock the user out: their own browser
  is another client;
- per username from anywhere (LOGIN_RATE_LIMIT_PER_USERNAME), a much higher ceiling against a
  guess spread over many addresses; reaching it is logged as a warning, since it means an
  attack on that account.
"""

from __future__ import annotations

import logging

from flask import current_app, request
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address

from app.extensions import limiter

log = logging.getLogger("kargo.security")


def _account_creation_key() -> str:
    return f"account-creation:{get_remote_address()}"


def _account_created(response) -> bool:
    # Only accounts actually created count: the sign-up pages redirect, the API answers 201.
    return response.status_code in (201, 302)


# Sign-up and invite redemption, through a page or the API, share one counter per client.
account_creation = limiter.shared_limit(
    lambda: current_app.config["SIGNUP_RATE_LIMIT_PER_CLIENT"],
    scope="account-creation",
    key_func=_account_creation_key,
    methods=["POST", "PUT"],
    deduct_when=_account_created,
)


def login_username() -> str:
    """The username a login attempt names, from the form or the JSON body, normalized."""
    username = request.form.get("username") if request.form else None
    if username is None and request.is_json:
        from app.blueprints.api.schema import read_json  # the API's body reader and its limit
        from app.services.errors import DomainError

        try:
            body = read_json()
        except DomainError:
            body = None
        username = body.get("username") if isinstance(body, dict) else None
    return username.strip().lower()[:64] if isinstance(username, str) else ""


def _login_failed(response) -> bool:
    # A page login that works redirects (302) and an API login answers 200; all else failed.
    return response.status_code >= 400


def _client_key() -> str:
    return f"login-client:{get_remote_address()}"


def _client_username_key() -> str:
    return f"login-client-user:{get_remote_address()}:{login_username()}"


def _username_key() -> str:
    return f"login-user:{login_username()}"


def _ceiling_reached(limit: RequestLimit) -> None:
    log.warning(
        "login ceiling reached for username %r (%s): failed attempts from many clients; "
        "latest from %s",
        login_username(),
        limit.limit,
        get_remote_address(),
    )


_login_limits = (
    limiter.shared_limit(
        lambda: current_app.config["LOGIN_RATE_LIMIT_PER_CLIENT"],
        scope="login-client",
        key_func=_client_key,
        methods=["POST"],
        deduct_when=_login_failed,
    ),
    limiter.shared_limit(
        lambda: current_app.config["LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME"],
        scope="login-client-user",
        key_func=_client_username_key,
        methods=["POST"],
        deduct_when=_login_failed,
    ),
    limiter.shared_limit(
        lambda: current_app.config["LOGIN_RATE_LIMIT_PER_USERNAME"],
        scope="login-user",
        key_func=_username_key,
        methods=["POST"],
        deduct_when=_login_failed,
        on_breach=_ceiling_reached,
    ),
)


def login(view):
    """The login limits, for the login page and the API login alike."""
    for apply in reversed(_login_limits):
        view = apply(view)
    return view
