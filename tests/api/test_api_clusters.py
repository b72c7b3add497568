"""API clusters: list (paginated), create, show, delete, the fit check, and the refused
direct usage changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Cluster, ClusterResource
from tests.api.conftest import error_of
from tests.factories import make_cluster

CLUSTER = {"cluster_name": "prod", "resource": {"cpu": "4", "gpu": 2, "ram": " 8"}}


def clusters_in_db(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Cluster))


def deploy(api, token, cluster_id, **fields):
    body = {"cluster_id": cluster_id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    response = api.put("/deployment/", json=body, token=token)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["deployment"]


def test_create_cluster_answers_display_units(api, owner, db):
    body = {
        "cluster_name": "prod",
        "resource": {"cpu": " 4", "gpu": 2, "ram": "1536Mi", "tpu": "3"},
        "max_deployments": 7,
    }
    response = api.put("/cluster/", json=body, token=owner.token)
    assert response.status_code == 201
    cluster = response.get_json()
    assert cluster["name"] == "prod"
    assert cluster["max_deployments"] == 7
    assert cluster["resources"]["cpu"] == {"capacity": 4, "used": 0, "available": 4}
    assert cluster["resources"]["ram"]["capacity"] == 1.5
    assert cluster["resources"]["tpu"]["capacity"] == 3
    assert cluster["deployments"] == {"running": 0, "pending": 0}
    stored = db.session.scalar(
        sa.select(ClusterResource.capacity).where(ClusterResource.kind == "ram")
    )
    assert stored == 1536  # exact MiB below the API


def test_create_cluster_invalid_values_are_422_and_write_nothing(api, owner, db):
    body = {"cluster_name": "Not A DNS Name", "resource": {"cpu": "-1", "gpu": "two"}}
    response = api.put("/cluster/", json=body, token=owner.token)
    assert response.status_code == 422
    fields = error_of(response)["fields"]
    assert {"cluster_name", "resource.cpu", "resource.gpu"} <= set(fields)
    assert clusters_in_db(db) == 0


def test_create_cluster_with_a_taken_name_is_422(api, owner, db):
    assert api.put("/cluster/", json=CLUSTER, token=owner.token).status_code == 201
    response = api.put("/cluster/", json=CLUSTER, token=owner.token)
    assert response.status_code == 422
    assert "cluster_name" in error_of(response)["fields"]
    assert clusters_in_db(db) == 1


def test_create_cluster_without_resources_is_422(api, owner, db):
    response = api.put("/cluster/", json={"cluster_name": "x", "resource": {}}, token=owner.token)
    assert response.status_code == 422
    assert "resource" in error_of(response)["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resource": {"cpu": 1}}, "cluster_name"),
        ({"cluster_name": "x"}, "resource"),
        ({"cluster_name": "x", "resource": [1]}, "resource"),
        ({"cluster_name": "x", "resource": {"cpu": [1]}}, "resource.cpu"),
        ({"cluster_name": "x", "resource": {"cpu": True}}, "resource.cpu"),
        ({"cluster_name": "x", "resource": {"cpu": {"n": 1}}}, "resource.cpu"),
        ({**CLUSTER, "max_deployments": "ten"}, "max_deployments"),
        ({**CLUSTER, "max_deployments": 10**30}, "max_deployments"),
        ({**CLUSTER, "max_deployments": 1.5}, "max_deployments"),
        ({**CLUSTER, "resources": {}}, "resources"),
    ],
)
def test_create_cluster_wrong_shapes_are_400(api, owner, db, body, field):
    response = api.put("/cluster/", json=body, token=owner.token)
    assert response.status_code == 400
    assert field in error_of(response)["fields"]
    assert clusters_in_db(db) == 0


def test_create_cluster_max_deployments_out_of_range_is_422(api, owner, db):
    response = api.put("/cluster/", json={**CLUSTER, "max_deployments": 0}, token=owner.token)
    assert response.status_code == 422
    assert "max_deployments" in error_of(response)["fields"]


def test_list_clusters_paginates(api, owner, outsider):
    for name in ("a", "b", "c"):
        make_cluster(owner.org, name=name)
    make_cluster(outsider.org, name="theirs")
    response = api.get("/cluster/", token=owner.token, query_string={"page": 1, "offset": 2})
    assert response.status_code == 200
    body = response.get_json()
    assert body["page"] == 1 and body["offset"] == 2 and body["total"] == 3
    assert [item["name"] for item in body["items"]] == ["c"]
    assert set(body["items"][0]["resources"]) == {"cpu", "gpu", "ram"}
    first = api.get("/cluster/", token=owner.token).get_json()
    assert first["page"] == 0 and first["offset"] == 20
    assert [item["name"] for item in first["items"]] == ["a", "b", "c"]


def test_list_clusters_past_the_end_is_empty(api, owner):
    make_cluster(owner.org)
    response = api.get("/cluster/", token=owner.token, query_string={"page": 99_999})
    assert response.status_code == 200
    assert response.get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"page": "x"}, 400),
        ({"page": "1.5"}, 400),
        ({"page": "9" * 40}, 400),
        ({"offset": "ten"}, 400),
        ({"page": "-1"}, 422),
        ({"offset": "0"}, 422),
        ({"offset": "101"}, 422),
        ({"page": "100000001"}, 422),
    ],
)
def test_list_clusters_bad_paging_is_refused(api, owner, query, status):
    response = api.get("/cluster/", token=owner.token, query_string=query)
    assert response.status_code == status
    assert set(error_of(response)["fields"]) == set(query)


def test_show_cluster_has_usage_and_counts(api, owner):
    cluster = make_cluster(owner.org, resources={"cpu": 4000, "ram": 2048}, created_by=owner.user)
    deploy(api, owner.token, cluster.id, resource={"cpu": "2.5", "ram": "512Mi"})
    deploy(api, owner.token, cluster.id, resource={"cpu": 2})
    response = api.get(f"/cluster/{cluster.id}/", token=owner.token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["created_by"] == owner.user.display_name
    assert body["resources"]["cpu"] == {"capacity": 4, "used": 2.5, "available": 1.5}
    assert body["resources"]["ram"] == {"capacity": 2, "used": 0.5, "available": 1.5}
    assert body["deployments"] == {"running": 1, "pending": 1}


def test_unknown_and_absurd_cluster_ids_are_404(api, owner):
    for path in ("/cluster/999/", "/cluster/99999999999999999999999/", "/cluster/0/"):
        response = api.get(path, token=owner.token)
        assert response.status_code == 404, path
    assert api.get("/cluster/abc/", token=owner.token).status_code == 404


def test_delete_empty_cluster(api, owner, db):
    cluster = make_cluster(owner.org)
    response = api.delete(f"/cluster/{cluster.id}/", token=owner.token)
    assert response.status_code == 204
    assert clusters_in_db(db) == 0
    assert api.get(f"/cluster/{cluster.id}/", token=owner.token).status_code == 404


def test_delete_cluster_with_deployments_is_409_with_the_counts(api, owner, db):
    cluster = make_cluster(owner.org, resources={"cpu": 1000})
    deploy(api, owner.token, cluster.id)
    deploy(api, owner.token, cluster.id)
    response = api.delete(f"/cluster/{cluster.id}/", token=owner.token)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "cluster_not_empty"
    assert "1 running and 1 pending" in error["message"]
    assert clusters_in_db(db) == 1


def test_fit_check(api, owner):
    cluster = make_cluster(owner.org, resources={"cpu": 4000, "gpu": 2, "ram": 8192})
    deploy(api, owner.token, cluster.id, resource={"cpu": 3, "gpu": 1})
    fits = api.patch(
        f"/cluster/{cluster.id}/resource/",
        json={"resource": {"cpu": " 1", "ram": "4Gi"}},
        token=owner.token,
    )
    assert fits.status_code == 200
    assert fits.get_json() == {
        "fits": True,
        "available": {"cpu": 1, "gpu": 1, "ram": 8},
        "short": {},
    }
    short = api.patch(
        f"/cluster/{cluster.id}/resource/",
        json={"resource": {"cpu": "1.5", "gpu": 1, "tpu": 2}},
        token=owner.token,
    ).get_json()
    assert short["fits"] is False
    assert short["short"] == {"cpu": 0.5, "tpu": 2}


def test_fit_check_with_unreadable_quantities_is_422(api, owner):
    cluster = make_cluster(owner.org)
    response = api.patch(
        f"/cluster/{cluster.id}/resource/",
        json={"resource": {"cpu": "lots", "ram": "-1"}},
        token=owner.token,
    )
    assert response.status_code == 422
    assert {"resource.cpu", "resource.ram"} <= set(error_of(response)["fields"])


def test_fit_check_wrong_shape_is_400(api, owner):
    cluster = make_cluster(owner.org)
    response = api.patch(f"/cluster/{cluster.id}/resource/", json={"cpu": 1}, token=owner.token)
    assert response.status_code == 400
    assert {"cpu", "resource"} <= set(error_of(response)["fields"])


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_direct_usage_changes_are_forbidden(api, owner, db, method):
    cluster = make_cluster(owner.org)
    response = api.request(
        method,
        f"/cluster/{cluster.id}/resource/",
        json={"resource": {"cpu": 1}},
        token=owner.token,
    )
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "usage_managed_by_scheduler"
    assert "scheduler" in error["message"]
    used = db.session.scalars(sa.select(ClusterResource.used)).all()
    assert set(used) == {0}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_direct_usage_changes_check_the_token_then_the_cluster(api, owner, outsider, method):
    theirs = make_cluster(outsider.org)
    path = f"/cluster/{theirs.id}/resource/"
    assert api.request(method, path).status_code == 401
    assert api.request(method, path, token=owner.token).status_code == 404
    assert api.request(method, "/cluster/424242/resource/", token=owner.token).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cluster/"),
        ("PUT", "/cluster/"),
        ("GET", "/cluster/1/"),
        ("DELETE", "/cluster/1/"),
        ("PATCH", "/cluster/1/resource/"),
        ("POST", "/cluster/1/resource/"),
        ("DELETE", "/cluster/1/resource/"),
    ],
)
def test_cluster_routes_need_a_token(api, owner, method, path):
    make_cluster(owner.org)
    response = api.request(method, path, json={})
    assert response.status_code == 401
