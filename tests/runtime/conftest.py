"""Fixtures of the runtime tests: real containers on the run's private dockerd.

Every test gets its own install id, so its containers carry labels no other test (nor the
ops helper building images on the same daemon) ever matches, and its own engines: `local`
(the private dockerd, capped at 2 cpu and 1 GiB so preemption is easy to provoke) and `dead`
(a socket nobody listens on). Everything with the test's install label is removed at the end.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.extensions import db as _db
from app.runtime.reconciler import Reconciler
from tests.api.conftest import JsonClient, Member, make_member
from tests.support import dockerd

BUSYBOX = dockerd.BUSYBOX_IMAGE
HTTPD = [
    "sh",
    "-c",
    "mkdir -p /www && echo hello-from-kargo > /www/index.html && exec httpd -f -p 80 -h /www",
]


@pytest.fixture
def install_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def engines_for(daemon: dockerd.Daemon, driver: str, dead_socket: str) -> dict[str, Any]:
    return {
        "local": {
            "driver": driver,
            "endpoint": daemon.host,
            "capacity": {"cpu": "2", "ram": "1"},
        },
        "dead": {"driver": driver, "endpoint": f"unix://{dead_socket}"},
        "elsewhere": {"driver": driver, "endpoint": daemon.host, "organizations": [0]},
    }


@pytest.fixture
def driver_name() -> str:
    return "docker"


@pytest.fixture
def app_config(docker_daemon, install_id, driver_name, tmp_path) -> dict[str, Any]:
    return {
        "ENGINES": engines_for(docker_daemon, driver_name, str(tmp_path / "nobody.sock")),
        "RUNTIME_INSTALL_ID": install_id,
        "RUNTIME_STOP_GRACE_SECONDS": 1,
        "RUNTIME_RESTART_BACKOFF_SECONDS": 1,
        "RUNTIME_RESTART_BACKOFF_MAX_SECONDS": 2,
        "RUNTIME_PULL_RETRY_SECONDS": 2,
        "RUNTIME_ENGINE_TIMEOUT_SECONDS": 5,
        "RECONCILER_POLL_MS": 100,
        "RECONCILER_RESYNC_SECONDS": 1,
        "RECONCILER_LEASE_SECONDS": 3,
    }


@pytest.fixture(autouse=True)
def remove_leftovers(docker_daemon, install_id) -> Iterator[None]:
    yield
    label = f"kargo.install={install_id}"
    services = docker_daemon.docker(
        "service", "ls", "-q", "--filter", f"label={label}", check=False
    )
    if services.split():
        docker_daemon.docker("service", "rm", *services.split(), check=False)
    containers = docker_daemon.docker("ps", "-aq", "--filter", f"label={label}", check=False)
    if containers.split():
        docker_daemon.docker("rm", "-f", *containers.split(), check=False)


@pytest.fixture
def api(client) -> JsonClient:
    return JsonClient(client)


@pytest.fixture
def owner(app) -> Member:
    return make_member(role="owner")


class TestReconciler(Reconciler):
    """The reconciler in-process; after each pass the test's own session forgets what it
    read (the test's app context outlives requests, and with it a read transaction)."""

    def run_once(self):
        reports = super().run_once()
        _db.session.rollback()
        return reports


@pytest.fixture
def reconciler(app) -> Reconciler:
    return TestReconciler(app)


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "the condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def converge(
    reconciler: Reconciler, check: Callable[[], Any], timeout: float = 30, what: str = ""
) -> Any:
    """Run reconciler passes until `check` holds (the test drives the reconciler in-process)."""

    def step() -> Any:
        reconciler.run_once()
        return check()

    return wait_for(step, timeout, what or "the reconciler to converge")


def http_get(port: int) -> str | None:
    try:
        response = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    except requests.RequestException:
        return None
    return response.text if response.ok else None


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def containers_of(daemon: dockerd.Daemon, install_id: str, running_only: bool = False) -> list[str]:
    args = ["ps", "-q", "--filter", f"label=kargo.install={install_id}"]
    if not running_only:
        args.insert(1, "-a")
    return daemon.docker(*args).split()
