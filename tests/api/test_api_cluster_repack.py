"""The API of a cluster's opt-in repack: set on creation, shown, changed with PATCH
(owners and admins), bad settings refused with the field named (docs/scheduling.md,
"Repack")."""

from __future__ import annotations

import pytest

from app.models import Cluster
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster


def test_the_api_creates_shows_and_changes_repack(api, db):
    owner = make_member(role="owner")
    created = api.put(
        "/cluster/",
        json={"cluster_name": "packed", "resource": {"cpu": 8}, "repack": {"enabled": True}},
        token=owner.token,
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["repack"] == {
        "enabled": True,
        "threshold": 2,
        "max_per_hour": 6,
        "cooldown_minutes": 60,
    }
    changed = api.patch(
        f"/cluster/{body['id']}/",
        json={"repack": {"threshold": "0.5", "max_per_hour": 2}},
        token=owner.token,
    )
    assert changed.status_code == 200
    assert changed.get_json()["repack"]["threshold"] == 0.5
    shown = api.get(f"/cluster/{body['id']}/", token=owner.token).get_json()
    assert shown["repack"] == {
        "enabled": True,
        "threshold": 0.5,
        "max_per_hour": 2,
        "cooldown_minutes": 60,
    }


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"repack": {"threshold": "lots"}}, 422, "repack.threshold"),
        ({"repack": {"max_per_hour": "3"}}, 400, "repack.max_per_hour"),
        ({"repack": {"enabled": "yes"}}, 400, "repack.enabled"),
        ({"repack": {"speed": 1}}, 400, "repack.speed"),
        ({"repack": 1}, 400, "repack"),
        ({}, 400, "repack"),
    ],
)
def test_the_api_refuses_bad_settings(api, db, body, status, field):
    owner = make_member(role="owner")
    target = make_cluster(owner.org)
    response = api.patch(f"/cluster/{target.id}/", json=body, token=owner.token)
    assert response.status_code == status
    assert field in error_of(response)["fields"]
    assert db.session.get(Cluster, target.id).repack_enabled is False


def test_the_api_keeps_members_and_outsiders_out(api, db):
    owner = make_member(role="owner")
    member = make_member(owner.org, role="member")
    outsider = make_member(role="owner")
    target = make_cluster(owner.org)
    settings = {"repack": {"enabled": True}}
    assert api.patch(f"/cluster/{target.id}/", json=settings, token=member.token).status_code == (
        403
    )
    assert api.patch(f"/cluster/{target.id}/", json=settings, token=outsider.token).status_code == (
        404
    )
    assert db.session.get(Cluster, target.id).repack_enabled is False
