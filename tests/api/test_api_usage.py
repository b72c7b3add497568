"""GET /api/v1/cluster/<id>/usage/: usage and queued demand over time, with checked params."""

from __future__ import annotations

import pytest

from app.services import clusters, deployments


@pytest.fixture
def pool(owner):
    cluster = clusters.create_cluster(owner.user, "pool", {"cpu": "4", "ram": "8"})
    deployments.submit(owner.user, cluster.id, "web:1", "a", 100, {"cpu": "3", "ram": "2"})
    deployments.submit(owner.user, cluster.id, "web:1", "b", 100, {"cpu": "2"})
    return cluster


def test_usage_over_the_last_hour_by_default(api, owner, pool) -> None:
    answer = api.get(f"/cluster/{pool.id}/usage/", token=owner.token)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["step"] == 60 and len(body["points"]) == 60
    assert body["kinds"] == [
        {"kind": "cpu", "unit": "cores", "capacity": 4},
        {"kind": "ram", "unit": "GiB", "capacity": 8},
    ]
    newest = body["points"][-1]  # a mean over the minute: the cluster was empty a moment ago
    assert newest["peak"] == {"cpu": 3, "ram": 2}
    assert 0 < newest["used"]["cpu"] <= 3 and 0 < newest["queued"]["cpu"] <= 2
    assert 0 < newest["utilization"]["cpu"] <= 75 and 0 < newest["utilization"]["ram"] <= 25
    assert body["points"][0]["utilization"] == {"cpu": None, "ram": None}  # before it existed


def test_since_and_step_as_durations(api, owner, pool) -> None:
    body = api.get(f"/cluster/{pool.id}/usage/?since=1d&step=1h", token=owner.token).get_json()
    assert body["step"] == 3600 and len(body["points"]) == 24


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=tomorrow", "since"),
        ("since=2999-01-01T00:00:00Z", "since"),
        ("step=0", "step"),
        ("step=-5", "step"),
        ("step=1", "step"),
        ("since=365d&step=60", "step"),
    ],
)
def test_bad_parameters_answer_422(api, owner, pool, query, field) -> None:
    answer = api.get(f"/cluster/{pool.id}/usage/?{query}", token=owner.token)
    assert answer.status_code == 422
    assert field in answer.get_json()["error"]["fields"]


def test_another_organizations_cluster_is_not_found(api, outsider, pool) -> None:
    assert api.get(f"/cluster/{pool.id}/usage/", token=outsider.token).status_code == 404
    assert api.get("/cluster/0/usage/", token=outsider.token).status_code == 404
