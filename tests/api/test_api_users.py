"""API users: sign-up, login tokens (hashed, expiring, revoked by logout), who am I."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import ApiToken, Organization, User, utcnow
from tests.api.conftest import error_of
from tests.conftest import login
from tests.factories import DEFAULT_PASSWORD, make_user

SIGNUP = {
    "user": {"username": "ada", "password": "a long enough secret", "display_name": "Ada L"},
    "organization": {"name": "Analytical Engines"},
}


def count(db, model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_create_user_makes_an_owner_and_an_organization(api, db):
    response = api.put("/user/create/", json=SIGNUP)
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["username"] == "ada"
    assert body["user"]["role"] == "owner"
    assert body["organization"]["name"] == "Analytical Engines"
    assert body["user"]["organization"] == body["organization"]
    assert count(db, User) == 1 and count(db, Organization) == 1


def test_paths_work_without_the_trailing_slash(api):
    assert api.put("/user/create", json=SIGNUP).status_code == 201
    response = api.post("/user/login", json={"username": "ada", "password": "a long enough secret"})
    assert response.status_code == 200


def test_create_user_with_a_taken_username_is_a_conflict(api, db):
    make_user(username="Ada")
    response = api.put("/user/create/", json=SIGNUP)
    assert response.status_code == 409
    assert "user.username" in error_of(response)["fields"]
    assert count(db, Organization) == 1  # only the factory's


def test_create_user_invalid_values_name_the_body_paths(api, db):
    body = {
        "user": {"username": "a b", "password": "short", "display_name": ""},
        "organization": {"name": ""},
    }
    response = api.put("/user/create/", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert {"user.username", "user.password", "organization.name"} <= set(error["fields"])
    assert count(db, User) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": SIGNUP["user"]}, "organization"),
        ({**SIGNUP, "user": {**SIGNUP["user"], "username": 7}}, "user.username"),
        ({**SIGNUP, "user": "ada"}, "user"),
        ({**SIGNUP, "extra": 1}, "extra"),
        ({**SIGNUP, "organization": {"name": None}}, "organization.name"),
        ({**SIGNUP, "user": {**SIGNUP["user"], "password": "nul\u0000byte"}}, "user.password"),
        ([SIGNUP], "body"),
        ("ada", "body"),
    ],
)
def test_create_user_wrong_shapes_are_400_with_the_field(api, db, body, field):
    response = api.put("/user/create/", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "bad_request"
    assert field in error["fields"]
    assert count(db, User) == 0


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b'{"user": NaN}', "application/json"),
        (b'{"a": 1e999}', "application/json"),
        (b"[" * 20_000 + b"]" * 20_000, "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b'{"a": ' + b"9" * 5000 + b"}", "application/json"),
        (b'{"user": {}}', "text/plain"),
        (b"username=ada", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_are_400_not_500(api, db, data, content_type):
    response = api.put("/user/create/", data=data, content_type=content_type)
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"
    assert count(db, User) == 0


def test_a_body_over_the_size_limit_is_413(api, app, db):
    app.config["API_MAX_BODY_BYTES"] = 1000
    body = {**SIGNUP, "organization": {"name": "x" * 2000}}
    response = api.put("/user/create/", json=body)
    assert response.status_code == 413
    assert count(db, User) == 0


def test_login_returns_a_token_stored_only_as_a_hash(api, db):
    user = make_user(username="grace")
    response = api.post("/user/login/", json={"username": "grace", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert body["expires_at"].endswith("Z")
    stored = db.session.scalars(sa.select(ApiToken.token_hash)).all()
    assert len(stored) == 1 and body["token"] not in stored[0]
    me = api.get("/user/", token=body["token"])
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id
    assert me.get_json()["organization"]["id"] == user.organization_id


def test_token_lifetime_follows_the_config(api, app):
    app.config["API_TOKEN_TTL_SECONDS"] = 60
    make_user(username="grace")
    before = utcnow()
    response = api.post("/user/login/", json={"username": "grace", "password": DEFAULT_PASSWORD})
    from datetime import datetime

    expires = datetime.fromisoformat(response.get_json()["expires_at"].replace("Z", ""))
    assert before + timedelta(seconds=59) <= expires <= utcnow() + timedelta(seconds=61)


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "grace", "password": "wrong password"},
        {"username": "nobody", "password": DEFAULT_PASSWORD},
    ],
)
def test_login_with_wrong_credentials_is_401(api, credentials):
    make_user(username="grace")
    response = api.post("/user/login/", json=credentials)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "invalid_credentials"


def test_login_of_a_deactivated_account_is_401(api):
    make_user(username="gone", active=False)
    response = api.post("/user/login/", json={"username": "gone", "password": DEFAULT_PASSWORD})
    assert response.status_code == 401


def test_failed_logins_are_rate_limited_per_username(api, app):
    app.config["LOGIN_RATE_LIMIT_PER_USERNAME"] = "3 per minute"
    make_user(username="grace")
    statuses = [
        api.post("/user/login/", json={"username": "grace", "password": "nope"}).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    response = api.post("/user/login/", json={"username": "grace", "password": DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert error_of(response)["code"] == "rate_limited"


def test_logout_revokes_the_token(api, owner):
    assert api.get("/user/", token=owner.token).status_code == 200
    response = api.post("/user/logout/", token=owner.token)
    assert response.status_code == 204
    assert response.data == b""
    again = api.get("/user/", token=owner.token)
    assert again.status_code == 401
    assert error_of(again)["code"] == "token_invalid"


def test_expired_token_is_refused(api, owner, db):
    db.session.execute(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert api.get("/user/", token=owner.token).status_code == 401


def test_token_of_a_deactivated_user_stops_working(api, owner, db):
    db.session.execute(sa.update(User).values(active=False))
    db.session.commit()
    assert api.get("/user/", token=owner.token).status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-real-token-at-all",
        "Bearer \u00e9",
    ],
)
def test_missing_or_bad_tokens_are_401(api, app, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = api.get("/user/", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] in ("token_missing", "token_invalid")


def test_a_session_cookie_is_not_accepted_as_api_auth(api, client):
    user = make_user()
    login(client, user)
    assert client.get("/api/v1/user/").status_code == 401


def test_logout_needs_a_token(api):
    assert api.post("/user/logout/").status_code == 401


def test_wrong_method_is_a_json_405(api, owner):
    response = api.delete("/user/", token=owner.token)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    response = api.get("/user/create")
    assert response.status_code == 405


def test_api_responses_are_not_cached(api, owner):
    assert api.get("/user/", token=owner.token).headers["Cache-Control"] == "no-store"


def test_the_api_needs_no_csrf_token(app, api):
    app.config["WTF_CSRF_ENABLED"] = True
    assert api.put("/user/create/", json=SIGNUP).status_code == 201
