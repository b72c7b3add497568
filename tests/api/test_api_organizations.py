"""API organizations: the caller's organization, and invites (create, check, redeem)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.models import Invite, User, utcnow
from tests.api.conftest import error_of, make_member

NEWCOMER = {"username": "newcomer", "password": "a long enough secret", "display_name": "New"}


def users(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User))


def test_organization_lists_its_members(api, owner):
    member = make_member(owner.org, role="member", username="bob")
    response = api.get("/organization/", token=member.token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == owner.org.id
    assert body["name"] == owner.org.name
    assert body["deployment_quota"] == owner.org.deployment_quota
    assert {m["id"] for m in body["members"]} == {owner.id, member.id}
    assert {m["role"] for m in body["members"]} == {"owner", "member"}


def test_organization_needs_a_token(api):
    assert api.get("/organization/").status_code == 401


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_create_invites(api, owner, role):
    actor = owner if role == "owner" else make_member(owner.org, role="admin")
    response = api.patch("/organization/invite/", token=actor.token)
    assert response.status_code == 201
    body = response.get_json()
    assert body["invite_url"].endswith("/invite/" + body["code"])
    assert body["expires_at"].endswith("Z")


def test_members_cannot_create_invites(api, owner, db):
    member = make_member(owner.org, role="member")
    response = api.patch("/organization/invite/", token=member.token)
    assert response.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invite)) == 0


def test_invite_url_uses_public_url_when_set(api, app, owner):
    app.config["PUBLIC_URL"] = "https://kargo.example.com/"
    body = api.patch("/organization/invite/", token=owner.token).get_json()
    assert body["invite_url"] == f"https://kargo.example.com/invite/{body['code']}"


def test_invite_status_needs_no_token(api, owner):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    response = api.get("/organization/invite/", query_string={"code": code})
    assert response.status_code == 200
    assert response.get_json() == {
        "valid": True,
        "status": "active",
        "organization": {"name": owner.org.name},
    }


@pytest.mark.parametrize("code", [None, "", "nope", "x" * 500, "\u00e9\u00e9\u00e9"])
def test_unknown_invite_codes_are_invalid(api, code):
    query = {} if code is None else {"code": code}
    response = api.get("/organization/invite/", query_string=query)
    assert response.status_code == 200
    assert response.get_json() == {"valid": False, "status": "invalid", "organization": None}


def test_redeem_invite_joins_the_organization_as_member(api, owner, db):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    response = api.post("/organization/invite/", json={"code": code, **NEWCOMER})
    assert response.status_code == 201
    body = response.get_json()
    assert body["user"]["role"] == "member"
    assert body["organization"]["id"] == owner.org.id
    status = api.get("/organization/invite/", query_string={"code": code}).get_json()
    assert status["status"] == "used" and status["valid"] is False


def test_redeem_invite_takes_the_code_from_the_query(api, owner):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    response = api.post("/organization/invite/", json=NEWCOMER, query_string={"code": code})
    assert response.status_code == 201


def test_redeem_without_a_code_is_400(api, db):
    response = api.post("/organization/invite/", json=NEWCOMER)
    assert response.status_code == 400
    assert "code" in error_of(response)["fields"]
    assert users(db) == 0


def test_redeem_unknown_code_is_404(api, db):
    response = api.post("/organization/invite/", json={"code": "A" * 43, **NEWCOMER})
    assert response.status_code == 404
    assert users(db) == 0


@pytest.mark.parametrize("state", ["used", "expired", "revoked"])
def test_redeem_unusable_code_is_410(api, owner, db, state):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    if state == "used":
        assert api.post("/organization/invite/", json={"code": code, **NEWCOMER}).status_code == 201
    else:
        column = Invite.expires_at if state == "expired" else Invite.revoked_at
        db.session.execute(sa.update(Invite).values({column: utcnow() - timedelta(seconds=1)}))
        db.session.commit()
    before = users(db)
    other = {**NEWCOMER, "username": "someone-else"}
    response = api.post("/organization/invite/", json={"code": code, **other})
    assert response.status_code == 410
    assert error_of(response)["code"] == f"invite_{state}"
    assert users(db) == before
    status = api.get("/organization/invite/", query_string={"code": code}).get_json()
    assert status["status"] == state


def test_redeem_with_a_taken_username_is_409_and_keeps_the_invite(api, owner, db):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    taken = {**NEWCOMER, "username": owner.user.username}
    response = api.post("/organization/invite/", json={"code": code, **taken})
    assert response.status_code == 409
    status = api.get("/organization/invite/", query_string={"code": code}).get_json()
    assert status["status"] == "active"


def test_redeem_with_invalid_values_is_422(api, owner, db):
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    before = users(db)
    response = api.post(
        "/organization/invite/", json={"code": code, **NEWCOMER, "password": "short"}
    )
    assert response.status_code == 422
    assert "password" in error_of(response)["fields"]
    assert users(db) == before


def test_redeem_wrong_shape_is_400(api, owner, db):
    response = api.post("/organization/invite/", json={"code": 5, "username": ["x"]})
    assert response.status_code == 400
    fields = error_of(response)["fields"]
    assert {"code", "username", "password", "display_name"} <= set(fields)


def test_redeem_invite_takes_the_code_as_the_bearer_token(api, owner):
    """The seed's "Use invite code" example sends the code as its bearer token."""
    code = api.patch("/organization/invite/", token=owner.token).get_json()["code"]
    response = api.post("/organization/invite/", json=NEWCOMER, token=code)
    assert response.status_code == 201
    assert response.get_json()["organization"]["id"] == owner.org.id


def test_redeem_with_an_api_token_instead_of_a_code_is_404(api, owner, db):
    before = users(db)
    response = api.post("/organization/invite/", json=NEWCOMER, token=owner.token)
    assert response.status_code == 404
    assert users(db) == before
