"""Deployments: submission, deletion and the queue of every cluster, driven by `app.scheduler`.

Owns the `deployments` table. Reaches cluster capacity and usage only through
`app.services.clusters` (lock, snapshot, check, utilize, free); never imports cluster models.
Every scheduling operation runs in one transaction holding the cluster's lock:
lock -> validate -> load state -> scheduler.schedule (pure) -> apply the decision -> commit.
A dry run (the what-if preview) takes the same path on an unlocked snapshot and writes nothing.

Validation lives here, not in forms, so the pages and the JSON API enforce the same rules:
`ValidationError` (fields keyed "name", "image", "priority", "resource.<kind>"), `Infeasible`
(a request that could never run on the cluster) and `QuotaExceeded` (cluster maximum or
organization quota). Nothing is written when any of them is raised.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app

from app import scheduler
from app.extensions import db
from app.models import DEPLOYMENT_STATUSES, Deployment, Organization, User, utcnow, valid_id
from app.quantities import format_amount, format_number, parse_requests
from app.services import clusters, container_spec, engines, history, quotas, transactions
from app.services.errors import (
    Forbidden,
    Infeasible,
    NotFound,
    QuotaExceeded,
    ValidationError,
)
from app.telemetry import metrics

PRIORITY_PRESETS: dict[str, int] = {"low": 100, "normal": 500, "high": 800, "critical": 1000}
DEFAULT_PRIORITY = PRIORITY_PRESETS["normal"]
MIN_PRIORITY, MAX_PRIORITY = 0, 1000
MANAGER_ROLES = ("owner", "admin")
# Preemption policies (docs/scheduling.md, "Fair use"), as the API and the form name them.
POLICY_PREEMPT_LOWER, POLICY_NEVER = "preempt_lower", "never"
PREEMPTION_POLICIES = (POLICY_PREEMPT_LOWER, POLICY_NEVER)
_MINUTE_KEYS = 60_000_000  # the scheduler's time keys (microseconds) in a minute

# A dry run needs an id for the deployment that does not exist yet; real ids are positive.
_PREVIEW_ID = -1
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


# --------------------------------------------------------------------------------------------
# Views


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
    # The reason as data, for pages to word (see `app.scheduler.Wait`); None while running.
    wait: dict[str, Any] | None
    preemptions: int
    created_by_id: int | None
    created_by_name: str | None
    submitted_at: datetime
    started_at: datetime | None
    last_event: str | None
    cluster_name: str | None = None
    preempted_by_id: int | None = None
    # What a real container gets: published ports, environment names with masked values
    # (never the values), the command; and what the reconciler last observed (None for a
    # simulated cluster or before the reconciler's first look).
    ports: tuple[dict[str, Any], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    command: str | None = None
    runtime: engines.RuntimeView | None = None
    may_preempt: bool = True  # preemption policy: False "never preempts"
    max_run_minutes: int | None = None  # maximum run time, from its latest start

    @property
    def port_labels(self) -> list[str]:
        return container_spec.describe_ports(list(self.ports))

    @property
    def preemption_policy(self) -> str:
        """ "preempt_lower" (may preempt lower priority, the default) or "never"."""
        return POLICY_PREEMPT_LOWER if self.may_preempt else POLICY_NEVER

    @property
    def ends_at(self) -> datetime | None:
        """When a running deployment with a maximum run time finishes at the latest."""
        if self.max_run_minutes is None or self.started_at is None or self.status != "running":
            return None
        return self.started_at + timedelta(minutes=self.max_run_minutes)

    @property
    def priority_label(self) -> str:
        """ "high (800)" for a preset value, the bare number otherwise."""
        return priority_label(self.priority)


class Preempted(NamedTuple):
    """A running deployment that a submission evicts back to the queue."""

    id: int
    name: str
    priority: int
    owner: str | None

    def describe(self) -> str:
        owner = f", owned by {self.owner}" if self.owner else ""
        return f"#{self.id} {self.name} (priority {self.priority}{owner})"


@dataclass(frozen=True, slots=True)
class Planned:
    """A deployment that a scheduling decision starts, or leaves waiting (a line of a plan)."""

    id: int | None  # None: the deployment being submitted, which has no id before it exists
    name: str
    priority: int
    position: int | None = None  # in the queue, when it waits
    reason: str | None = None  # why it waits


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The outcome of a submission, or of its dry run (then `deployment` is None).

    Besides the submitted deployment itself: `preempted` are the running deployments it sends
    back to the queue; `started` lists everything the decision starts (the submitted one
    included, with id None in a dry run); `waiting` lists the deployments left waiting because
    of it (itself when it queues, and its victims), each with its position and reason;
    `queue_length` is the length of the cluster's queue afterwards.
    """

    name: str
    status: str  # "running" | "pending"
    position: int | None
    reason: str | None
    preempted: list[Preempted] = field(default_factory=list)
    deployment: DeploymentView | None = None
    started: list[Planned] = field(default_factory=list)
    waiting: list[Planned] = field(default_factory=list)
    queue_length: int = 0
    priority: int | None = None
    requests: dict[str, int] = field(default_factory=dict)
    repacked: list[Preempted] = field(default_factory=list)  # moved by the cluster's repack

    @property
    def dry_run(self) -> bool:
        return self.deployment is None

    @property
    def message(self) -> str:
        """One plain sentence for a flash or the preview."""
        if self.dry_run:
            text = (
                "Would start now."
                if self.status == "running"
                else f"Would wait at position {self.position}: {self.reason}."
            )
            if self.preempted:
                text += " Would preempt " + ", ".join(p.describe() for p in self.preempted) + "."
            if self.repacked:
                moved = ", ".join(p.describe() for p in self.repacked)
                text += f" The cluster's repack would move {moved} back to the queue to fit it."
            return text
        if self.status == "running":
            text = f"{self.name} is running."
        else:
            text = f"{self.name} is waiting at position {self.position}: {self.reason}."
        if self.preempted:
            victims = ", ".join(p.describe() for p in self.preempted)
            if len(self.preempted) == 1:
                text += f" It preempted {victims}; it is queued again and will restart by itself."
            else:
                text += (
                    f" It preempted {victims}; they are queued again and will restart by "
                    "themselves."
                )
        if self.repacked:
            moved = ", ".join(p.describe() for p in self.repacked)
            restarts = "it restarts" if len(self.repacked) == 1 else "they restart"
            text += (
                f" The cluster's repack moved {moved} (same priority) back to the queue to "
                f"fit it; {restarts} by itself."
                if len(self.repacked) == 1
                else f" The cluster's repack moved {moved} (same priority) back to the queue "
                f"to fit it; {restarts} by themselves."
            )
        return text


@dataclass(frozen=True, slots=True)
class DeploymentPage:
    items: list[DeploymentView]
    total: int
    page: int  # 1-based
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def priority_label(priority: int) -> str:
    for name, value in PRIORITY_PRESETS.items():
        if value == priority:
            return f"{name} ({priority})"
    return str(priority)


def view_of(deployment: Deployment, cluster_name: str | None = None) -> DeploymentView:
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
        wait=deployment.wait,
        preemptions=deployment.preemptions,
        created_by_id=deployment.created_by_id,
        created_by_name=creator.display_name if creator else None,
        submitted_at=deployment.submitted_at,
        started_at=deployment.started_at,
        last_event=deployment.last_event,
        cluster_name=cluster_name,
        preempted_by_id=deployment.preempted_by_id,
        ports=tuple(deployment.ports or ()),
        env=container_spec.masked(deployment.env),
        command=container_spec.command_text(deployment.command),
        may_preempt=deployment.may_preempt is not False,
        max_run_minutes=deployment.max_run_minutes,
    )


def _with_runtime(views: list[DeploymentView]) -> list[DeploymentView]:
    """The views with the reconciler's last observation of each (one query)."""
    observed = engines.views_for([view.id for view in views])
    return [replace(view, runtime=observed.get(view.id)) for view in views]


# --------------------------------------------------------------------------------------------
# Read side (also used by the clusters pages)


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


def queued_demand() -> dict[int, dict[str, int]]:
    """What the queue of every cluster asks for, per kind: cluster id -> kind -> amount.

    For the operator's view (`/metrics`); reads the requests of every pending deployment.
    """
    demand: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = db.session.execute(
        sa.select(Deployment.cluster_id, Deployment.requests).where(Deployment.status == "pending")
    )
    for cluster_id, requests in rows:
        _add(demand[cluster_id], requests)
    return demand


def _board_order() -> tuple[Any, ...]:
    """Running first (by priority, then start), then pending in queue order."""
    return (
        Deployment.status.desc(),  # 'running' sorts after 'pending' ascending
        Deployment.queue_position,
        Deployment.priority.desc(),
        Deployment.started_at,
        Deployment.id,
    )


@dataclass(frozen=True, slots=True)
class Board:
    """A cluster's running list and queue, possibly cut to their first rows, and full counts."""

    running: list[DeploymentView]
    queue: list[DeploymentView]
    counts: Counts


def cluster_board(cluster_id: int, limit: int | None = None) -> Board:
    """Running deployments (priority, then start) and the queue (queue order) of one cluster.

    `limit` cuts each list to its first rows, so a dashboard polled every few seconds costs
    the same with ten deployments or ten thousand; `counts` are always complete. The caller
    has already checked that the cluster belongs to the user's organization (through
    `services.clusters.snapshot`, which raises NotFound otherwise).
    """
    orders = {
        "running": (Deployment.priority.desc(), Deployment.started_at, Deployment.id),
        "pending": (Deployment.queue_position, Deployment.id),
    }
    lists = {}
    for status, order in orders.items():
        query = (
            sa.select(Deployment)
            .where(Deployment.cluster_id == cluster_id, Deployment.status == status)
            .options(sa.orm.joinedload(Deployment.created_by))
            .order_by(*order)
        )
        if limit is not None:
            query = query.limit(limit)
        lists[status] = [view_of(d) for d in db.session.scalars(query)]
    counts = counts_by_cluster([cluster_id])[cluster_id]
    return Board(running=lists["running"], queue=lists["pending"], counts=counts)


# Orders the deployments list may be sorted by (column -> what it sorts on).
LIST_SORTS = ("name", "cluster", "status", "priority", "owner", "submitted")
SEARCH_MAX_LENGTH = 200


