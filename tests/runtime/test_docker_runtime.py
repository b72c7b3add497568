"""End to end on a real Docker Engine: the API and the reconciler run busybox containers."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.models import Deployment
from app.runtime.base import WorkloadSpec
from app.services import engines, reconcile
from tests.runtime.conftest import (
    BUSYBOX,
    HTTPD,
    containers_of,
    converge,
    free_port,
    http_get,
    port_closed,
    wait_for,
)


def served(api, owner, reconciler, deployment_id: int) -> tuple[int, str]:
    """(the port the deployment is published on, the page its container serves there), read
    afresh at every try with a reconciler pass between tries: the server may start just after
    the container runs, and a swarm replaces a task that failed to start by one on a new
    port (seen once on a loaded machine: the first port never answered)."""

    def answered() -> tuple[int, str] | None:
        port = host_port(runtime_of(api, owner, deployment_id))
        page = http_get(port) if port else None
        return (port, page) if page else None

    return converge(reconciler, answered, what=f"deployment #{deployment_id} to answer")


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
    port, page = served(api, owner, reconciler, web["id"])
    assert "hello-from-kargo" in page
    assert runtime_of(api, owner, web["id"])["description"].startswith("container up")

    # A higher priority preempts it: its container goes, its port closes, history says who.
    urgent = deploy(api, owner, cluster["id"], name="urgent", priority="high", ports=[])
    reconciler.run_once()
    wait_for(lambda: port_closed(port), what="the port to close")  # a swarm stops asynchronously
    assert runtime_of(api, owner, web["id"])["status"] == "stopped"
    events = api.get(f"/deployment/{web['id']}/events/", token=owner.token).get_json()["items"]
    actions = [event["action"] for event in events]
    assert "deployment.preempted" in actions
    preempted = next(e for e in events if e["action"] == "deployment.preempted")
    assert f"#{urgent['id']}" in preempted["message"]
    assert "deployment.container_stopped" in actions

    # Room returns: it restarts by itself, in a new container.
    assert api.delete(f"/deployment/{urgent['id']}/", token=owner.token).status_code == 204
    port, page = served(api, owner, reconciler, web["id"])
    assert "hello-from-kargo" in page
    wait_for(  # urgent's container went with it
        lambda: len(containers_of(docker_daemon, install_id)) == 1, what="one container left"
    )

    # Delete removes it.
    assert api.delete(f"/deployment/{web['id']}/", token=owner.token).status_code == 204
    converge(reconciler, lambda: not containers_of(docker_daemon, install_id))
    wait_for(lambda: port_closed(port), what="the port to close")


def test_a_container_killed_from_outside_is_seen_and_restarted(
    api, owner, reconciler, docker_daemon, install_id
):
    cluster = make_cluster(api, owner)
    web = deploy(api, owner, cluster["id"], name="web")
    converge(reconciler, lambda: host_port(runtime_of(api, owner, web["id"])))
    container = docker_daemon.docker(
        "ps",
        "-q",
        "--filter",
        f"label=kargo.install={install_id}",
        "--filter",
        f"label=kargo.deployment={web['id']}",
    ).split()[0]
    docker_daemon.docker("kill", container)
    converge(
        reconciler,
        lambda: (
            (r := runtime_of(api, owner, web["id"]))["status"] == "running"
            and r["restart_count"] == 1
            and host_port(r)
        ),
        what="the killed container to be restarted",
    )
    assert "hello-from-kargo" in served(api, owner, reconciler, web["id"])[1]
    events = api.get(f"/deployment/{web['id']}/events/", token=owner.token).get_json()["items"]
    seen = [e for e in events if e["actor_kind"] == "reconciler"]
    assert any("exited with code 137" in e["message"].lower() for e in seen), [
        e["message"] for e in seen
    ]
    assert any(e["action"] == "deployment.container_restarted" for e in seen)


def test_a_container_created_but_never_started_is_started(
    api, owner, reconciler, docker_daemon, install_id
):
    """A reconciler killed between creating a container and starting it leaves it "created";
    the next holder of the lease starts that very container (it used to wait on it forever,
    showing "starting")."""
    cluster = make_cluster(api, owner)
    web = deploy(api, owner, cluster["id"], name="web")
    with reconciler.app.app_context():
        started_at = db.session.get(Deployment, web["id"]).started_at
        generation = reconcile.generation_of(started_at)
        name = engines.driver("local").container_name(
            WorkloadSpec(web["id"], cluster["id"], "web", BUSYBOX, generation, {})
        )
    created = docker_daemon.docker(
        "create",
        "--name",
        name,
        "--label",
        f"kargo.install={install_id}",
        "--label",
        f"kargo.cluster={cluster['id']}",
        "--label",
        f"kargo.deployment={web['id']}",
        "--label",
        f"kargo.generation={generation}",
        "-p",
        "80",
        BUSYBOX,
        *HTTPD,
    ).strip()
    port = converge(reconciler, lambda: host_port(runtime_of(api, owner, web["id"])))
    assert "hello-from-kargo" in (http_get(port) or "")
    assert containers_of(docker_daemon, install_id) == [created[:12]]


def test_an_image_pull_failure_says_which_image_and_why(api, owner, reconciler):
    cluster = make_cluster(api, owner)
    image = f"127.0.0.1:{free_port()}/nothing:1"
    broken = deploy(api, owner, cluster["id"], name="broken", image=image, ports=[])
    runtime = converge(
        reconciler,
        lambda: (r := runtime_of(api, owner, broken["id"])) and r["status"] == "failed" and r,
        what="the pull to fail",
    )
    assert runtime["error"].startswith(f"image pull failed: {image}")
    assert runtime["description"] == runtime["error"]
    events = api.get(f"/deployment/{broken['id']}/events/", token=owner.token).get_json()["items"]
    failed = [e for e in events if e["action"] == "deployment.pull_failed"]
    assert len(failed) == 1 and image in failed[0]["message"]
    reconciler.run_once()  # a retry that fails the same way is not recorded again
    events = api.get(f"/deployment/{broken['id']}/events/", token=owner.token).get_json()["items"]
    assert len([e for e in events if e["action"] == "deployment.pull_failed"]) == 1


def test_the_docker_driver_knows_which_starts_pull(api, owner, reconciler):
    """What makes a deployment show "pulling": an image not on the engine (never pulled here:
    the question is only asked)."""
    with reconciler.app.app_context():
        driver = engines.driver("local")
        assert driver.needs_pull(BUSYBOX) is False
        assert driver.needs_pull(f"127.0.0.1:{free_port()}/nothing:1") is True


def test_an_engine_that_goes_away_is_shown_and_converges_when_back(
    api, owner, reconciler, docker_daemon, install_id, flaky_engine
):
    cluster = make_cluster(api, owner, engine="flaky")
    first = deploy(api, owner, cluster["id"], name="first", resource={"cpu": 0.5, "ram": "64Mi"})
    converge(reconciler, lambda: host_port(runtime_of(api, owner, first["id"])))

    flaky_engine.stop()  # the engine stops answering
    reconciler.run_once()
    engine = api.get(f"/cluster/{cluster['id']}/", token=owner.token).get_json()["engine"]
    assert engine["state"] == "unreachable"
    assert "does not answer" in engine["error"]
    # Work submitted meanwhile is kept (the scheduler admits it), and nothing is lost.
    second = deploy(api, owner, cluster["id"], name="second", resource={"cpu": 0.5, "ram": "64Mi"})
    reconciler.run_once()
    assert runtime_of(api, owner, second["id"]) is None

    flaky_engine.start()  # back
    converge(reconciler, lambda: host_port(runtime_of(api, owner, second["id"])))
    engine = api.get(f"/cluster/{cluster['id']}/", token=owner.token).get_json()["engine"]
    assert engine["state"] == "ok"
    assert runtime_of(api, owner, first["id"])["status"] == "running"
    wait_for(lambda: len(containers_of(docker_daemon, install_id, running_only=True)) == 2)
    events = api.get(f"/cluster/{cluster['id']}/", token=owner.token)
    assert events.status_code == 200


def test_engine_choices_are_checked_when_a_cluster_is_created(api, owner, db):
    dead = api.put("/cluster/", json={"cluster_name": "dead", "engine": "dead"}, token=owner.token)
    assert dead.status_code == 422
    assert "does not answer" in dead.get_json()["error"]["fields"]["engine"]
    for name in ("elsewhere", "nope"):  # not this organization's, not declared
        response = api.put(
            "/cluster/", json={"cluster_name": name, "engine": name}, token=owner.token
        )
        assert response.status_code == 422
        assert "no engine named" in response.get_json()["error"]["fields"]["engine"]
    typed = api.put(
        "/cluster/",
        json={"cluster_name": "typed", "engine": "local", "resource": {"cpu": 64}},
        token=owner.token,
    )
    assert typed.status_code == 422
    assert "comes from the engine" in typed.get_json()["error"]["fields"]["resource.cpu"]


@pytest.mark.parametrize(
    ("fields", "key", "words"),
    [
        ({"resource": {"cpu": 1}}, "resource.ram", "request some ram"),
        ({"resource": {"ram": 1}}, "resource.cpu", "request some cpu"),
        ({"resource": {"cpu": 1, "ram": "1Mi"}}, "resource.ram", "at least 6 MiB"),
        ({"ports": ["http"]}, "ports", "is not a port"),
        ({"ports": [70000]}, "ports", "out of range"),
        ({"ports": [80, "80"]}, "ports", "listed twice"),
        ({"ports": {"80": 80}}, "ports", "must be a list"),
        ({"env": {"1BAD": "x"}}, "env", "is not a variable name"),
        ({"env": {"GOOD": ["x"]}}, "env", "must be a string"),
        ({"env": "no-equals"}, "env", "needs NAME=value"),
        ({"command": "sh -c 'unclosed"}, "command", "cannot be read"),
        ({"command": ["sh", 1]}, "command", "string or a list of strings"),
        ({"command": "x" * 1001}, "command", "at most 1000"),
    ],
)
def test_container_fields_are_validated_with_clear_422s(api, owner, db, fields, key, words):
    cluster = make_cluster(api, owner)
    body = {
        "cluster_id": cluster["id"],
        "image": BUSYBOX,
        "resource": {"cpu": 1, "ram": "64Mi"},
        **fields,
    }
    response = api.put("/deployment/", json=body, token=owner.token)
    assert response.status_code == 422, response.get_json()
    assert words in response.get_json()["error"]["fields"][key]
    listed = api.get("/deployment/", token=owner.token).get_json()
    assert listed["count"] == 0 if "count" in listed else listed["items"] == []


def test_env_values_are_never_shown_back(api, owner, reconciler, docker_daemon):
    cluster = make_cluster(api, owner)
    secret = "s3cret-value-for-kargo"
    web = deploy(
        api, owner, cluster["id"], env={"TOKEN": secret, "MODE": "prod"}, command=None, ports=[]
    )
    shown = api.get(f"/deployment/{web['id']}/", token=owner.token)
    assert secret not in shown.get_data(as_text=True)
    assert set(shown.get_json()["env"]) == {"TOKEN", "MODE"}
    # ...but the container gets them.
    converge(reconciler, lambda: (runtime_of(api, owner, web["id"]) or {}).get("container_id"))
    container = runtime_of(api, owner, web["id"])["container_id"]
    inspected = docker_daemon.docker("inspect", "--format", "{{json .Config.Env}}", container)
    assert f"TOKEN={secret}" in inspected
    limits = docker_daemon.docker(
        "inspect",
        "--format",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.Privileged}} "
        "{{.HostConfig.PidsLimit}} {{.HostConfig.SecurityOpt}} {{.HostConfig.NetworkMode}}",
        container,
    ).split(maxsplit=5)
    assert limits[:4] == ["1500000000", str(128 * 1024 * 1024), "false", "256"]
    assert "no-new-privileges" in limits[4] and limits[5].strip() == "bridge"
