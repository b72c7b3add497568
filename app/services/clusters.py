"""Clusters: resource pools with a fixed capacity per kind and exact usage accounting.

Owns the `clusters` and `cluster_resources` tables. Knows nothing about deployments beyond the
counts its callers give it. Capacity is fixed at creation; usage changes only through
`utilize` and `free`, called by the deployments service inside a scheduling transaction.

Internal interface (what `services.deployments` may call; it never touches cluster tables):

``lock(cluster_id, organization_id) -> ClusterSnapshot``
    Start the scheduling transaction of one cluster and hold its lock until the caller commits
    or rolls back. PostgreSQL: ``SELECT ... FOR UPDATE`` on the cluster row (other clusters are
    not blocked). SQLite: ``BEGIN IMMEDIATE``, the database's write lock, waited for up to the
    busy timeout. Must be called before anything is written in the transaction. Returns the
    capacity and usage as read under the lock. Raises `NotFound` for a cluster of another
    organization, exactly as for one that does not exist.
``snapshot(cluster_id, organization_id) -> ClusterSnapshot``
    A consistent read of capacity and usage, without a lock.
``check(cluster_id, organization_id, requests) -> FitCheck``
    Whether `requests` fits in the free resources now, what is available and what is short.
``utilize(cluster_id, amounts)`` / ``free(cluster_id, amounts)``
    Add to or release from the usage, kind by kind, in one guarded UPDATE per kind. They never
    let usage go above capacity or below zero, and refuse unknown kinds: `CapacityError`.
    Only valid while holding the lock.

All quantities are exact integers in base units (see `app.quantities`).

User-facing interface (pages and the API):

``create_cluster(actor, name, resources, max_deployments) -> ClusterSnapshot``
    Validate everything first (name, every quantity, the limits) and write nothing on any
    error: `ValidationError` with fields keyed ``name``, ``max_deployments``, ``resources`` and
    ``resource.<kind>``. Capacity is fixed here for the cluster's whole life.
``list_clusters(organization_id, page, per_page) -> (snapshots, total)``
    One page (1-based) ordered by name, in three statements whatever the page size.
``get_cluster(organization_id, cluster_id) -> ClusterSnapshot``
    One cluster with its creator's name; `NotFound` for another organization's cluster.
``delete_cluster(organization_id, cluster_id, counts)``
    The caller holds the cluster's lock and counted its deployments under it (see
    ``services.deployments.delete_cluster``); `Conflict` with the counts while any remain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app import quantities
from app.extensions import db
from app.models import Cluster, ClusterResource, User
from app.services.errors import BadRequest, Conflict, DomainError, NotFound, ValidationError

# A DNS label: what a cluster name may later become in a hostname.
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MAX_DEPLOYMENTS_LIMIT = 100_000
# Ids beyond a 32-bit integer cannot exist; refusing them early keeps PostgreSQL from raising
# an out-of-range error (a 500) for a path such as /clusters/99999999999.
_MAX_ID = 2**31 - 1


class CapacityError(DomainError):
    """Usage would leave [0, capacity]: a bug in the caller, never a user's mistake."""

    status = 409
    code = "capacity_error"


@dataclass(frozen=True, slots=True)
class ResourceUsage:
    kind: str
    capacity: int
    used: int

    @property
    def available(self) -> int:
        return self.capacity - self.used


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    id: int
    organization_id: int
    name: str
    max_deployments: int
    resources: tuple[ResourceUsage, ...]
    created_at: datetime | None = None
    created_by_id: int | None = None
    created_by_name: str | None = None  # filled by get_cluster only

    @property
    def capacity(self) -> dict[str, int]:
        return {r.kind: r.capacity for r in self.resources}

    @property
    def used(self) -> dict[str, int]:
        return {r.kind: r.used for r in self.resources}

    @property
    def available(self) -> dict[str, int]:
        return {r.kind: r.available for r in self.resources}


@dataclass(frozen=True, slots=True)
class FitCheck:
    fits: bool
    available: dict[str, int]
    short: dict[str, int]  # kind -> how much is missing (absent when nothing is missing)


