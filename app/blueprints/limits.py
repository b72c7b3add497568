"""Rate limits that the pages and the JSON API share (their values come from config.py).

Counters live in Flask-Limiter's storage, RATELIMIT_STORAGE_URI: Redis in production
(docker-compose), so every worker and instance counts together; `memory://` counts per worker
process (development, tests). Each counter has one key whichever page or API route spent it,
so nothing is gained by switching between the login page and the API login.

Only some attempts count (failed logins, created accounts), yet the limit must hold under
concurrency. Checking first and counting after the answer (Flask-Limiter's `deduct_when`) lets
every request in flight through the check before any is counted: 8 parallel guessers got 10
guesses through a limit of 5. So each attempt is counted up front, atomically (Redis INCR), and
refunded once its answer shows it does not count.

Logins count failed attempts under three keys, checked in this order:

- per client address (LOGIN_RATE_LIMIT_PER_CLIENT): one client guessing many usernames;
- per client address and username (LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME): one client guessing
  one user's password. It is the tight one, and it cannot lock the user out: their own browser
  is another client;
- per username from anywhere (LOGIN_RATE_LIMIT_PER_USERNAME), a much higher ceiling against a
  guess spread over many addresses; reaching it is logged as a warning, since it means an
  attack on that account.

Password changes count wrong current passwords per user, like a login guess. Accounts created
(sign-ups and invite redemptions, pages and API) count per client address
(SIGNUP_RATE_LIMIT_PER_CLIENT).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import abort, current_app, g, make_response, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import RateLimitItem, parse

from app.extensions import limiter

log = logging.getLogger("kargo.security")


@dataclass(frozen=True)
class Counter:
    """One limit (a config name) on one key (a function of the request)."""

    config_name: str
    scope: str
    key: Callable[[], str]
    on_exceeded: Callable[[], None] | None = None


def login_username() -> str:
    """The username a login attempt names, from the form or the JSON body, normalized.

    The JSON body is read through the API's reader, which sets the API's smaller body limit
    before anything touches the request stream.
    """
    username = None
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        username = request.form.get("username")
    elif request.is_json:
        from app.blueprints.api.schema import read_json  # the API's body reader and its limit
        from app.services.errors import DomainError

        try:
            body = read_json()
        except DomainError:
            body = None
        username = body.get("username") if isinstance(body, dict) else None
    return username.strip().lower()[:64] if isinstance(username, str) else ""


def _ceiling_reached() -> None:
    log.warning(
        "login ceiling reached for username %r (%s): failed attempts from many clients; "
        "latest from %s",
        login_username(),
        current_app.config["LOGIN_RATE_LIMIT_PER_USERNAME"],
        get_remote_address(),
    )


LOGIN_COUNTERS = (
    Counter("LOGIN_RATE_LIMIT_PER_CLIENT", "login-client", get_remote_address),
    Counter(
        "LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME",
        "login-client-user",
        lambda: f"{get_remote_address()}:{login_username()}",
    ),
    Counter(
        "LOGIN_RATE_LIMIT_PER_USERNAME", "login-user", login_username, on_exceeded=_ceiling_reached
    ),
)


def _acting_user() -> str:
    user = g.get("api_user") or current_user
    return str(getattr(user, "id", ""))


# Wrong current passwords on a password change, per user: the page and the API together, with
# the same number as a login guess from one client (a stolen session must not guess faster).
PASSWORD_CHANGE_COUNTERS = (
    Counter("LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME", "password-change", _acting_user),
)
ACCOUNT_CREATION_COUNTERS = (
    Counter("SIGNUP_RATE_LIMIT_PER_CLIENT", "account-creation", get_remote_address),
)


def _spent(counter: Counter) -> tuple[RateLimitItem, tuple[str, ...]]:
    item = parse(current_app.config[counter.config_name])
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "kargo"
    return item, (prefix, counter.scope, counter.key())


def _spend(counters: tuple[Counter, ...]) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    """Count one attempt on every counter, in order; 429 at the first one over its limit.

    A storage failure (Redis away) lets the attempt through rather than fail the request.
    """
    spent = []
    for counter in counters:
        item, identifiers = _spent(counter)
        try:
            allowed = limiter.limiter.hit(item, *identifiers)
        except Exception:
            log.exception("rate-limit storage unavailable; %s not counted", counter.scope)
            continue
        if not allowed:
            if counter.on_exceeded:
                counter.on_exceeded()
            reset = limiter.limiter.get_window_stats(item, *identifiers).reset_time
            abort(429, retry_after=max(1, int(reset - time.time())))
        spent.append((item, identifiers))
    return spent


def _refund(spent: list[tuple[RateLimitItem, tuple[str, ...]]]) -> None:
    for item, identifiers in spent:
        try:
            limiter.limiter.storage.incr(item.key_for(*identifiers), item.get_expiry(), amount=-1)
        except Exception:
            log.exception("rate-limit storage unavailable; refund of %s lost", identifiers[1])


def counted(counters: tuple[Counter, ...], counts: Callable[[object], bool]):
    """Limit a view's POST/PUT attempts by `counters`; attempts whose response does not
    `count` are refunded."""

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if request.method not in ("POST", "PUT") or not current_app.config.get(
                "RATELIMIT_ENABLED", True
            ):
                return view(*args, **kwargs)
            spent = _spend(counters)
            response = make_response(view(*args, **kwargs))
            if not counts(response):
                _refund(spent)
            return response

        return guarded

    return decorate


# A page login that works redirects (302) and an API login answers 200; all else failed.
login = counted(LOGIN_COUNTERS, counts=lambda response: response.status_code >= 400)
password_change = counted(
    PASSWORD_CHANGE_COUNTERS, counts=lambda response: response.status_code >= 400
)
# Only accounts actually created count: the sign-up pages redirect, the API answers 201.
account_creation = counted(
    ACCOUNT_CREATION_COUNTERS, counts=lambda response: response.status_code in (201, 302)
)
