"""Rate limits that the pages and the JSON API share (their values come from config.py)."""

from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address

from app.extensions import limiter


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
