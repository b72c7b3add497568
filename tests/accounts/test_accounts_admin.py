"""Profile, organization and admin pages: access matrix, roles, deactivation, settings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Deployment, Invite, Organization, User
from app.services import accounts
from app.services.errors import Conflict, Forbidden, NotFound, ValidationError
from tests.factories import DEFAULT_PASSWORD, make_cluster, make_org, make_user

# (method, path) of every page of this part; {member} and {invite} are filled per test.
PAGES = [
    ("GET", "/profile"),
    ("GET", "/organization"),
    ("GET", "/admin/members"),
    ("POST", "/admin/members/{member}/role"),
    ("POST", "/admin/members/{member}/deactivate"),
    ("POST", "/admin/members/{member}/reactivate"),
    ("GET", "/admin/invites"),
    ("POST", "/admin/invites"),
    ("POST", "/admin/invites/{invite}/revoke"),
    ("POST", "/admin/invites/{invite}/reopen"),
    ("GET", "/admin/settings"),
    ("POST", "/admin/settings"),
]

# Expected status per role: 2xx/3xx allowed, 403 refused. Anonymous always goes to login.
ALLOWED = {
    "owner": {path for _, path in PAGES},
    "admin": {
        "/profile",
        "/organization",
        "/admin/members",
        "/admin/invites",
        "/admin/invites/{invite}/revoke",
        "/admin/invites/{invite}/reopen",
    },
    "member": {"/profile", "/organization"},
}


@pytest.fixture
def team(db):
    org = make_org("Acme")
    owner = make_user(org, "olivia", role="owner")
    admin = make_user(org, "adam", role="admin")
    member = make_user(org, "mia", role="member")
    invite, _code = accounts.create_invite(owner)
    return {"org": org, "owner": owner, "admin": admin, "member": member, "invite": invite}


def _url(path, team):
    return path.format(member=team["member"].id, invite=team["invite"].id)


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_anonymous_is_sent_to_login(client, team, method, path):
    response = client.open(_url(path, team), method=method)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
@pytest.mark.parametrize(("method", "path"), PAGES)
def test_access_matrix(client, login_as, team, role, method, path):
    login_as(client, team[role])
    data = {"role": "member", "name": "Acme", "deployment_quota": "10"}
    response = client.open(_url(path, team), method=method, data=data)
    if path in ALLOWED[role]:
        assert response.status_code in (200, 201, 302), response.status_code
    else:
        assert response.status_code == 403
        assert b"Forbidden" in response.data


def test_admin_index_leads_to_members(client, login_as, team):
    login_as(client, team["member"])
    response = client.get("/admin/", follow_redirects=True)
    assert response.request.path == "/admin/members"
    assert response.status_code == 403


def test_forbidden_posts_change_nothing(client, login_as, team, db):
    login_as(client, team["admin"])
    client.post(f"/admin/members/{team['member'].id}/role", data={"role": "owner"})
    client.post(f"/admin/members/{team['member'].id}/deactivate")
    client.post("/admin/settings", data={"name": "Hacked", "deployment_quota": "0"})
    db.session.expire_all()
    member = db.session.get(User, team["member"].id)
    assert (member.role, member.active) == ("member", True)
    assert db.session.get(Organization, team["org"].id).name == "Acme"


def test_profile_shows_user_org_role_and_last_login(client, team):
    client.post("/login", data={"username": "mia", "password": DEFAULT_PASSWORD})
    page = client.get("/profile").get_data(as_text=True)
    assert "mia" in page and "Acme" in page and "Member" in page
    assert "Never" not in page  # last login was just recorded
    assert "UTC" in page


def test_organization_page_lists_members_and_links_admin_for_owners(client, login_as, team):
    login_as(client, team["owner"])
    page = client.get("/organization").get_data(as_text=True)
    for user in ("olivia", "adam", "mia"):
        assert user in page
    assert "/admin/members" in page
    login_as(client, team["member"])
    page = client.get("/organization").get_data(as_text=True)
    assert "/admin/members" not in page.split("</nav>", 1)[1]


def test_other_organizations_members_are_not_listed(client, login_as, team):
    make_user(make_org("Other"), "stranger")
    login_as(client, team["owner"])
    assert "stranger" not in client.get("/organization").get_data(as_text=True)
    assert "stranger" not in client.get("/admin/members").get_data(as_text=True)


def test_members_admin_shows_role_status_last_login_and_owner_actions(client, login_as, team):
    login_as(client, team["owner"])
    page = client.get("/admin/members").get_data(as_text=True)
    assert "Last login" in page and "Never" in page
    assert f"/admin/members/{team['member'].id}/role" in page
    assert f"/admin/members/{team['member'].id}/deactivate" in page
    login_as(client, team["admin"])
    page = client.get("/admin/members").get_data(as_text=True)
    assert "/role" not in page and "/deactivate" not in page


# --- roles -----------------------------------------------------------------------------------


def test_owner_promotes_and_demotes(client, login_as, team, db):
    login_as(client, team["owner"])
    response = client.post(
        f"/admin/members/{team['member'].id}/role", data={"role": "admin"}, follow_redirects=True
    )
    assert "Mia is now admin." in response.get_data(as_text=True)
    client.post(f"/admin/members/{team['member'].id}/role", data={"role": "owner"})
    db.session.expire_all()
    assert db.session.get(User, team["member"].id).role == "owner"
    client.post(f"/admin/members/{team['member'].id}/role", data={"role": "member"})
    db.session.expire_all()
    assert db.session.get(User, team["member"].id).role == "member"


@pytest.mark.parametrize("role", ["", "superuser", "OWNER", "x" * 1000])
def test_unknown_role_is_refused_with_a_message(client, login_as, team, db, role):
    login_as(client, team["owner"])
    response = client.post(
        f"/admin/members/{team['member'].id}/role", data={"role": role}, follow_redirects=True
    )
    assert "Choose owner, admin or member." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, team["member"].id).role == "member"


@pytest.mark.parametrize("user_id", ["999999", "0"])
def test_unknown_member_is_404(client, login_as, team, user_id):
    login_as(client, team["owner"])
    assert client.post(f"/admin/members/{user_id}/role", data={"role": "admin"}).status_code == 404
    assert client.post(f"/admin/members/{user_id}/deactivate").status_code == 404


def test_member_of_another_organization_is_404(client, login_as, team, db):
    stranger = make_user(make_org(), "stranger", role="member")
    login_as(client, team["owner"])
    assert (
        client.post(f"/admin/members/{stranger.id}/role", data={"role": "owner"}).status_code == 404
    )
    assert client.post(f"/admin/members/{stranger.id}/deactivate").status_code == 404
    db.session.expire_all()
    assert db.session.get(User, stranger.id).active


def test_non_numeric_member_id_is_404(client, login_as, team):
    login_as(client, team["owner"])
    assert client.post("/admin/members/abc/role", data={"role": "admin"}).status_code == 404


def test_last_owner_cannot_be_demoted_or_deactivated(client, login_as, team, db):
    owner = team["owner"]
    login_as(client, owner)
    response = client.post(
        f"/admin/members/{owner.id}/role", data={"role": "admin"}, follow_redirects=True
    )
    assert "The last owner cannot be demoted" in response.get_data(as_text=True)
    response = client.post(f"/admin/members/{owner.id}/deactivate", follow_redirects=True)
    assert "The last owner cannot be deactivated" in response.get_data(as_text=True)
    db.session.expire_all()
    owner = db.session.get(User, owner.id)
    assert (owner.role, owner.active) == ("owner", True)


def test_an_owner_can_step_down_when_another_owner_exists(client, login_as, team, db):
    accounts.change_role(team["owner"], team["admin"].id, "owner")
    login_as(client, team["owner"])
    response = client.post(f"/admin/members/{team['owner'].id}/role", data={"role": "member"})
    # No longer allowed on the admin pages: sent to the organization page instead.
    assert response.headers["Location"] == "/organization"
    db.session.expire_all()
    assert db.session.get(User, team["owner"].id).role == "member"
    # Now adam is the last owner.
    with pytest.raises(Conflict):
        accounts.change_role(db.session.get(User, team["admin"].id), team["admin"].id, "member")


def test_deactivated_owner_does_not_count_as_an_owner(team, db):
    second = make_user(team["org"], "second", role="owner")
    accounts.deactivate(team["owner"], second.id)
    with pytest.raises(Conflict):
        accounts.change_role(team["owner"], team["owner"].id, "admin")


def test_service_role_rules(team):
    with pytest.raises(Forbidden):
        accounts.change_role(team["admin"], team["member"].id, "admin")
    with pytest.raises(Forbidden):
        accounts.deactivate(team["member"], team["admin"].id)
    with pytest.raises(ValidationError):
        accounts.change_role(team["owner"], team["member"].id, "root")
    with pytest.raises(NotFound):
        accounts.deactivate(team["owner"], 10**9)


# --- deactivation ----------------------------------------------------------------------------


def test_deactivation_ends_sessions_and_keeps_deployments(app, client, login_as, team, db):
    member = team["member"]
    cluster = make_cluster(team["org"])
    db.session.add(
        Deployment(
            organization_id=team["org"].id,
            cluster_id=cluster.id,
            name="web",
            image="registry/web:1",
            priority=1,
            requests={"cpu": 100},
            status="pending",
            created_by_id=member.id,
        )
    )
    db.session.commit()
    member_client = app.test_client()
    member_client.post("/login", data={"username": "mia", "password": DEFAULT_PASSWORD})
    assert member_client.get("/profile").status_code == 200

    login_as(client, team["owner"])
    response = client.post(f"/admin/members/{member.id}/deactivate", follow_redirects=True)
    assert "was deactivated" in response.get_data(as_text=True)

    assert member_client.get("/profile").status_code == 302  # the live session ended
    login_again = member_client.post(
        "/login", data={"username": "mia", "password": DEFAULT_PASSWORD}
    )
    assert login_again.status_code == 401
    db.session.expire_all()
    assert db.session.scalar(sa.select(Deployment.created_by_id)) == member.id
    assert not db.session.get(User, member.id).active

    client.post(f"/admin/members/{member.id}/reactivate")
    ok = member_client.post("/login", data={"username": "mia", "password": DEFAULT_PASSWORD})
    assert ok.status_code == 302


def test_deactivated_member_is_shown_and_can_be_reactivated(client, login_as, team):
    accounts.deactivate(team["owner"], team["member"].id)
    login_as(client, team["owner"])
    page = client.get("/admin/members").get_data(as_text=True)
    assert "Deactivated" in page
    assert f"/admin/members/{team['member'].id}/reactivate" in page


# --- settings --------------------------------------------------------------------------------


def test_owner_updates_settings(client, login_as, team, db):
    login_as(client, team["owner"])
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'value="Acme"' in page and 'value="1000"' in page
    response = client.post(
        "/admin/settings", data={"name": " Acme Corp ", "deployment_quota": " 25"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    org = db.session.get(Organization, team["org"].id)
    assert (org.name, org.deployment_quota) == ("Acme Corp", 25)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "", "deployment_quota": "5"}, "name", "Enter an organization name."),
        ({"name": "n" * 101, "deployment_quota": "5"}, "name", "at most 100"),
        ({"name": "Ok", "deployment_quota": ""}, "deployment_quota", "whole number"),
        ({"name": "Ok", "deployment_quota": "-1"}, "deployment_quota", "whole number"),
        ({"name": "Ok", "deployment_quota": "1000001"}, "deployment_quota", "whole number"),
        ({"name": "Ok", "deployment_quota": "2.5"}, "deployment_quota", "whole number"),
        ({"name": "Ok", "deployment_quota": "lots"}, "deployment_quota", "whole number"),
        ({"name": "Ok", "deployment_quota": "9" * 5000}, "deployment_quota", "whole number"),
    ],
)
def test_bad_settings_get_field_messages_and_change_nothing(
    client, login_as, team, db, data, field, message
):
    login_as(client, team["owner"])
    response = client.post("/admin/settings", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    db.session.expire_all()
    org = db.session.get(Organization, team["org"].id)
    assert (org.name, org.deployment_quota) == ("Acme", 1000)


def test_update_settings_service_accepts_bounds_and_rejects_booleans(team):
    assert accounts.update_settings(team["owner"], "Acme", 0).deployment_quota == 0
    ceiling = accounts.quota_maximum()
    assert accounts.update_settings(team["owner"], "Acme", ceiling).deployment_quota == ceiling
    with pytest.raises(ValidationError) as caught:
        accounts.update_settings(team["owner"], "Acme", ceiling + 1)
    with pytest.raises(ValidationError) as caught:
        accounts.update_settings(team["owner"], "Acme", True)
    assert "deployment_quota" in caught.value.fields


def test_invite_rows_belong_to_the_org(team, db):
    assert db.session.scalar(sa.select(Invite.organization_id)) == team["org"].id