def list_deployments(
    user: User,
    cluster_id: int | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 20,
    deployment_id: int | None = None,
    search: str | None = None,
    owner_id: int | None = None,
    sort: str | None = None,
    descending: bool = False,
) -> DeploymentPage:
    """The organization's deployments: running first, then pending in queue order per cluster.

    Filters: `cluster_id`, `status`, `deployment_id` (a list of at most that one), `search`
    (part of the name or the image, any case) and `owner_id` (who created it). `sort` orders
    by one of LIST_SORTS instead (`descending` reverses it; ties in the usual order).

    `page` is 1-based. Unknown statuses, sorts and bad paging raise ValidationError; a cluster
    of another organization raises NotFound, like one that does not exist.
    """
    problems: dict[str, str] = {}
    if status is not None and status not in DEPLOYMENT_STATUSES:
        problems["status"] = "status must be running or pending"
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        problems["page"] = "page must be a whole number of at least 1"
    largest = max_page_size()
    if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= largest:
        problems["per_page"] = f"per_page must be between 1 and {largest}"
    if sort is not None and sort not in LIST_SORTS:
        problems["sort"] = "sort must be one of " + ", ".join(LIST_SORTS)
    if search is not None and (not isinstance(search, str) or len(search) > SEARCH_MAX_LENGTH):
        problems["search"] = f"search must be text of at most {SEARCH_MAX_LENGTH} characters"
    if problems:
        raise ValidationError(" ".join(problems.values()), fields=problems)
    names = cluster_names(user)
    if cluster_id is not None and cluster_id not in names:
        raise NotFound("No such cluster.")
    where = [Deployment.organization_id == user.organization_id]
    if cluster_id is not None:
        where.append(Deployment.cluster_id == cluster_id)
    if status is not None:
        where.append(Deployment.status == status)
    if deployment_id is not None:
        where.append(Deployment.id == deployment_id)
    if owner_id is not None:
        where.append(Deployment.created_by_id == owner_id)
    if search and search.strip():
        needle = search.strip().lower()
        where.append(
            sa.or_(
                sa.func.lower(Deployment.name).contains(needle, autoescape=True),
                sa.func.lower(Deployment.image).contains(needle, autoescape=True),
            )
        )
    total = db.session.scalar(sa.select(sa.func.count()).select_from(Deployment).where(*where))
    usual = (Deployment.status.desc(), Deployment.cluster_id, *_board_order()[1:])
    query = (
        sa.select(Deployment)
        .where(*where)
        .options(sa.orm.joinedload(Deployment.created_by))
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    if sort is None:
        query = query.order_by(*usual)
    else:
        key = _list_sort_key(sort, names)
        query = query.order_by(key.desc() if descending else key.asc(), *usual)
    rows = db.session.scalars(query).all()
    items = _with_runtime([view_of(d, names.get(d.cluster_id)) for d in rows])
    return DeploymentPage(items=items, total=total or 0, page=page, per_page=per_page)


def _list_sort_key(sort: str, names: Mapping[int, str]) -> Any:
    """The SQL expression a list column sorts on (cluster names and owners by name)."""
    if sort == "cluster":
        # Clusters are few per organization (MAX_CLUSTERS_PER_ORGANIZATION): rank them by name.
        ranks = {cid: rank for rank, cid in enumerate(sorted(names, key=lambda c: names[c]))}
        return (
            sa.case(ranks, value=Deployment.cluster_id, else_=len(ranks))
            if ranks
            else (Deployment.cluster_id)
        )
    if sort == "owner":
        return (
            sa.select(sa.func.lower(User.display_name))
            .where(User.id == Deployment.created_by_id)
            .scalar_subquery()
        )
    return {
        "name": Deployment.name,
        "status": Deployment.status,
        "priority": Deployment.priority,
        "submitted": Deployment.submitted_at,
    }[sort]


def max_page_size() -> int:
    """The largest page a list may ask for: the API's configured bound (or the pages' size)."""
    config = current_app.config
    return max(config["API_MAX_PAGE_SIZE"], config["PAGE_SIZE"])


class RunningHolding(NamedTuple):
    """What one running deployment holds, for use against quotas (`services.organizations`)."""

    created_by_id: int | None
    cluster_id: int
    priority: int
    requests: dict[str, int]


def running_holdings(organization_id: int) -> list[RunningHolding]:
    """Every running deployment of the organization: creator, cluster, priority, requests."""
    return [
        RunningHolding(row.created_by_id, row.cluster_id, row.priority, dict(row.requests or {}))
        for row in db.session.execute(
            sa.select(
                Deployment.created_by_id,
                Deployment.cluster_id,
                Deployment.priority,
                Deployment.requests,
            ).where(Deployment.organization_id == organization_id, Deployment.status == "running")
        )
    ]


def organization_count(organization_id: int) -> int:
    """Deployments (running and queued) the organization has, for the quota's explanation."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Deployment)
        .where(Deployment.organization_id == organization_id)
    )


class ClusterChoice(NamedTuple):
    id: int
    name: str


def cluster_choices(user: User) -> list[ClusterChoice]:
    """Every cluster of the user's organization by name, for pickers and filters: one light
    query (ids and names, no capacities), however many clusters there are (the operator's
    MAX_CLUSTERS_PER_ORGANIZATION bounds them)."""
    names = clusters.names(user.organization_id)
    return sorted(
        (ClusterChoice(cluster_id, name) for cluster_id, name in names.items()),
        key=lambda choice: (choice.name, choice.id),
    )


def deploy_target(user: User, cluster_id: int) -> clusters.ClusterSnapshot:
    """The cluster the deploy form is for, with its kinds and free resources (NotFound for
    another organization's cluster, like any id)."""
    return clusters.snapshot(cluster_id, user.organization_id)


def cluster_names(user: User) -> dict[int, str]:
    """Id -> name of every cluster of the user's organization (no capacities loaded)."""
    return clusters.names(user.organization_id)


def get(user: User, deployment_id: int) -> DeploymentView:
    """One deployment of the user's organization (NotFound otherwise), with its cluster name."""
    deployment = _find(user, deployment_id)
    snap = clusters.snapshot(deployment.cluster_id, user.organization_id)
    return _with_runtime([view_of(deployment, snap.name)])[0]


def logs(user: User, deployment_id: int) -> engines.LogsView:
    """The last lines of the deployment's container output (NotFound for another
    organization's); read from the engine outside any transaction."""
    deployment = _find(user, deployment_id)
    snap = clusters.snapshot(deployment.cluster_id, user.organization_id)
    return engines.logs_of(deployment.id, snap.engine)


def names_of(organization_id: int, ids: Iterable[int]) -> dict[int, str]:
    """Id -> name of those of `ids` that are deployments of the organization (one
    query; a deployment deleted since is simply absent)."""
    wanted = [i for i in set(ids) if valid_id(i)]
    if not wanted:
        return {}
    rows = db.session.execute(
        sa.select(Deployment.id, Deployment.name).where(
            Deployment.id.in_(wanted), Deployment.organization_id == organization_id
        )
    )
    return {deployment_id: name for deployment_id, name in rows}


def live_version(user: User, deployment_id: int) -> str:
    """The deployment page's live ETag: its cluster's state version (bumped by every scheduling
    transaction, which is what changes a deployment's status, place, reason and priority) and
    the viewer, whose role decides what the page offers. Two small indexed reads; NotFound for
    another organization's deployment or one that is gone."""
    if not valid_id(deployment_id):
        raise NotFound("No such deployment.")
    cluster_id = db.session.scalar(
        sa.select(Deployment.cluster_id).where(
            Deployment.id == deployment_id,
            Deployment.organization_id == user.organization_id,
        )
    )
    if cluster_id is None:
        raise NotFound("No such deployment.")
    version = clusters.state_version(cluster_id, user.organization_id)
    return f"d{deployment_id}-c{cluster_id}-v{version}-u{user.id}-{user.role}"


def timeline(user: User, deployment_id: int, limit: int = 100) -> list[history.EventView]:
    """The newest `limit` entries of one deployment's history, oldest first."""
    deployment = _find(user, deployment_id)
    return history.of_subject(user.organization_id, "deployment", deployment.id, limit)


def can_delete(user: User, deployment: DeploymentView) -> bool:
    return user.role in MANAGER_ROLES or deployment.created_by_id == user.id


def can_change_priority(user: User, deployment: DeploymentView) -> bool:
    """The people who may delete a deployment may also change its priority."""
    return can_delete(user, deployment)


def can_delete_all(user: User) -> bool:
    return user.role in MANAGER_ROLES


def _find(user: User, deployment_id: int) -> Deployment:
    if not valid_id(deployment_id):  # a huge or odd id would overflow the column type
        raise NotFound("No such deployment.")
    deployment = db.session.scalar(
        sa.select(Deployment)
        .where(
            Deployment.id == deployment_id,
            Deployment.organization_id == user.organization_id,
        )
        .options(sa.orm.joinedload(Deployment.created_by))
    )
    if deployment is None:
        raise NotFound("No such deployment.")
    return deployment


# --------------------------------------------------------------------------------------------
# Preemption notices


def pop_notices(user: User) -> list[str]:
    """Notices of the user's deployments preempted since they last looked; clears them.

    The common case (nothing to tell) costs one indexed SELECT and writes nothing. Clearing
    runs outside any cluster lock, so it must never wait for a scheduling transaction (which
    may be updating the same rows in another order: a deadlock on PostgreSQL): it locks the
    rows with SKIP LOCKED, and a notice whose row is busy right now is shown on a later page.
    """
    pending = sa.select(Deployment.id, Deployment.preemption_notice).where(
        Deployment.created_by_id == user.id, Deployment.preemption_notice.is_not(None)
    )
    if not db.session.execute(pending.limit(1)).first():
        return []
    transactions.begin_write()
    waiting = db.session.execute(
        pending.order_by(Deployment.id).with_for_update(skip_locked=True)
    ).all()
    if waiting:
        db.session.execute(
            sa.update(Deployment)
            .where(Deployment.id.in_([deployment_id for deployment_id, _ in waiting]))
            .values(preemption_notice=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    return [notice for _, notice in waiting]


# --------------------------------------------------------------------------------------------
# Validation

NAME_MAX = 63
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
IMAGE_NAME_MAX = 255
TAG_MAX = 128
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN_COMPONENT = re.compile(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$")
_TAG = re.compile(r"^[\w][\w.-]*$", re.ASCII)
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def name_problem(name: str) -> str | None:
    """Why `name` is not a DNS label (RFC 1123, lowercase), or None."""
    if not name:
        return "name is required"
    if len(name) > NAME_MAX:
        return f"name must be at most {NAME_MAX} characters"
    if name != name.lower():
        return "name must be lowercase"
    if not _NAME.match(name):
        if name[0] == "-" or name[-1] == "-":
            return "name must start and end with a letter or a digit"
        return "name may use only lowercase letters, digits and '-'"
    return None


def image_problem(image: str) -> str | None:
    """Why `image` is not a Docker image reference, or None.

    Grammar (distribution/reference): [registry-host[:port]/]path[/path...][:tag][@sha256:hex]
    where the first component is a registry host when it contains '.' or ':' or is
    'localhost'; path components are lowercase; the repository name is at most 255 characters.
    """
    if not image:
        return "image is required"
    if any(ch.isspace() for ch in image):
        return "image must not contain spaces"
    if not image.isascii():
        return "image may use only ASCII characters"
    rest, at, digest = image.partition("@")
    if at and not _DIGEST.match(digest):
        return "digest must be sha256: followed by 64 lowercase hexadecimal characters"
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = None
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not tag:
            return "tag is empty after ':'"
        if len(tag) > TAG_MAX:
            return f"tag is longer than {TAG_MAX} characters"
        if not _TAG.match(tag):
            return (
                "tag must start with a letter, digit or '_' and use only letters, digits, "
                "'_', '.' and '-'"
            )
    if not rest:
        return "image needs a repository name, such as nginx or ghcr.io/org/app"
    if len(rest) > IMAGE_NAME_MAX:
        return f"repository name must be at most {IMAGE_NAME_MAX} characters"
    components = rest.split("/")
    first = components[0]
    if len(components) > 1 and ("." in first or ":" in first or first == "localhost"):
        problem = _registry_problem(first)
        if problem:
            return problem
        components = components[1:]
    for component in components:
        if not component:
            return "image has an empty path component (look for '//' or a '/' at either end)"
        if component != component.lower():
            return "image must be lowercase (only a registry host may use capitals)"
        if not _PATH_COMPONENT.match(component):
            return (
                f"'{component}' is not a valid path component: use lowercase letters and digits "
                "separated by '.', '_', '__' or dashes"
            )
    return None


def _registry_problem(host: str) -> str | None:
    name, colon, port = host.partition(":")
    if colon and not (port.isdigit() and 0 < int(port) <= 65535):
        return "registry port must be a number between 1 and 65535"
    if not all(_DOMAIN_COMPONENT.match(part) for part in name.split(".")):
        return f"'{host}' is not a valid registry host"
    return None


_PRIORITY_CHOICES = (
    f"a whole number from {MIN_PRIORITY} to {MAX_PRIORITY} or one of {', '.join(PRIORITY_PRESETS)}"
)


def parse_priority(value: object) -> int:
    """An integer 0..1000, or a preset name (low, normal, high, critical); None is normal."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_PRIORITY
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PRIORITY_PRESETS:
            return PRIORITY_PRESETS[text]
        if re.fullmatch(r"[0-9]{1,4}", text):
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("priority must be " + _PRIORITY_CHOICES)
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
    return value


def parse_policy(value: object) -> bool:
    """A preemption policy ("preempt_lower", the default, or "never") as `may_preempt`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    if isinstance(value, str) and value.strip().lower() in PREEMPTION_POLICIES:
        return value.strip().lower() == POLICY_PREEMPT_LOWER
    raise ValueError('the preemption policy is "preempt_lower" (the default) or "never"')


_DURATION = re.compile(r"([0-9]{1,7})\s*(m|min|mins|minutes?|h|hours?|d|days?)?")


def parse_max_run(value: object) -> int | None:
    """A maximum run time in whole minutes: a number of minutes, or text such as "90m",
    "2h", "1d"; None or blank for none. At most MAX_RUN_MINUTES_CEILING."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    minutes: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    elif isinstance(value, str):
        found = _DURATION.fullmatch(value.strip().lower())
        if found:
            unit = (found.group(2) or "m")[0]
            minutes = int(found.group(1)) * {"m": 1, "h": 60, "d": 1440}[unit]
    ceiling = current_app.config["MAX_RUN_MINUTES_CEILING"]
    if minutes is None or not 1 <= minutes <= ceiling:
        raise ValueError(
            f"the maximum run time is whole minutes from 1 to {ceiling:,}, such as 90, "
            '"90m", "2h" or "1d"; leave it empty for none'
        )
    return minutes


def parse_priority_rights(values: Mapping[str, object]) -> dict[str, int | None]:
    """Priority rights as the settings give them (field -> a number 0..1000, a tier name, or
    None to keep the current value), parsed; every problem is reported under its field."""
    parsed: dict[str, int | None] = {}
    problems: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            parsed[key] = None
            continue
        try:
            if isinstance(value, str) and not value.strip():
                raise ValueError("give a priority: " + _PRIORITY_CHOICES)
            parsed[key] = parse_priority(value)
        except ValueError as exc:
            problems[key] = str(exc)
    if problems:
        raise ValidationError(_summary(problems), fields=problems)
    return parsed


def max_priority_for(user: User) -> int:
    """The highest priority `user` may give a deployment (priority rights): owners any, admins
    and members up to what the owners set for their role."""
    if user.role == "owner":
        return MAX_PRIORITY
    column = (
        Organization.admin_max_priority
        if user.role == "admin"
        else Organization.member_max_priority
    )
    limit = db.session.scalar(sa.select(column).where(Organization.id == user.organization_id))
    return MAX_PRIORITY if limit is None else limit


def _check_priority_right(user: User, priority: int) -> None:
    """Refuse a priority above what the user's role may use (422, field "priority")."""
    limit = max_priority_for(user)
    if priority > limit:
        problem = (
            f"as {'an' if user.role == 'admin' else 'a'} {user.role} you may use priorities up "
            f"to {priority_label(limit)}; ask an owner for more"
        )
        raise ValidationError(
            f"Priority {priority_label(priority)} is above your role's limit: {problem}.",
            fields={"priority": problem},
        )


@dataclass(frozen=True, slots=True)
class _Valid:
    name: str | None  # None: generate one from the image
    image: str
    priority: int
    requests: dict[str, int]
    spec: container_spec.ContainerSpec


def _validate_fields(
    image: object,
    name: object,
    priority: object,
    requests_raw: object,
    ports: object = None,
    env: object = None,
    command: object = None,
) -> _Valid:
    """Every per-field rule that needs no database; all problems are reported together."""
    problems: dict[str, str] = {}
    spec = container_spec.parse(ports, env, command, problems)
    image_text = image.strip() if isinstance(image, str) else ""
    if image is not None and not isinstance(image, str):
        problems["image"] = "image must be a string"
    elif problem := image_problem(image_text):
        problems["image"] = problem
    name_text: str | None = None
    if name is not None and not isinstance(name, str):
        problems["name"] = "name must be a string"
    elif isinstance(name, str) and name.strip():
        name_text = name.strip()
        if problem := name_problem(name_text):
            problems["name"] = problem
    try:
        priority_value = parse_priority(priority)
    except ValueError as exc:
        problems["priority"] = str(exc)
        priority_value = DEFAULT_PRIORITY
    amounts: dict[str, int] = {}
    if not isinstance(requests_raw, Mapping):
        problems["resource"] = "resources must map a kind to a quantity, such as cpu: 0.5"
    else:
        raw = {key: value for key, value in requests_raw.items() if value is not None}
        amounts, errors = parse_requests(raw)
        for key, message in errors.items():
            problems[f"resource.{key}"] = message
    if problems:
        raise ValidationError(_summary(problems), fields=problems)
    return _Valid(name_text, image_text, priority_value, amounts, spec)


def _check_engine(cluster: clusters.ClusterSnapshot, requests: Mapping[str, int]) -> None:
    """A container's limits come from its requests, so a deployment on an engine-backed
    cluster must request cpu and ram (at least the engine's minimum memory)."""
    if cluster.engine is None:
        return
    problems = {}
    for kind in ("cpu", "ram"):
        if not requests.get(kind):
            problems[f"resource.{kind}"] = (
                f"request some {kind}: on cluster {cluster.name} it becomes the container's limit"
            )
    minimum = engines.MIN_RAM_MIB
    if requests.get("ram") and requests["ram"] < minimum:
        problems["resource.ram"] = f"a container needs at least {minimum} MiB of ram"
    if problems:
        raise ValidationError(_summary(problems), fields=problems)


def _validate_policy(policy: object, max_run: object) -> tuple[bool, int | None]:
    """The preemption policy (as `may_preempt`) and the maximum run time (minutes or None)."""
    problems: dict[str, str] = {}
    may_preempt, minutes = True, None
    try:
        may_preempt = parse_policy(policy)
    except ValueError as exc:
        problems["preemption_policy"] = str(exc)
    try:
        minutes = parse_max_run(max_run)
    except ValueError as exc:
        problems["max_run"] = str(exc)
    if problems:
        raise ValidationError(_summary(problems), fields=problems)
    return may_preempt, minutes


def _summary(problems: Mapping[str, str]) -> str:
    first = next(iter(problems.values()))
    more = len(problems) - 1
    return (
        first[0].upper()
        + first[1:]
        + (f" (and {more} more problem{'s' * (more > 1)})" if more else ".")
    )


def _check_feasible(capacity: Mapping[str, int], requests: Mapping[str, int]) -> None:
    problem = scheduler.infeasible(capacity, requests)
    if problem is None:
        return
    key = "resource"
    for kind in sorted(requests):
        if requests[kind] > 0 and (kind not in capacity or requests[kind] > capacity[kind]):
            key = f"resource.{kind}"
            break
    # "needs 4 gpu but ..." and "requests nothing ..." read after "it"; "this cluster has no
    # gpu" and "cpu cannot be negative" stand alone.
    subject = "it " if problem.startswith(("needs", "requests")) else ""
    raise Infeasible(
        f"This deployment could never run here: {subject}{problem}.", fields={key: problem}
    )


def _check_cluster_limit(cluster: clusters.ClusterSnapshot) -> None:
    """Rule 9, the cluster's maximum (running plus pending); race-free under the cluster lock."""
    in_cluster = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Deployment)
        .where(Deployment.cluster_id == cluster.id)
    )
    # The operator's ceiling also caps clusters made before it was lowered.
    maximum = min(cluster.max_deployments, clusters.deployments_ceiling())
    if in_cluster >= maximum:
        raise QuotaExceeded(
            f"Cluster {cluster.name} already holds its maximum of {maximum} "
            "deployments (running and queued). Delete one first.",
            fields={"cluster_id": "cluster is at its maximum number of deployments"},
        )


def _check_org_quota(organization_id: int, *, counting_new: bool) -> None:
    """Rule 9, the organization's quota across all its clusters.

    The cluster lock does not cover the organization's other clusters, so a real submission
    calls this as its LAST step before commit, with its own row already flushed
    (`counting_new`): on PostgreSQL it locks the organization row FOR UPDATE and then counts,
    so two submissions to different clusters cannot both take the last unit of quota, while
    the organization row is held only for the count and the commit (scheduling operations on
    different clusters still run in parallel). SQLite's BEGIN IMMEDIATE already serializes
    every writer. The dry run calls it first, without a lock and without a new row.
    """
    quota_query = sa.select(Organization.deployment_quota).where(Organization.id == organization_id)
    if counting_new and db.engine.dialect.name != "sqlite":
        # NO KEY UPDATE: it serializes quota checks without conflicting with the KEY SHARE
        # locks that inserting deployments takes on the organization row (foreign key); a
        # plain FOR UPDATE here deadlocks two submissions that both inserted already.
        quota_query = quota_query.with_for_update(key_share=True)
    quota = db.session.scalar(quota_query)
    in_org = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Deployment)
        .where(Deployment.organization_id == organization_id)
    )
    existing = in_org - 1 if counting_new else in_org
    if quota is not None and existing >= quota:
        raise QuotaExceeded(
            f"Your organization has reached its quota of {quota} deployments. "
            "Delete some, or ask an owner to raise the quota.",
            fields={"quota": "organization deployment quota reached"},
        )


def _name_taken(cluster_id: int, name: str) -> bool:
    return (
        db.session.scalar(
            sa.select(Deployment.id).where(
                Deployment.cluster_id == cluster_id, Deployment.name == name
            )
        )
        is not None
    )


def _generated_name(cluster_id: int, image: str) -> str:
    """<last path component of the image>-<4 random characters>, unique in the cluster."""
    last = image.partition("@")[0].rsplit("/", 1)[-1].split(":", 1)[0]
    stem = re.sub(r"[^a-z0-9]+", "-", last.lower()).strip("-")[: NAME_MAX - 5] or "app"
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    for _ in range(20):
        name = f"{stem.rstrip('-')}-{''.join(secrets.choice(alphabet) for _ in range(4))}"
        if not _name_taken(cluster_id, name):
            return name
    raise QuotaExceeded("Could not find a free name; please give the deployment a name.")


# --------------------------------------------------------------------------------------------
# Scheduling transactions


@contextmanager
def _rollback_on_error() -> Iterator[None]:
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


class _StateRow(NamedTuple):
    """One deployment of a cluster as a decision reads it (`_load_state`)."""

    id: int
    name: str
    priority: int
    requests: dict[str, int]
    status: str
    submitted_at: datetime
    started_at: datetime | None
    queue_position: int | None
    reason: str | None
    wait: dict[str, Any] | None
    preemptions: int
    preempted_by_id: int | None
    created_by_id: int | None
    may_preempt: bool
    max_run_minutes: int | None


# The JSON columns are read as text and each distinct text decoded once per load: a cluster's
# requests and wait reasons repeat a lot, and decoding every row's was most of a decision's
# cost on a large cluster (see bench/decision_path_bench.py).
_JSON_FIELDS = ("requests", "wait")
_ROW_COLUMNS = tuple(
    sa.cast(getattr(Deployment, name), sa.Text).label(name)
    if name in _JSON_FIELDS
    else getattr(Deployment, name)
    for name in _StateRow._fields
)


def _load_state(
    cluster_id: int, priorities: Mapping[int, int] | None = None
) -> tuple[dict[int, _StateRow], list[scheduler.Job], list[scheduler.Job]]:
    """Rows of the cluster by id, and the scheduler's running and pending jobs.

    `priorities` overrides the priority of some deployments (id -> priority), in the rows and
    the jobs alike, to decide a priority change before (or without) writing it. The rows'
    `requests` and `wait` are shared between rows with the same text: read them, never
    change them.
    """
    decoded: dict[str | None, Any] = {None: None}

    def load(text: str | None) -> Any:
        value = decoded.get(text, decoded)
        if value is decoded:
            value = decoded[text] = json.loads(text)  # type: ignore[arg-type]
        return value

    make = _StateRow._make
    rows: dict[int, _StateRow] = {}
    # Through the connection: plain rows, without the ORM's result handling.
    for found in db.session.connection().execute(
        sa.select(*_ROW_COLUMNS).where(Deployment.cluster_id == cluster_id)
    ):
        # requests and wait are the 4th and 10th columns (`_StateRow`).
        rows[found[0]] = make(
            (*found[:3], load(found[3]), *found[4:9], load(found[9]), *found[10:])
        )
    for deployment_id, priority in (priorities or {}).items():
        if deployment_id in rows:
            rows[deployment_id] = rows[deployment_id]._replace(priority=priority)
    running, pending = [], []
    for row in rows.values():
        job = scheduler.Job(
            row.id,
            row.priority,
            row.requests,
            _micros(row.submitted_at),
            _micros(row.started_at),
            row.preempted_by_id,
        )
        (running if row.status == "running" else pending).append(job)
    return rows, running, pending


def _priority_of(rows: Mapping[int, Any], new: Any, deployment_id: int) -> int:
    """The priority of a deployment a decision names (a preemptor, a repack's beneficiary):
    the submitted one's, else its row's."""
    if new is not None and deployment_id == new.id:
        return int(new.priority)
    return int(rows[deployment_id].priority)


def _add(total: dict[str, int], amounts: Mapping[str, int]) -> None:
    for kind, amount in amounts.items():
        total[kind] += amount


# What the scheduler's repack names the moves it makes in the history (and counts them by).
REPACKED = "deployment.repacked"


def _state(
    cluster: clusters.ClusterSnapshot,
    running: list[scheduler.Job],
    pending: list[scheduler.Job],
    rows: Mapping[int, Any] | None = None,
    new: Any = None,
    *,
    lock: bool = False,
    now: datetime | None = None,
) -> scheduler.ClusterState:
    """The scheduler's input for one cluster, with its repack settings turned into the
    numbers the clock-free scheduler takes (`_repack`) and its fair-use rules (`_fairness`,
    from `rows` and the `new` deployment's row, when given; `lock` takes the organization's
    row lock that quotas across clusters need)."""
    config = current_app.config
    return scheduler.ClusterState(
        cluster.capacity,
        running,
        pending,
        cluster.max_deployments,
        repack=_repack(cluster),
        work_budget=config["SCHEDULER_WORK_BUDGET"],
        blockers_listed=config["SCHEDULER_BLOCKERS_LISTED"],
        fair=None if rows is None else _fairness(cluster, rows, new, lock=lock, now=now),
    )


def _fairness(
    cluster: clusters.ClusterSnapshot,
    rows: Mapping[int, Any],
    new: Any = None,
    *,
    lock: bool,
    now: datetime | None = None,
    force: bool = False,
) -> scheduler.Fairness | None:
    """The cluster's fair-use rules for the scheduler (docs/scheduling.md, "Fair use"), or
    None when none applies (then the plain rules decide, at no extra cost) unless `force`
    (a simulation needs the clock and the run limits)."""
    every: dict[int, Any] = dict(rows)
    if new is not None:
        every[new.id] = new
    settings = cluster.fair_use
    never = frozenset(i for i, row in every.items() if row.may_preempt is False)
    quota_list = _quota_instances(cluster, every, lock=lock)
    active = never or quota_list or settings.min_run_minutes or settings.starvation_minutes
    if not (active or force):
        return None
    return scheduler.Fairness(
        now=_micros(now or utcnow()),
        quotas=quota_list,
        never_preempts=never,
        max_run=_max_runs(every),
        min_run=settings.min_run_minutes * _MINUTE_KEYS,
        starve_after=(
            settings.starvation_minutes * _MINUTE_KEYS if settings.starvation_minutes else None
        ),
        horizon=current_app.config["SCHEDULER_ESTIMATE_EVENTS"],
    )


def _max_runs(rows: Mapping[int, Any]) -> dict[int, int]:
    return {i: row.max_run_minutes * _MINUTE_KEYS for i, row in rows.items() if row.max_run_minutes}


def _lock_organization(organization_id: int) -> None:
    """Serialize decisions that read quotas across clusters (see `_check_org_quota`)."""
    if db.engine.dialect.name != "sqlite":
        db.session.execute(
            sa.select(Organization.id)
            .where(Organization.id == organization_id)
            .with_for_update(key_share=True)
        )


def _quota_instances(
    cluster: clusters.ClusterSnapshot, every: Mapping[int, Any], *, lock: bool
) -> tuple[scheduler.Quota, ...]:
    """The organization's quotas covering this cluster, as the scheduler applies them: one per
    quota, or per quota and member for "each member" quotas, with what their members' running
    deployments hold on the other clusters."""
    rules = quotas.rules_for(cluster.organization_id, cluster.id)
    if not rules:
        return ()
    elsewhere: list[Any] = []
    if any(rule.cluster_id is None for rule in rules):
        if lock:
            _lock_organization(cluster.organization_id)
        elsewhere = list(
            db.session.execute(
                sa.select(Deployment.created_by_id, Deployment.priority, Deployment.requests).where(
                    Deployment.organization_id == cluster.organization_id,
                    Deployment.cluster_id != cluster.id,
                    Deployment.status == "running",
                )
            )
        )
    by_creator: dict[int | None, list[int]] = defaultdict(list)
    for deployment_id, row in every.items():
        by_creator[row.created_by_id].append(deployment_id)
    found: list[scheduler.Quota] = []
    for rule in rules:
        if rule.scope == "each_member":
            groups = [(owner, ids) for owner, ids in by_creator.items() if owner is not None]
        elif rule.scope == "member":
            groups = [(rule.user_id, by_creator.get(rule.user_id, []))]
        else:
            groups = [(None, list(every))]
        for owner, ids in groups:
            members = frozenset(
                i for i in ids if rule.applies(every[i].created_by_id, every[i].priority)
            )
            if not members:
                continue
            used = 0
            if rule.cluster_id is None:
                used = sum(
                    (row.requests or {}).get(rule.kind, 0)
                    for row in elsewhere
                    if rule.applies(row.created_by_id, row.priority)
                    and (rule.scope != "each_member" or row.created_by_id == owner)
                )
            label = "your organization's" if rule.scope == "organization" else "your"
            found.append(scheduler.Quota(rule.kind, rule.amount, members, used, label))
    return tuple(found)


def _check_quota_feasible(
    organization_id: int,
    cluster_id: int,
    creator_id: int | None,
    priority: int,
    requests: Mapping[str, int],
) -> None:
    """Refuse (422) a deployment that no quota covering it could ever admit: it asks for
    more of a kind than the quota allows at all. One that fits a quota later waits instead."""
    for rule in quotas.rules_for(organization_id, cluster_id):
        need = requests.get(rule.kind, 0)
        if need > rule.amount and rule.applies(creator_id, priority):
            whose = "your organization's" if rule.scope == "organization" else "your"
            problem = (
                f"asks for {format_amount(rule.kind, need)}, more than {whose} {rule.kind} "
                f"quota of {format_amount(rule.kind, rule.amount)} allows"
            )
            raise QuotaExceeded(
                f"This deployment could never start: it {problem}.",
                fields={f"resource.{rule.kind}": problem},
            )


def _settle(
    cluster: clusters.ClusterSnapshot, decision: scheduler.Decision, now: datetime | None = None
) -> None:
    """Follow a decision that freed room or quota while fair use held work back with
    Reconcile decisions (at most SCHEDULER_SETTLE_ROUNDS), each applied like any other."""
    rounds = current_app.config["SCHEDULER_SETTLE_ROUNDS"]
    while decision.settle and rounds > 0:
        rounds -= 1
        db.session.flush()
        rows, running, pending = _load_state(cluster.id)
        decision = _decide(
            _state(cluster, running, pending, rows, lock=True, now=now),
            scheduler.Reconcile(),
            "settle",
        )
        _apply(cluster, rows, decision, {}, now=now)


def _repack(cluster: clusters.ClusterSnapshot) -> scheduler.Repack | None:
    """The cluster's repack as of now: what its hourly budget still allows (moves recorded in
    the last hour) and which deployments are cooling down (moved within the cooldown). None
    when the repack is off."""
    settings = cluster.repack
    if not settings.enabled:
        return None
    now = utcnow()
    hour_ago = now - timedelta(hours=1)
    cooldown_start = now - timedelta(minutes=settings.cooldown_minutes)
    moves = history.recent(cluster.id, REPACKED, min(hour_ago, cooldown_start))
    made = sum(1 for _, at in moves if at >= hour_ago)
    cooling = frozenset(
        subject for subject, at in moves if subject is not None and at >= cooldown_start
    )
    return scheduler.Repack(settings.threshold_bp, max(0, settings.max_per_hour - made), cooling)


def _decide(
    state: scheduler.ClusterState, event: scheduler.Event, label: str
) -> scheduler.Decision:
    """The pure scheduler's decision, timed and counted for /metrics under `label`."""
    started = time.perf_counter()
    decision = scheduler.schedule(state, event)
    metrics.SCHEDULING_DURATION.labels(label).observe(time.perf_counter() - started)
    metrics.SCHEDULING_DECISIONS.labels(label).inc()
    return decision


def _apply(
    cluster: clusters.ClusterSnapshot,
    rows: Mapping[int, Any],
    decision: scheduler.Decision,
    released: Mapping[str, int],
    new: Deployment | None = None,
    now: datetime | None = None,
    actor_id: int | None = None,
) -> None:
    """Persist a decision: usage first (free, then utilize), then the changed rows and their
    history (started, restarted, preempted, evicted; a new deployment's queueing).

    Victims get a preemption notice for their creator's next page, except those of
    `actor_id`, who caused it and reads it in the action's own summary (one banner per action).

    `released` is what leaves the pool besides victims (deleted running deployments). Freeing
    before reserving keeps usage within capacity at every statement, so the guards in
    `clusters.utilize` never see a transient overflow.
    """
    cluster_id = cluster.id
    now = now or utcnow()
    clusters.touch(cluster_id)
    free: dict[str, int] = defaultdict(int, released)
    for victim_id in (*decision.preempted, *decision.evicted, *decision.repacked):
        _add(free, rows[victim_id].requests)
    if any(free.values()):
        clusters.free(cluster_id, free)
    reserve: dict[str, int] = defaultdict(int)
    for started_id in decision.started:
        _add(
            reserve,
            new.requests if new is not None and started_id == new.id else rows[started_id].requests,
        )
    if reserve:
        clusters.utilize(cluster_id, reserve)

    queue = {entry.id: entry for entry in decision.queue}
    updates: list[dict[str, Any]] = []
    for started_id in decision.started:
        if new is not None and started_id == new.id:
            new.status, new.started_at, new.last_event = "running", now, "started"
            continue
        row = rows[started_id]
        restarted = row.preemptions > 0
        updates.append(
            {
                "id": started_id,
                "status": "running",
                "started_at": now,
                "queue_position": None,
                "reason": None,
                "wait": None,
                "preempted_by_id": None,
                "last_event": "restarted when room returned" if restarted else "started",
            }
        )
    for victim_id, preemptor_id in decision.preempted.items():
        row, entry = rows[victim_id], queue[victim_id]
        by = f"deployment #{preemptor_id} (priority {_priority_of(rows, new, preemptor_id)})"
        notice = (
            f"Your deployment {row.name} was preempted by {by}; "
            "it is queued again and will restart by itself."
        )
        updates.append(
            {
                "id": victim_id,
                "status": "pending",
                "started_at": None,
                "queue_position": entry.position,
                "reason": entry.reason,
                "wait": entry.wait.to_dict(),
                "preemptions": row.preemptions + 1,
                "preempted_by_id": preemptor_id,
                "last_event": f"preempted by {by}",
                "preemption_notice": notice if row.created_by_id not in (None, actor_id) else None,
            }
        )
    for moved_id, for_id in decision.repacked.items():  # the cluster's opt-in repack
        row, entry = rows[moved_id], queue[moved_id]
        by = f"deployment #{for_id}"
        notice = (
            f"Your deployment {row.name} was moved back to the queue to fit {by} (same "
            f"priority) by the cluster's repack; it will restart by itself."
        )
        updates.append(
            {
                "id": moved_id,
                "status": "pending",
                "started_at": None,
                "queue_position": entry.position,
                "reason": entry.reason,
                "wait": entry.wait.to_dict(),
                "preemptions": row.preemptions + 1,
                "preempted_by_id": for_id,
                "last_event": f"repacked to fit #{for_id}",
                "preemption_notice": notice if row.created_by_id not in (None, actor_id) else None,
            }
        )
    for victim_id in decision.evicted:  # only after a capacity repair; no preemptor to name
        entry = queue[victim_id]
        updates.append(
            {
                "id": victim_id,
                "status": "pending",
                "started_at": None,
                "queue_position": entry.position,
                "reason": entry.reason,
                "wait": entry.wait.to_dict(),
                "last_event": "evicted to bring usage back within capacity",
            }
        )
    moved = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
    # Entries with the same reason share one Wait, and rows with the same stored wait one dict
    # (`_load_state`): each is converted, encoded and compared once.
    as_dict: dict[int, dict[str, Any]] = {}
    as_text: dict[int, str] = {}
    equal: dict[tuple[int, int], bool] = {}
    places: list[dict[str, Any]] = []  # queued rows whose place or reason changed
    for entry in decision.queue:
        if entry.id in moved:
            continue
        key = id(entry.wait)
        wait = as_dict.get(key)
        if wait is None:
            wait = as_dict[key] = entry.wait.to_dict()
        if new is not None and entry.id == new.id:
            new.queue_position, new.reason, new.wait = entry.position, entry.reason, wait
            new.last_event = f"queued at position {entry.position}"
            continue
        row = rows[entry.id]
        if row.queue_position == entry.position and row.reason == entry.reason:
            pair = (id(row.wait), key)
            same = equal.get(pair)
            if same is None:
                same = equal[pair] = row.wait == wait
            if same:
                continue
        text = as_text.get(key)
        if text is None:
            text = as_text[key] = json.dumps(wait)
        places.append(
            {"row_id": entry.id, "position": entry.position, "reason": entry.reason, "wait": text}
        )
    if updates:
        db.session.execute(sa.update(Deployment), updates)
    if places:
        _write_places(places)
    _record_usage(cluster, rows, decision, free, reserve, new)
    history.record_all(_decision_events(cluster, rows, decision, new, now))
    metrics.STARTS.inc(len(decision.started))
    metrics.PREEMPTIONS.inc(
        len(decision.preempted) + len(decision.evicted) + len(decision.repacked)
    )


# PostgreSQL: every changed place in one statement, the rows as four arrays joined by id.
_PLACES_FROM_ARRAYS = sa.text(
    "UPDATE deployments SET queue_position = v.position, reason = v.reason, "
    "wait = CAST(v.wait AS JSON) "
    "FROM unnest(CAST(:ids AS INTEGER[]), CAST(:positions AS INTEGER[]), "
    "CAST(:reasons AS VARCHAR[]), CAST(:waits AS TEXT[])) AS v(id, position, reason, wait) "
    "WHERE deployments.id = v.id"
)


def _write_places(places: list[dict[str, Any]]) -> None:
    """Write the queued rows whose place, reason or wait changed (`places`: row_id, position,
    reason and wait, the wait already encoded: `_apply` encodes each distinct one once).

    A decision on a large cluster moves thousands of places. SQLite runs one UPDATE per row
    in process (an executemany); PostgreSQL gets one statement for all of them, since a
    statement per row costs a round of parsing and planning each.
    """
    if db.engine.dialect.name == "sqlite":
        table = Deployment.__table__
        db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"))
            .values(
                queue_position=sa.bindparam("position"),
                reason=sa.bindparam("reason"),
                wait=sa.bindparam("wait", type_=sa.Text),
            ),
            places,
        )
        return
    db.session.execute(
        _PLACES_FROM_ARRAYS,
        {
            "ids": [place["row_id"] for place in places],
            "positions": [place["position"] for place in places],
            "reasons": [place["reason"] for place in places],
            "waits": [place["wait"] for place in places],
        },
    )


