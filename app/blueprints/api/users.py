"""Users: sign-up, login (a bearer token), logout and who am I.

`PUT /user/create/` creates an organization with its first user (its owner), like the sign-up
page; both call `services.accounts.signup`. Logins are rate-limited per client address and per
username, counting failed attempts only, with the same limits as the login page.
"""

from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address

from app.blueprints import limits
from app.blueprints.api import route, serialize
from app.blueprints.api.auth import api_token, api_user, token_required
from app.blueprints.api.schema import Object, String, json_body, read_json
from app.extensions import limiter
from app.services import accounts
from app.services.errors import DomainError

SIGNUP = Object(
    {
        "user": Object({"username": String(), "password": String(), "display_name": String()}),
        "organization": Object({"name": String()}),
    }
)
LOGIN = Object({"username": String(), "password": String()})

# The service names fields after its arguments; the client knows them by their body paths.
SIGNUP_FIELDS = {
    "username": "user.username",
    "password": "user.password",
    "display_name": "user.display_name",
    "organization_name": "organization.name",
}


def body_paths(error: DomainError, paths: dict[str, str]) -> DomainError:
    error.fields = {paths.get(key, key): problem for key, problem in error.fields.items()}
    return error


@route("/user/create/", "PUT")
@limits.account_creation
def create_user():
    body = json_body(SIGNUP)
    try:
        user = accounts.signup(
            body["user"]["username"],
            body["user"]["password"],
            body["user"]["display_name"],
            body["organization"]["name"],
        )
    except DomainError as error:
        raise body_paths(error, SIGNUP_FIELDS) from None
    return {
        "user": serialize.user(user),
        "organization": serialize.organization_summary(user.organization),
    }, 201


def _login_client_key() -> str:
    return f"api-login-client:{get_remote_address()}"


def _login_username_key() -> str:
    try:
        body = read_json()
    except DomainError:
        body = None
    username = body.get("username") if isinstance(body, dict) else None
    return "api-login-user:" + (username.strip().lower()[:64] if isinstance(username, str) else "")


def _login_failed(response) -> bool:
    return response.status_code != 200


@route("/user/login/", "POST")
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_CLIENT"],
    key_func=_login_client_key,
    deduct_when=_login_failed,
)
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_USERNAME"],
    key_func=_login_username_key,
    deduct_when=_login_failed,
)
def login():
    body = json_body(LOGIN)
    token, secret = accounts.login_token(body["username"], body["password"])
    return {"token": secret, "expires_at": serialize.timestamp(token.expires_at)}


@route("/user/logout/", "POST")
@token_required
def logout():
    accounts.revoke_token(api_token())
    return "", 204


@route("/user/", "GET")
@token_required
def current_account():
    return serialize.user(api_user())
