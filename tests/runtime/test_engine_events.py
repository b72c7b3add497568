"""The reconciler follows the engines' container events: a container that ends is looked at
within a poll, not at the next resync (which these tests put an hour away)."""

from __future__ import annotations

import threading

import pytest

from app.extensions import db
from app.reconciler import Reconciler
from app.services import engines
from tests.runtime.conftest import containers_of, wait_for
from tests.runtime.test_docker_runtime import deploy, host_port, make_cluster, runtime_of

NO_RESYNC = {"RECONCILER_RESYNC_SECONDS": 3600, "RECONCILER_LEASE_SECONDS": 7200}


@pytest.fixture
def app_config(app_config):
    return {**app_config, **NO_RESYNC}


def runtime_now(api, owner, deployment_id: int):
    """The deployment's runtime as the loop last wrote it: the test's app context (which its
    requests share) first lets go of the snapshot it read before."""
    db.session.rollback()
    return runtime_of(api, owner, deployment_id)


@pytest.fixture
def loop(app):
    """The reconciler's own loop, in a thread, as `flask kargo reconcile` runs it."""
    reconciler = Reconciler(app, holder="events-test")
    thread = threading.Thread(target=reconciler.run, daemon=True)
    thread.start()
    yield reconciler
    reconciler.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_container_killed_from_outside_restarts_without_waiting_for_a_resync(
    api, owner, loop, docker_daemon, install_id
):
    cluster = make_cluster(api, owner)
    web = deploy(api, owner, cluster["id"], name="web", resource={"cpu": 0.5, "ram": "64Mi"})
    wait_for(lambda: host_port(runtime_now(api, owner, web["id"])), what="the container to run")
    passes = loop.passes
    (container,) = containers_of(docker_daemon, install_id, running_only=True)
    docker_daemon.docker("kill", container)
    # The resync is an hour away and nothing was scheduled: only the engine's event can
    # make the loop look again and restart it.
    runtime = wait_for(
        lambda: (
            (r := runtime_now(api, owner, web["id"]))["restart_count"] == 1
            and r["status"] == "running"
            and r
        ),
        timeout=60,
        what="the killed container to be restarted",
    )
    assert host_port(runtime)
    assert loop.passes > passes
    events = api.get(f"/deployment/{web['id']}/events/", token=owner.token).get_json()["items"]
    assert any(e["action"] == "deployment.container_restarted" for e in events)


def test_a_watch_outlives_its_engine_going_away_and_says_when_it_is_back(app, flaky_engine):
    calls: list[int] = []
    with app.app_context():
        watch = engines.driver("flaky").watch(lambda: calls.append(1))
    try:
        wait_for(lambda: watch._stream is not None, what="the watch to connect")
        flaky_engine.stop()  # every connection cut, the socket gone
        wait_for(lambda: watch._stream is None, what="the watch to lose its stream")
        assert calls == []  # losing the engine is the passes' to report, not a change
        flaky_engine.start()
        wait_for(lambda: calls, timeout=60, what="the watch to reconnect")
    finally:
        watch.close()
    wait_for(lambda: not watch.alive, timeout=30, what="the watch to end")


def test_a_watch_on_an_engine_that_never_answers_raises_nothing_and_closes(app):
    with app.app_context():
        watch = engines.driver("dead").watch(lambda: None)
    assert watch.alive
    watch.close()
    wait_for(lambda: not watch.alive, timeout=30, what="the watch to end")
