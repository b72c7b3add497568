"""The shared limit on accounts created per client: sign-up and invite pages, and the API."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import User
from app.services import accounts
from tests.factories import make_user


@pytest.fixture
def app_config() -> dict:
    return {"SIGNUP_RATE_LIMIT_PER_CLIENT": "2 per minute"}


def signup_form(n: int) -> dict:
    return {
        "username": f"person{n}",
        "display_name": f"Person {n}",
        "organization_name": f"Org {n}",
        "password": "a long enough passphrase",
        "confirm": "a long enough passphrase",
    }


def api_signup(n: int) -> dict:
    return {
        "user": {
            "username": f"robot{n}",
            "password": "a long enough passphrase",
            "display_name": f"Robot {n}",
        },
        "organization": {"name": f"Robots {n}"},
    }


def user_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count(User.id)))


def test_the_third_account_from_one_client_is_refused_and_not_created(client, db):
    assert client.post("/signup", data=signup_form(1)).status_code == 302
    client.post("/logout")
    assert client.put("/api/v1/user/create/", json=api_signup(2)).status_code == 201
    before = user_count(db)

    page = client.post("/signup", data=signup_form(3))
    assert page.status_code == 429
    assert "Too many attempts" in page.get_data(as_text=True)
    api = client.put("/api/v1/user/create/", json=api_signup(4))
    assert api.status_code == 429
    assert api.get_json()["error"]["code"] == "rate_limited"
    assert user_count(db) == before


def test_failed_sign_ups_do_not_count(client, db):
    for _ in range(3):
        bad = client.post("/signup", data={**signup_form(1), "confirm": "something else"})
        assert bad.status_code == 422
    assert client.post("/signup", data=signup_form(1)).status_code == 302


def test_invite_redemptions_share_the_limit(client, db):
    owner = make_user(role="owner")
    codes = [accounts.create_invite(owner)[1] for _ in range(3)]
    for n, code in enumerate(codes[:2]):
        response = client.post(f"/invite/{code}", data=signup_form(10 + n))
        assert response.status_code == 302
        client.post("/logout")
    refused = client.post(
        "/api/v1/organization/invite/",
        json={
            "code": codes[2],
            "username": "latecomer",
            "password": "a long enough passphrase",
            "display_name": "Late",
        },
    )
    assert refused.status_code == 429
    assert accounts.invite_status(codes[2])[0] == "active"
