"""Read models of the cluster pages: the list, the detail page and its live utilization partial.

Composes `services.clusters` (capacity and usage) and `services.deployments` (counts, the
running list and the queue) into ready-to-render data: percentages, statuses and labels are
computed here so that templates do no arithmetic. It only reads; it never writes or commits.

Every function runs a constant number of SQL statements, however many clusters or deployments
there are (tests/clusters/test_query_counts.py keeps this true): the list page loads its
page's resources in one statement and its counts in one grouped statement; the detail page and
the partial read the snapshot (two statements) and the board (one statement).

Status of a cluster, the first that applies wins:
``queue`` (something is pending) > ``full`` (some kind is at 100%) > ``running`` > ``idle``.
A queue comes first because it is what a developer must act on: work is waiting.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app

from app import quantities
from app.models import User
from app.services import clusters, deployments, engines, waits
from app.services.clusters import ClusterSnapshot
from app.services.deployments import Counts, DeploymentView
from app.telemetry import metrics

STATUS_LABELS = {
    "queue": "Has a queue",
    "full": "Full",
    "running": "Running",
    "idle": "Idle",
}


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One resource kind of one cluster, ready for a usage bar."""

    kind: str
    capacity: int
    used: int
    available: int
    percent: float


@dataclass(frozen=True, slots=True)
class ClusterCard:
    """A cluster as the list page shows it."""

    id: int
    name: str
    status: str
    status_label: str
    running: int
    pending: int
    max_deployments: int
    usage: tuple[UsageRow, ...]


@dataclass(frozen=True, slots=True)
class ClusterList:
    items: list[ClusterCard]
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class Utilization:
    """The live part of a cluster's page: what the polling partial renders."""

    cluster_id: int
    name: str
    status: str
    status_label: str
    counts: Counts
    max_deployments: int
    usage: tuple[UsageRow, ...]
    running: list[DeploymentView]
    queue: list[DeploymentView]
    waits: dict[int, waits.WaitWords]  # why each of `queue` waits, in words


@dataclass(frozen=True, slots=True)
class ClusterDetail:
    """The whole cluster page: the static facts plus the live utilization."""

    id: int
    name: str
    max_deployments: int
    created_at: datetime | None
    created_by_name: str | None
    live: Utilization
    repack: clusters.RepackSettings
    # The engine running its containers and its health (None: a simulated cluster).
    engine: engines.EngineView | None = None
    fair_use: clusters.FairUseSettings = field(default_factory=clusters.FairUseSettings)


