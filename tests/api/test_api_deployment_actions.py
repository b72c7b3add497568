"""API: change a deployment's priority (PATCH), clone it, and plan a submission (a dry run).

The rules themselves are tested through the service (tests/deployments/
test_deployments_actions.py); here: the JSON in and out, the statuses, and that errors write
nothing. Every response is also checked against the OpenAPI document by the recorder.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Deployment
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.org, resources={"cpu": 4000, "gpu": 2, "ram": 8192})


def deploy(api, token, cluster_id, **fields):
    body = {"cluster_id": cluster_id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    response = api.put("/deployment/", json=body, token=token)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["deployment"]


def count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


# -- PATCH /deployment/<id>/ : priority ----------------------------------------------------


def test_raising_a_priority_starts_it_and_names_its_victims(api, owner, cluster):
    low = deploy(api, owner.token, cluster.id, priority="low", resource={"cpu": 3})
    waiting = deploy(api, owner.token, cluster.id, priority="low", resource={"cpu": 2})
    response = api.patch(
        f"/deployment/{waiting['id']}/", json={"priority": "high"}, token=owner.token
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["deployment"]["id"] == waiting["id"]
    assert body["deployment"]["status"] == "running" and body["deployment"]["priority"] == 800
    assert body["deployment"]["created_at"] == waiting["created_at"]
    assert body["previous_priority"] == 100
    assert body["preempted"] == [low["id"]] and body["started"] == [waiting["id"]]
    assert body["preempted_by"] is None
    assert "from priority low (100) to high (800)" in body["message"]
    shown = api.get(f"/deployment/{low['id']}/", token=owner.token).get_json()
    assert shown["status"] == "pending" and shown["preempted_by"] == waiting["id"]


def test_lowering_a_priority_can_get_it_preempted(api, owner, cluster):
    top = deploy(api, owner.token, cluster.id, priority=900, resource={"cpu": 3})
    middle = deploy(api, owner.token, cluster.id, priority=500, resource={"cpu": 2})
    body = api.patch(f"/deployment/{top['id']}/", json={"priority": "10"}, token=owner.token)
    body = body.get_json()
    assert body["deployment"]["status"] == "pending"
    assert body["preempted_by"] == middle["id"] and body["started"] == [middle["id"]]


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({}, 400, "priority"),
        ({"priority": None}, 400, "priority"),
        ({"priority": [1]}, 400, "priority"),
        ({"priority": 5, "name": "x"}, 400, "name"),
        ({"priority": 5000}, 422, "priority"),
        ({"priority": "urgent"}, 422, "priority"),
    ],
)
def test_bad_priority_bodies_write_nothing(api, owner, cluster, payload, status, field):
    web = deploy(api, owner.token, cluster.id, priority=100)
    response = api.patch(f"/deployment/{web['id']}/", json=payload, token=owner.token)
    assert response.status_code == status
    assert field in error_of(response)["fields"]
    assert api.get(f"/deployment/{web['id']}/", token=owner.token).get_json()["priority"] == 100


def test_who_may_change_a_priority(api, owner, cluster, outsider):
    web = deploy(api, owner.token, cluster.id)
    member = make_member(owner.org, role="member")
    assert (
        api.patch(f"/deployment/{web['id']}/", json={"priority": 1}, token=member.token).status_code
        == 403
    )
    assert (
        api.patch(
            f"/deployment/{web['id']}/", json={"priority": 1}, token=outsider.token
        ).status_code
        == 404
    )
    assert api.patch(f"/deployment/{web['id']}/", json={"priority": 1}).status_code == 401
    assert (
        api.patch("/deployment/999999/", json={"priority": 1}, token=owner.token).status_code == 404
    )


# -- POST /deployment/<id>/clone/ ----------------------------------------------------------


def test_clone_without_a_body_copies_the_deployment(api, owner, cluster, db):
    source = deploy(
        api, owner.token, cluster.id, name="api", priority="high", resource={"cpu": "1.5", "gpu": 1}
    )
    response = api.post(f"/deployment/{source['id']}/clone/", token=owner.token)
    assert response.status_code == 201
    copy = response.get_json()["deployment"]
    assert copy["id"] > source["id"] and copy["name"].startswith("nginx-")
    for key in ("image", "priority", "resource", "cluster_id"):
        assert copy[key] == source[key], key
    assert count(db) == 2


def test_clone_with_overrides(api, owner, cluster):
    other = make_cluster(owner.org, resources={"cpu": 8000})
    source = deploy(api, owner.token, cluster.id, resource={"cpu": 1, "gpu": 1})
    overrides = {
        "cluster_id": str(other.id),
        "name": "copy",
        "priority": 900,
        "resource": {"cpu": "2", "gpu": None},
    }
    response = api.post(f"/deployment/{source['id']}/clone/", json=overrides, token=owner.token)
    assert response.status_code == 201, response.get_json()
    copy = response.get_json()["deployment"]
    assert (copy["cluster_id"], copy["name"], copy["priority"]) == (other.id, "copy", 900)
    assert copy["resource"] == {"cpu": 2}


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"nope": 1}, 400, "nope"),
        ({"cluster_id": "x"}, 400, "cluster_id"),
        ({"resource": {"gpu": 5}}, 422, "resource.gpu"),
        ({"image": "Not An Image"}, 422, "image"),
    ],
)
def test_bad_clone_bodies_write_nothing(api, owner, cluster, db, payload, status, field):
    source = deploy(api, owner.token, cluster.id)
    response = api.post(f"/deployment/{source['id']}/clone/", json=payload, token=owner.token)
    assert response.status_code == status
    assert field in error_of(response)["fields"]
    assert count(db) == 1


def test_clone_of_another_organizations_deployment_is_404(api, owner, cluster, outsider, db):
    source = deploy(api, owner.token, cluster.id)
    assert api.post(f"/deployment/{source['id']}/clone/", token=outsider.token).status_code == 404
    assert count(db) == 1


# -- POST /deployment/plan/ ----------------------------------------------------------------


def test_plan_names_what_would_start_wait_and_be_preempted(api, owner, cluster, db):
    low = deploy(api, owner.token, cluster.id, name="low", priority="low", resource={"cpu": 3})
    body = {
        "cluster_id": str(cluster.id),
        "image": "nginx:1.25",
        "name": "urgent",
        "priority": "high",
        "resource": {"cpu": "2", "ram": "1Gi"},
    }
    response = api.post("/deployment/plan/", json=body, token=owner.token)
    assert response.status_code == 200
    plan = response.get_json()
    assert plan["deployment"] == {
        "name": "urgent",
        "cluster_id": cluster.id,
        "priority": 800,
        "resource": {"cpu": 2, "ram": 1},
        "status": "running",
        "queue_position": None,
        "reason": None,
    }
    assert [line["id"] for line in plan["start"]] == [None]
    assert plan["preempt"] == [
        {"id": low["id"], "name": "low", "priority": 100, "owner": owner.user.display_name}
    ]
    (waits,) = plan["wait"]
    assert waits["id"] == low["id"] and waits["queue_position"] == 1
    assert waits["reason"].startswith("preempted by the planned urgent (priority 800); ")
    assert plan["queue_length"] == 1
    assert plan["message"].startswith("Would start now. Would preempt #")
    assert count(db) == 1
    shown = api.get(f"/deployment/{low['id']}/", token=owner.token).get_json()
    assert shown["status"] == "running"


def test_plan_answers_the_submission_errors(api, owner, cluster, outsider, db):
    body = {"cluster_id": cluster.id, "image": "nginx", "resource": {"gpu": 3}}
    assert api.post("/deployment/plan/", json=body, token=owner.token).status_code == 422
    assert api.post("/deployment/plan/", json={"image": "x"}, token=owner.token).status_code == 400
    ok = {"cluster_id": cluster.id, "image": "nginx", "resource": {"cpu": 1}}
    assert api.post("/deployment/plan/", json=ok, token=outsider.token).status_code == 404
    assert api.post("/deployment/plan/", json=ok).status_code == 401
    assert count(db) == 0
