"""/metrics: Prometheus text behind a token, with request, scheduling and cluster metrics."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.services import clusters, deployments
from tests.factories import make_org, make_user

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def app_config() -> dict:
    return {"METRICS_TOKEN": TOKEN}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_metrics_need_the_token(client, headers) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"kargo_" not in response.get_data()


@pytest.mark.parametrize("app_config", [{"METRICS_TOKEN": ""}])
def test_metrics_are_off_without_a_token(client) -> None:
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_requests_are_counted_by_route_template_not_by_path(client) -> None:
    before = scrape(client)
    for missing in (123, 456, 789):
        client.get(f"/clusters/{missing}")
    client.get("/no/such/page/at/all")
    after = scrape(client)
    key = {"endpoint": "/clusters/<int:cluster_id>", "method": "GET", "status": "302"}
    assert (
        value(after, "kargo_http_requests_total", **key)
        - value(before, "kargo_http_requests_total", **key)
        == 3
    )
    unmatched = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, "kargo_http_requests_total", **unmatched) >= 1
    assert not any("no/such" in str(labels) for _, labels in after)
    count = (
        "kargo_http_request_duration_seconds_count",
        {"endpoint": key["endpoint"], "method": "GET"},
    )
    assert value(after, count[0], **count[1]) - value(before, count[0], **count[1]) == 3


def test_clusters_scheduling_and_preemptions_are_visible(client) -> None:
    owner = make_user(make_org(), role="owner")
    cluster = clusters.create_cluster(owner, "pool", {"cpu": "4", "ram": "8Gi"})
    before = scrape(client)
    low = deployments.submit(owner, cluster.id, "web:1", "low", 100, {"cpu": "3", "ram": "1Gi"})
    deployments.submit(owner, cluster.id, "db:1", "high", 900, {"cpu": "2"})
    deployments.submit(owner, cluster.id, "web:1", "tiny", 100, {"cpu": "1"}, dry_run=True)
    after = scrape(client)

    labels = {
        "cluster_id": str(cluster.id),
        "cluster": "pool",
        "organization_id": str(owner.organization_id),
    }
    assert value(after, "kargo_cluster_capacity", **labels, kind="cpu") == 4000
    assert value(after, "kargo_cluster_capacity", **labels, kind="ram") == 8192
    assert value(after, "kargo_cluster_used", **labels, kind="cpu") == 2000
    assert value(after, "kargo_cluster_queued_demand", **labels, kind="cpu") == 3000
    assert value(after, "kargo_cluster_queued_demand", **labels, kind="ram") == 1024
    assert value(after, "kargo_cluster_running_deployments", **labels) == 1
    assert value(after, "kargo_cluster_queue_length", **labels) == 1

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("kargo_scheduling_decisions_total", event="submit") == 2
    assert delta("kargo_scheduling_decisions_total", event="dry_run") == 1
    assert delta("kargo_scheduling_decision_duration_seconds_count", event="submit") == 2
    assert delta("kargo_preemptions_total") == 1
    assert delta("kargo_deployment_starts_total") == 2
    assert low.status == "running"
