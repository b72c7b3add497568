"""The reconciler as its own process: `flask kargo reconcile`, killed with SIGKILL mid-change.

A second reconciler (the test's, in-process) never acts on a cluster whose lease the process
holds; once the process is killed, its lease runs out and the second one converges: every
deployment runs exactly one container, none is leaked or duplicated.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.runtime.conftest import BUSYBOX, containers_of, converge, free_port, wait_for
from tests.runtime.test_docker_runtime import make_cluster, runtime_of

REPO = Path(__file__).resolve().parents[2]


def metrics_text(port: int) -> str | None:
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return None


def engines_toml(path: Path, endpoint: str) -> Path:
    path.write_text(
        "[engines.local]\n"
        'driver = "docker"\n'
        f'endpoint = "{endpoint}"\n'
        "[engines.local.capacity]\n"
        'cpu = "2"\n'
        'ram = "1"\n'
    )
    return path


def start_reconciler(
    database_url: str, engines_file: Path, install_id: str, log: Path, metrics_port: int
):
    env = {
        **os.environ,
        "KARGO_ENV": "development",
        "FLASK_APP": "wsgi.py",
        "DATABASE_URL": database_url,
        "ENGINES_FILE": str(engines_file),
        "RUNTIME_INSTALL_ID": install_id,
        "RECONCILER_POLL_MS": "100",
        "RECONCILER_RESYNC_SECONDS": "1",
        # A lease is renewed only between passes, and its first pass starts six containers
        # one at a time: on a loaded machine 3 s could run out before the check below that it
        # is still held. After the kill, the other reconciler waits this long at most.
        "RECONCILER_LEASE_SECONDS": "15",
        "RECONCILER_WORKERS": "1",  # one start at a time: easy to catch it mid-change
        "RUNTIME_STOP_GRACE_SECONDS": "1",
        "LOG_FORMAT": "text",
        "RECONCILER_METRICS_PORT": str(metrics_port),
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "kargo", "reconcile"],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def test_kill_9_mid_change_then_another_reconciler_converges(
    api, owner, reconciler, docker_daemon, install_id, database_url, tmp_path
):
    cluster = make_cluster(api, owner)
    ids = []
    for number in range(6):
        response = api.put(
            "/deployment/",
            json={
                "cluster_id": cluster["id"],
                "name": f"worker-{number}",
                "image": BUSYBOX,
                "resource": {"cpu": 0.25, "ram": "16Mi"},
                "command": ["sleep", "600"],
            },
            token=owner.token,
        )
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["deployment"]["id"])

    log = tmp_path / "reconciler.log"
    metrics_port = free_port()
    process = start_reconciler(
        database_url,
        engines_toml(tmp_path / "engines.toml", docker_daemon.host),
        install_id,
        log,
        metrics_port,
    )
    try:
        wait_for(
            lambda: containers_of(docker_daemon, install_id) or process.poll() is not None,
            timeout=60,
            what="the reconciler process to start a container",
        )
        assert process.poll() is None, log.read_text()
        # Its own /metrics counts what it did.
        wait_for(
            lambda: (
                'kargo_reconcile_actions_total{action="start"}'
                in (metrics_text(metrics_port) or "")
            ),
            what="the reconciler's metrics to count a start",
        )
        # While the process holds the cluster's lease, the other reconciler keeps off.
        reports = reconciler.run_once()
        assert [report.skipped for report in reports] == [True]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        during = len(containers_of(docker_daemon, install_id))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    def converged():
        states = [runtime_of(api, owner, deployment_id) for deployment_id in ids]
        return all(state and state["status"] == "running" for state in states)

    converge(reconciler, converged, timeout=120, what="every deployment to run")
    started = time.monotonic()
    while time.monotonic() - started < 1:  # one more pass must change nothing
        reconciler.run_once()
    running = containers_of(docker_daemon, install_id)
    assert len(running) == len(ids), f"{during} containers at the kill"
    labels = docker_daemon.docker(
        "ps",
        "-a",
        "--filter",
        f"label=kargo.install={install_id}",
        "--format",
        '{{.Label "kargo.deployment"}}',
    ).split()
    assert sorted(map(int, labels)) == sorted(ids)  # one each: no duplicate, no leak
