"""Issue 13, accounts and admin: the profile, API tokens, reset links, invites with label and
role, who may create and delete clusters, and the quota-below-use message."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.models import ApiToken, Invite, PasswordReset, User
from app.services import accounts, clusters, deployments
from app.services.errors import Conflict, Forbidden, NotFound, ValidationError
from tests.factories import DEFAULT_PASSWORD, make_cluster, make_deployment, make_org, make_user


@pytest.fixture
def team(app):
    org = make_org("Acme")
    return {
        "org": org,
        "owner": make_user(org, "olivia", role="owner"),
        "admin": make_user(org, "adam", role="admin"),
        "member": make_user(org, "mia", role="member"),
    }


def shown_once(page: str, input_id: str) -> str | None:
    match = re.search(rf'id="{input_id}" value="([^"]+)"', page)
    return match.group(1) if match else None


# --- profile ----------------------------------------------------------------------------------


def test_the_display_name_can_be_changed_on_the_profile(client, login_as, team, db):
    login_as(client, team["member"])
    response = client.post("/profile", data={"display_name": "  Mia Wallace "})
    assert response.status_code == 302
    assert "Your display name is now Mia Wallace." in client.get("/profile").get_data(as_text=True)
    assert db.session.get(User, team["member"].id).display_name == "Mia Wallace"
    response = client.post("/profile", data={"display_name": ""})
    assert response.status_code == 422
    assert "Enter a display name." in response.get_data(as_text=True)


def test_a_new_password_must_follow_the_rules_and_differ(team):
    member = team["member"]
    with pytest.raises(ValidationError) as caught:
        accounts.change_password(member, DEFAULT_PASSWORD, DEFAULT_PASSWORD)
    assert "different" in caught.value.fields["password"]
    with pytest.raises(ValidationError) as caught:
        accounts.change_password(member, DEFAULT_PASSWORD, "short")
    assert "at least" in caught.value.fields["password"]


# --- personal API tokens ------------------------------------------------------------------------


def test_the_tokens_page_creates_shows_once_lists_and_revokes(client, login_as, team, db):
    login_as(client, team["member"])
    response = client.post("/profile/tokens", data={"name": "ci-pipeline", "expires_in_days": "30"})
    assert response.status_code == 302
    page = client.get("/profile/tokens").get_data(as_text=True)
    secret = shown_once(page, "new-token")
    assert secret and len(secret) >= 43
    assert "ci-pipeline" in page
    again = client.get("/profile/tokens").get_data(as_text=True)
    assert secret not in again and "ci-pipeline" in again  # listed, but never shown again
    row = db.session.scalar(sa.select(ApiToken))
    assert row.token_hash != secret and row.name == "ci-pipeline"
    assert (row.expires_at - row.created_at).days == 30

    # Using it marks it used; the API sees it as the member's.
    api = client.get("/api/v1/user/", headers={"Authorization": f"Bearer {secret}"})
    assert api.get_json()["username"] == "mia"
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).last_used_at is not None
    assert (
        "Never" not in client.get("/profile/tokens").get_data(as_text=True).split("ci-pipeline")[1]
    )

    response = client.post(f"/profile/tokens/{row.id}/revoke")
    assert response.status_code == 302
    assert accounts.user_for_token(secret) is None
    assert client.post(f"/profile/tokens/{row.id}/revoke").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "expires_in_days": "30"}, "Enter a name for the token."),
        ({"name": "ci", "expires_in_days": "9999"}, "Not a valid choice"),
        ({"name": "x" * 81, "expires_in_days": "30"}, "Use at most 80 characters."),
    ],
)
def test_a_bad_token_form_is_explained_and_writes_nothing(
    client, login_as, team, db, data, message
):
    login_as(client, team["member"])
    response = client.post("/profile/tokens", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(ApiToken.id))) == 0


def test_nobody_revokes_another_persons_token(team):
    _, secret = accounts.create_token(team["member"], "ci", 7)
    token_id = accounts.list_tokens(team["member"])[0].id
    with pytest.raises(NotFound):
        accounts.revoke_api_token(team["owner"], token_id)
    assert accounts.user_for_token(secret) is not None


# --- password reset links ---------------------------------------------------------------------


def test_an_owner_issues_a_single_use_reset_link(app, client, login_as, team, db):
    login_as(client, team["owner"])
    member = team["member"]
    _, old_token = accounts.create_token(member, "ci", 7)
    response = client.post(f"/admin/members/{member.id}/password-reset")
    assert response.status_code == 302
    page = client.get("/admin/members").get_data(as_text=True)
    link = shown_once(page, "reset-link")
    assert link and "/reset/" in link
    assert shown_once(client.get("/admin/members").get_data(as_text=True), "reset-link") is None
    code = link.rsplit("/", 1)[1]
    assert db.session.scalar(sa.select(PasswordReset.code_hash)) != code

    visitor = app.test_client()
    assert "Choose a new password" in visitor.get(f"/reset/{code}").get_data(as_text=True)
    new = "the member's fresh passphrase"
    response = visitor.post(f"/reset/{code}", data={"password": new, "confirm": new})
    assert response.status_code == 302
    assert visitor.get("/profile").status_code == 200  # logged in with the new password
    assert accounts.user_for_token(old_token) is None  # every old token ended
    assert accounts.authenticate("mia", new).id == member.id
    used = app.test_client().post(f"/reset/{code}", data={"password": new, "confirm": new})
    assert used.status_code == 410


def test_a_newer_reset_link_replaces_the_older_one(team):
    _, first = accounts.create_password_reset(team["owner"], team["member"].id)
    _, second = accounts.create_password_reset(team["owner"], team["member"].id)
    assert accounts.password_reset_status(first)[0] == "revoked"
    assert accounts.password_reset_status(second)[0] == "active"


def test_only_owners_issue_reset_links_and_not_for_themselves(team):
    with pytest.raises(Forbidden):
        accounts.create_password_reset(team["admin"], team["member"].id)
    with pytest.raises(Conflict, match="your profile"):
        accounts.create_password_reset(team["owner"], team["owner"].id)
    stranger = make_user(make_org(), "sam", role="member")
    with pytest.raises(NotFound):
        accounts.create_password_reset(team["owner"], stranger.id)


def test_a_bad_reset_code_is_a_clean_404(client):
    assert client.get("/reset/not-a-real-code-at-all").status_code == 404
    assert client.get("/reset/%00").status_code == 404


# --- invites with label and role ----------------------------------------------------------------


def test_an_invite_carries_its_label_and_role_into_the_list_and_the_account(
    client, login_as, team, db
):
    login_as(client, team["owner"])
    response = client.post("/admin/invites", data={"label": "Ada, data team", "role": "admin"})
    assert response.status_code == 302
    page = client.get("/admin/invites").get_data(as_text=True)
    code = shown_once(page, "new-invite-link").rsplit("/", 1)[1]
    for text in ("Ada, data team", "Admin", "Active", "by Olivia"):
        assert text in page
    user = accounts.redeem_invite(code, "ada", "analytical engine", "Ada")
    assert user.role == "admin"
    page = client.get("/admin/invites").get_data(as_text=True)
    assert "Used by <strong>Ada</strong>" in page


def test_admins_cannot_invite_owners(client, login_as, team, db):
    with pytest.raises(ValidationError, match="highlighted"):
        accounts.create_invite(team["admin"], role="owner")
    login_as(client, team["admin"])
    page = client.get("/admin/invites").get_data(as_text=True)
    assert '<option value="owner"' not in page
    response = client.post("/admin/invites", data={"role": "owner"})
    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count(Invite.id))) == 0


# --- clusters: who may create and delete ------------------------------------------------------


def test_members_cannot_create_or_delete_clusters_and_are_not_offered_to(client, login_as, team):
    member = team["member"]
    cluster = make_cluster(team["org"], "web", created_by=member)
    with pytest.raises(Forbidden):
        clusters.create_cluster(member, "mine", {"cpu": 1})
    with pytest.raises(Forbidden):
        deployments.delete_cluster(member, cluster.id)
    login_as(client, member)
    assert "New cluster" not in client.get("/clusters/").get_data(as_text=True)
    assert client.get("/clusters/new").status_code == 403
    assert client.post("/clusters/new", data={"name": "x", "cpu": "1"}).status_code == 403
    detail = client.get(f"/clusters/{cluster.id}").get_data(as_text=True)
    assert "Delete this cluster" not in detail
    assert client.post(f"/clusters/{cluster.id}/delete").status_code == 403


def test_an_owner_can_open_cluster_creation_to_members(client, login_as, team):
    accounts.update_settings(team["owner"], "Acme", 100, members_can_create_clusters=True)
    member = team["member"]
    assert clusters.create_cluster(member, "mine", {"cpu": 1}).name == "mine"
    login_as(client, member)
    assert "New cluster" in client.get("/clusters/").get_data(as_text=True)
    with pytest.raises(Forbidden):  # deleting stays with owners and admins
        deployments.delete_cluster(member, clusters.names(team["org"].id).popitem()[0])


def test_admins_create_and_delete_clusters(team):
    snap = clusters.create_cluster(team["admin"], "tmp", {"cpu": 1})
    deployments.delete_cluster(team["admin"], snap.id)


def test_members_delete_only_their_own_deployments(team):
    cluster = make_cluster(team["org"], "web")
    mine = make_deployment(cluster, "mine", created_by=team["member"])
    theirs = make_deployment(cluster, "theirs", created_by=team["admin"])
    with pytest.raises(Forbidden):
        deployments.delete(team["member"], theirs.id)
    assert deployments.delete(team["member"], mine.id).name == "mine"


# --- the quota below use ------------------------------------------------------------------------


def test_a_quota_below_use_says_what_it_means(client, login_as, team):
    cluster = make_cluster(team["org"], "web")
    for n in range(6):
        make_deployment(cluster, f"app-{n}")
    login_as(client, team["owner"])
    response = client.post(
        "/admin/settings", data={"name": "Acme", "deployment_quota": "3"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    expected = "6 deployments exist; nothing is stopped, but new ones are refused until fewer"
    assert f"{expected} than 3 remain." in page
    response = client.post(
        "/admin/settings", data={"name": "Acme", "deployment_quota": "10"}, follow_redirects=True
    )
    assert "Organization settings saved." in response.get_data(as_text=True)
    assert "refused" not in response.get_data(as_text=True)
