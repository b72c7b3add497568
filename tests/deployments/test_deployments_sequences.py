"""Random sequences of submissions and deletions, and concurrent submitters, checked from the DB.

After every step the rows and the usage counters must satisfy rule 1 (usage is exactly the sum
of running requests, within capacity) and rules 2-3, recomputed from the database.
"""

from __future__ import annotations

import random
import threading

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db as _db
from app.models import Deployment, User
from app.scheduler import violations
from app.services import deployments
from app.services.errors import QuotaExceeded
from tests.deployments.invariants import assert_cluster_consistent, jobs_of
from tests.factories import make_cluster, make_org, make_user

submit_step = st.tuples(
    st.just("submit"),
    st.sampled_from([0, 100, 100, 500, 800, 1000]),
    st.fixed_dictionaries({}, optional={"cpu": st.integers(1, 6), "gpu": st.integers(1, 3)}),
)
delete_step = st.tuples(st.just("delete"), st.integers(0, 50), st.just({}))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    capacity=st.fixed_dictionaries({"cpu": st.integers(2, 8), "gpu": st.integers(1, 3)}),
    steps=st.lists(st.one_of(submit_step, delete_step), min_size=1, max_size=14),
)
def test_random_sequences_keep_the_accounting_exact(app, capacity, steps):
    org = make_org()
    owner = make_user(org)
    cluster = make_cluster(org, resources={"cpu": capacity["cpu"] * 1000, "gpu": capacity["gpu"]})
    alive: list[int] = []
    for number, (action, value, requests) in enumerate(steps):
        if action == "submit":
            wanted = {k: v for k, v in requests.items() if v <= capacity[k]} or {"cpu": 1}
            result = deployments.submit(owner, cluster.id, "app", f"d{number}", value, wanted)
            alive.append(result.deployment.id)
        elif alive:
            deployments.delete(owner, alive.pop(value % len(alive)))
        assert_cluster_consistent(cluster.id)


def _count_running_sums(cluster_id: int) -> None:
    capacity, running, pending = jobs_of(cluster_id)
    assert violations(capacity, running, pending) == []


def test_concurrent_submitters_never_over_commit(app):
    """Two threads submit and delete on one cluster at once; the lock keeps the books exact."""
    org = make_org(deployment_quota=10_000)
    owner = make_user(org)
    cluster = make_cluster(org, resources={"cpu": 4000, "gpu": 2}, max_deployments=1000)
    owner_id, cluster_id = owner.id, cluster.id
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with app.app_context():
            try:
                user = _db.session.get(User, owner_id)
                mine: list[int] = []
                barrier.wait()
                for step in range(25):
                    if mine and rng.random() < 0.3:
                        deployments.delete(user, mine.pop(rng.randrange(len(mine))))
                        continue
                    requests = {"cpu": rng.choice(["0.5", "1", "1.5", "2"])}
                    if rng.random() < 0.3:
                        requests["gpu"] = 1
                    result = deployments.submit(
                        user,
                        cluster_id,
                        "nginx",
                        f"t{seed}-{step}",
                        rng.choice([100, 500, 900]),
                        requests,
                    )
                    mine.append(result.deployment.id)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _db.session.rollback()  # our own read snapshot predates the threads' commits
    assert not failures, failures
    assert_cluster_consistent(cluster_id)
    _count_running_sums(cluster_id)
    total = _db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))
    assert total > 0


def test_concurrent_submitters_respect_the_organization_quota(app):
    """Racing for the last units of quota across two clusters never exceeds it."""
    org = make_org(deployment_quota=6)
    owner = make_user(org)
    first, second = make_cluster(org), make_cluster(org)
    owner_id = owner.id
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def worker(cluster_id: int, tag: str) -> None:
        with app.app_context():
            user = _db.session.get(User, owner_id)
            barrier.wait()
            for step in range(5):
                try:
                    deployments.submit(user, cluster_id, "nginx", f"{tag}{step}", 1, {"cpu": "0.1"})
                    outcomes.append("ok")
                except QuotaExceeded:
                    outcomes.append("quota")
            _db.session.remove()

    threads = [
        threading.Thread(target=worker, args=(first.id, "a")),
        threading.Thread(target=worker, args=(second.id, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    _db.session.rollback()
    assert outcomes.count("ok") == 6 and outcomes.count("quota") == 4
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Deployment)) == 6
    for cluster in (first, second):
        assert_cluster_consistent(cluster.id)


@pytest.mark.parametrize("seed", [7])
def test_preempted_deployments_all_come_back_when_the_preemptors_leave(app, seed):
    rng = random.Random(seed)
    org = make_org()
    owner = make_user(org)
    cluster = make_cluster(org, resources={"cpu": 8000})
    low = [
        deployments.submit(owner, cluster.id, "app", f"low{i}", 100, {"cpu": 2}).deployment.id
        for i in range(4)
    ]
    high = [
        deployments.submit(owner, cluster.id, "app", f"hi{i}", 900, {"cpu": rng.choice([2, 4])})
        for i in range(2)
    ]
    assert all(h.status == "running" for h in high)
    assert sum(len(h.preempted) for h in high) >= 2
    for h in high:
        deployments.delete(owner, h.deployment.id)
        assert_cluster_consistent(cluster.id)
    statuses = _db.session.scalars(sa.select(Deployment.status).where(Deployment.id.in_(low)))
    assert set(statuses) == {"running"}
