"""End to end on a real Docker Engine: the API and the reconciler run busybox containers."""

from __future__ import annotations

from tests.runtime.conftest import (
    BUSYBOX,
    HTTPD,
    containers_of,
    converge,
    http_get,
    port_closed,
)


def make_cluster(api, owner, engine="local", name="live"):
    response = api.put(
        "/cluster/", json={"cluster_name": name, "engine": engine}, token=owner.token
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deploy(api, owner, cluster_id, **fields):
    body = {
        "cluster_id": cluster_id,
        "image": BUSYBOX,
        "resource": {"cpu": 1.5, "ram": "128Mi"},
        "command": HTTPD,
        "ports": [80],
        **fields,
    }
    response = api.put("/deployment/", json=body, token=owner.token)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["deployment"]


def runtime_of(api, owner, deployment_id):
    response = api.get(f"/deployment/{deployment_id}/", token=owner.token)
    assert response.status_code == 200
    return response.get_json()["runtime"]


def host_port(runtime) -> int | None:
    if not runtime or runtime["status"] != "running" or not runtime["ports"]:
        return None
    return runtime["ports"][0]["host"]


def test_engine_cluster_takes_its_capacity_from_the_engine(api, owner):
    cluster = make_cluster(api, owner)
    assert cluster["engine"]["name"] == "local"
    assert cluster["resources"]["cpu"]["capacity"] == 2
    assert cluster["resources"]["ram"]["capacity"] == 1


def test_deploy_runs_a_container_that_answers_then_preempt_restart_delete(
    api, owner, reconciler, docker_daemon, install_id
):
    cluster = make_cluster(api, owner)
    web = deploy(api, owner, cluster["id"], name="web", priority="low")
    assert web["status"] == "running"
    port = converge(reconciler, lambda: host_port(runtime_of(api, owner, web["id"])))
    assert "hello-from-kargo" in (http_get(port) or "")
    assert runtime_of(api, owner, web["id"])["description"].startswith("container up")

    # A higher priority preempts it: its container goes, its port closes, history says who.
    urgent = deploy(api, owner, cluster["id"], name="urgent", priority="high", ports=[])
    reconciler.run_once()
    assert port_closed(port)
    assert runtime_of(api, owner, web["id"])["status"] == "stopped"
    events = api.get(f"/deployment/{web['id']}/events/", token=owner.token).get_json()["items"]
    actions = [event["action"] for event in events]
    assert "deployment.preempted" in actions
    preempted = next(e for e in events if e["action"] == "deployment.preempted")
    assert f"#{urgent['id']}" in preempted["message"]
    assert "deployment.container_stopped" in actions

    # Room returns: it restarts by itself, in a new container.
    assert api.delete(f"/deployment/{urgent['id']}/", token=owner.token).status_code == 204
    converge(reconciler, lambda: host_port(runtime_of(api, owner, web["id"])))
    port = host_port(runtime_of(api, owner, web["id"]))
    assert "hello-from-kargo" in (http_get(port) or "")
    assert len(containers_of(docker_daemon, install_id)) == 1  # urgent's went with it

    # Delete removes it.
    assert api.delete(f"/deployment/{web['id']}/", token=owner.token).status_code == 204
    converge(reconciler, lambda: not containers_of(docker_daemon, install_id))
    assert port_closed(port)
