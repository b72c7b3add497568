"""Fixtures of the runtime tests: real containers on the run's private dockerd.

Every test gets its own install id, so its containers carry labels no other test (nor the
ops helper building images on the same daemon) ever matches, and its own engines: `local`
(the private dockerd, capped at 2 cpu and 1 GiB so preemption is easy to provoke) and `dead`
(a socket nobody listens on). Everything with the test's install label is removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.extensions import db as _db
from app.reconciler import Reconciler
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


def engines_for(
    daemon: dockerd.Daemon, driver: str, dead_socket: str, flaky_socket: str
) -> dict[str, Any]:
    return {
        "local": {
            "driver": driver,
            "endpoint": daemon.host,
            "capacity": {"cpu": "2", "ram": "1"},
        },
        "dead": {"driver": driver, "endpoint": f"unix://{dead_socket}"},
        "elsewhere": {"driver": driver, "endpoint": daemon.host, "organizations": [0]},
        # The private dockerd reached through a symbolic link the test removes and puts back:
        # an engine that goes away and returns.
        "flaky": {
            "driver": driver,
            "endpoint": f"unix://{flaky_socket}",
            "capacity": {"cpu": "2", "ram": "1"},
        },
    }


@pytest.fixture
def driver_name() -> str:
    return "docker"


@pytest.fixture(scope="session")
def swarm(docker_daemon):
    """The private dockerd as a swarm manager (idempotent: it may be one already)."""
    state = docker_daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    if state != "active":
        # Another pytest worker may be initializing it at the same moment: either wins.
        docker_daemon.docker("swarm", "init", "--advertise-addr", "127.0.0.1", check=False)
        wait_for(
            lambda: (
                docker_daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
                == "active"
            ),
            timeout=60,
            what="the swarm to be active",
        )
    return docker_daemon


@pytest.fixture
def app_config(docker_daemon, install_id, driver_name, tmp_path) -> dict[str, Any]:
    return {
        "ENGINES": engines_for(
            docker_daemon,
            driver_name,
            str(tmp_path / "nobody.sock"),
            str(tmp_path / "flaky.sock"),
        ),
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


def wait_for(check: Callable[[], Any], timeout: float = 90, what: str = "the condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` (a
    bound generous enough for a loaded machine, not a measure: it costs nothing when met)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def converge(
    reconciler: Reconciler, check: Callable[[], Any], timeout: float = 90, what: str = ""
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


class SocketRelay:
    """A Unix socket that forwards to the private dockerd: an engine the test can take away
    (every connection closed, the socket gone) and bring back."""

    def __init__(self, path: str, target: str) -> None:
        self.path, self.target = path, target
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(self.path)
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                    connection.close()
            self._open.clear()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@pytest.fixture
def flaky_engine(docker_daemon, tmp_path) -> Iterator[SocketRelay]:
    relay = SocketRelay(str(tmp_path / "flaky.sock"), str(docker_daemon.socket))
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
