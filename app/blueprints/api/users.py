"""Users: sign-up, login (a bearer token), logout and who am I.

`PUT /user/create/` creates an organization with its first user (its owner), like the sign-up
page; both call `services.accounts.signup`. Logins are rate-limited like the login page, on the
same counters (`app.blueprints.limits.login`), counting failed attempts only.
"""

from __future__ import annotations

from app.blueprints import limits
from app.blueprints.api import route, serialize
from app.blueprints.api.auth import api_token, api_user, token_required
from app.blueprints.api.schema import Object, String, json_body
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
