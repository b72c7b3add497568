"""End to end with the two things an operator declares for a private setup: an engine reached
over TCP with TLS (client certificates), and a registry that asks for a password. Both are
real: the private dockerd's TLS listener (tests/support/dockerd.py) and Debian's
docker-registry with basic auth (tests/support/registry.py), on the docker and swarm drivers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import certifi
import pytest

from app.services import engines
from tests.runtime.conftest import BUSYBOX, converge, wait_for
from tests.runtime.test_docker_runtime import deploy, make_cluster, runtime_of, served
from tests.support import registry as registries

RAM_AND_CPU = {"cpu": "2", "ram": "1"}
# Small, so that a swarm test of another module running meanwhile (one reserves most of the
# node's cpu on purpose) is not disturbed.
SMALL = {"cpu": 0.25, "ram": "64Mi"}


@pytest.fixture(scope="session")
def private_registry(docker_daemon, tmp_path_factory) -> Iterator[registries.Registry]:
    reason = registries.unavailable_reason()
    if reason:
        pytest.skip(f"no private registry: {reason}")
    started = registries.start(tmp_path_factory.mktemp("registry"))
    yield started
    started.stop()


@pytest.fixture
def private_image(private_registry, docker_daemon, install_id) -> str:
    """The busybox image pushed under a name of this test's own, absent from the daemon (so
    running it needs a pull, with credentials)."""
    return private_registry.push(docker_daemon, BUSYBOX, f"kargo-test/{install_id}")


@pytest.fixture(params=["docker", "swarm"])
def driver_name(request) -> str:
    if request.param == "swarm":
        request.getfixturevalue("swarm")
    return request.param


@pytest.fixture
def app_config(app_config, docker_daemon, private_registry, driver_name, tmp_path):
    tls = docker_daemon.tls

    def over_tls(client: str, **more: Any) -> dict[str, Any]:
        return {
            "driver": driver_name,
            "endpoint": tls.endpoint,
            "tls_ca": tls.path("ca.pem"),
            "tls_cert": tls.path(f"{client}-cert.pem"),
            "tls_key": tls.path(f"{client}-key.pem"),
            "capacity": RAM_AND_CPU,
            **more,
        }

    def with_registry(password: str | None) -> dict[str, Any]:
        engine: dict[str, Any] = {
            "driver": driver_name,
            "endpoint": docker_daemon.host,
            "capacity": RAM_AND_CPU,
        }
        if password is not None:
            engine["registries"] = {
                private_registry.host: {"username": registries.USERNAME, "password": password}
            }
        return engine

    app_config["ENGINES"] = {
        **app_config["ENGINES"],
        "tls": over_tls("client"),
        "stranger": over_tls("stranger"),
        "no-files": over_tls("client", tls_cert=str(tmp_path / "missing-cert.pem")),
        "private": with_registry(registries.PASSWORD),
        "wrong-password": with_registry("not-the-password"),
        "no-password": with_registry(None),
    }
    return app_config


def everything_shown(api, owner, cluster_id: int, deployment_id: int) -> str:
    """What the API shows of a cluster and a deployment, with its history, as one text."""
    shown = [
        api.get(path, token=owner.token).get_json()
        for path in (
            f"/cluster/{cluster_id}/",
            f"/deployment/{deployment_id}/",
            f"/deployment/{deployment_id}/events/",
        )
    ]
    return json.dumps(shown)


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def public_ca_bundle_in_the_environment(monkeypatch) -> None:
    """As on many hosts: requests is told to trust the public authorities. The engine's own
    CA must still be the one its connection is verified with."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())


def test_an_engine_reached_over_tls_runs_what_is_deployed(api, owner, reconciler):
    cluster = make_cluster(api, owner, engine="tls")
    assert cluster["engine"]["name"] == "tls"
    assert cluster["resources"]["cpu"]["capacity"] == 2
    web = deploy(api, owner, cluster["id"], name="web", resource=SMALL)
    _port, page = served(api, owner, reconciler, web["id"])
    assert "hello-from-kargo" in page
    engine = api.get(f"/cluster/{cluster['id']}/", token=owner.token).get_json()["engine"]
    assert engine["state"] == "ok"


def test_the_events_of_an_engine_reached_over_tls_are_followed(app, docker_daemon, install_id):
    calls: list[int] = []
    with app.app_context():
        watch = engines.driver("tls").watch(lambda: calls.append(1))
    try:
        wait_for(lambda: watch._stream is not None, what="the watch to connect over TLS")
        container = docker_daemon.docker(
            "run", "--detach", "--label", f"kargo.install={install_id}", BUSYBOX, "sleep", "600"
        ).strip()
        docker_daemon.docker("kill", container)
        wait_for(lambda: calls, what="the container's end to be seen")
    finally:
        watch.close()


def test_an_engine_that_refuses_the_client_certificate_is_named_with_why(api, owner, db):
    response = api.put(
        "/cluster/", json={"cluster_name": "refused", "engine": "stranger"}, token=owner.token
    )
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()["error"]["fields"]["engine"]
    # The words in between are the TLS library's: a TLS 1.3 client may only see the
    # connection end, not the server's alert.
    assert problem.startswith(
        "the engine cannot be reached: engine stranger at tcp://127.0.0.1:"
    ), problem
    assert "refused the TLS connection (" in problem
    assert problem.endswith("): check its tls_ca, tls_cert and tls_key")
    assert api.get("/cluster/", token=owner.token).get_json()["items"] == []


def test_an_engine_whose_tls_files_are_missing_is_named_with_why(api, owner, db, tmp_path):
    response = api.put(
        "/cluster/", json={"cluster_name": "broken", "engine": "no-files"}, token=owner.token
    )
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()["error"]["fields"]["engine"]
    assert problem == (
        "the engine cannot be reached: engine no-files: TLS file not found: "
        f"{tmp_path / 'missing-cert.pem'}"
    )
    assert api.get("/cluster/", token=owner.token).get_json()["items"] == []


# -- a registry that asks for a password ------------------------------------------------------


def test_a_private_image_runs_with_the_engines_credentials(api, owner, reconciler, private_image):
    cluster = make_cluster(api, owner, engine="private")
    web = deploy(api, owner, cluster["id"], name="private-web", image=private_image, resource=SMALL)
    _port, page = served(api, owner, reconciler, web["id"])
    assert "hello-from-kargo" in page
    assert registries.PASSWORD not in everything_shown(api, owner, cluster["id"], web["id"])


@pytest.mark.parametrize("engine", ["wrong-password", "no-password"])
def test_a_private_image_without_the_right_password_fails_with_the_registrys_reason(
    api, owner, reconciler, private_image, engine
):
    cluster = make_cluster(api, owner, engine=engine)
    web = deploy(
        api, owner, cluster["id"], name="locked-out", image=private_image, ports=[], resource=SMALL
    )
    runtime = converge(
        reconciler,
        lambda: (r := runtime_of(api, owner, web["id"])) and r["status"] == "failed" and r,
        what="the pull to fail",
    )
    assert runtime["error"].startswith(f"image pull failed: {private_image}")
    shown = everything_shown(api, owner, cluster["id"], web["id"])
    assert "not-the-password" not in shown and registries.PASSWORD not in shown
