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
``touch(cluster_id)``
    Bump the cluster's state version; every scheduling transaction calls it before commit,
    so `state_version` changes whenever anything shown on the live dashboard may have.
``state_version(cluster_id, organization_id) -> str``
    The version and the usage per kind, one indexed read: the live dashboard's ETag.
``organization_version(organization_id) -> str``
    The same over every cluster of an organization, hashed: the live lists' ETag.
``record_usage(cluster, used, queued_before, queued)``
    Add a row to the resource trail (`services.usage`) when the usage or the queued demand
    changed in this scheduling transaction; the caller commits it with the change.

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
``update_repack(actor, cluster_id, raw) -> ClusterSnapshot``
    Change the cluster's opt-in repack settings (owners and admins); `ClusterSnapshot.repack`
    carries them to the scheduler through the deployments service.
``usage_view(organization_id, cluster_id, since, step) -> UsageView``
    Utilization and queued demand per kind over a window (`services.usage.parse_window`
    checks `since` and `step`: ValidationError), for the chart and the API.
``usage_sparklines(organization_id, cluster_ids) -> dict[int, list[float | None]]``
    The mean utilization of each cluster over the last day, hour by hour (the list page).
``delete_cluster(actor, organization_id, cluster_id, counts)``
    The caller holds the cluster's lock and counted its deployments under it (see
    ``services.deployments.delete_cluster``); `Conflict` with the counts while any remain.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Protocol

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app import quantities
from app.extensions import db
from app.models import Cluster, ClusterResource, User, utcnow, valid_id
from app.services import engines, history, transactions, usage
from app.services.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    QuotaExceeded,
    ValidationError,
)

# A DNS label: what a cluster name may later become in a hostname.
NAME_MAX = 63
NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MANAGER_ROLES = ("owner", "admin")


def can_create_cluster(actor: User) -> bool:
    """Owners and admins create clusters; members too when their organization allows it."""
    if not actor.active:
        return False
    return actor.role in MANAGER_ROLES or bool(actor.organization.members_can_create_clusters)


def can_delete_cluster(actor: User) -> bool:
    """Only owners and admins delete clusters (an empty one: see `delete_cluster`)."""
    return actor.active and actor.role in MANAGER_ROLES


def can_change_repack(actor: User) -> bool:
    """Only owners and admins turn on or change a cluster's repack (docs/scheduling.md)."""
    return actor.active and actor.role in MANAGER_ROLES


def deployments_ceiling() -> int:
    """The operator's ceiling on a cluster's maximum deployments (MAX_DEPLOYMENTS_PER_CLUSTER)."""
    return current_app.config["MAX_DEPLOYMENTS_PER_CLUSTER"]


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
class FairUseSettings:
    """A cluster's fair-use settings (docs/scheduling.md, "Fair use").

    `min_run_minutes`: running work younger than this is a victim only when no other choice
    makes room (0: off). `starvation_minutes`: a deployment waiting longer than this gets a
    reservation, and later work starts only where it does not delay it (None: off).
    """

    min_run_minutes: int = 0
    starvation_minutes: int | None = None

    def describe(self) -> str:
        """One sentence for the cluster page."""
        if self.min_run_minutes:
            first = (
                f"Running deployments younger than {self.min_run_minutes} minutes are "
                "preempted only when no other choice makes room."
            )
        else:
            first = "No minimum run time: any running deployment may be preempted."
        if self.starvation_minutes:
            second = (
                f"A deployment waiting longer than {self.starvation_minutes} minutes gets a "
                "reservation: later work starts only where it does not delay it."
            )
        else:
            second = "The starvation guard is off."
        return f"{first} {second}"


# The longest minimum run time or starvation threshold a cluster may set: one week.
FAIR_USE_MAX_MINUTES = 10_080


@dataclass(frozen=True, slots=True)
class RepackSettings:
    """A cluster's opt-in repack (docs/scheduling.md, "Repack"): off by default.

    When on, the scheduler may move running deployments back to the queue to start queued
    ones of the same priority, each move raising the cluster's mean utilization by at least
    `threshold_bp` basis points (200 = 2%), at most `max_per_hour` moves an hour, never the
    same deployment twice within `cooldown_minutes`.
    """

    enabled: bool = False
    threshold_bp: int = 200
    max_per_hour: int = 6
    cooldown_minutes: int = 60

    @property
    def threshold_percent(self) -> str:
        """The threshold as people write it: "2", "0.5", "1.25"."""
        whole, rest = divmod(self.threshold_bp, 100)
        return str(whole) if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")

    def describe(self) -> str:
        """One sentence for the cluster page."""
        if not self.enabled:
            return "Repack is off: running deployments are never moved for equal priority."
        moves = "move" if self.max_per_hour == 1 else "moves"
        return (
            f"Repack is on: a running deployment may be moved back to the queue for queued "
            f"work of its own priority when each move raises utilization by at least "
            f"{self.threshold_percent}%, at most {self.max_per_hour} {moves} an hour, never "
            f"the same deployment twice within {self.cooldown_minutes} minutes."
        )


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
    repack: RepackSettings = field(default_factory=RepackSettings)
    # The operator-declared engine running its containers (app/runtime); None: simulated.
    engine: str | None = None
    fair_use: FairUseSettings = field(default_factory=lambda: FairUseSettings())

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
    transactions.begin_write()
    # FOR UPDATE is the lock on PostgreSQL; SQLite ignores it, BEGIN IMMEDIATE locked already.
    cluster = _load_cluster(cluster_id, organization_id, for_update=True)
    return _snapshot_of(cluster, _load_resources(cluster.id))