def lock(cluster_id: int, organization_id: int) -> ClusterSnapshot:
    """Begin the cluster's scheduling transaction and hold its lock (see the module docstring)."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("clusters.lock() must be the first step of a scheduling transaction")
    if session.in_transaction():
        # End the read-only transaction the request may have opened (loading the user):
        # the lock must be taken by the transaction that will write.
        session.commit()
    if db.engine.dialect.name == "sqlite":
        session.connection(execution_options={"kargo_immediate": True})
        cluster = _load_cluster(cluster_id, organization_id)
    else:
        cluster = _load_cluster(cluster_id, organization_id, for_update=True)
    return _snapshot_of(cluster, _load_resources(cluster.id))


def snapshot(cluster_id: int, organization_id: int) -> ClusterSnapshot:
    """Capacity and usage of one cluster of the organization, read in one statement each."""
    cluster = _load_cluster(cluster_id, organization_id)
    return _snapshot_of(cluster, _load_resources(cluster.id))


def check(cluster_id: int, organization_id: int, requests: Mapping[str, int]) -> FitCheck:
    """Does `requests` fit in what is free right now? Unknown kinds count as fully short."""
    return fit(snapshot(cluster_id, organization_id), requests)


def fit(snap: ClusterSnapshot, requests: Mapping[str, int]) -> FitCheck:
    available = snap.available
    short = {
        kind: amount - available.get(kind, 0)
        for kind, amount in requests.items()
        if amount > available.get(kind, 0)
    }
    return FitCheck(fits=not short, available=available, short=short)


def utilize(cluster_id: int, amounts: Mapping[str, int]) -> None:
    """Reserve `amounts` in the pool; raise CapacityError rather than exceed a capacity."""
    _adjust(cluster_id, amounts, sign=1)


def free(cluster_id: int, amounts: Mapping[str, int]) -> None:
    """Release `amounts` from the pool; raise CapacityError rather than go below zero."""
    _adjust(cluster_id, amounts, sign=-1)


def _adjust(cluster_id: int, amounts: Mapping[str, int], sign: int) -> None:
    table = ClusterResource.__table__
    for kind, amount in amounts.items():
        if amount < 0:
            raise CapacityError(f"amount of {kind} must not be negative")
        if amount == 0:
            continue
        delta = sign * amount
        guard = (
            table.c.used + delta <= table.c.capacity if sign > 0 else table.c.used + delta >= 0
        )
        result = db.session.execute(
            sa.update(table)
            .where(table.c.cluster_id == cluster_id, table.c.kind == kind, guard)
            .values(used=table.c.used + delta)
        )
        if result.rowcount != 1:
            verb = "reserve" if sign > 0 else "release"
            limit = "above its capacity" if sign > 0 else "below zero"
            raise CapacityError(
                f"cannot {verb} {amount} of {kind} on cluster {cluster_id}: "
                f"usage would go {limit} or the cluster has no {kind}"
            )


def _load_cluster(cluster_id: int, organization_id: int, for_update: bool = False) -> Cluster:
    if not _valid_id(cluster_id):
        raise NotFound("No such cluster.")
    query = sa.select(Cluster).where(
        Cluster.id == cluster_id, Cluster.organization_id == organization_id
    )
    if for_update:
        query = query.with_for_update()
    cluster = db.session.scalar(query.execution_options(populate_existing=True))
    if cluster is None:
        raise NotFound("No such cluster.")
    return cluster


def _load_resources(cluster_id: int) -> list[ClusterResource]:
    return list(
        db.session.scalars(
            sa.select(ClusterResource)
            .where(ClusterResource.cluster_id == cluster_id)
            .order_by(ClusterResource.position)
            .execution_options(populate_existing=True)
        )
    )


def _snapshot_of(cluster: Cluster, resources: list[ClusterResource]) -> ClusterSnapshot:
    return ClusterSnapshot(
        id=cluster.id,
        organization_id=cluster.organization_id,
        name=cluster.name,
        max_deployments=cluster.max_deployments,
        resources=tuple(ResourceUsage(r.kind, r.capacity, r.used) for r in resources),
        created_at=cluster.created_at,
        created_by_id=cluster.created_by_id,
    )
