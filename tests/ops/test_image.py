"""The Docker image, built from the unchanged Dockerfile and run with production settings.

The image is built in the test run's private dockerd on a local stand-in for its base image
(tests/support/images.py: no registry is reachable here). Each database case starts the image
twice (the same container started again) on the same data: a SQLite file on a named volume
(the image's default database, port published on the default bridge), or a fresh PostgreSQL
database of this machine's server (`--network host`). It checks what an operator relies on:
/healthz answers, the HEALTHCHECK turns healthy, every process runs as uid 10001, an account
and a deployment can be made through the API and demo data with `flask kargo demo` inside the
container, `docker stop` ends it with exit code 0 within the grace period, and the second
start finds the schema at head, applies no migration again and still has the data. A third
case runs the reconciler service's container beside the portal's, as docker-compose.yml
describes for a live engine, and checks that a deployment made through the API runs.
Skipped, with the reason, where no private
Docker daemon or debootstrap can run.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.support import dockerd, images
from tests.support.databases import postgres_url, temporary_postgres_database
from tests.support.gunicorn import free_port

ROOT = Path(__file__).resolve().parents[2]
LABEL = "org.kargo.test=ops-image"
UID = "10001"
START_TIMEOUT_SECONDS = 120
HEALTHY_TIMEOUT_SECONDS = 60
STOP_GRACE_SECONDS = 20
PASSWORD = "image-test-Passphrase-7"
METRICS_TOKEN = "image-scrape-token-0123456789"
MIGRATION_LINE = "Running upgrade"


@pytest.fixture(scope="module")
def kargo_image(docker_daemon: dockerd.Daemon) -> images.Built:
    reason = images.unavailable_reason()
    if reason:
        pytest.skip(f"the image's base cannot be made here: {reason}")
    built = images.ensure_kargo_image(docker_daemon)
    print(f"image {built.tag}: {built.size_bytes / 2**20:.0f} MiB, built in {built.seconds:.0f} s")
    return built


def migration_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    (head,) = ScriptDirectory.from_config(config).get_heads()
    return head


class Container:
    """One `docker run -d` of the image, with its own name and the test's label."""

    def __init__(
        self,
        daemon: dockerd.Daemon,
        image: str,
        run_args: list[str],
        base: str,
        command: list[str] | None = None,
    ):
        self.daemon = daemon
        self.name = f"kargo-test-image-{uuid.uuid4().hex[:10]}"
        self.base = base
        health = ["--health-interval", "1s", "--health-retries", "3"]
        daemon.docker(
            "run",
            "--detach",
            "--name",
            self.name,
            "--label",
            LABEL,
            *([] if "--no-healthcheck" in run_args else health),
            *run_args,
            image,
            *(command or []),
        )
        self.published = not base  # published on the bridge: Docker picks the host port
        self._find_published_port()

    def _find_published_port(self) -> None:
        if self.published:  # chosen again at each start
            port = self.daemon.docker("port", self.name, "8001/tcp").split()[0].rsplit(":", 1)[1]
            self.base = f"http://127.0.0.1:{port}"

    def inspect(self) -> dict:
        return json.loads(self.daemon.docker("inspect", self.name))[0]

    def logs(self) -> str:
        result = subprocess.run(
            [dockerd.docker_cli(), "--host", self.daemon.host, "logs", self.name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout + result.stderr

    def exec(self, *command: str) -> str:
        return self.daemon.docker("exec", self.name, *command, timeout=120)

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            state = self.inspect()["State"]
            if not state["Running"]:
                pytest.fail(f"container exited ({state['ExitCode']}):\n{self.logs()[-4000:]}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=3).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        pytest.fail(f"/healthz did not answer within {START_TIMEOUT_SECONDS} s:\n{self.logs()}")

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            health = self.inspect()["State"].get("Health") or {}
            if health.get("Status") == "healthy":
                return
            time.sleep(0.5)
        pytest.fail(f"HEALTHCHECK never turned healthy: {self.inspect()['State'].get('Health')}")

    def process_uids(self) -> set[str]:
        """The uid of every process in the container, as the host's `docker top` sees them."""
        lines = self.daemon.docker("top", self.name, "-o", "uid,pid,args").splitlines()
        return {line.split()[0] for line in lines[1:] if line.strip()}

    def start(self) -> None:
        self.daemon.docker("start", self.name)
        self._find_published_port()

    def stop(self) -> tuple[float, int]:
        started = time.monotonic()
        self.daemon.docker("stop", "--time", str(STOP_GRACE_SECONDS), self.name, timeout=120)
        return time.monotonic() - started, self.inspect()["State"]["ExitCode"]

    def remove(self) -> None:
        self.daemon.docker("rm", "--force", self.name, check=False)


def signup_and_deploy(base: str) -> tuple[str, int]:
    """An owner and organization, a cluster and one running deployment, through the API."""
    api = f"{base}/api/v1"
    account = {
        "user": {"username": "imageowner", "password": PASSWORD, "display_name": "Image"},
        "organization": {"name": "Image Test"},
    }
    response = requests.put(f"{api}/user/create/", json=account, timeout=30)
    assert response.status_code == 201, response.text
    response = requests.post(
        f"{api}/user/login/", json={"username": "imageowner", "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['token']}"}
    cluster = {"cluster_name": "image-pool", "resource": {"cpu": "4", "ram": "8"}}
    response = requests.put(f"{api}/cluster/", json=cluster, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    body = {
        "cluster_id": response.json()["id"],
        "image": "registry.example.com/team/api:1",
        "priority": 500,
        "resource": {"cpu": "1", "ram": "2"},
    }
    response = requests.put(f"{api}/deployment/", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    deployment = response.json()["deployment"]
    assert deployment["status"] == "running", deployment
    return headers["Authorization"], deployment["id"]


def deployment_status(base: str, authorization: str, deployment_id: int) -> str:
    response = requests.get(
        f"{base}/api/v1/deployment/{deployment_id}/",
        headers={"Authorization": authorization},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["status"]


def migration_lines(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if MIGRATION_LINE in line]


class Stopwatch:
    """Seconds per step, printed with the test's output (where the time goes on vfs)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.laps: list[str] = []

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps.append(f"{name} {now - self.last:.1f}s")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.laps)


def shutdown_seconds(logs: str) -> float:
    """From gunicorn's "Handling signal: term" to its "Shutting down: Master", by the log's own
    timestamps (the last stop in the logs)."""
    signalled = finished = None
    for line in logs.splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry["message"] == "Handling signal: term":
            signalled, finished = datetime.fromisoformat(entry["ts"]), None
        elif entry["message"] == "Shutting down: Master":
            finished = datetime.fromisoformat(entry["ts"])
    assert signalled and finished, f"no complete shutdown in the logs:\n{logs[-3000:]}"
    return (finished - signalled).total_seconds()


def check_stops_cleanly(container: Container) -> None:
    """`docker stop` sends SIGTERM and, after the grace period, SIGKILL (exit code 137): exit
    code 0 means gunicorn finished by itself before that. How long it took is read from its own
    log lines; the command's wall time, which on a loaded machine includes Docker's own
    overhead, is only reported."""
    seconds, exit_code = container.stop()
    logs = container.logs()
    assert exit_code == 0, f"exit code {exit_code} after docker stop:\n{logs[-3000:]}"
    shutdown = shutdown_seconds(logs)
    assert shutdown < STOP_GRACE_SECONDS, f"gunicorn took {shutdown:.1f} s to shut down"
    print(f"docker stop: {seconds:.1f} s, gunicorn's shutdown {shutdown:.1f} s")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, docker_daemon: dockerd.Daemon) -> Iterator[dict]:
    """How the containers reach their database: run arguments, and how to read alembic_version."""
    if request.param == "sqlite":
        if postgres_url() is not None:
            # `make test` runs the suite twice; the image does not depend on the pass, so the
            # SQLite container is checked once, in the SQLite pass, and the PostgreSQL one here.
            pytest.skip("the image on SQLite is checked in the SQLite pass")
        volume = f"kargo-test-image-{uuid.uuid4().hex[:10]}"
        docker_daemon.docker("volume", "create", "--label", LABEL, volume)
        try:
            yield {
                "kind": "sqlite",
                "run_args": [
                    "--volume",
                    f"{volume}:/srv/kargo/instance",
                    "--publish",
                    "127.0.0.1::8001",
                ],
                "port": None,
                "url": None,
            }
        finally:
            docker_daemon.docker("volume", "rm", "--force", volume, check=False)
        return
    base = postgres_url()
    if base is None:
        pytest.skip("KARGO_TEST_DATABASE_URL is not set; the image is not checked on PostgreSQL")
    with temporary_postgres_database(base, "image") as url:
        port = free_port()
        yield {
            "kind": "postgresql",
            "run_args": [
                "--network",
                "host",
                "--env",
                f"DATABASE_URL={url}",
                "--env",
                f"PORT={port}",
            ],
            "port": port,
            "url": url,
        }


def alembic_versions(container: Container, database: dict) -> list[str]:
    if database["kind"] == "postgresql":
        engine = sa.create_engine(database["url"])
        try:
            with engine.connect() as connection:
                return list(
                    connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
                )
        finally:
            engine.dispose()
    script = (
        "import sqlite3; rows = sqlite3.connect('instance/kargo.db')"
        ".execute('SELECT version_num FROM alembic_version').fetchall(); "
        "print(' '.join(row[0] for row in rows))"
    )
    return container.exec("python", "-c", script).split()


def test_the_image_serves_migrates_once_and_stops_cleanly(
    docker_daemon: dockerd.Daemon, kargo_image: images.Built, database: dict
) -> None:
    base = f"http://127.0.0.1:{database['port']}" if database["port"] else ""
    public = base or "http://127.0.0.1:8001"
    run_args = [
        *database["run_args"],
        "--env",
        f"SECRET_KEY={secrets.token_urlsafe(32)}",
        "--env",
        f"PUBLIC_URL={public}",
        "--env",
        "WEB_CONCURRENCY=2",
        "--env",
        f"METRICS_TOKEN={METRICS_TOKEN}",
        "--stop-timeout",
        str(STOP_GRACE_SECONDS),
    ]
    head = migration_head()

    clock = Stopwatch()
    container = Container(docker_daemon, kargo_image.tag, run_args, base)
    clock.lap("docker run")
    try:
        container.wait_until_serving()
        clock.lap("serving")
        container.wait_until_healthy()
        clock.lap("healthy")
        assert container.process_uids() == {UID}, docker_daemon.docker("top", container.name)
        assert container.exec("id", "-u").strip() == UID

        authorization, deployment_id = signup_and_deploy(container.base)
        demo = container.exec("flask", "kargo", "demo")
        assert "demo" in demo, demo
        response = requests.post(
            f"{container.base}/api/v1/user/login/",
            json={"username": "demo", "password": "kargo-harbor-2026"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        metrics = requests.get(
            f"{container.base}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=30,
        )
        assert metrics.status_code == 200 and "kargo_http_requests_total" in metrics.text

        logs = container.logs()
        assert migration_lines(logs), f"the first start applied no migration:\n{logs[-3000:]}"
        for line in logs.splitlines():
            if line.startswith("{"):
                json.loads(line)  # production logs are JSON lines, every one of them
        clock.lap("checks")
        check_stops_cleanly(container)
        clock.lap("docker stop")

        # The second start: the same container started again (what a restart policy or
        # `docker compose restart` does; a new container costs a full copy of the image on
        # the test daemon's vfs storage), on the same database.
        first_logs = len(container.logs().splitlines())
        container.start()
        container.wait_until_serving()
        clock.lap("second start serving")
        container.wait_until_healthy()
        clock.lap("healthy")
        logs = "\n".join(container.logs().splitlines()[first_logs:])
        assert "Listening at" in logs, logs[-3000:]  # the second start's own lines
        assert migration_lines(logs) == [], f"the second start migrated again:\n{logs[-3000:]}"
        assert alembic_versions(container, database) == [head]
        assert deployment_status(container.base, authorization, deployment_id) == "running"
        check_stops_cleanly(container)
        clock.lap("docker stop")
    finally:
        container.remove()
        clock.lap("docker rm")
        print(f"{database['kind']}: {clock}")


def test_the_reconciler_container_runs_deployments_on_the_engine(
    docker_daemon: dockerd.Daemon, kargo_image: images.Built, tmp_path: Path
) -> None:
    """The compose setup with a live engine: the portal and the reconciler service from the
    same image, both given the engines file and the Docker socket (the socket's group added,
    since the image runs as uid 10001), on one PostgreSQL database."""
    base_url = postgres_url()
    if base_url is None:
        pytest.skip("KARGO_TEST_DATABASE_URL is not set: the reconciler service runs on PostgreSQL")
    install_id = f"image{uuid.uuid4().hex[:10]}"
    engines_file = tmp_path / "engines.toml"
    engines_file.write_text(
        '[engines.local]\ndriver = "docker"\nendpoint = "unix:///var/run/docker.sock"\n'
        '[engines.local.capacity]\ncpu = "1"\nram = "1"\n'
    )
    engines_file.chmod(0o644)
    socket_group = str(docker_daemon.socket.stat().st_gid)
    port = free_port()
    with temporary_postgres_database(base_url, "imagerec") as url:
        shared = [
            "--network",
            "host",
            "--env",
            f"DATABASE_URL={url}",
            "--env",
            f"SECRET_KEY={secrets.token_urlsafe(32)}",
            "--env",
            f"PUBLIC_URL=http://127.0.0.1:{port}",
            "--env",
            "ENGINES_FILE=/etc/kargo/engines.toml",
            "--env",
            f"RUNTIME_INSTALL_ID={install_id}",
            "--volume",
            f"{docker_daemon.socket}:/var/run/docker.sock",
            "--volume",
            f"{engines_file}:/etc/kargo/engines.toml:ro",
            "--group-add",
            socket_group,
            "--stop-timeout",
            str(STOP_GRACE_SECONDS),
        ]
        portal = Container(
            docker_daemon,
            kargo_image.tag,
            [*shared, "--env", f"PORT={port}", "--env", "WEB_CONCURRENCY=2"],
            f"http://127.0.0.1:{port}",
        )
        reconciler = None
        try:
            portal.wait_until_serving()
            reconciler = Container(
                docker_daemon,
                kargo_image.tag,
                [*shared, "--env", "RECONCILER_RESYNC_SECONDS=2", "--no-healthcheck"],
                f"http://127.0.0.1:{port}",
                command=["flask", "kargo", "reconcile"],
            )
            api = f"{portal.base}/api/v1"
            account = {
                "user": {"username": "engineowner", "password": PASSWORD, "display_name": "E"},
                "organization": {"name": "Engine Test"},
            }
            assert requests.put(f"{api}/user/create/", json=account, timeout=30).status_code == 201
            login = requests.post(
                f"{api}/user/login/",
                json={"username": "engineowner", "password": PASSWORD},
                timeout=30,
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            response = requests.put(
                f"{api}/cluster/",
                json={"cluster_name": "live", "engine": "local"},
                headers=headers,
                timeout=30,
            )
            assert response.status_code == 201, response.text
            body = {
                "cluster_id": response.json()["id"],
                "name": "sleeper",
                "image": dockerd.BUSYBOX_IMAGE,
                "command": ["sleep", "600"],
                "resource": {"cpu": "0.25", "ram": "16Mi"},
            }
            response = requests.put(f"{api}/deployment/", json=body, headers=headers, timeout=30)
            assert response.status_code == 201, response.text
            deployment_id = response.json()["deployment"]["id"]

            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            runtime = None
            while time.monotonic() < deadline:
                shown = requests.get(
                    f"{api}/deployment/{deployment_id}/", headers=headers, timeout=30
                )
                runtime = shown.json().get("runtime")
                if runtime and runtime["status"] == "running":
                    break
                time.sleep(1)
            else:
                pytest.fail(f"never ran: {runtime}\nreconciler:\n{reconciler.logs()[-3000:]}")
            running = docker_daemon.docker(
                "ps",
                "--filter",
                f"label=kargo.install={install_id}",
                "--format",
                '{{.Label "kargo.deployment"}}',
            ).split()
            assert running == [str(deployment_id)]
            assert reconciler.process_uids() == {UID}

            seconds, exit_code = reconciler.stop()  # 137 had it been killed after the grace
            assert exit_code == 0, reconciler.logs()[-3000:]
            print(f"reconciler: docker stop {seconds:.1f} s")
            engine = sa.create_engine(url)
            try:
                with engine.connect() as connection:
                    holders = connection.execute(sa.text("SELECT holder FROM cluster_runtime"))
                    assert list(holders.scalars()) == [None]  # its lease given back on the way out
            finally:
                engine.dispose()
        finally:
            portal.remove()
            if reconciler is not None:
                reconciler.remove()
            ids = docker_daemon.docker(
                "ps", "-aq", "--filter", f"label=kargo.install={install_id}", check=False
            ).split()
            if ids:
                docker_daemon.docker("rm", "--force", *ids, check=False, timeout=300)