def engine_of(cluster_id: int, organization_id: int) -> str | None:
    """The engine a cluster of the organization runs on (None: simulated); NotFound else."""
    return _load_cluster(cluster_id, organization_id).engine


def snapshot(cluster_id: int, organization_id: int) -> ClusterSnapshot:
    """Capacity and usage of one cluster of the organization, read in one statement each."""
    cluster = _load_cluster(cluster_id, organization_id)
    return _snapshot_of(cluster, _load_resources(cluster.id))


def check(cluster_id: int, organization_id: int, requests: Mapping[str, int]) -> FitCheck:
    """Does `requests` fit in what is free right now? Unknown kinds count as fully short."""
    return fit(snapshot(cluster_id, organization_id), requests)


def check_request(cluster_id: int, organization_id: int, raw: Mapping[str, object]) -> FitCheck:
    """`check` for quantities as users write them ("2", " 0.5", "512Mi"): ValidationError with
    a message per `resource.<kind>` for any that cannot be read."""
    amounts, problems = quantities.parse_requests(dict(raw))
    if problems:
        raise ValidationError(
            "Some quantities cannot be read.",
            {f"resource.{kind}": problem for kind, problem in problems.items()},
        )
    return check(cluster_id, organization_id, amounts)


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


def touch(cluster_id: int) -> None:
    """Mark the cluster's live state as changed (see `state_version`). Hold the lock.

    On PostgreSQL this also wakes the reconciler (LISTEN on NOTIFY_CHANNEL) when the
    transaction commits; on SQLite the reconciler polls the versions instead.
    """
    db.session.execute(
        sa.update(Cluster)
        .where(Cluster.id == cluster_id)
        .values(state_version=Cluster.state_version + 1)
        .execution_options(synchronize_session=False)
    )
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(cluster_id))))


# The PostgreSQL channel every scheduling commit notifies (payload: the cluster id).
NOTIFY_CHANNEL = "kargo_runtime"


def set_capacity(cluster_id: int, capacity: Mapping[str, int]) -> None:
    """Change capacities the system measured (an engine's resources); users never edit them.

    Hold the lock. Only kinds the cluster has change; a capacity below the usage is refused
    (`CapacityError`): the caller has already moved work back to the queue through the
    scheduler (`services.deployments.engine_capacity_changed`).
    """
    table = ClusterResource.__table__
    for kind, amount in capacity.items():
        if amount <= 0:
            raise CapacityError(f"capacity of {kind} must be positive")
        result = db.session.execute(
            sa.update(table)
            .where(table.c.cluster_id == cluster_id, table.c.kind == kind, table.c.used <= amount)
            .values(capacity=amount)
        )
        if result.rowcount != 1:
            raise CapacityError(
                f"cannot set the capacity of {kind} on cluster {cluster_id} to {amount}: "
                "usage is above it or the cluster has no such kind"
            )
    if capacity:  # the resource trail shows the new capacity from now on
        resources = _load_resources(cluster_id)
        usage.record(
            cluster_id,
            {r.kind: r.used for r in resources},
            usage.queued_now(cluster_id),
            {r.kind: r.capacity for r in resources},
        )


def cluster_ids_with_engine() -> list[tuple[int, int, str]]:
    """(cluster id, organization id, engine) of every engine-backed cluster (the reconciler)."""
    return [
        (cluster_id, organization_id, engine)
        for cluster_id, organization_id, engine in db.session.execute(
            sa.select(Cluster.id, Cluster.organization_id, Cluster.engine)
            .where(Cluster.engine.is_not(None))
            .order_by(Cluster.id)
        )
    ]


def engine_clusters_version() -> tuple[int, int]:
    """(count, sum of state versions) of engine-backed clusters: changes on every scheduling
    commit that concerns them (the reconciler's cheap poll on SQLite)."""
    row = db.session.execute(
        sa.select(
            sa.func.count(Cluster.id), sa.func.coalesce(sa.func.sum(Cluster.state_version), 0)
        ).where(Cluster.engine.is_not(None))
    ).one()
    return int(row[0]), int(row[1])