def _record_usage(
    cluster: clusters.ClusterSnapshot,
    rows: Mapping[int, Any],
    decision: scheduler.Decision,
    freed: Mapping[str, int],
    reserved: Mapping[str, int],
    new: Deployment | None,
) -> None:
    """Hand the cluster its usage and queued demand after the decision, for its resource
    trail (the cluster writes a row only when either changed)."""
    used = dict(cluster.used)
    for kind, amount in freed.items():
        used[kind] = used.get(kind, 0) - amount
    for kind, amount in reserved.items():
        used[kind] = used.get(kind, 0) + amount
    queued_before: dict[str, int] = defaultdict(int)
    for row in rows.values():
        if row.status == "pending":
            _add(queued_before, row.requests)
    queued: dict[str, int] = defaultdict(int)
    for entry in decision.queue:
        _add(
            queued,
            new.requests if new is not None and entry.id == new.id else rows[entry.id].requests,
        )
    clusters.record_usage(cluster, used, queued_before, queued)


def _decision_events(
    cluster: clusters.ClusterSnapshot,
    rows: Mapping[int, Any],
    decision: scheduler.Decision,
    new: Deployment | None,
    now: datetime,
) -> Iterator[dict[str, Any]]:
    """The scheduler's part of each changed deployment's history, one entry per change."""

    def name_of(deployment_id: int) -> str:
        return new.name if new is not None and deployment_id == new.id else rows[deployment_id].name

    def event(deployment_id: int, action: str, message: str, **data: Any) -> dict[str, Any]:
        subject = history.Subject("deployment", deployment_id, name_of(deployment_id))
        return history.entry(
            cluster.organization_id,
            history.SCHEDULER,
            action,
            subject,
            message,
            data or None,
            cluster_id=cluster.id,
            at=now,
        )

    for started_id in decision.started:
        row = rows.get(started_id)
        if row is not None and row.preemptions > 0:
            yield event(started_id, "deployment.restarted", "Restarted when room returned.")
        else:
            yield event(started_id, "deployment.started", f"Started on {cluster.name}.")
    for victim_id, preemptor_id in decision.preempted.items():
        priority = _priority_of(rows, new, preemptor_id)
        by = f"#{preemptor_id} {name_of(preemptor_id)} (priority {priority})"
        yield event(
            victim_id,
            "deployment.preempted",
            f"Preempted by {by}; queued again to restart when room returns.",
            preempted_by=preemptor_id,
            preemptor_priority=priority,
        )
    for moved_id, for_id in decision.repacked.items():
        yield event(
            moved_id,
            REPACKED,
            f"Repacked to fit #{for_id} {name_of(for_id)} (same priority, "
            f"{_priority_of(rows, new, for_id)}); queued again to restart when room returns.",
            repacked_for=for_id,
        )
    for victim_id in decision.evicted:
        yield event(
            victim_id,
            "deployment.evicted",
            f"Stopped to bring {cluster.name} back within its capacity; queued again.",
        )
    if new is not None and new.status == "pending":
        yield event(
            new.id,
            "deployment.queued",
            f"Queued at position {new.queue_position}: {new.reason}.",
            position=new.queue_position,
        )


