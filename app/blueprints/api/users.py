"""Users: sign-up, login (a bearer token), logout, who am I, the profile (display name,
password) and personal API tokens.

`PUT /user/create/` creates an organization with its first user (its owner), like the sign-up
page; both call `services.accounts.signup`. Logins are rate-limited like the login page, on the
same counters (`app.blueprints.limits.login`), counting failed attempts only.
"""

from __future__ import annotations

from app.blueprints import limits
from app.blueprints.api import ID, route, serialize
from app.blueprints.api.auth import api_token, api_user, token_required
from app.blueprints.api.schema import IntegerOrString, Object, String, json_body
from app.services import accounts
from app.services.errors import DomainError

SIGNUP = Object(
    {
        "user": Object({"username": String(), "password": String(), "display_name": String()}),
        "organization": Object({"name": String()}),
    }
)
LOGIN = Object({"username": String(), "password": String()})
PROFILE = Object({"display_name": String()})
PASSWORD = Object({"current_password": String(), "new_password": String()})
NEW_TOKEN = Object({"name": String(), "expires_in_days": IntegerOrString()})

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


@route("/user/login/", "POST")
@limits.login
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


@route("/user/", "PATCH")
@token_required
def update_profile():
    body = json_body(PROFILE)
    return serialize.user(accounts.update_profile(api_user(), body["display_name"]))


@route("/user/password/", "POST")
@token_required
@limits.password_change
def change_password():
    """Every other session and token of the user ends; the token of this request stays."""
    body = json_body(PASSWORD)
    try:
        ended = accounts.change_password(api_user(), body["current_password"], body["new_password"])
    except DomainError as error:
        raise body_paths(error, {"password": "new_password"}) from None
    return {"ended_sessions": ended.sessions, "ended_tokens": ended.tokens}


@route("/user/tokens/", "GET")
@token_required
def list_tokens():
    return {"items": [serialize.api_token(token) for token in accounts.list_tokens(api_user())]}


@route("/user/tokens/", "POST")
@token_required
def create_token():
    """A named personal token; its secret is in this answer only."""
    body = json_body(NEW_TOKEN)
    token, secret = accounts.create_token(api_user(), body["name"], body["expires_in_days"])
    return {"token": serialize.api_token(token), "secret": secret}, 201


@route(f"/user/tokens/<{ID}:token_id>/", "DELETE")
@token_required
def revoke_token(token_id: int):
    accounts.revoke_api_token(api_user(), token_id)
    return "", 204