def state_version(cluster_id: int, organization_id: int) -> str:
    """A token that changes whenever the cluster's live state may have; NotFound otherwise.

    It joins the version bumped by `touch` with the usage of every kind, read in one small
    indexed query, so even a change of usage made outside the scheduler shows.
    """
    if not valid_id(cluster_id):
        raise NotFound("No such cluster.")
    rows = db.session.execute(
        sa.select(Cluster.state_version, ClusterResource.used)
        .join(ClusterResource, ClusterResource.cluster_id == Cluster.id)
        .where(Cluster.id == cluster_id, Cluster.organization_id == organization_id)
        .order_by(ClusterResource.position)
    ).all()
    if not rows:
        raise NotFound("No such cluster.")
    return f"{rows[0][0]}." + ".".join(str(used) for _, used in rows)


def capacities(organization_id: int, cluster_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Cluster id -> kind -> capacity of those of `cluster_ids` in the organization (one
    query), for wording what a queued deployment lacks."""
    ids = [i for i in set(cluster_ids) if valid_id(i)]
    result: dict[int, dict[str, int]] = {}
    if not ids:
        return result
    rows = db.session.execute(
        sa.select(ClusterResource.cluster_id, ClusterResource.kind, ClusterResource.capacity)
        .join(Cluster, Cluster.id == ClusterResource.cluster_id)
        .where(Cluster.id.in_(ids), Cluster.organization_id == organization_id)
    )
    for cluster_id, kind, capacity in rows:
        result.setdefault(cluster_id, {})[kind] = capacity
    return result


def organization_version(organization_id: int) -> str:
    """A token that changes whenever any cluster of the organization may look different: one
    is created or deleted, its state version is bumped (`touch`) or its usage changes.

    One indexed read of the organization's clusters and their kinds (bounded by
    MAX_CLUSTERS_PER_ORGANIZATION), hashed to a short token.
    """
    rows = db.session.execute(
        sa.select(Cluster.id, Cluster.state_version, ClusterResource.used)
        .outerjoin(ClusterResource, ClusterResource.cluster_id == Cluster.id)
        .where(Cluster.organization_id == organization_id)
        .order_by(Cluster.id, ClusterResource.position)
    ).all()
    text = ";".join(f"{cid}.{version}.{used}" for cid, version, used in rows)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def record_usage(
    cluster: ClusterSnapshot,
    used: Mapping[str, int],
    queued_before: Mapping[str, int],
    queued: Mapping[str, int],
) -> None:
    """Add the cluster's new state to its resource trail if usage or queued demand changed.

    `cluster` is the snapshot read under the lock (usage before the decision); `used` the
    usage after it; `queued_before` and `queued` the demand of the queue before and after, by
    kind. Called in the scheduling transaction: the row lands with the change or not at all.
    """
    before = cluster.used
    same_use = all(used.get(kind, 0) == amount for kind, amount in before.items())
    same_queue = {k: v for k, v in queued_before.items() if v} == {
        k: v for k, v in queued.items() if v
    }
    if same_use and same_queue:
        return
    usage.record(cluster.id, {kind: used.get(kind, 0) for kind in before}, queued, cluster.capacity)


@dataclass(frozen=True, slots=True)
class KindUsage:
    """One kind's line of the chart: utilization and queued demand in percent of capacity."""

    kind: str
    capacity: int
    utilization: list[float | None]  # per point; None where the trail knows nothing
    demand: list[float | None]
    peak: list[float | None]
    now: float  # utilization now
    mean: float | None  # over the window
    highest: float | None  # the highest peak in the window
    queued_now: float  # queued demand now, in percent of capacity


@dataclass(frozen=True, slots=True)
class UsageView:
    cluster_id: int
    since: datetime
    until: datetime
    step: int
    times: list[datetime]
    kinds: list[KindUsage]
    points: list[usage.Point]


