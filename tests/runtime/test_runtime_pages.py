"""What users see of real containers on the pages: the engine choice with its capacity shown
before creating, the container fields of the deploy form, the deployment page's runtime
state, logs and history (each a polling partial), the cluster page's engine and nodes."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.models import Deployment
from tests.factories import make_cluster as make_simulated_cluster
from tests.runtime.conftest import BUSYBOX, converge
from tests.runtime.test_docker_runtime import make_cluster


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_the_create_form_offers_engines_and_shows_their_capacity(client, login_as, owner):
    login_as(client, owner.user)
    page = text(client.get("/clusters/new"))
    assert "Engine local (docker)" in page
    assert "elsewhere" not in page  # declared for another organization only
    offer = text(client.get("/clusters/new/engine?engine=local"))
    assert "Engine local offers 2 cores, 1 GiB" in offer
    dead = text(client.get("/clusters/new/engine?engine=dead"))
    assert "does not answer" in dead
    response = client.post(
        "/clusters/new", data={"name": "on-engine", "engine": "local", "max_deployments": "10"}
    )
    assert response.status_code == 302, text(response)
    refused = client.post("/clusters/new", data={"name": "typed", "engine": "local", "cpu": "64"})
    assert refused.status_code == 422
    assert "comes from the engine" in text(refused)


def test_the_deployment_page_shows_runtime_logs_and_history(
    client, login_as, owner, api, reconciler, db
):
    login_as(client, owner.user)
    cluster = make_cluster(api, owner)
    response = client.post(
        "/deployments/new",
        data={
            "cluster_id": str(cluster["id"]),
            "image": BUSYBOX,
            "name": "talker",
            "priority_preset": "normal",
            "resource_cpu": "0.5",
            "resource_ram": "64Mi",
            "ports": "80, 8080:8080/udp",
            "env": "GREETING=hello-from-the-env\nTOKEN=super-secret-token",
            "command": "sh -c 'echo \"$GREETING\"; echo line-two; exec sleep 600'",
        },
    )
    assert response.status_code == 302, text(response)
    deployment_id = db.session.scalar(sa.select(Deployment.id).where(Deployment.name == "talker"))
    before = text(client.get(f"/deployments/{deployment_id}"))
    assert "Waiting for the reconciler" in before
    assert "super-secret-token" not in before and "TOKEN" in before
    assert "<code>80/tcp</code>" in before and "8080:8080/udp" in before

    converge(
        reconciler,
        lambda: "hello-from-the-env" in text(client.get(f"/deployments/{deployment_id}/logs")),
        what="the container's output",
    )
    page = text(client.get(f"/deployments/{deployment_id}"))
    assert "container up" in page
    assert "line-two" in page
    assert f'hx-get="/deployments/{deployment_id}/runtime"' in page
    runtime = text(client.get(f"/deployments/{deployment_id}/runtime"))
    assert 'data-runtime="running"' in runtime and "127.0.0.1:" in runtime
    timeline = text(client.get(f"/deployments/{deployment_id}/timeline"))
    assert 'data-action="deployment.submitted"' in timeline
    assert 'data-action="deployment.container_started"' in timeline

    cluster_page = text(client.get(f"/clusters/{cluster['id']}"))
    assert 'data-engine-state="ok"' in cluster_page
    assert "Reachable" in cluster_page

    client.post(f"/deployments/{deployment_id}/delete")
    gone = client.get(f"/deployments/{deployment_id}/runtime")
    assert gone.status_code == 286 and "no longer exists" in text(gone)


def test_a_simulated_deployment_says_nothing_runs(client, login_as, owner, db):
    login_as(client, owner.user)
    cluster = make_simulated_cluster(owner.org)
    response = client.post(
        "/deployments/new",
        data={
            "cluster_id": str(cluster.id),
            "image": "nginx:1.27",
            "name": "sim",
            "priority_preset": "normal",
            "resource_cpu": "1",
            "ports": "not-a-port",
        },
    )
    assert response.status_code == 422
    assert "is not a port" in text(response)
    response = client.post(
        "/deployments/new",
        data={
            "cluster_id": str(cluster.id),
            "image": "nginx:1.27",
            "name": "sim",
            "priority_preset": "normal",
            "resource_cpu": "1",
        },
    )
    assert response.status_code == 302
    deployment_id = db.session.scalar(sa.select(Deployment.id).where(Deployment.name == "sim"))
    logs = text(client.get(f"/deployments/{deployment_id}/logs"))
    assert "This cluster is simulated" in logs
    assert (
        "Engine"
        not in text(client.get(f"/clusters/{cluster.id}"))
        .split("Repack")[0]
        .split("Utilization")[0]
    )


def test_partials_of_a_logged_out_viewer_stop_and_redirect(client):
    response = client.get("/deployments/1/runtime")
    assert response.status_code == 286
    assert "/login" in response.headers["HX-Redirect"]
