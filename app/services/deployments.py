"""Deployments: submission, deletion and the queue of every cluster, driven by `app.scheduler`.

Owns the `deployments` table. Reaches cluster capacity and usage only through
`app.services.clusters` (lock, snapshot, check, utilize, free); never imports cluster models.
Every scheduling operation runs in one transaction holding the cluster's lock:
lock -> load state -> scheduler.schedule (pure) -> apply the decision -> commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.extensions import db
from app.models import Deployment


@dataclass(frozen=True, slots=True)
class Counts:
    running: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.running + self.pending


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """What pages, partials and the API show of one deployment."""

    id: int
    name: str
    image: str
    cluster_id: int
    priority: int
    status: str
    requests: dict[str, int]
    queue_position: int | None
    reason: str | None
    preemptions: int
    created_by_id: int | None
    created_by_name: str | None
    submitted_at: datetime
    started_at: datetime | None
    last_event: str | None


def counts_by_cluster(cluster_ids: Iterable[int]) -> dict[int, Counts]:
    """Running and pending counts per cluster, in one grouped query (clusters absent -> zeros)."""
    ids = list(cluster_ids)
    counts = {cluster_id: Counts() for cluster_id in ids}
    if not ids:
        return counts
    rows = db.session.execute(
        sa.select(Deployment.cluster_id, Deployment.status, sa.func.count())
        .where(Deployment.cluster_id.in_(ids))
        .group_by(Deployment.cluster_id, Deployment.status)
    )
    raw: dict[int, dict[str, int]] = {}
    for cluster_id, status, number in rows:
        raw.setdefault(cluster_id, {})[status] = number
    for cluster_id, by_status in raw.items():
        counts[cluster_id] = Counts(by_status.get("running", 0), by_status.get("pending", 0))
    return counts


def view_of(deployment: Deployment) -> DeploymentView:
    creator = deployment.created_by
    return DeploymentView(
        id=deployment.id,
        name=deployment.name,
        image=deployment.image,
        cluster_id=deployment.cluster_id,
        priority=deployment.priority,
        status=deployment.status,
        requests=dict(deployment.requests),
        queue_position=deployment.queue_position,
        reason=deployment.reason,
        preemptions=deployment.preemptions,
        created_by_id=deployment.created_by_id,
        created_by_name=creator.display_name if creator else None,
        submitted_at=deployment.submitted_at,
        started_at=deployment.started_at,
        last_event=deployment.last_event,
    )


def cluster_board(cluster_id: int) -> tuple[list[DeploymentView], list[DeploymentView]]:
    """(running, queue) of one cluster: running by priority then start, queue in queue order.

    The caller has already checked that the cluster belongs to the user's organization
    (through `services.clusters.snapshot`, which raises NotFound otherwise).
    """
    rows = db.session.scalars(
        sa.select(Deployment)
        .where(Deployment.cluster_id == cluster_id)
        .options(sa.orm.joinedload(Deployment.created_by))
        .order_by(
            Deployment.status.desc(),  # 'running' sorts after 'pending' ascending
            Deployment.queue_position,
            Deployment.priority.desc(),
            Deployment.started_at,
            Deployment.id,
        )
    ).all()
    running = [view_of(d) for d in rows if d.status == "running"]
    queue = [view_of(d) for d in rows if d.status == "pending"]
    return running, queue