def _mean(values: Iterable[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) / len(known) if known else None


def usage_view(
    organization_id: int, cluster_id: int, since: str | None, step: str | None
) -> UsageView:
    """The cluster's utilization and queued demand per kind over a window (NotFound, or
    ValidationError for a bad `since` or `step`)."""
    if not valid_id(cluster_id):
        raise NotFound("No such cluster.")
    resources = [
        ResourceUsage(kind, capacity, used)
        for kind, capacity, used in db.session.execute(
            sa.select(ClusterResource.kind, ClusterResource.capacity, ClusterResource.used)
            .join(Cluster, Cluster.id == ClusterResource.cluster_id)
            .where(Cluster.id == cluster_id, Cluster.organization_id == organization_id)
            .order_by(ClusterResource.position)
        )
    ]
    if not resources:
        raise NotFound("No such cluster.")
    start, seconds = usage.parse_window(since, step)
    trail = usage.series(cluster_id, [r.kind for r in resources], start, seconds)
    queued_now = trail.queued_now
    kinds = []
    for resource in resources:
        kind = resource.kind
        utilization = [point.utilization(kind) for point in trail.points]
        peaks = [
            100.0 * point.peak.get(kind, 0) / point.capacity[kind]
            if point.covered and point.capacity.get(kind)
            else None
            for point in trail.points
        ]
        known_peaks = [value for value in peaks if value is not None]
        kinds.append(
            KindUsage(
                kind=kind,
                capacity=resource.capacity,
                utilization=utilization,
                demand=[point.demand(kind) for point in trail.points],
                peak=peaks,
                now=100.0 * resource.used / resource.capacity,
                mean=_mean(utilization),
                highest=max(known_peaks) if known_peaks else None,
                queued_now=100.0 * queued_now.get(kind, 0) / resource.capacity,
            )
        )
    return UsageView(
        cluster_id,
        trail.since,
        trail.until,
        trail.step,
        [point.at for point in trail.points],
        kinds,
        trail.points,
    )


def usage_sparklines(
    organization_id: int, cluster_ids: Iterable[int]
) -> dict[int, list[float | None]]:
    """Each cluster's mean utilization (the mean over its kinds) over the last day, by hour,
    read in one query for the whole list. Clusters of other organizations are left out."""
    ids = [
        cluster_id
        for cluster_id in db.session.scalars(
            sa.select(Cluster.id).where(
                Cluster.id.in_(list(cluster_ids)), Cluster.organization_id == organization_id
            )
        )
    ]
    now = utcnow()
    points = usage.many(ids, now - timedelta(days=1), 3600, now)
    lines: dict[int, list[float | None]] = {}
    for cluster_id, series in points.items():
        lines[cluster_id] = [
            _mean(point.utilization(kind) for kind in point.capacity) for point in series
        ]
    return lines


def compact_usage() -> usage.Compacted:
    """Roll up and expire every cluster's resource trail (the prune command)."""
    return usage.compact()


def _adjust(cluster_id: int, amounts: Mapping[str, int], sign: int) -> None:
    table = ClusterResource.__table__
    for kind, amount in amounts.items():
        if amount < 0:
            raise CapacityError(f"amount of {kind} must not be negative")
        if amount == 0:
            continue
        delta = sign * amount
        guard = table.c.used + delta <= table.c.capacity if sign > 0 else table.c.used + delta >= 0
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
    if not valid_id(cluster_id):
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
        repack=RepackSettings(
            cluster.repack_enabled,
            cluster.repack_threshold_bp,
            cluster.repack_max_per_hour,
            cluster.repack_cooldown_minutes,
        ),
        engine=cluster.engine,
        fair_use=FairUseSettings(cluster.min_run_minutes or 0, cluster.starvation_minutes),
    )


# ---------------------------------------------------------------------------------------------
# User-facing interface: create, list, get, delete.
# ---------------------------------------------------------------------------------------------


class DeploymentCounts(Protocol):
    """What delete_cluster needs of a cluster's deployments (`services.deployments.Counts`)."""

    @property
    def running(self) -> int: ...

    @property
    def pending(self) -> int: ...

    @property
    def total(self) -> int: ...


