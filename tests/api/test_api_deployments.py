"""API deployments: submit (run, queue, preempt), list with filters and queue order, show,
delete one, delete all of a cluster."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import ClusterResource, Deployment
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster


def deployments_in_db(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


def submit(api, token, cluster_id, **fields):
    body = {"cluster_id": cluster_id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    return api.put("/deployment/", json=body, token=token)


def deploy(api, token, cluster_id, **fields):
    response = submit(api, token, cluster_id, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.org, resources={"cpu": 4000, "gpu": 2, "ram": 8192})


def test_submit_runs_when_it_fits(api, owner, cluster):
    body = deploy(
        api,
        owner.token,
        cluster.id,
        name="web",
        priority=" 300 ",
        resource={"cpu": " 1.5", "ram": "512Mi", "gpu": "1"},
    )
    deployment = body["deployment"]
    assert body["preempted"] == []
    assert deployment["name"] == "web"
    assert deployment["status"] == "running"
    assert deployment["priority"] == 300
    assert deployment["resource"] == {"cpu": 1.5, "ram": 0.5, "gpu": 1}
    assert deployment["queue_position"] is None
    assert deployment["started_at"] is not None
    assert deployment["created_by"] == owner.user.display_name


def test_submit_queues_then_preempts(api, owner, cluster):
    low = deploy(api, owner.token, cluster.id, priority="low", resource={"cpu": 3})["deployment"]
    waiting = deploy(api, owner.token, cluster.id, priority=100, resource={"cpu": 2})
    assert waiting["deployment"]["status"] == "pending"
    assert waiting["deployment"]["queue_position"] == 1
    assert "cpu" in waiting["deployment"]["reason"]
    high = deploy(api, owner.token, cluster.id, priority=900, resource={"cpu": 4})
    assert high["deployment"]["status"] == "running"
    assert high["preempted"] == [low["id"]]
    shown = api.get(f"/deployment/{low['id']}/", token=owner.token).get_json()
    assert shown["status"] == "pending"
    assert shown["preemptions"] == 1
    assert shown["preempted_by"] == high["deployment"]["id"]


def test_list_shows_why_each_queued_deployment_waits_as_data(api, owner, cluster):
    holder = deploy(api, owner.token, cluster.id, priority=500, resource={"cpu": 3.5})
    waiting = deploy(api, owner.token, cluster.id, priority=500, resource={"cpu": 2})
    listed = api.get(f"/deployment/?id={waiting['deployment']['id']}", token=owner.token)
    item = listed.get_json()["items"][0]
    assert item["wait"] == {
        "cause": "blocked",
        "kind": "cpu",
        "needed": 2,
        "free": 0.5,
        "held": 3.5,
        "priority": 500,
        "blocking_ids": [holder["deployment"]["id"]],
        "blocking_more": 0,
        "preempted_by": None,
        "preemptor_priority": None,
        "message": None,
    }
    high = deploy(api, owner.token, cluster.id, priority=900, resource={"cpu": 4})
    shown = api.get(f"/deployment/{holder['deployment']['id']}/", token=owner.token).get_json()
    assert shown["wait"]["cause"] == "preempted"
    assert shown["wait"]["preempted_by"] == high["deployment"]["id"]
    assert shown["wait"]["preemptor_priority"] == 900
    running = api.get(f"/deployment/{high['deployment']['id']}/", token=owner.token).get_json()
    assert running["wait"] is None


def test_submit_generates_a_name_and_default_priority(api, owner, cluster):
    deployment = deploy(api, owner.token, cluster.id)["deployment"]
    assert deployment["name"].startswith("nginx-")
    assert deployment["priority"] == 500


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"image": "Not An Image!"}, "image", "validation_error"),
        ({"name": "Bad_Name"}, "name", "validation_error"),
        ({"priority": 5000}, "priority", "validation_error"),
        ({"priority": "urgent"}, "priority", "validation_error"),
        ({"resource": {"cpu": "-1"}}, "resource.cpu", "validation_error"),
        ({"resource": {"cpu": "1x"}}, "resource.cpu", "validation_error"),
        ({"resource": {"gpu": 3}}, "resource.gpu", "infeasible"),
        ({"resource": {"tpu": 1}}, "resource.tpu", "infeasible"),
        ({"resource": {}}, "resource", "infeasible"),
    ],
)
def test_submit_invalid_values_are_422_and_write_nothing(
    api, owner, cluster, db, fields, field, code
):
    response = submit(api, owner.token, cluster.id, **fields)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == code
    assert field in error["fields"]
    assert deployments_in_db(db) == 0


def test_submit_duplicate_name_is_422(api, owner, cluster, db):
    deploy(api, owner.token, cluster.id, name="web")
    response = submit(api, owner.token, cluster.id, name="web")
    assert response.status_code == 422
    assert "name" in error_of(response)["fields"]
    assert deployments_in_db(db) == 1


def test_submit_beyond_the_cluster_maximum_is_422(api, owner, db):
    small = make_cluster(owner.org, resources={"cpu": 1000}, max_deployments=1)
    deploy(api, owner.token, small.id)
    response = submit(api, owner.token, small.id)
    assert response.status_code == 422
    assert error_of(response)["code"] == "quota_exceeded"
    assert deployments_in_db(db) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"image": "nginx", "resource": {"cpu": 1}}, "cluster_id"),
        ({"cluster_id": "one", "image": "nginx", "resource": {"cpu": 1}}, "cluster_id"),
        ({"cluster_id": 1, "resource": {"cpu": 1}}, "image"),
        ({"cluster_id": 1, "image": ["nginx"], "resource": {"cpu": 1}}, "image"),
        ({"cluster_id": 1, "image": "nginx"}, "resource"),
        ({"cluster_id": 1, "image": "nginx", "resource": {"cpu": [1]}}, "resource.cpu"),
        ({"cluster_id": 1, "image": "nginx", "resource": {}, "priority": [1]}, "priority"),
        ({"cluster_id": 1, "image": "nginx", "resource": {}, "priority": True}, "priority"),
        ({"cluster_id": 1, "image": "nginx", "resource": {}, "name": 3}, "name"),
        ({"cluster_id": 1, "image": "nginx", "resource": {}, "dry": 1}, "dry"),
    ],
)
def test_submit_wrong_shapes_are_400(api, owner, cluster, db, body, field):
    response = api.put("/deployment/", json=body, token=owner.token)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert deployments_in_db(db) == 0


@pytest.mark.parametrize("cluster_id", [999, 2**40, -1])
def test_submit_to_an_unknown_cluster_is_404(api, owner, db, cluster_id):
    response = submit(api, owner.token, cluster_id)
    assert response.status_code == 404
    assert deployments_in_db(db) == 0


def test_list_shows_running_then_the_queue_in_order(api, owner, cluster):
    big = deploy(api, owner.token, cluster.id, priority=100, resource={"cpu": 4})["deployment"]
    small = deploy(api, owner.token, cluster.id, priority=100, resource={"cpu": 1})["deployment"]
    bigger = deploy(api, owner.token, cluster.id, priority=100, resource={"cpu": 3})["deployment"]
    # The high one preempts `big`; of the rest, `bigger` fills the cluster (maximum use).
    high = deploy(api, owner.token, cluster.id, priority=300, resource={"cpu": 1})
    assert high["preempted"] == [big["id"]]
    body = api.get("/deployment/", token=owner.token).get_json()
    assert body["total"] == 4
    listed = [(item["id"], item["status"], item["queue_position"]) for item in body["items"]]
    running = {high["deployment"]["id"], bigger["id"]}
    assert {entry[0] for entry in listed[:2]} == running
    assert all(status == "running" for _, status, _ in listed[:2])
    # Queue order: same priority, so submission order: big (older) before small.
    assert listed[2:] == [(big["id"], "pending", 1), (small["id"], "pending", 2)]


def test_list_filters(api, owner, cluster):
    other = make_cluster(owner.org, resources={"cpu": 1000})
    a = deploy(api, owner.token, cluster.id)["deployment"]
    deploy(api, owner.token, other.id)
    queued = deploy(api, owner.token, other.id)["deployment"]

    def ids(**query):
        response = api.get("/deployment/", token=owner.token, query_string=query)
        assert response.status_code == 200
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(cluster_id=cluster.id) == [a["id"]]
    assert ids(status="pending") == [queued["id"]]
    assert ids(status="pending", cluster_id=cluster.id) == []
    assert ids(id=a["id"]) == [a["id"]]
    assert ids(id=a["id"], status="pending") == []
    assert ids(id=999_999) == []
    assert len(ids(offset=2)) == 2
    assert len(ids(offset=2, page=1)) == 1


def test_list_filter_by_id_of_another_organization_is_empty(api, owner, outsider):
    theirs = make_cluster(outsider.org)
    their_deployment = deploy(api, outsider.token, theirs.id)["deployment"]
    body = api.get("/deployment/", token=owner.token, query_string={"id": their_deployment["id"]})
    assert body.get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"cluster_id": "x"}, 400),
        ({"id": "1e3"}, 400),
        ({"status": "sleeping"}, 400),
        ({"page": "-3"}, 422),
        ({"offset": "1000"}, 422),
        ({"cluster_id": "0"}, 422),
        ({"cluster_id": "99999999999"}, 422),
        ({"cluster_id": "424242"}, 404),
    ],
)
def test_list_bad_queries(api, owner, query, status):
    response = api.get("/deployment/", token=owner.token, query_string=query)
    assert response.status_code == status


def test_delete_frees_and_restarts_the_queue(api, owner, cluster, db):
    big = deploy(api, owner.token, cluster.id, resource={"cpu": 4})["deployment"]
    queued = deploy(api, owner.token, cluster.id, resource={"cpu": 2})["deployment"]
    response = api.delete(f"/deployment/{big['id']}/", token=owner.token)
    assert response.status_code == 204
    assert api.get(f"/deployment/{big['id']}/", token=owner.token).status_code == 404
    now = api.get(f"/deployment/{queued['id']}/", token=owner.token).get_json()
    assert now["status"] == "running"
    used = db.session.scalar(sa.select(ClusterResource.used).where(ClusterResource.kind == "cpu"))
    assert used == 2000


def test_members_delete_only_their_own(api, owner, cluster, db):
    member = make_member(owner.org, role="member")
    mine = deploy(api, owner.token, cluster.id)["deployment"]
    theirs = deploy(api, member.token, cluster.id)["deployment"]
    assert api.delete(f"/deployment/{mine['id']}/", token=member.token).status_code == 403
    assert api.delete(f"/deployment/{theirs['id']}/", token=member.token).status_code == 204
    assert deployments_in_db(db) == 1


def test_delete_all_of_a_cluster(api, owner, cluster, db):
    other = make_cluster(owner.org)
    for _ in range(3):
        deploy(api, owner.token, cluster.id, resource={"cpu": 2})
    deploy(api, owner.token, other.id)
    response = api.delete(
        "/deployment/", token=owner.token, query_string={"cluster_id": cluster.id}
    )
    assert response.status_code == 200
    assert response.get_json() == {"deleted": 3}
    assert deployments_in_db(db) == 1
    used = db.session.scalars(
        sa.select(ClusterResource.used).where(ClusterResource.cluster_id == cluster.id)
    ).all()
    assert set(used) == {0}


def test_delete_all_needs_owner_or_admin(api, owner, cluster, db):
    member = make_member(owner.org, role="member")
    deploy(api, member.token, cluster.id)
    query = {"cluster_id": cluster.id}
    response = api.delete("/deployment/", token=member.token, query_string=query)
    assert response.status_code == 403
    assert deployments_in_db(db) == 1
    admin = make_member(owner.org, role="admin")
    response = api.delete("/deployment/", token=admin.token, query_string=query)
    assert response.get_json() == {"deleted": 1}


@pytest.mark.parametrize(
    ("query", "status"), [({}, 400), ({"cluster_id": "x"}, 400), ({"cluster_id": "777"}, 404)]
)
def test_delete_all_bad_cluster(api, owner, query, status):
    response = api.delete("/deployment/", token=owner.token, query_string=query)
    assert response.status_code == status


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/deployment/"),
        ("GET", "/deployment/"),
        ("DELETE", "/deployment/?cluster_id=1"),
        ("GET", "/deployment/1/"),
        ("DELETE", "/deployment/1/"),
    ],
)
def test_deployment_routes_need_a_token(api, method, path):
    assert api.request(method, path, json={}).status_code == 401