def cluster_list(user: User, page: int) -> ClusterList:
    """One page (1-based) of the user's organization's clusters with status, counts and usage."""
    per_page = current_app.config["PAGE_SIZE"]
    snapshots, total = clusters.list_clusters(user.organization_id, page, per_page)
    counts = deployments.counts_by_cluster([snap.id for snap in snapshots])
    items = []
    for snap in snapshots:
        usage = usage_rows(snap)
        status = cluster_status(counts[snap.id], usage)
        items.append(
            ClusterCard(
                id=snap.id,
                name=snap.name,
                status=status,
                status_label=STATUS_LABELS[status],
                running=counts[snap.id].running,
                pending=counts[snap.id].pending,
                max_deployments=snap.max_deployments,
                usage=usage,
            )
        )
    pages = max(1, -(-total // per_page))
    return ClusterList(items=items, page=page, pages=pages, total=total)


def cluster_detail(user: User, cluster_id: int) -> ClusterDetail:
    """The cluster page; NotFound for a cluster of another organization."""
    snap = clusters.get_cluster(user.organization_id, cluster_id)
    return ClusterDetail(
        id=snap.id,
        name=snap.name,
        max_deployments=snap.max_deployments,
        created_at=snap.created_at,
        created_by_name=snap.created_by_name,
        live=_utilization_of(snap),
        repack=snap.repack,
        engine=engines.engine_view(snap.id, snap.engine),
        fair_use=snap.fair_use,
    )


def utilization_etag(user: User, cluster_id: int) -> str:
    """The partial's entity tag: changes whenever the cluster's live state or the viewer does.

    One indexed read; NotFound for another organization's cluster. The viewer is part of the
    tag because what the partial offers depends on who looks.
    """
    version = clusters.state_version(cluster_id, user.organization_id)
    return f"c{cluster_id}-v{version}-u{user.id}-{user.role}"


def engine(user: User, cluster_id: int) -> engines.EngineView | None:
    """The cluster page's engine section (None: a simulated cluster); NotFound for another
    organization's cluster. Two indexed reads."""
    return engines.engine_view(cluster_id, clusters.engine_of(cluster_id, user.organization_id))


def engine_etag(cluster_id: int, view: engines.EngineView | None) -> str:
    """The engine section's entity tag: its health, error, nodes and the minute it was last
    checked (the reconciler checks every pass; the section says when, to the minute)."""
    if view is None:
        return f"e{cluster_id}-simulated"
    checked = view.checked_at.strftime("%Y%m%d%H%M") if view.checked_at else "never"
    nodes = json.dumps(view.nodes, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{view.state}|{view.error}|{nodes}".encode()).hexdigest()[:16]
    return f"e{cluster_id}-{view.state}-{checked}-{digest}"


def list_version(user: User) -> str:
    """The live lists' ETag (clusters and deployments): every cluster of the organization (a
    deployment changes only in a scheduling transaction, which bumps its cluster's version)
    and the viewer, whose role decides what the lists offer. One indexed read."""
    version = clusters.organization_version(user.organization_id)
    return f"o{user.organization_id}-{version}-u{user.id}-{user.role}"


def utilization(user: User, cluster_id: int) -> Utilization:
    """The polling partial's data: usage per kind, counts, status, running list and queue."""
    return _utilization_of(clusters.snapshot(cluster_id, user.organization_id))


def usage_rows(snap: ClusterSnapshot) -> tuple[UsageRow, ...]:
    return tuple(
        UsageRow(
            kind=r.kind,
            capacity=r.capacity,
            used=r.used,
            available=r.available,
            percent=quantities.percent(r.used, r.capacity),
        )
        for r in snap.resources
    )


def cluster_status(counts: Counts, usage: tuple[UsageRow, ...]) -> str:
    """queue > full > running > idle (see the module docstring for why)."""
    if counts.pending > 0:
        return "queue"
    if any(row.used >= row.capacity for row in usage):
        return "full"
    if counts.running > 0:
        return "running"
    return "idle"


def _utilization_of(snap: ClusterSnapshot) -> Utilization:
    board = deployments.cluster_board(snap.id, current_app.config["DASHBOARD_LIST_LIMIT"])
    counts, running, queue = board.counts, board.running, board.queue
    usage = usage_rows(snap)
    status = cluster_status(counts, usage)
    return Utilization(
        cluster_id=snap.id,
        name=snap.name,
        status=status,
        status_label=STATUS_LABELS[status],
        counts=counts,
        max_deployments=snap.max_deployments,
        usage=usage,
        running=running,
        queue=queue,
        waits=waits.explain(snap.organization_id, queue),
    )


# --------------------------------------------------------------------------------------------
# The operator's view: gauges read at scrape time


def metric_families() -> list[metrics.GaugeMetricFamily]:
    """Capacity, usage, queued demand and deployment counts of every cluster, for /metrics.

    Read from the database at each scrape (four statements whatever the size), so every
    instance of Kargo reports the same values and nothing is kept between scrapes.
    """
    labels = ["cluster_id", "cluster", "organization_id"]
    capacity = metrics.GaugeMetricFamily(
        "kargo_cluster_capacity",
        "Capacity of a cluster per kind, in base units.",
        labels=[*labels, "kind"],
    )
    used = metrics.GaugeMetricFamily(
        "kargo_cluster_used",
        "Resources reserved by running deployments, in base units.",
        labels=[*labels, "kind"],
    )
    queued = metrics.GaugeMetricFamily(
        "kargo_cluster_queued_demand",
        "Resources requested by queued deployments, in base units.",
        labels=[*labels, "kind"],
    )
    running = metrics.GaugeMetricFamily(
        "kargo_cluster_running_deployments", "Running deployments of a cluster.", labels=labels
    )
    queue = metrics.GaugeMetricFamily(
        "kargo_cluster_queue_length", "Queued (pending) deployments of a cluster.", labels=labels
    )
    snapshots = clusters.every_snapshot()
    counts = deployments.counts_by_cluster([snap.id for snap in snapshots])
    demand = deployments.queued_demand()
    for snap in snapshots:
        ids = [str(snap.id), snap.name, str(snap.organization_id)]
        for resource in snap.resources:
            capacity.add_metric([*ids, resource.kind], resource.capacity)
            used.add_metric([*ids, resource.kind], resource.used)
            queued.add_metric([*ids, resource.kind], demand.get(snap.id, {}).get(resource.kind, 0))
        running.add_metric(ids, counts[snap.id].running)
        queue.add_metric(ids, counts[snap.id].pending)
    return [capacity, used, queued, running, queue]