def create_cluster(
    actor: User,
    name: object,
    resources: Mapping[str, object] | Iterable[tuple[str, object]],
    max_deployments: object = None,
    repack: Mapping[str, object] | None = None,
    engine: object = None,
) -> ClusterSnapshot:
    """Create a cluster of `actor`'s organization with a fixed capacity per resource kind.

    `resources` maps kind -> raw quantity (as typed or as JSON); it may also be a sequence of
    (kind, quantity) pairs, so that a kind given twice is reported rather than silently merged.
    A blank standard kind (cpu, gpu, ram) is simply left out: a cluster may lack gpu.
    `repack` (optional) holds raw repack settings (see `update_repack`); turning it on is for
    owners and admins (Forbidden otherwise). Every problem is collected into one
    ValidationError and nothing is written. Who may create clusters is `can_create_cluster`;
    how many an organization may have is the operator's MAX_CLUSTERS_PER_ORGANIZATION, counted
    under the organization's lock (QuotaExceeded).
    """
    if not can_create_cluster(actor):
        raise Forbidden(
            "Only an owner or an admin can create clusters in your organization.",
            code="cluster_creation_forbidden",
        )
    errors: dict[str, str] = {}
    clean_name = _clean_name(name, errors)
    engine_name = None
    if engine is not None and engine != "":
        # The engine's resources are read before any transaction: an engine call can be slow.
        engine_name, measured = engines.measure_engine(actor.organization_id, engine, errors)
        resources = _engine_resources(resources, measured, errors)
    capacities = _clean_resources(resources, errors)
    limit = _clean_max_deployments(max_deployments, errors)
    settings = _clean_repack(repack or {}, default_repack(), errors)
    if settings.enabled and not can_change_repack(actor):
        raise Forbidden("Only owners and admins can turn on a cluster's repack.")
    organization_id = actor.organization_id
    if clean_name and "name" not in errors and _name_taken(organization_id, clean_name):
        errors["name"] = f"a cluster named {clean_name} already exists"
    if errors:
        raise ValidationError("The cluster was not created: please correct the fields.", errors)

    creator_id = actor.id
    transactions.begin_write()
    transactions.lock_organization(organization_id)
    ceiling = current_app.config["MAX_CLUSTERS_PER_ORGANIZATION"]
    existing = db.session.scalar(
        sa.select(sa.func.count(Cluster.id)).where(Cluster.organization_id == organization_id)
    )
    if existing >= ceiling:
        db.session.rollback()
        raise QuotaExceeded(
            f"Your organization already has {existing} clusters, the most this Kargo allows "
            f"({ceiling}). Delete an unused cluster first.",
            fields={"name": f"at most {ceiling} clusters per organization"},
        )
    cluster = Cluster(
        organization_id=organization_id,
        name=clean_name,
        max_deployments=limit,
        created_by_id=creator_id,
        repack_enabled=settings.enabled,
        repack_threshold_bp=settings.threshold_bp,
        repack_max_per_hour=settings.max_per_hour,
        repack_cooldown_minutes=settings.cooldown_minutes,
        engine=engine_name,
    )
    cluster.resources = [
        ClusterResource(kind=kind, capacity=amount, used=0, position=position)
        for position, (kind, amount) in enumerate(capacities.items())
    ]
    db.session.add(cluster)
    try:
        db.session.flush()
        usage.record(cluster.id, dict.fromkeys(capacities, 0), {}, capacities)
        history.record(
            organization_id,
            history.actor_of(actor),
            "cluster.created",
            history.Subject("cluster", cluster.id, clean_name),
            f"Created cluster {clean_name} with "
            + ", ".join(quantities.format_amount(k, v) for k, v in capacities.items())
            + f" and room for {limit} deployments"
            + (f", running containers on engine {engine_name}." if engine_name else "."),
            {"capacity": capacities, "max_deployments": limit, "engine": engine_name},
            cluster_id=cluster.id,
        )
        db.session.commit()
    except IntegrityError as exc:
        # Two creations with one name raced past the check above; the unique constraint decides.
        db.session.rollback()
        raise ValidationError(
            "The cluster was not created: please correct the fields.",
            {"name": f"a cluster named {clean_name} already exists"},
        ) from exc
    return _snapshot_of(cluster, list(cluster.resources))