def _describe(requests: Mapping[str, int]) -> str:
    return ", ".join(format_amount(kind, amount) for kind, amount in requests.items()) or "nothing"


def _preempted_list(rows: Mapping[int, Any], victim_ids: Iterable[int]) -> list[Preempted]:
    ids = list(victim_ids)
    if not ids:
        return []
    owners = dict(
        db.session.execute(
            sa.select(User.id, User.display_name).where(
                User.id.in_({rows[i].created_by_id for i in ids} - {None})
            )
        ).all()
    )
    return [
        Preempted(i, rows[i].name, rows[i].priority, owners.get(rows[i].created_by_id))
        for i in sorted(ids, key=lambda i: (rows[i].priority, i))
    ]


def submit(
    user: User,
    cluster_id: int,
    image: object,
    name: object = None,
    priority: object = None,
    requests_raw: object = None,
    dry_run: bool = False,
    cloned_from: int | None = None,
    ports: object = None,
    env: object = None,
    command: object = None,
    preemption_policy: object = None,
    max_run: object = None,
) -> SubmitResult:
    """Submit a deployment to a cluster of the user's organization and schedule it at once.

    One transaction holding the cluster's lock: validate (rules 8 and 9 included, so limits are
    race-free), insert the row as pending, run the scheduler on the cluster's state, apply its
    decision (victims freed before the newcomers are reserved), commit. `dry_run` computes the
    same decision from an unlocked snapshot and writes nothing: the what-if preview and the
    API's plan, which name what would start, wait and be preempted. `cloned_from` names the
    deployment this one copies, for its history.
    Raises NotFound (cluster absent or of another organization), ValidationError, Infeasible,
    QuotaExceeded; nothing is written then.
    """
    organization_id = user.organization_id
    creator_id = user.id
    with _rollback_on_error():
        if dry_run:
            cluster = clusters.snapshot(cluster_id, organization_id)
        else:
            cluster = clusters.lock(cluster_id, organization_id)
            _expire_locked(cluster, utcnow())
        valid = _validate_fields(image, name, priority, requests_raw, ports, env, command)
        may_preempt, max_run_minutes = _validate_policy(preemption_policy, max_run)
        _check_priority_right(user, valid.priority)
        _check_feasible(cluster.capacity, valid.requests)
        _check_engine(cluster, valid.requests)
        _check_quota_feasible(
            organization_id, cluster.id, creator_id, valid.priority, valid.requests
        )
        if valid.name is not None and _name_taken(cluster.id, valid.name):
            raise ValidationError(
                f"A deployment named {valid.name} already exists on cluster {cluster.name}.",
                fields={"name": "a deployment with this name already exists on the cluster"},
            )
        _check_cluster_limit(cluster)
        if dry_run:
            _check_org_quota(organization_id, counting_new=False)
        final_name = valid.name or _generated_name(cluster.id, valid.image)
        rows, running, pending = _load_state(cluster.id)
        now = utcnow()
        new = None
        new_id = _PREVIEW_ID
        if not dry_run:
            new = Deployment(
                organization_id=organization_id,
                cluster_id=cluster.id,
                name=final_name,
                image=valid.image,
                priority=valid.priority,
                requests=valid.requests,
                status="pending",
                created_by_id=creator_id,
                submitted_at=now,
                preemptions=0,
                ports=valid.spec.ports or None,
                env=valid.spec.env or None,
                command=valid.spec.command,
                may_preempt=may_preempt,
                max_run_minutes=max_run_minutes,
            )
            db.session.add(new)
            db.session.flush()
            new_id = new.id
            copy = f" as a copy of #{cloned_from}" if cloned_from is not None else ""
            history.record(
                organization_id,
                history.actor_of(user),
                "deployment.submitted",
                history.Subject("deployment", new_id, final_name),
                f"Submitted {valid.image} at priority {priority_label(valid.priority)}, "
                f"requesting {_describe(valid.requests)}{copy}.",
                {
                    "image": valid.image,
                    "priority": valid.priority,
                    "requests": valid.requests,
                    **({"cloned_from": cloned_from} if cloned_from is not None else {}),
                },
                cluster_id=cluster.id,
            )
        job = scheduler.Job(new_id, valid.priority, valid.requests, _micros(now))
        new_row = SimpleNamespace(
            id=new_id,
            priority=valid.priority,
            created_by_id=creator_id,
            requests=valid.requests,
            may_preempt=may_preempt,
            max_run_minutes=max_run_minutes,
        )
        decision = _decide(
            _state(cluster, running, pending, rows, new_row, lock=not dry_run),
            scheduler.Submit(job),
            "dry_run" if dry_run else "submit",
        )
        preempted = _preempted_list(rows, decision.preempted)
        repacked = _preempted_list(rows, decision.repacked)
        subject = Planned(None if dry_run else new_id, final_name, valid.priority)
        plan = _plan(rows, decision, new_id, subject)
        if dry_run:
            db.session.rollback()
            return SubmitResult(
                name=final_name,
                status="running" if new_id in decision.started else "pending",
                position=plan.subject_entry.position if plan.subject_entry else None,
                reason=plan.subject_entry.reason if plan.subject_entry else None,
                preempted=preempted,
                started=plan.started,
                waiting=plan.waiting,
                queue_length=plan.queue_length,
                priority=valid.priority,
                requests=valid.requests,
                repacked=repacked,
            )
        _apply(cluster, rows, decision, {}, new, actor_id=user.id)
        _settle(cluster, decision)
        _check_org_quota(organization_id, counting_new=True)
        db.session.commit()
    view = get(user, new_id)
    return SubmitResult(
        name=view.name,
        status=view.status,
        position=view.queue_position,
        reason=view.reason,
        preempted=preempted,
        repacked=repacked,
        deployment=view,
        started=plan.started,
        waiting=plan.waiting,
        queue_length=plan.queue_length,
        priority=view.priority,
        requests=view.requests,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    started: list[Planned]
    waiting: list[Planned]
    queue_length: int
    subject_entry: Planned | None  # the subject's line in `waiting`, when it waits


def _plan(
    rows: Mapping[int, Any], decision: scheduler.Decision, subject_id: int, subject: Planned
) -> _Plan:
    """What `decision` starts, and whom it leaves waiting because of the event about `subject`
    (whose id in the decision is `subject_id`): the subject itself when it waits, and every
    deployment sent back to the queue. Reads the decision's queue once."""

    def planned(deployment_id: int, entry: scheduler.QueueEntry | None = None) -> Planned:
        if deployment_id == subject_id:
            line = subject
        else:
            row = rows[deployment_id]
            line = Planned(row.id, row.name, row.priority)
        if entry is None:
            return line
        reason = entry.reason
        if subject.id is None:  # a dry run: the preemptor has no id yet
            reason = reason.replace(f"deployment #{subject_id}", f"the planned {subject.name}")
        return Planned(line.id, line.name, line.priority, entry.position, reason)

    concerned = {subject_id, *decision.preempted, *decision.evicted, *decision.repacked}
    entries = {entry.id: entry for entry in decision.queue if entry.id in concerned}
    waiting = [planned(i, entries[i]) for i in sorted(entries, key=lambda i: entries[i].position)]
    return _Plan(
        started=[planned(i) for i in decision.started],
        waiting=waiting,
        queue_length=len(decision.queue),
        subject_entry=planned(subject_id, entries[subject_id]) if subject_id in entries else None,
    )


# --------------------------------------------------------------------------------------------
# Changing a deployment's priority, cloning it


@dataclass(frozen=True, slots=True)
class PriorityChange:
    """The outcome of a priority change, or of its dry run (then `deployment` is None).

    `preempted` are the deployments the changed one preempts; `preempted_by` is set when the
    changed deployment itself is sent back to the queue (lowered below a waiting one).
    `started` and `waiting` are as in `SubmitResult` (waiting: itself when it waits, and
    every deployment sent back to the queue).
    """

    id: int
    name: str
    previous: int
    priority: int
    status: str
    position: int | None
    reason: str | None
    preempted: list[Preempted] = field(default_factory=list)
    preempted_by: int | None = None
    started: list[Planned] = field(default_factory=list)
    waiting: list[Planned] = field(default_factory=list)
    queue_length: int = 0
    deployment: DeploymentView | None = None

    @property
    def dry_run(self) -> bool:
        return self.deployment is None

    @property
    def starts(self) -> bool:
        return any(line.id == self.id for line in self.started)

    @property
    def message(self) -> str:
        """One plain sentence for a flash, the page or the API."""
        before, after = priority_label(self.previous), priority_label(self.priority)
        if self.previous == self.priority:
            return f"{self.name} already has priority {after}."
        victims = ", ".join(p.describe() for p in self.preempted)
        where = f"at position {self.position}: {self.reason}"
        if self.dry_run:
            text = f"Changing {self.name} from priority {before} to {after} would "
            if self.preempted_by is not None:
                text += f"let deployment #{self.preempted_by} preempt it"
            elif self.starts:
                text += "start it"
            elif self.status == "running":
                text += "keep it running"
            else:
                text += f"leave it waiting {where}"
            return text + (f", preempting {victims}." if victims else ".")
        text = f"{self.name} went from priority {before} to {after}"
        if self.preempted_by is not None:
            text += f"; deployment #{self.preempted_by} preempted it and it waits {where}"
        elif self.starts:
            text += "; it started"
        elif self.status == "running":
            text += "; it keeps running"
        else:
            text += f"; it waits {where}"
        if victims:
            themselves = "itself" if len(self.preempted) == 1 else "themselves"
            text += f"; it preempted {victims}, which will restart by {themselves}"
        return text + "."


def change_priority(
    user: User, deployment_id: int, priority: object, dry_run: bool = False
) -> PriorityChange:
    """Give a deployment a new priority and reschedule its cluster at once.

    A scheduling event with the usual rules: raised, the deployment may start or preempt
    strictly lower priorities; lowered, it may be preempted by a waiting deployment that now
    outranks it; waiting, it takes its new place in the queue. It keeps its id, its
    submission time (its place among equals) and its history, which records the change and
    who made it. Its creator, owners and admins may change it. One transaction holding the
    cluster's lock: the row's priority is updated and the scheduler reconciles the cluster
    (`scheduler.Reconcile`), whose decision is applied like any other. `dry_run` decides from
    an unlocked snapshot and writes nothing. The same priority is no change and writes nothing.
    Raises NotFound, Forbidden, ValidationError (field "priority").
    """
    try:
        if priority is None or (isinstance(priority, str) and not priority.strip()):
            raise ValueError("give the new priority: " + _PRIORITY_CHOICES)
        new_priority = parse_priority(priority)
    except ValueError as exc:
        raise ValidationError(_summary({"priority": str(exc)}), {"priority": str(exc)}) from None
    organization_id = user.organization_id
    with _rollback_on_error():
        target = view_of(_find(user, deployment_id))
        if not can_change_priority(user, target):
            raise Forbidden("Only its creator, an owner or an admin can change its priority.")
        if new_priority != target.priority:
            _check_priority_right(user, new_priority)
        if dry_run:
            cluster = clusters.snapshot(target.cluster_id, organization_id)
        else:
            cluster = clusters.lock(target.cluster_id, organization_id)
            _expire_locked(cluster, utcnow())
        rows, running, pending = _load_state(cluster.id, {deployment_id: new_priority})
        if deployment_id not in rows:  # deleted by someone else while we waited for the lock
            raise NotFound("No such deployment.")
        row = rows[deployment_id]
        previous = db.session.scalar(
            sa.select(Deployment.priority).where(Deployment.id == deployment_id)
        )
        if previous == new_priority:
            db.session.rollback()
            current = get(user, deployment_id)
            return PriorityChange(
                deployment_id,
                current.name,
                previous,
                new_priority,
                current.status,
                current.queue_position,
                current.reason,
                deployment=None if dry_run else current,
            )
        _check_quota_feasible(
            organization_id, cluster.id, row.created_by_id, new_priority, row.requests
        )
        decision = scheduler.schedule(
            _state(cluster, running, pending, rows, lock=not dry_run), scheduler.Reconcile()
        )
        subject = Planned(deployment_id, row.name, new_priority)
        plan = _plan(rows, decision, deployment_id, subject)
        preempted_by = decision.preempted.get(deployment_id)
        preempted = _preempted_list(
            rows, [v for v, by in decision.preempted.items() if by == deployment_id]
        )
        was_running = row.status == "running"
        if deployment_id in decision.started:
            status = "running"
        elif (
            preempted_by is not None
            or deployment_id in decision.evicted
            or deployment_id in decision.repacked
        ):
            status = "pending"
        else:
            status = "running" if was_running else "pending"
        result = PriorityChange(
            deployment_id,
            row.name,
            previous,
            new_priority,
            status,
            plan.subject_entry.position if plan.subject_entry else None,
            plan.subject_entry.reason if plan.subject_entry else None,
            preempted=preempted,
            preempted_by=preempted_by,
            started=plan.started,
            waiting=plan.waiting,
            queue_length=plan.queue_length,
        )
        if dry_run:
            db.session.rollback()
            return result
        db.session.execute(
            sa.update(Deployment)
            .where(Deployment.id == deployment_id)
            .values(priority=new_priority)
            .execution_options(synchronize_session=False)
        )
        actor = history.actor_of(user)
        history.record(
            organization_id,
            actor,
            "deployment.reprioritized",
            history.Subject("deployment", deployment_id, row.name),
            f"Re-prioritized from {priority_label(previous)} to {priority_label(new_priority)} "
            f"by {actor.name}.",
            {"from": previous, "to": new_priority},
            cluster_id=cluster.id,
        )
        _apply(cluster, rows, decision, {}, actor_id=user.id)
        _settle(cluster, decision)
        db.session.commit()
    view = get(user, deployment_id)
    return replace(
        result,
        status=view.status,
        position=view.queue_position,
        reason=view.reason,
        deployment=view,
    )


@dataclass(frozen=True, slots=True)
class CloneDefaults:
    """What a copy of a deployment starts from: the form's prefill and the API's defaults.

    `requests` holds each amount as it would be typed (display units, exact: `2`, `0.5`,
    `1.5`), so the copy asks for exactly what the source asked for.
    """

    source_id: int
    source_name: str
    cluster_id: int
    image: str
    priority: int
    requests: dict[str, str]
    ports: list[dict[str, Any]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # the values: only ever sent to submit
    command: list[str] | None = None


def clone_defaults(user: User, deployment_id: int) -> CloneDefaults:
    """The values a copy of the deployment starts from (NotFound for another organization's)."""
    source = _find(user, deployment_id)
    return CloneDefaults(
        source_id=source.id,
        source_name=source.name,
        cluster_id=source.cluster_id,
        image=source.image,
        priority=source.priority,
        requests={kind: format_number(kind, amount) for kind, amount in source.requests.items()},
        ports=list(source.ports or []),
        env=dict(source.env or {}),
        command=list(source.command) if source.command else None,
    )


def clone(
    user: User,
    deployment_id: int,
    cluster_id: int | None = None,
    image: object = None,
    name: object = None,
    priority: object = None,
    requests_raw: object = None,
    dry_run: bool = False,
) -> SubmitResult:
    """Submit a copy of a deployment of the user's organization, with optional overrides.

    The copy is a new deployment (new id, name and submission time; the caller is its
    creator) submitted and scheduled exactly like `submit`, on the source's cluster unless
    `cluster_id` says otherwise. Fields left None keep the source's values, except the name,
    which is generated (names are unique in a cluster). `requests_raw` is merged over the
    source's requests kind by kind; a kind set to None is left out of the copy. Any member may
    clone what they can see. Raises what `submit` raises, and NotFound for the source.
    """
    defaults = clone_defaults(user, deployment_id)
    requests: object = dict(defaults.requests)
    if isinstance(requests_raw, Mapping):
        requests = {**defaults.requests, **requests_raw}
    elif requests_raw is not None:
        requests = requests_raw  # not a mapping: `submit` reports it
    return submit(
        user,
        defaults.cluster_id if cluster_id is None else cluster_id,
        defaults.image if image is None else image,
        name=name,
        priority=defaults.priority if priority is None else priority,
        requests_raw=requests,
        dry_run=dry_run,
        cloned_from=defaults.source_id,
        ports=[_port_text(port) for port in defaults.ports],
        env=defaults.env,
        command=defaults.command,
    )


def _port_text(port: Mapping[str, Any]) -> str:
    host = f"{port['host']}:" if port.get("host") else ""
    return f"{host}{port['container']}/{port.get('protocol', 'tcp')}"


def delete(user: User, deployment_id: int) -> DeploymentView:
    """Delete one deployment (its creator, or an owner/admin) and serve the queue at once.

    Returns the deleted deployment as it was. Raises NotFound for another organization's
    deployment and Forbidden for a member deleting someone else's.
    """
    with _rollback_on_error():
        target = _find(user, deployment_id)
        before = view_of(target)
        if not can_delete(user, before):
            raise Forbidden("Only its creator, an owner or an admin can delete this deployment.")
        cluster_id = target.cluster_id
        db.session.expunge(target)
        cluster = clusters.lock(cluster_id, user.organization_id)
        _expire_locked(cluster, utcnow())
        rows, running, pending = _load_state(cluster.id)
        if deployment_id not in rows:  # deleted (or finished) while we waited for the lock
            raise NotFound("No such deployment.")
        _delete_and_schedule(user, cluster, rows, running, pending, {deployment_id})
        db.session.commit()
    return before


@dataclass(frozen=True, slots=True)
class DeleteAllSummary:
    cluster_id: int
    cluster_name: str
    counts: Counts


def delete_all_summary(user: User, cluster_id: int) -> DeleteAllSummary:
    """What "delete all" would remove, for its confirmation page (owner/admin only)."""
    snap = clusters.snapshot(cluster_id, user.organization_id)
    if not can_delete_all(user):
        raise Forbidden("Only an owner or an admin can delete all deployments of a cluster.")
    return DeleteAllSummary(snap.id, snap.name, counts_by_cluster([snap.id])[snap.id])


def delete_all(user: User, cluster_id: int) -> int:
    """Delete every deployment of a cluster (owner/admin); returns how many were deleted."""
    with _rollback_on_error():
        cluster = clusters.lock(cluster_id, user.organization_id)
        if not can_delete_all(user):
            raise Forbidden("Only an owner or an admin can delete all deployments of a cluster.")
        rows, running, pending = _load_state(cluster.id)
        if rows:
            _delete_and_schedule(user, cluster, rows, running, pending, set(rows))
        db.session.commit()
    return len(rows)


def _delete_and_schedule(
    user: User,
    cluster: clusters.ClusterSnapshot,
    rows: Mapping[int, Any],
    running: list[scheduler.Job],
    pending: list[scheduler.Job],
    ids: set[int],
) -> None:
    decision = _decide(
        _state(cluster, running, pending, rows, lock=True),
        scheduler.Delete(frozenset(ids)),
        "delete",
    )
    released: dict[str, int] = defaultdict(int)
    for job in running:
        if job.id in ids:
            _add(released, job.requests)
    db.session.execute(
        sa.delete(Deployment)
        .where(Deployment.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    actor = history.actor_of(user)
    history.record_all(
        history.entry(
            cluster.organization_id,
            actor,
            "deployment.deleted",
            history.Subject("deployment", deployment_id, rows[deployment_id].name),
            f"Deleted by {actor.name} while {rows[deployment_id].status}.",
            {"status": rows[deployment_id].status},
            cluster_id=cluster.id,
        )
        for deployment_id in sorted(ids)
    )
    _apply(cluster, rows, decision, released)
    _settle(cluster, decision)


# --------------------------------------------------------------------------------------------
# Start-time estimates


@dataclass(frozen=True, slots=True)
class Estimate:
    """When a queued deployment is expected to start (docs/scheduling.md, "Start-time
    estimates"): `at` is None when unknown; `text` says it in words."""

    at: datetime | None
    text: str


def estimate_words(at: datetime, now: datetime) -> str:
    """ "expected to start in about 40 min (at the latest 14:20)" """
    minutes = max(0, round((at - now).total_seconds() / 60))
    if minutes < 1:
        relative = "less than a minute"
    elif minutes < 90:
        relative = f"about {minutes} min"
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        relative = f"about {hours} h {rest} min" if rest else f"about {hours} h"
    else:
        relative = f"about {round(minutes / 1440)} days"
    clock = at.strftime("%H:%M") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%M")
    return f"expected to start in {relative} (at the latest {clock})"


def _unknown_words(unlimited_ahead: int) -> str:
    if unlimited_ahead == 0:
        return "unknown: no known end time frees what it needs"
    verb = "has" if unlimited_ahead == 1 else "have"
    plural = "" if unlimited_ahead == 1 else "s"
    return (
        f"unknown: {unlimited_ahead} running deployment{plural} ahead of it {verb} no "
        "run-time limit"
    )


def _estimates_of(
    cluster: clusters.ClusterSnapshot, now: datetime, wanted: Iterable[int] | None = None
) -> dict[int, Estimate]:
    """Estimates for the cluster's pending deployments (those in `wanted`, when given): one
    forward simulation of the scheduler over the known end times."""
    rows, running, pending = _load_state(cluster.id)
    targets = frozenset(job.id for job in pending)
    if wanted is not None:
        targets &= frozenset(wanted)
    if not targets:
        return {}
    fair = _fairness(cluster, rows, lock=False, now=now, force=True)
    state = replace(_state(cluster, running, pending), fair=fair)
    sim = scheduler.simulate(state, targets)
    found: dict[int, Estimate] = {}
    for job in pending:
        if job.id not in targets:
            continue
        at = sim.starts.get(job.id)
        if at is not None:
            moment = _EPOCH + at * _MICROSECOND
            found[job.id] = Estimate(moment, estimate_words(moment, now))
        else:
            ahead = sum(1 for other in sim.unlimited if other.priority >= job.priority)
            found[job.id] = Estimate(None, _unknown_words(ahead))
    return found


def start_estimates(
    user: User, views: Iterable[DeploymentView], now: datetime | None = None
) -> dict[int, Estimate]:
    """Start-time estimates of the queued deployments among `views` (one simulation per
    cluster they are on); running ones get none. Reads only."""
    now = now or utcnow()
    by_cluster: dict[int, set[int]] = defaultdict(set)
    for view in views:
        if view.status == "pending":
            by_cluster[view.cluster_id].add(view.id)
    found: dict[int, Estimate] = {}
    for cluster_id, ids in by_cluster.items():
        cluster = clusters.snapshot(cluster_id, user.organization_id)
        found.update(_estimates_of(cluster, now, ids))
    return found


# --------------------------------------------------------------------------------------------
# Maximum run times


EXPIRED = "deployment.expired"


def _due(rows: Mapping[int, Any], now: datetime) -> set[int]:
    """Running deployments whose maximum run time is over at `now`."""
    return {
        row.id
        for row in rows.values()
        if row.status == "running"
        and row.max_run_minutes
        and row.started_at is not None
        and row.started_at + timedelta(minutes=row.max_run_minutes) <= now
    }


def _expire_locked(cluster: clusters.ClusterSnapshot, now: datetime) -> list[int]:
    """With the cluster's lock held: finish its deployments whose maximum run time is over
    (removed, resources freed, the queue served, `deployment.expired` in their history).
    Re-reads the rows under the lock, so a deployment already gone or restarted is skipped.
    The state is loaded only when one is due: most clusters have none."""
    limited = db.session.execute(
        sa.select(
            Deployment.id, Deployment.status, Deployment.started_at, Deployment.max_run_minutes
        ).where(
            Deployment.cluster_id == cluster.id,
            Deployment.status == "running",
            Deployment.max_run_minutes.is_not(None),
        )
    )
    due = _due({row.id: row for row in limited}, now)
    if not due:
        return []
    rows, running, pending = _load_state(cluster.id)
    decision = _decide(
        _state(cluster, running, pending, rows, lock=True, now=now),
        scheduler.Delete(frozenset(due)),
        "expire",
    )
    released: dict[str, int] = defaultdict(int)
    for deployment_id in due:
        _add(released, rows[deployment_id].requests)
    db.session.execute(
        sa.delete(Deployment)
        .where(Deployment.id.in_(due))
        .execution_options(synchronize_session=False)
    )
    history.record_all(
        history.entry(
            cluster.organization_id,
            history.SYSTEM,
            EXPIRED,
            history.Subject("deployment", deployment_id, rows[deployment_id].name),
            f"Finished: its maximum run time of {rows[deployment_id].max_run_minutes} minutes "
            "was over; its resources were freed.",
            {"max_run_minutes": rows[deployment_id].max_run_minutes},
            cluster_id=cluster.id,
        )
        for deployment_id in sorted(due)
    )
    _apply(cluster, rows, decision, released, now=now)
    _settle(cluster, decision, now)
    return sorted(due)


def expire_due(now: datetime | None = None) -> list[int]:
    """Finish every running deployment whose maximum run time is over at `now` (default: the
    clock), cluster by cluster, each in its own transaction under that cluster's lock; returns
    the ids finished. Idempotent and safe from anywhere (the `flask kargo expire` loop, the
    reconciler, a test with a fake clock): the due ones are re-read under each lock, so two
    callers never finish one deployment twice and never free its resources twice."""
    now = now or utcnow()
    candidates = db.session.execute(
        sa.select(
            Deployment.cluster_id,
            Deployment.organization_id,
            Deployment.started_at,
            Deployment.max_run_minutes,
        ).where(Deployment.status == "running", Deployment.max_run_minutes.is_not(None))
    ).all()
    targets = sorted(
        {
            (row.cluster_id, row.organization_id)
            for row in candidates
            if row.started_at is not None
            and row.started_at + timedelta(minutes=row.max_run_minutes) <= now
        }
    )
    db.session.rollback()  # end the read before taking any lock
    finished: list[int] = []
    for cluster_id, organization_id in targets:
        with _rollback_on_error():
            try:
                cluster = clusters.lock(cluster_id, organization_id)
            except NotFound:  # deleted meanwhile
                db.session.rollback()
                continue
            finished += _expire_locked(cluster, now)
            db.session.commit()
    return finished


def delete_cluster(user: User, cluster_id: int) -> None:
    """Delete an empty cluster: lock it, count its deployments under the lock, then delete.

    Counting under the cluster's lock closes the race with a submission landing between the
    count and the delete. Owners and admins only (`clusters.can_delete_cluster`). Raises
    NotFound (another organization), Forbidden or Conflict (not empty).
    """
    with _rollback_on_error():
        clusters.lock(cluster_id, user.organization_id)
        if not clusters.can_delete_cluster(user):
            raise Forbidden("Only an owner or an admin can delete a cluster.")
        counts = counts_by_cluster([cluster_id])[cluster_id]
        clusters.delete_cluster(user, user.organization_id, cluster_id, counts)


# --------------------------------------------------------------------------------------------
# The system edits capacity: an engine's resources changed


def engine_capacity_changed(
    cluster_id: int, organization_id: int, measured: Mapping[str, int]
) -> bool:
    """Set the capacity of the engine's kinds of a cluster to what the engine now offers, as
    one scheduling transaction: a cut moves the lowest priorities back to the queue
    (`scheduler.Reconcile`, evictions recorded), a rise admits queued work. Called by the
    reconciler, never by a user. Returns whether anything changed."""
    with _rollback_on_error():
        cluster = clusters.lock(cluster_id, organization_id)
        current = cluster.capacity
        new_capacity = {
            kind: amount
            for kind, amount in measured.items()
            if kind in current and amount > 0 and amount != current[kind]
        }
        if not new_capacity:
            db.session.rollback()
            return False
        target = {**current, **new_capacity}
        resized = replace(
            cluster,
            resources=tuple(
                clusters.ResourceUsage(r.kind, target[r.kind], r.used) for r in cluster.resources
            ),
        )
        rows, running, pending = _load_state(cluster.id)
        state = scheduler.ClusterState(
            target,
            running,
            pending,
            cluster.max_deployments,
            work_budget=current_app.config["SCHEDULER_WORK_BUDGET"],
            blockers_listed=current_app.config["SCHEDULER_BLOCKERS_LISTED"],
            fair=_fairness(resized, rows, lock=True),  # quotas hold when capacity rises too
        )
        decision = _decide(state, scheduler.Reconcile(), "reconcile")
        clusters.set_capacity(cluster.id, {k: v for k, v in new_capacity.items() if v > current[k]})
        _apply(resized, rows, decision, {})
        clusters.set_capacity(cluster.id, {k: v for k, v in new_capacity.items() if v < current[k]})
        _settle(resized, decision)
        changes = ", ".join(
            f"{kind} {format_amount(kind, current[kind])} -> {format_amount(kind, amount)}"
            for kind, amount in new_capacity.items()
        )
        history.record(
            organization_id,
            history.RECONCILER,
            "cluster.capacity_changed",
            history.Subject("cluster", cluster.id, cluster.name),
            f"The engine's resources changed: {changes}.",
            {"before": {k: current[k] for k in new_capacity}, "after": new_capacity},
            cluster_id=cluster.id,
        )
        db.session.commit()
    return True


# What a deployment waiting longer than QUEUED_TOO_LONG_SECONDS records (and webhooks send).
QUEUED_LONG = "deployment.queued_long"
REQUEUED = ("deployment.preempted", "deployment.evicted", REPACKED)


def record_long_waits(threshold_seconds: int, now: datetime | None = None) -> int:
    """Record `deployment.queued_long` once for each queued deployment that has waited longer
    than the threshold since it was submitted or last sent back to the queue; how many.

    Run by the notify worker, which is how "queued longer than" reaches webhooks: the event
    goes through `history.record_all` and so into the outbox, like any other.
    """
    now = now or utcnow()
    limit = now - timedelta(seconds=threshold_seconds)
    waiting = db.session.execute(
        sa.select(
            Deployment.id,
            Deployment.organization_id,
            Deployment.cluster_id,
            Deployment.name,
            Deployment.submitted_at,
            Deployment.queue_position,
            Deployment.reason,
        ).where(Deployment.status == "pending", Deployment.submitted_at < limit)
    ).all()
    if not waiting:
        db.session.rollback()
        return 0
    ids = [row.id for row in waiting]
    requeued = history.latest("deployment", ids, REQUEUED)
    reported = history.latest("deployment", ids, (QUEUED_LONG,))
    entries = []
    for row in waiting:
        since = max(row.submitted_at, requeued.get(row.id, row.submitted_at))
        if since >= limit or reported.get(row.id, datetime.min) >= since:
            continue
        minutes = int((now - since).total_seconds() // 60)
        entries.append(
            history.entry(
                row.organization_id,
                history.SCHEDULER,
                QUEUED_LONG,
                history.Subject("deployment", row.id, row.name),
                f"Queued for {minutes} minutes at position {row.queue_position}: {row.reason}.",
                {
                    "waited_seconds": int((now - since).total_seconds()),
                    "position": row.queue_position,
                },
                cluster_id=row.cluster_id,
                at=now,
            )
        )
    db.session.rollback()
    if not entries:
        return 0
    transactions.begin_write()
    history.record_all(entries)
    db.session.commit()
    return len(entries)
