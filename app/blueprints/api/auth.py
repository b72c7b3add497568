"""Bearer-token authentication for the API.

`Authorization: Bearer <token>` is the only credential accepted under /api/v1. Flask-Login may
have loaded a user from a session cookie for this request; the API never looks at it, so a
browser session cannot be ridden by a cross-site request and a script always says who it is.
Tokens are issued by `POST /user/login/`, stored as hashes, expire after API_TOKEN_TTL_SECONDS
and are revoked by `POST /user/logout/` (all in `app.services.accounts`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from app.models import User
from app.services import accounts
from app.services.errors import Unauthorized


def bearer_token() -> str | None:
    """The token of the Authorization header, or None when the header is absent or not Bearer."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Authenticate the bearer token before the view runs; its user is `api_user()`."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = bearer_token()
        if token is None:
            raise Unauthorized(
                "Send your API token in the header Authorization: Bearer <token> "
                "(get one from POST /api/v1/user/login/).",
                code="token_missing",
            )
        user = accounts.user_for_token(token)
        if user is None:
            raise Unauthorized(
                "This token is not valid: it is unknown, expired or revoked. Log in again.",
                code="token_invalid",
            )
        g.api_user = user
        g.api_token = token
        return view(*args, **kwargs)

    return wrapper


def api_user() -> User:
    """The user of the request's bearer token (only inside a `token_required` view)."""
    return g.api_user


def api_token() -> str:
    """The bearer token of the request (only inside a `token_required` view)."""
    return g.api_token
