"""Priority rights: the highest priority each role may use, set by owners (issue 15)."""

from __future__ import annotations

import pytest

from app.models import Organization
from app.services import deployments, organizations
from app.services.errors import Forbidden, ValidationError
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster, make_deployment


def test_defaults_members_up_to_high_admins_and_owners_critical(app):
    owner = make_member(role="owner")
    admin = make_member(org=owner.org, role="admin")
    member = make_member(org=owner.org, role="member")
    assert deployments.max_priority_for(owner.user) == 1000
    assert deployments.max_priority_for(admin.user) == 1000
    assert deployments.max_priority_for(member.user) == 800


def test_a_member_above_the_limit_is_refused_and_nothing_is_written(app, db):
    owner = make_member(role="owner")
    member = make_member(org=owner.org, role="member")
    cluster = make_cluster(owner.org)
    with pytest.raises(ValidationError) as caught:
        deployments.submit(
            member.user, cluster.id, "nginx:1", priority="critical", requests_raw={"cpu": "1"}
        )
    assert caught.value.fields["priority"] == (
        "as a member you may use priorities up to high (800); ask an owner for more"
    )
    assert "above your role's limit" in caught.value.message
    assert deployments.organization_count(owner.org.id) == 0
    ok = deployments.submit(
        member.user, cluster.id, "nginx:1", priority="high", requests_raw={"cpu": "1"}
    )
    assert ok.status == "running"


def test_owners_set_the_rights_and_they_apply_at_once(app, db):
    owner = make_member(role="owner")
    admin = make_member(org=owner.org, role="admin")
    member = make_member(org=owner.org, role="member")
    cluster = make_cluster(owner.org)
    saved = organizations.update_settings(
        owner.user, "Acme", 10, member_max_priority="low", admin_max_priority=900
    )
    assert (saved.settings.member_max_priority, saved.settings.admin_max_priority) == (100, 900)
    with pytest.raises(ValidationError):
        deployments.submit(
            admin.user, cluster.id, "nginx:1", priority=1000, requests_raw={"cpu": "1"}
        )
    with pytest.raises(ValidationError):
        deployments.submit(
            member.user, cluster.id, "nginx:1", priority=101, requests_raw={"cpu": "1"}
        )
    assert (
        deployments.submit(
            owner.user, cluster.id, "nginx:1", priority=1000, requests_raw={"cpu": "1"}
        ).status
        == "running"
    )
    with pytest.raises(Forbidden):
        organizations.update_settings(admin.user, "Acme", 10, member_max_priority=1000)


def test_raising_a_priority_above_the_limit_is_refused_lowering_is_not(app, db):
    owner = make_member(role="owner")
    member = make_member(org=owner.org, role="member")
    cluster = make_cluster(owner.org)
    mine = make_deployment(cluster, "mine", priority=1000, created_by=member.user)
    with pytest.raises(ValidationError) as caught:
        deployments.change_priority(member.user, mine.id, 900)
    assert "priority" in caught.value.fields
    assert deployments.change_priority(member.user, mine.id, 800).priority == 800
    with pytest.raises(ValidationError):
        deployments.change_priority(member.user, mine.id, "critical", dry_run=True)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"member_max_priority": 1001}, "member_max_priority", 422),
        ({"member_max_priority": "urgent"}, "member_max_priority", 422),
        ({"admin_max_priority": ""}, "admin_max_priority", 422),
        ({"admin_max_priority": -1}, "admin_max_priority", 422),
        ({"admin_max_priority": True}, "admin_max_priority", 400),  # a wrong JSON type
    ],
)
def test_the_api_refuses_bad_rights_and_changes_nothing(api, db, body, field, status):
    owner = make_member(role="owner")
    response = api.patch("/organization/settings/", json=body, token=owner.token)
    assert response.status_code == status
    assert field in error_of(response)["fields"]
    db.session.expire_all()
    org = db.session.get(Organization, owner.org.id)
    assert (org.member_max_priority, org.admin_max_priority) == (800, 1000)


def test_the_api_sets_and_shows_the_rights_and_refuses_submissions_above(api, db):
    owner = make_member(role="owner")
    member = make_member(org=owner.org, role="member")
    cluster = make_cluster(owner.org)
    saved = api.patch(
        "/organization/settings/", json={"member_max_priority": "normal"}, token=owner.token
    ).get_json()
    assert saved["member_max_priority"] == 500 and saved["admin_max_priority"] == 1000
    shown = api.get("/organization/settings/", token=owner.token).get_json()
    assert shown["member_max_priority"] == 500
    refused = api.put(
        "/deployment/",
        json={
            "cluster_id": cluster.id,
            "image": "nginx:1",
            "priority": 800,
            "resource": {"cpu": "1"},
        },
        token=member.token,
    )
    assert refused.status_code == 422
    assert "up to normal (500)" in error_of(refused)["fields"]["priority"]


def test_the_settings_page_sets_the_rights_with_field_errors(client, login_as, db):
    owner = make_member(role="owner")
    login_as(client, owner.user)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert "Highest priority members may use" in page and 'value="800"' in page
    bad = client.post(
        "/admin/settings",
        data={
            "name": "Acme",
            "deployment_quota": "5",
            "member_max_priority": "lots",
            "admin_max_priority": "1000",
        },
    )
    assert bad.status_code == 422
    assert 'id="member_max_priority-error"' in bad.get_data(as_text=True)
    good = client.post(
        "/admin/settings",
        data={
            "name": "Acme",
            "deployment_quota": "5",
            "member_max_priority": "normal",
            "admin_max_priority": "high",
        },
    )
    assert good.status_code == 302
    db.session.expire_all()
    org = db.session.get(Organization, owner.org.id)
    assert (org.member_max_priority, org.admin_max_priority) == (500, 800)
