"""The same end-to-end scenarios on a Docker Swarm (the private dockerd as a one-node swarm):
one-replica services with reservations and limits, host-mode ports, restarts made by the
swarm itself, and a task the swarm cannot place shown as a condition with its reason."""

from __future__ import annotations

import pytest

from tests.runtime.conftest import BUSYBOX, converge
from tests.runtime.test_docker_runtime import (  # the shared scenarios, run here on a swarm
    deploy,
    make_cluster,
    runtime_of,
    test_a_container_killed_from_outside_is_seen_and_restarted,
    test_an_engine_that_goes_away_is_shown_and_converges_when_back,
    test_an_image_pull_failure_says_which_image_and_why,
    test_deploy_runs_a_container_that_answers_then_preempt_restart_delete,
    test_engine_cluster_takes_its_capacity_from_the_engine,
)

__all__ = [
    "test_a_container_killed_from_outside_is_seen_and_restarted",
    "test_an_engine_that_goes_away_is_shown_and_converges_when_back",
    "test_an_image_pull_failure_says_which_image_and_why",
    "test_deploy_runs_a_container_that_answers_then_preempt_restart_delete",
    "test_engine_cluster_takes_its_capacity_from_the_engine",
]


@pytest.fixture
def driver_name(swarm) -> str:
    return "swarm"


def test_the_cluster_page_lists_the_swarm_nodes(api, owner, reconciler):
    cluster = make_cluster(api, owner)
    reconciler.run_once()
    engine = api.get(f"/cluster/{cluster['id']}/", token=owner.token).get_json()["engine"]
    assert engine["driver"] == "swarm" and engine["state"] == "ok"
    assert engine["nodes"] and engine["nodes"][0]["state"] == "ready"
    assert engine["nodes"][0]["resources"]["cpu"] >= 1


def test_a_task_no_node_can_hold_is_shown_with_the_swarms_reason(
    api, owner, reconciler, swarm, install_id
):
    # Another tenant of the swarm reserves most of its cpu: Kargo's pool-level admission
    # (2 cpu, the engine's ceiling) still admits 1 cpu, which no node can now place.
    cpus = int(swarm.docker("info", "--format", "{{.NCPU}}").strip())
    hog = f"{install_id}-hog"
    swarm.docker(
        "service",
        "create",
        "--detach",
        "--name",
        hog,
        "--label",
        f"kargo.install={install_id}",
        "--container-label",
        f"kargo.install={install_id}",
        "--reserve-cpu",
        str(cpus - 0.5),
        BUSYBOX,
        "sleep",
        "600",
    )
    try:
        cluster = make_cluster(api, owner)
        stuck = deploy(
            api,
            owner,
            cluster["id"],
            name="stuck",
            resource={"cpu": 1, "ram": "64Mi"},
            ports=[],
            command=["sleep", "600"],
        )
        assert stuck["status"] == "running"  # the scheduler admitted it
        runtime = converge(
            reconciler,
            lambda: (r := runtime_of(api, owner, stuck["id"])) and r["error"] and r,
            what="the swarm's reason",
        )
        assert runtime["status"] == "starting"
        assert runtime["error"].startswith("no suitable node")
        assert "insufficient resources" in runtime["error"]
        events = api.get(f"/deployment/{stuck['id']}/events/", token=owner.token).get_json()
        assert any(e["action"] == "deployment.unschedulable" for e in events["items"])
    finally:
        swarm.docker("service", "rm", hog, check=False)