def list_clusters(
    organization_id: int, page: int = 1, per_page: int = 20
) -> tuple[list[ClusterSnapshot], int]:
    """One page (1-based) of the organization's clusters ordered by name, and the total count.

    Three statements whatever the page size: the count, the page, the page's resources.
    """
    if not _valid_int(page) or page < 1 or page > 10**9:
        raise BadRequest("page must be a whole number from 1")
    if not _valid_int(per_page) or not 1 <= per_page <= 1000:
        raise BadRequest("per_page must be a whole number from 1 to 1000")
    total = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Cluster)
        .where(Cluster.organization_id == organization_id)
    )
    clusters = list(
        db.session.scalars(
            sa.select(Cluster)
            .where(Cluster.organization_id == organization_id)
            .order_by(Cluster.name, Cluster.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    by_cluster: dict[int, list[ClusterResource]] = {cluster.id: [] for cluster in clusters}
    if clusters:
        rows = db.session.scalars(
            sa.select(ClusterResource)
            .where(ClusterResource.cluster_id.in_(list(by_cluster)))
            .order_by(ClusterResource.cluster_id, ClusterResource.position)
        )
        for resource in rows:
            by_cluster[resource.cluster_id].append(resource)
    return [_snapshot_of(cluster, by_cluster[cluster.id]) for cluster in clusters], total or 0


def every_snapshot() -> list[ClusterSnapshot]:
    """Every cluster of every organization with its capacity and usage, in two statements.

    For the operator's view (`/metrics`), never for a page: it crosses organizations.
    """
    clusters = list(db.session.scalars(sa.select(Cluster).order_by(Cluster.id)))
    by_cluster: dict[int, list[ClusterResource]] = {cluster.id: [] for cluster in clusters}
    for resource in db.session.scalars(
        sa.select(ClusterResource).order_by(ClusterResource.cluster_id, ClusterResource.position)
    ):
        by_cluster.setdefault(resource.cluster_id, []).append(resource)
    return [_snapshot_of(cluster, by_cluster[cluster.id]) for cluster in clusters]


def names(organization_id: int) -> dict[int, str]:
    """Every cluster of the organization as id -> name, in one small query."""
    return dict(
        db.session.execute(
            sa.select(Cluster.id, Cluster.name).where(Cluster.organization_id == organization_id)
        ).all()
    )


def get_cluster(organization_id: int, cluster_id: int) -> ClusterSnapshot:
    """One cluster of the organization with its creator's name; NotFound otherwise."""
    if not valid_id(cluster_id):
        raise NotFound("No such cluster.")
    row = db.session.execute(
        sa.select(Cluster, User.display_name)
        .outerjoin(User, User.id == Cluster.created_by_id)
        .where(Cluster.id == cluster_id, Cluster.organization_id == organization_id)
    ).first()
    if row is None:
        raise NotFound("No such cluster.")
    cluster, creator_name = row
    snap = _snapshot_of(cluster, _load_resources(cluster.id))
    return ClusterSnapshot(
        id=snap.id,
        organization_id=snap.organization_id,
        name=snap.name,
        max_deployments=snap.max_deployments,
        resources=snap.resources,
        created_at=snap.created_at,
        created_by_id=snap.created_by_id,
        created_by_name=creator_name,
        repack=snap.repack,
        engine=snap.engine,
        fair_use=snap.fair_use,
    )


def default_repack() -> RepackSettings:
    """A new cluster's repack settings: off, with the configured defaults."""
    errors: dict[str, str] = {}
    config = current_app.config
    settings = _clean_repack(
        {
            "threshold": config["REPACK_THRESHOLD_PERCENT"],
            "max_per_hour": config["REPACK_MAX_PER_HOUR"],
            "cooldown_minutes": config["REPACK_COOLDOWN_MINUTES"],
        },
        RepackSettings(),
        errors,
    )
    if errors:  # a configuration mistake, not a user's
        raise RuntimeError(f"invalid REPACK_* configuration: {errors}")
    return settings


def update_repack(actor: User, cluster_id: int, raw: Mapping[str, object]) -> ClusterSnapshot:
    """Change a cluster's repack settings (owners and admins) and commit, with an entry in
    the organization's history.

    `raw` may hold any of: `enabled` (true/false, or "on"/"off" as forms send), `threshold`
    (percent of mean utilization each move must bring, 0.01 to 100, such as "2" or 0.5),
    `max_per_hour` (1 to 1,000 moves an hour) and `cooldown_minutes` (0 to 10,080); the others
    keep their values. Raises NotFound (another organization's cluster), Forbidden (a
    member), ValidationError (fields keyed `repack.<name>`); nothing is written then.
    """
    cluster = _load_cluster(cluster_id, actor.organization_id)
    if not can_change_repack(actor):
        raise Forbidden("Only owners and admins can change a cluster's repack settings.")
    errors: dict[str, str] = {}
    before = _snapshot_of(cluster, []).repack
    settings = _clean_repack(raw, before, errors)
    if errors:
        raise ValidationError("The repack settings were not changed: please correct them.", errors)
    return _save_settings(
        actor,
        cluster,
        {
            "repack_enabled": settings.enabled,
            "repack_threshold_bp": settings.threshold_bp,
            "repack_max_per_hour": settings.max_per_hour,
            "repack_cooldown_minutes": settings.cooldown_minutes,
        },
        "cluster.repack_changed",
        before,
        settings,
    )


def _minutes(value: object, key: str, errors: dict[str, str], *, off: bool) -> int | None:
    """Whole minutes 0..FAIR_USE_MAX_MINUTES (or 1.. with `off`, where blank/0/"off" is None)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if off and text in ("", "off", "0"):
            return None
        if not off and text == "":
            return 0
        if re.fullmatch(r"[0-9]{1,6}", text):
            value = int(text)
    if off and (value is None or value == 0) and not isinstance(value, bool):
        return None
    if not _valid_int(value) or not 0 <= value <= FAIR_USE_MAX_MINUTES:  # type: ignore[operator]
        errors[key] = f"give whole minutes from 0 to {FAIR_USE_MAX_MINUTES:,}" + (
            " (0 or off turns it off)" if off else ""
        )
        return None
    return value  # type: ignore[return-value]


def update_fair_use(actor: User, cluster_id: int, raw: Mapping[str, object]) -> ClusterSnapshot:
    """Change a cluster's fair-use settings (owners and admins) and commit, with an entry in
    the organization's history.

    `raw` may hold `min_run_minutes` (0 to 10,080; 0 is off) and `starvation_minutes` (1 to
    10,080, or 0, "off" or null for off); keys left out keep their value. Raises NotFound,
    Forbidden (a member), ValidationError (fields keyed `fair_use.<name>`); nothing is
    written then.
    """
    cluster = _load_cluster(cluster_id, actor.organization_id)
    if not can_change_repack(actor):
        raise Forbidden("Only owners and admins can change a cluster's fair-use settings.")
    before = _snapshot_of(cluster, []).fair_use
    errors: dict[str, str] = {}
    min_run = before.min_run_minutes
    starvation = before.starvation_minutes
    if "min_run_minutes" in raw:
        min_run = _minutes(raw["min_run_minutes"], "fair_use.min_run_minutes", errors, off=False)
    if "starvation_minutes" in raw:
        starvation = _minutes(
            raw["starvation_minutes"], "fair_use.starvation_minutes", errors, off=True
        )
    if errors:
        raise ValidationError(
            "The fair-use settings were not changed: please correct them.", errors
        )
    after = FairUseSettings(min_run or 0, starvation)
    return _save_settings(
        actor,
        cluster,
        {"min_run_minutes": after.min_run_minutes, "starvation_minutes": after.starvation_minutes},
        "cluster.fair_use_changed",
        before,
        after,
    )


def _save_settings(
    actor: User,
    cluster: Cluster,
    values: Mapping[str, object],
    action: str,
    before: RepackSettings | FairUseSettings,
    after: RepackSettings | FairUseSettings,
) -> ClusterSnapshot:
    """Write a cluster's validated settings (`values`: its columns) and commit, with a
    history entry `action` when they changed; the cluster as it now is."""
    transactions.begin_write()
    db.session.execute(
        sa.update(Cluster)
        .where(Cluster.id == cluster.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if after != before:
        history.record(
            actor.organization_id,
            history.actor_of(actor),
            action,
            history.Subject("cluster", cluster.id, cluster.name),
            after.describe(),
            {"before": asdict(before), "after": asdict(after)},
            cluster_id=cluster.id,
        )
    db.session.commit()
    return get_cluster(actor.organization_id, cluster.id)


def delete_cluster(
    actor: User, organization_id: int, cluster_id: int, counts: DeploymentCounts
) -> None:
    """Delete an empty cluster and commit; Conflict (nothing deleted) while it has deployments.

    The caller must hold the cluster's lock (`lock`) and have counted its deployments under
    that lock: otherwise a deployment submitted between the count and the delete would be
    orphaned. `services.deployments.delete_cluster` is that caller.
    """
    cluster = _load_cluster(cluster_id, organization_id)
    if counts.total > 0:
        name = cluster.name
        db.session.rollback()  # release the lock now rather than at the end of the request
        noun, pronoun = ("deployment", "it") if counts.total == 1 else ("deployments", "them")
        raise Conflict(
            f"Cluster {name} still has {counts.running} running and {counts.pending} pending "
            f"{noun}; delete {pronoun} first.",
            code="cluster_not_empty",
        )
    db.session.execute(sa.delete(ClusterResource).where(ClusterResource.cluster_id == cluster.id))
    usage.forget(cluster.id)
    db.session.execute(sa.delete(Cluster).where(Cluster.id == cluster.id))
    history.record(
        organization_id,
        history.actor_of(actor),
        "cluster.deleted",
        history.Subject("cluster", cluster.id, cluster.name),
        f"Deleted cluster {cluster.name}.",
        cluster_id=cluster.id,
    )
    try:
        db.session.commit()
    except IntegrityError as exc:  # a deployment still references it: never delete under it
        db.session.rollback()
        raise Conflict(
            f"Cluster {cluster_id} still has deployments; delete them first.",
            code="cluster_not_empty",
        ) from exc


def _valid_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _clean_name(name: object, errors: dict[str, str]) -> str:
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "give the cluster a name"
        return ""
    clean = name.strip().lower()
    if len(clean) > NAME_MAX:
        errors["name"] = f"a cluster name has at most {NAME_MAX} characters"
    elif not NAME_PATTERN.match(clean):
        errors["name"] = (
            "use lowercase letters, digits and '-', starting and ending with a letter or digit"
        )
    return clean


def _name_taken(organization_id: int, name: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Cluster.id).where(
                Cluster.organization_id == organization_id,
                sa.func.lower(Cluster.name) == name.lower(),
            )
        )
        is not None
    )


def _clean_resources(
    resources: Mapping[str, object] | Iterable[tuple[str, object]], errors: dict[str, str]
) -> dict[str, int]:
    """Parse every kind; record each problem under ``resource.<kind>``; return the capacities."""
    pairs = list(resources.items()) if isinstance(resources, Mapping) else list(resources)
    capacities: dict[str, int] = {}
    seen: set[str] = set()
    for raw_kind, raw_amount in pairs:
        blank = raw_amount is None or (isinstance(raw_amount, str) and not raw_amount.strip())
        if isinstance(raw_kind, str) and not raw_kind.strip():
            if not blank:
                _add_error(errors, "resource.", "name this resource kind")
            continue
        try:
            kind = quantities.validate_kind(raw_kind)
        except quantities.QuantityError as exc:
            key = raw_kind.strip() if isinstance(raw_kind, str) else str(raw_kind)
            _add_error(errors, f"resource.{key}", str(exc))
            continue
        if blank and kind in quantities.STANDARD_KINDS:
            continue  # an empty cpu/gpu/ram box means the cluster has none of it
        if kind in seen:
            _add_error(errors, f"resource.{kind}", f"{kind} is given twice")
            continue
        seen.add(kind)
        if blank:
            _add_error(errors, f"resource.{kind}", f"give an amount of {kind}")
            continue
        try:
            capacities[kind] = quantities.parse(kind, raw_amount)
        except quantities.QuantityError as exc:
            _add_error(errors, f"resource.{kind}", str(exc))
    if not seen and not any(key.startswith("resource.") for key in errors):
        errors["resources"] = "give the capacity of at least one resource kind"
    limit = current_app.config["MAX_RESOURCE_KINDS"]
    if len(seen) > limit:
        errors["resources"] = f"a cluster has at most {limit} resource kinds"
    return capacities


def _engine_resources(
    resources: Mapping[str, object] | Iterable[tuple[str, object]],
    measured: Mapping[str, int] | None,
    errors: dict[str, str],
) -> list[tuple[str, object]]:
    """An engine cluster's capacity: cpu, ram (and gpu) as the engine reports them; users may
    add custom kinds (accounting only) but never type the engine's own kinds."""
    pairs = list(resources.items()) if isinstance(resources, Mapping) else list(resources)
    out: list[tuple[str, object]] = []
    for kind, amount in pairs:
        blank = amount is None or (isinstance(amount, str) and not amount.strip())
        if isinstance(kind, str) and kind.strip().lower() in quantities.STANDARD_KINDS:
            if not blank:
                _add_error(
                    errors,
                    f"resource.{kind.strip().lower()}",
                    "comes from the engine: leave it empty",
                )
            continue
        out.append((kind, amount))
    for kind, amount in (measured or {}).items():
        if amount > 0:
            exact = {"cpu": f"{amount}m", "ram": f"{amount}Mi"}.get(kind, str(amount))
            out.insert(0, (kind, exact))
    return out


def default_max_deployments() -> int:
    return min(current_app.config["DEFAULT_MAX_DEPLOYMENTS"], deployments_ceiling())


def _clean_max_deployments(value: object, errors: dict[str, str]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_max_deployments()
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        value = int(value.strip())
    ceiling = deployments_ceiling()
    if not _valid_int(value) or not 1 <= value <= ceiling:
        errors["max_deployments"] = (
            f"maximum deployments must be a whole number from 1 to {ceiling:,}"
        )
        return 0
    return value


def _add_error(errors: dict[str, str], key: str, message: str) -> None:
    errors[key] = f"{errors[key]}; {message}" if key in errors else message


REPACK_FIELDS = ("enabled", "threshold", "max_per_hour", "cooldown_minutes")
MAX_REPACK_PER_HOUR = 1000
MAX_REPACK_COOLDOWN_MINUTES = 7 * 24 * 60


def _clean_repack(
    raw: Mapping[str, object], base: RepackSettings, errors: dict[str, str]
) -> RepackSettings:
    """`base` with the settings in `raw` applied; problems go to `errors` as repack.<name>."""
    for key in raw:
        if key not in REPACK_FIELDS:
            errors[f"repack.{key}"] = "is not a repack setting"
    enabled = base.enabled
    if "enabled" in raw:
        value = raw["enabled"]
        word = value.strip().lower() if isinstance(value, str) else None
        if isinstance(value, bool):
            enabled = value
        elif word in ("on", "true", "yes", "1"):
            enabled = True
        elif word in ("", "off", "false", "no", "0"):
            enabled = False
        else:
            errors["repack.enabled"] = "must be on or off"
    threshold = base.threshold_bp
    if "threshold" in raw:
        threshold = _percent_bp(raw["threshold"], errors)
    max_per_hour = base.max_per_hour
    if "max_per_hour" in raw:
        max_per_hour = _bounded(
            raw["max_per_hour"], 1, MAX_REPACK_PER_HOUR, "repack.max_per_hour", errors
        )
    cooldown = base.cooldown_minutes
    if "cooldown_minutes" in raw:
        cooldown = _bounded(
            raw["cooldown_minutes"],
            0,
            MAX_REPACK_COOLDOWN_MINUTES,
            "repack.cooldown_minutes",
            errors,
        )
    return RepackSettings(enabled, threshold, max_per_hour, cooldown)


def _percent_bp(value: object, errors: dict[str, str]) -> int:
    """A percent (0.01 to 100, at most two decimals) as basis points."""
    message = "must be a percent from 0.01 to 100, such as 2 or 0.5"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        errors["repack.threshold"] = message
        return 0
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = Decimal(text) if len(text) <= 12 else Decimal("NaN")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or not Decimal("0.01") <= number <= 100:
        errors["repack.threshold"] = message
        return 0
    basis = number * 100
    if basis != basis.to_integral_value():
        errors["repack.threshold"] = "is precise to 0.01 percent"
        return 0
    return int(basis)


def _bounded(value: object, low: int, high: int, key: str, errors: dict[str, str]) -> int:
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        errors[key] = f"must be a whole number from {low} to {high:,}"
        return 0
    return value
