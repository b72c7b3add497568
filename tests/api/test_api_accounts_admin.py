"""The accounts half of the API: what the profile, tokens and admin pages do, through the same
services and rules (issue 12 item 5). Every answer is checked against the OpenAPI document."""

from __future__ import annotations

import pytest

from app.services import accounts
from tests.api.conftest import error_of, make_member, token_for
from tests.factories import DEFAULT_PASSWORD, make_cluster, make_deployment


@pytest.fixture
def team(app):
    owner = make_member(role="owner")
    admin = make_member(owner.org, role="admin")
    member = make_member(owner.org, role="member")
    return owner, admin, member


def test_profile_password_and_tokens(api, team):
    _, _, member = team
    response = api.patch("/user/", json={"display_name": "Mia W."}, token=member.token)
    assert response.status_code == 200 and response.get_json()["display_name"] == "Mia W."
    assert api.patch("/user/", json={"display_name": " "}, token=member.token).status_code == 422

    created = api.post(
        "/user/tokens/", json={"name": "ci", "expires_in_days": 7}, token=member.token
    )
    assert created.status_code == 201
    secret, token_id = created.get_json()["secret"], created.get_json()["token"]["id"]
    listed = api.get("/user/tokens/", token=secret).get_json()["items"]
    assert {t["name"]: t["current"] for t in listed} == {"ci": True, "API login": False}
    bad = api.post("/user/tokens/", json={"name": "x", "expires_in_days": 0}, token=member.token)
    assert bad.status_code == 422 and "expires_in_days" in error_of(bad)["fields"]

    wrong = api.post(
        "/user/password/",
        json={"current_password": "nope", "new_password": "another good passphrase"},
        token=secret,
    )
    assert wrong.status_code == 422 and "current_password" in error_of(wrong)["fields"]
    changed = api.post(
        "/user/password/",
        json={"current_password": DEFAULT_PASSWORD, "new_password": "another good passphrase"},
        token=secret,
    )
    assert changed.get_json() == {"ended_sessions": 0, "ended_tokens": 1}
    assert api.get("/user/", token=member.token).status_code == 401  # the other token ended
    assert api.delete(f"/user/tokens/{token_id}/", token=secret).status_code == 204
    assert api.get("/user/", token=secret).status_code == 401


def test_members_roles_deactivation_and_reset_links(api, team):
    owner, admin, member = team
    members = api.get("/organization/members/", token=admin.token).get_json()["items"]
    assert {m["role"] for m in members} == {"owner", "admin", "member"}

    refused = api.put(
        f"/organization/members/{member.id}/role/", json={"role": "admin"}, token=admin.token
    )
    assert refused.status_code == 403
    promoted = api.put(
        f"/organization/members/{member.id}/role/", json={"role": "admin"}, token=owner.token
    )
    assert promoted.get_json()["role"] == "admin"
    last = api.put(
        f"/organization/members/{owner.id}/role/", json={"role": "member"}, token=owner.token
    )
    assert last.status_code == 409
    unknown = api.put(
        f"/organization/members/{member.id}/role/", json={"role": "king"}, token=owner.token
    )
    assert unknown.status_code == 422

    gone = api.post(f"/organization/members/{member.id}/deactivate/", token=owner.token)
    assert gone.status_code == 200
    assert gone.get_json()["active"] is False and gone.get_json()["ended_tokens"] == 1
    back = api.post(f"/organization/members/{member.id}/reactivate/", token=owner.token)
    assert back.get_json()["active"] is True
    assert api.get("/user/", token=member.token).status_code == 401  # tokens stay revoked

    link = api.post(f"/organization/members/{admin.id}/password-reset/", token=owner.token)
    assert link.status_code == 201 and "/reset/" in link.get_json()["reset_url"]
    assert (
        api.post(f"/organization/members/{owner.id}/password-reset/", token=owner.token).status_code
        == 409
    )
    assert (
        api.post(f"/organization/members/{admin.id}/password-reset/", token=admin.token).status_code
        == 403
    )
    assert api.post("/organization/members/0/deactivate/", token=owner.token).status_code == 404


def test_invites_with_label_and_role_listed_revoked_and_reopened(api, team, db):
    owner, admin, _ = team
    made = api.patch(
        "/organization/invite/", json={"label": "Ada", "role": "admin"}, token=admin.token
    )
    assert made.status_code == 201
    invite = made.get_json()["invite"]
    assert (invite["label"], invite["role"], invite["state"]) == ("Ada", "admin", "active")
    plain = api.patch("/organization/invite/", token=owner.token)  # the seed's bodiless call
    assert plain.get_json()["invite"]["role"] == "member"
    owner_invite = api.patch("/organization/invite/", json={"role": "owner"}, token=admin.token)
    assert owner_invite.status_code == 422

    rows = api.get("/organization/invites/", token=admin.token).get_json()["items"]
    assert [row["label"] for row in rows] == ["", "Ada"]
    revoked = api.post(f"/organization/invites/{invite['id']}/revoke/", token=admin.token)
    assert revoked.get_json()["state"] == "revoked"
    again = api.post(f"/organization/invites/{invite['id']}/revoke/", token=admin.token)
    assert again.status_code == 409 and "was not revoked" in error_of(again)["message"]
    reopen = api.post(f"/organization/invites/{invite['id']}/reopen/", token=admin.token)
    assert reopen.status_code == 409


def test_settings_and_the_quota_message(api, team):
    owner, admin, _ = team
    cluster = make_cluster(owner.org, "web")
    for n in range(4):
        make_deployment(cluster, f"app-{n}")
    assert api.get("/organization/settings/", token=admin.token).status_code == 403
    current = api.get("/organization/settings/", token=owner.token).get_json()
    assert current["members_can_create_clusters"] is False
    saved = api.patch(
        "/organization/settings/",
        json={"deployment_quota": 2, "members_can_create_clusters": True},
        token=owner.token,
    ).get_json()
    assert saved["name"] == current["name"] and saved["deployments"] == 4
    assert "new ones are refused until fewer than 2 remain" in saved["message"]
    too_big = api.patch(
        "/organization/settings/", json={"deployment_quota": 10**9}, token=owner.token
    )
    assert too_big.status_code == 422


def test_members_cannot_create_clusters_through_the_api_unless_allowed(api, team):
    owner, _, member = team
    body = {"cluster_name": "mine", "resource": {"cpu": 1}}
    refused = api.put("/cluster/", json=body, token=member.token)
    assert refused.status_code == 403
    accounts.update_settings(owner.user, owner.org.name, 100, members_can_create_clusters=True)
    made = api.put("/cluster/", json=body, token=member.token)
    assert made.status_code == 201
    assert api.delete(f"/cluster/{made.get_json()['id']}/", token=member.token).status_code == 403
    assert (
        api.delete(f"/cluster/{made.get_json()['id']}/", token=token_for(owner.user)).status_code
        == 204
    )
