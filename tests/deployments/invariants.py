"""Checks of the scheduling rules read straight from the database, for service-level tests.

`assert_cluster_consistent` is the test helper the deployments service promises: invariant 1
(each kind's `used` equals the sum of the running deployments' requests, within capacity) plus
rules 2 and 3 and the queue positions, all recomputed from the rows, never from the service.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from app import scheduler
from app.extensions import db
from app.models import ClusterResource, Deployment


def accounting_problems(cluster_id: int) -> list[str]:
    """Invariant 1: used == sum of running requests <= capacity, per kind (empty = holds)."""
    db.session.commit()  # end any older read transaction: see the latest committed rows
    resources = db.session.scalars(
        sa.select(ClusterResource).where(ClusterResource.cluster_id == cluster_id)
    ).all()
    running = db.session.scalars(
        sa.select(Deployment.requests).where(
            Deployment.cluster_id == cluster_id, Deployment.status == "running"
        )
    ).all()
    summed: dict[str, int] = defaultdict(int)
    for requests in running:
        for kind, amount in requests.items():
            summed[kind] += amount
    problems = []
    kinds = {r.kind for r in resources}
    for resource in resources:
        expected = summed.get(resource.kind, 0)
        if resource.used != expected:
            problems.append(f"{resource.kind}: used {resource.used} != running sum {expected}")
        if resource.used > resource.capacity:
            problems.append(f"{resource.kind}: used {resource.used} > {resource.capacity}")
    for kind in set(summed) - kinds:
        problems.append(f"running deployments use {kind}, which the cluster lacks")
    return problems


def jobs_of(cluster_id: int) -> tuple[dict[str, int], list[scheduler.Job], list[scheduler.Job]]:
    db.session.commit()  # end any older read transaction: see the latest committed rows
    capacity = dict(
        db.session.execute(
            sa.select(ClusterResource.kind, ClusterResource.capacity).where(
                ClusterResource.cluster_id == cluster_id
            )
        ).all()
    )
    rows = db.session.scalars(sa.select(Deployment).where(Deployment.cluster_id == cluster_id))
    running, pending = [], []
    for row in rows:
        job = scheduler.Job(row.id, row.priority, row.requests, 0)
        (running if row.status == "running" else pending).append(job)
    return capacity, running, pending


def assert_cluster_consistent(cluster_id: int) -> None:
    """Invariant 1 from the database, rules 2-3, and queue positions 1..n in queue order."""
    assert accounting_problems(cluster_id) == []
    capacity, running, pending = jobs_of(cluster_id)
    assert scheduler.violations(capacity, running, pending) == []
    queue = db.session.execute(
        sa.select(Deployment.queue_position, Deployment.reason, Deployment.priority)
        .where(Deployment.cluster_id == cluster_id, Deployment.status == "pending")
        .order_by(Deployment.queue_position)
    ).all()
    assert [row.queue_position for row in queue] == list(range(1, len(queue) + 1))
    assert all(row.reason for row in queue)
    assert [row.priority for row in queue] == sorted((row.priority for row in queue), reverse=True)
    for row in db.session.execute(
        sa.select(Deployment.queue_position, Deployment.reason).where(
            Deployment.cluster_id == cluster_id, Deployment.status == "running"
        )
    ):
        assert row.queue_position is None and row.reason is None
