"""The reconciler's rules: converge what engines run to what the scheduler decided.

Writes the `deployment_runtime` and `cluster_runtime` tables (`services.engines` reads them
for pages); reads the deployments table (the
desired state the scheduler committed) and never writes it. Capacity changes go through
`services.deployments.engine_capacity_changed` (the scheduler).

One pass over a cluster (`reconcile_cluster`), for the reconciler that holds its lease:

    engine = the cluster's driver      actual = driver.observe(cluster)   (by labels)
    desired = running deployments, each with its generation (the scheduler's start time)
    stop what should not run (deleted, preempted, an earlier generation, a duplicate)
    start what is missing; restart what exited (with a backoff); retry failed pulls later
    write what was observed back, with history events, in one short transaction

The lease is renewed from the pass's own thread before each start, stop and write-back, and
while slow engine calls run; a pass that finds it taken by another reconciler stops there.

No driver is ever called inside a transaction: engine calls happen between the read and the
write, and the write re-reads the desired state under the cluster's lock so that a decision
committed meanwhile is never overwritten (the next pass acts on it).
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import ClusterRuntime, Deployment, DeploymentRuntime, ReconcilerPresence, utcnow
from app.runtime.base import (
    EngineUnreachable,
    Observed,
    PortSpec,
    StartFailed,
    Watch,
    WorkloadSpec,
)
from app.services import clusters, deployments, engines, history, transactions
from app.services.errors import NotFound
from app.telemetry import metrics

_EPOCH = datetime(1970, 1, 1)


# --------------------------------------------------------------------------------------------
# Leases: one reconciler per cluster


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire_lease(cluster_id: int, holder: str) -> bool:
    """Take or renew the cluster's lease for RECONCILER_LEASE_SECONDS; False when another
    live reconciler holds it. A crashed holder's lease runs out by itself."""
    now = utcnow()
    expires = now + timedelta(seconds=current_app.config["RECONCILER_LEASE_SECONDS"])
    table = ClusterRuntime.__table__
    transactions.begin_write()
    result = db.session.execute(
        sa.update(table)
        .where(
            table.c.cluster_id == cluster_id,
            sa.or_(
                table.c.holder.is_(None),
                table.c.holder == holder,
                table.c.lease_expires_at < now,
            ),
        )
        .values(holder=holder, lease_expires_at=expires)
    )
    if result.rowcount == 1:
        db.session.commit()
        return True
    exists = db.session.scalar(
        sa.select(table.c.cluster_id).where(table.c.cluster_id == cluster_id)
    )
    if exists is not None:
        db.session.rollback()
        return False
    try:
        db.session.execute(
            sa.insert(table).values(
                cluster_id=cluster_id,
                holder=holder,
                lease_expires_at=expires,
                engine_state="unknown",
            )
        )
        db.session.commit()
    except IntegrityError:  # another reconciler inserted it first, or the cluster is gone
        db.session.rollback()
        return False
    return True


def renew_lease(cluster_id: int, holder: str) -> bool:
    """Extend a lease this reconciler holds by RECONCILER_LEASE_SECONDS from now: one UPDATE
    of its row where the holder is still this one. False when the lease is no longer its own
    (it ran out and another reconciler took it, or it was released): act no more then."""
    expires = utcnow() + timedelta(seconds=current_app.config["RECONCILER_LEASE_SECONDS"])
    table = ClusterRuntime.__table__
    transactions.begin_write()
    result = db.session.execute(
        sa.update(table)
        .where(table.c.cluster_id == cluster_id, table.c.holder == holder)
        .values(lease_expires_at=expires)
    )
    db.session.commit()
    return result.rowcount == 1


class _Lease:
    """The lease of the cluster one pass works on, kept from the pass's own thread (the pool's
    threads have no app context): renewed before every engine call is handed to the pool and
    before every write-back, and at least every third of its term while calls run. Once a
    renewal finds it taken, it stays lost for the rest of the pass."""

    def __init__(self, cluster_id: int, holder: str) -> None:
        self.cluster_id, self.holder = cluster_id, holder
        self.every = current_app.config["RECONCILER_LEASE_SECONDS"] / 3
        self.renewed_at = time.monotonic()  # acquire_lease has just taken or renewed it
        self.lost = False

    def renew(self) -> bool:
        """Renew it now; False once it is lost."""
        if not self.lost:
            at = time.monotonic()  # measured before the UPDATE: the term runs from here at best
            if renew_lease(self.cluster_id, self.holder):
                self.renewed_at = at
            else:
                self.lost = True
        return not self.lost

    def keep(self) -> bool:
        """Renew it when a third of its term went by since the last renewal."""
        if not self.lost and time.monotonic() - self.renewed_at >= self.every:
            self.renew()
        return not self.lost

    def wait_seconds(self) -> float:
        """How long the pass may wait on running calls before the next renewal is due."""
        return max(0.0, self.renewed_at + self.every - time.monotonic())


_T = TypeVar("_T")
_R = TypeVar("_R")


def _calls_under_lease(
    pool: ThreadPoolExecutor,
    workers: int,
    call: Callable[[_T], _R],
    items: Iterable[_T],
    lease: _Lease,
    more: Callable[[], bool] = lambda: True,
    before: Callable[[_T], None] = lambda item: None,
) -> Iterator[_R]:
    """`call` on each item in the pool, at most `workers` at a time, each handed over only
    right after the lease was renewed (and `more()` said to go on, and `before(item)` ran in
    this thread); yields the results as
    calls finish, renewing the lease while they run. Once the lease is lost (or `more()` says
    no) nothing more is handed over: calls already running finish (an engine call cannot be
    taken back) and their results are still yielded."""
    queue = deque(items)
    running: set[Future[_R]] = set()
    while True:
        while queue and len(running) < workers and more() and lease.renew():
            item = queue.popleft()
            before(item)
            running.add(pool.submit(call, item))
        if not running:
            return
        done, running = wait(running, timeout=lease.wait_seconds(), return_when=FIRST_COMPLETED)
        lease.keep()
        for future in done:
            yield future.result()


def release_leases(holder: str) -> None:
    """Give up every lease and the reconciler's presence (a clean shutdown), so the others
    take over at once."""
    transactions.begin_write()
    db.session.execute(
        sa.update(ClusterRuntime)
        .where(ClusterRuntime.holder == holder)
        .values(holder=None, lease_expires_at=None)
    )
    db.session.execute(sa.delete(ReconcilerPresence).where(ReconcilerPresence.holder == holder))
    db.session.commit()


def _release_lease(cluster_id: int, holder: str) -> None:
    transactions.begin_write()
    db.session.execute(
        sa.update(ClusterRuntime)
        .where(ClusterRuntime.cluster_id == cluster_id, ClusterRuntime.holder == holder)
        .values(holder=None, lease_expires_at=None)
    )
    db.session.commit()


# --------------------------------------------------------------------------------------------
# Sharing the clusters among live reconcilers


def announce(holder: str) -> int:
    """Say this reconciler's loop is alive (every pass), and count the live reconcilers: those
    seen within RECONCILER_LEASE_SECONDS, itself included."""
    now = utcnow()
    table = ReconcilerPresence.__table__
    transactions.begin_write()
    updated = db.session.execute(
        sa.update(table).where(table.c.holder == holder).values(seen_at=now)
    ).rowcount
    if not updated:
        db.session.execute(sa.insert(table).values(holder=holder, seen_at=now))
    since = now - timedelta(seconds=current_app.config["RECONCILER_LEASE_SECONDS"])
    live = db.session.scalar(sa.select(sa.func.count()).where(table.c.seen_at >= since))
    db.session.commit()
    return max(1, int(live or 0))


def _held(holder: str) -> list[int]:
    """The clusters whose lease this reconciler holds now, in id order."""
    rows = db.session.scalars(
        sa.select(ClusterRuntime.cluster_id)
        .where(ClusterRuntime.holder == holder, ClusterRuntime.lease_expires_at >= utcnow())
        .order_by(ClusterRuntime.cluster_id)
    ).all()
    db.session.rollback()
    return list(rows)


# --------------------------------------------------------------------------------------------
# The pass


def generation_of(started_at: datetime | None) -> str:
    if started_at is None:
        return "0"
    return str((started_at - _EPOCH) // timedelta(microseconds=1))


@dataclass
class PassReport:
    """What one pass over one cluster did (for logs, metrics, tests and the benchmark)."""

    cluster_id: int
    reachable: bool = True
    started: list[int] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    restarted: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    capacity_changed: bool = False
    skipped: bool = False  # another reconciler holds the lease
    lease_lost: bool = False  # another reconciler took the lease during the pass
    # A decision committed during the pass stopped a deployment it wanted running: it handed
    # over no more starts, so that the next pass (stops first) begins at once.
    superseded: bool = False

    @property
    def acted(self) -> bool:
        return bool(self.started or self.stopped or self.restarted or self.failed)


@dataclass(frozen=True)
class _Desired:
    id: int
    name: str
    organization_id: int
    generation: str
    spec: WorkloadSpec
    scheduled_at: datetime | None


def _desired(cluster_id: int) -> dict[int, _Desired]:
    rows = db.session.execute(
        sa.select(
            Deployment.id,
            Deployment.name,
            Deployment.organization_id,
            Deployment.image,
            Deployment.requests,
            Deployment.started_at,
            Deployment.ports,
            Deployment.env,
            Deployment.command,
        ).where(Deployment.cluster_id == cluster_id, Deployment.status == "running")
    )
    out = {}
    for row in rows:
        generation = generation_of(row.started_at)
        spec = WorkloadSpec(
            deployment_id=row.id,
            cluster_id=cluster_id,
            name=row.name,
            image=row.image,
            generation=generation,
            requests=dict(row.requests),
            ports=tuple(
                PortSpec(p["container"], p.get("host"), p.get("protocol", "tcp"))
                for p in row.ports or ()
            ),
            env=dict(row.env or {}),
            command=list(row.command) if row.command else None,
        )
        out[row.id] = _Desired(
            row.id, row.name, row.organization_id, generation, spec, row.started_at
        )
    return out


@dataclass
class _Outcome:
    """What happened to one deployment in this pass, to be written back."""

    observed: Observed | None = None
    status: str | None = None
    error: str | None = None
    event: tuple[str, str, dict[str, Any]] | None = None  # action, message, data
    restarted: bool = False
    retry_at: datetime | None = None
    pull_failed: bool = False
    stopped: bool = False
    restart_count: int | None = None  # restarts the engine itself made (swarm)


def reconcile_cluster(
    cluster_id: int, organization_id: int, engine_name: str, holder: str
) -> PassReport:
    """One pass over one engine-backed cluster (the caller has just taken its lease).

    The lease is renewed before every start and stop, and before every write-back; should
    another reconciler have taken it meanwhile (this pass outlasted it without renewing, say
    stuck on an unresponsive database), the pass stops there: no further engine call, nothing
    more written, `lease_lost` in the report. The holder's passes observe what this one did.
    """
    report = PassReport(cluster_id)
    config = current_app.config
    started = time.perf_counter()
    lease = _Lease(cluster_id, holder)
    try:
        the_driver = engines.driver(engine_name)
    except KeyError:
        _write_engine_state(
            cluster_id, organization_id, "unreachable", f"engine {engine_name} is not declared"
        )
        report.reachable = False
        return report
    engine = engines.engines()[engine_name]
    db.session.rollback()  # no transaction is held while the engine is called
    try:
        measured = the_driver.capacity()
        actual = the_driver.observe(cluster_id)
    except EngineUnreachable as exc:
        metrics.RECONCILE_ERRORS.labels("engine_unreachable").inc()
        _write_engine_state(cluster_id, organization_id, "unreachable", str(exc))
        report.reachable = False
        return report
    capacity = engines.ceiling(engine, measured.amounts)
    _write_engine_state(cluster_id, organization_id, "ok", None, list(measured.nodes), capacity)
    if deployments.engine_capacity_changed(cluster_id, organization_id, capacity):
        report.capacity_changed = True

    desired = _desired(cluster_id)
    # Plain rows, not ORM objects: they stay readable after the transaction ends.
    previous = {
        row.deployment_id: row
        for row in db.session.execute(
            sa.select(
                DeploymentRuntime.deployment_id,
                DeploymentRuntime.status,
                DeploymentRuntime.restart_count,
                DeploymentRuntime.error,
                DeploymentRuntime.container_id,
                DeploymentRuntime.generation,
                DeploymentRuntime.retry_at,
            ).where(DeploymentRuntime.cluster_id == cluster_id)
        )
    }
    db.session.rollback()
    now = utcnow()

    # Match what runs to what should: one workload per deployment and generation.
    keep: dict[int, Observed] = {}
    to_stop: list[Observed] = []
    for observed in sorted(actual, key=lambda o: (o.status != "running", o.workload_id)):
        wanted = desired.get(observed.deployment_id)
        if wanted is None or observed.generation != wanted.generation:
            to_stop.append(observed)
        elif observed.deployment_id in keep:
            to_stop.append(observed)  # a duplicate: keep one
        else:
            keep[observed.deployment_id] = observed

    outcomes: dict[int, _Outcome] = {}
    to_start: list[_Desired] = []
    for deployment_id, wanted in desired.items():
        before = previous.get(deployment_id)
        observed = keep.get(deployment_id)
        if observed is not None and observed.status in _ENGINE_MANAGED:
            outcomes[deployment_id] = _engine_managed(observed, before, engine_name)
            continue
        due = before is None or before.retry_at is None or before.retry_at <= now
        if observed is not None and observed.status == "exited":
            # It stopped by itself (or was killed from outside): restart after a backoff.
            same_generation = before is not None and before.generation == wanted.generation
            if same_generation and before.status == "restarting" and due:
                to_start.append(wanted)
                outcomes[deployment_id] = _Outcome(restarted=True)
            elif same_generation and before.status == "restarting":
                outcomes[deployment_id] = _Outcome(
                    observed=observed,
                    status="restarting",
                    error=observed.error,
                    retry_at=before.retry_at,
                )
            else:
                count = before.restart_count if before is not None else 0
                delay = min(
                    config["RUNTIME_RESTART_BACKOFF_SECONDS"] * (2 ** min(count, 16)),
                    config["RUNTIME_RESTART_BACKOFF_MAX_SECONDS"],
                )
                outcomes[deployment_id] = _Outcome(
                    observed=observed,
                    status="restarting",
                    error=observed.error,
                    retry_at=now + timedelta(seconds=delay),
                    event=(
                        "deployment.container_exited",
                        f"Container {(observed.error or 'exited')}; restarting in {delay} s.",
                        {"exit_code": observed.exit_code},
                    ),
                )
            continue
        # Nothing runs for it: start it, unless a failure asks to wait before trying again.
        if before is not None and before.generation == wanted.generation and not due:
            continue
        to_start.append(wanted)
        outcomes.setdefault(deployment_id, _Outcome())

    grace = config["RUNTIME_STOP_GRACE_SECONDS"]

    def stop(observed: Observed) -> tuple[Observed, str | None]:
        try:
            the_driver.stop(observed.workload_id, grace)
        except EngineUnreachable as exc:
            return observed, str(exc)
        except Exception as exc:  # one stubborn workload must not stop the pass
            return observed, str(exc)
        return observed, None

    def start(wanted: _Desired) -> tuple[_Desired, Observed | StartFailed | EngineUnreachable]:
        try:
            return wanted, the_driver.start(wanted.spec)
        except (StartFailed, EngineUnreachable) as exc:
            return wanted, exc
        except Exception as exc:  # an engine error in words, never a crash of the loop
            return wanted, StartFailed(f"container could not start: {exc}")

    def flush(ids: Iterable[int]) -> None:
        """Write back what is known of these deployments now (the rest follows later in
        the pass), so a stop or a start shows without waiting for the slowest one; only
        while the lease is still this reconciler's."""
        batch = {}
        for deployment_id in list(ids):
            outcome = outcomes.pop(deployment_id, None)
            if outcome is not None and not _steady(
                previous.get(deployment_id), outcome, desired.get(deployment_id)
            ):
                batch[deployment_id] = outcome
        if batch and lease.renew():
            _write_back(cluster_id, organization_id, engine_name, desired, previous, batch, report)

    workers = max(1, config["RECONCILER_WORKERS"])
    starting = {wanted.id for wanted in to_start}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for observed, problem in _calls_under_lease(pool, workers, stop, to_stop, lease):
            if problem is not None:
                metrics.RECONCILE_ERRORS.labels("stop").inc()
                continue
            report.stopped.append(observed.workload_id)
            metrics.RECONCILE_ACTIONS.labels("stop").inc()
            if observed.deployment_id in previous and observed.deployment_id not in keep:
                outcomes.setdefault(observed.deployment_id, _Outcome(stopped=True)).stopped = True
        # What was only observed, and what was stopped, is written before the starts begin.
        flush([deployment_id for deployment_id in outcomes if deployment_id not in starting])
        last_flush = time.monotonic()
        done: list[int] = []
        current = _StillWanted(cluster_id, desired)
        handed: set[int] = set()

        def say_pulling(wanted: _Desired) -> None:
            """A start that must pull its image first shows "pulling" while it does (a pull
            can take minutes), written before the start is handed over."""
            try:
                pulling = the_driver.needs_pull(wanted.spec.image)
            except Exception:
                pulling = False
            if pulling and lease.renew():
                shown = {wanted.id: _Outcome(status="pulling")}
                _write_back(
                    cluster_id, organization_id, engine_name, desired, previous, shown, report
                )

        for wanted, result in _calls_under_lease(
            pool, workers, start, to_start, lease, current.check, say_pulling
        ):
            handed.add(wanted.id)
            done.append(wanted.id)
            if time.monotonic() - last_flush >= _FLUSH_SECONDS:
                flush(done[:-1])
                done = done[-1:]
                last_flush = time.monotonic()
            outcome = outcomes.setdefault(wanted.id, _Outcome())
            before = previous.get(wanted.id)
            if isinstance(result, Observed):
                outcome.observed = result
                outcome.status = result.status
                if outcome.restarted:
                    report.restarted.append(wanted.id)
                    metrics.RECONCILE_ACTIONS.labels("restart").inc()
                    count = (before.restart_count if before else 0) + 1
                    outcome.event = (
                        "deployment.container_restarted",
                        f"Container restarted (restart {count}).",
                        {"restart_count": count},
                    )
                else:
                    report.started.append(wanted.id)
                    metrics.RECONCILE_ACTIONS.labels("start").inc()
                    if wanted.scheduled_at is not None:
                        metrics.RECONCILE_LAG.observe(
                            max(0.0, (utcnow() - wanted.scheduled_at).total_seconds())
                        )
                    outcome.event = (
                        "deployment.container_started",
                        f"Container {result.workload_id[:12]} started on engine {engine_name}"
                        + _ports_text(result.ports)
                        + ".",
                        {"container_id": result.workload_id, "ports": list(result.ports)},
                    )
            elif isinstance(result, EngineUnreachable):
                metrics.RECONCILE_ERRORS.labels("engine_unreachable").inc()
                outcomes.pop(wanted.id, None)
            else:
                metrics.RECONCILE_ERRORS.labels("pull" if result.pull else "start").inc()
                report.failed[wanted.id] = result.reason
                outcome.status = result.status
                outcome.error = result.reason
                outcome.pull_failed = result.pull
                retry = (
                    config["RUNTIME_PULL_RETRY_SECONDS"]
                    if result.pull
                    else config["RUNTIME_RESTART_BACKOFF_SECONDS"]
                )
                outcome.retry_at = utcnow() + timedelta(seconds=retry)
                if before is None or before.error != result.reason:
                    action = "deployment.pull_failed" if result.pull else "deployment.start_failed"
                    message = result.reason[0].upper() + result.reason[1:] + "."
                    outcome.event = (action, message, {"error": result.reason})
    if current.superseded:
        # The starts never handed over are the next pass's, with what it then wants.
        report.superseded = True
        for deployment_id in starting - handed:
            outcomes.pop(deployment_id, None)
    flush(list(outcomes))
    if lease.lost:
        report.lease_lost = True
        metrics.RECONCILE_ERRORS.labels("lease_lost").inc()
        current_app.logger.warning(
            "reconciler %s lost its lease on cluster %s during a pass (another reconciler "
            "took it): no further engine call or write for this cluster in this pass",
            holder,
            cluster_id,
        )
    metrics.RECONCILE_PASS_DURATION.observe(time.perf_counter() - started)
    return report


# While starts are under way, what finished is written back at least this often.
_FLUSH_SECONDS = 0.5
# While starts are under way, whether a decision stopped something the pass wants running is
# read at most this often.
_SUPERSEDED_CHECK_SECONDS = 0.25


class _StillWanted:
    """Whether what a pass read as wanted still is, asked before each start is handed over.

    Many slow starts (50 containers on a busy engine) can take a minute; a preemption or a
    delete committed meanwhile must not wait for all of them: its victim's container is to
    stop now, and stops come first in a pass. So once a deployment the pass wanted running
    no longer is (or was restarted), no further start is handed over and the pass ends; the
    reconciler's loop sees the change and runs the next pass at once. New deployments to
    start do not end a pass: they only wait for the next one, as before.
    """

    def __init__(self, cluster_id: int, desired: Mapping[int, _Desired]) -> None:
        self.cluster_id = cluster_id
        self.wanted = {deployment_id: d.generation for deployment_id, d in desired.items()}
        self.checked_at = -math.inf
        self.superseded = False

    def check(self) -> bool:
        """True while the pass may go on handing over starts (a small indexed read)."""
        now = time.monotonic()
        if self.superseded or now - self.checked_at < _SUPERSEDED_CHECK_SECONDS:
            return not self.superseded
        self.checked_at = now
        running = {
            row.id: generation_of(row.started_at)
            for row in db.session.execute(
                sa.select(Deployment.id, Deployment.started_at).where(
                    Deployment.cluster_id == self.cluster_id, Deployment.status == "running"
                )
            )
        }
        db.session.rollback()
        self.superseded = any(
            running.get(deployment_id) != generation
            for deployment_id, generation in self.wanted.items()
        )
        return not self.superseded


# Statuses the engine itself drives (the swarm restarts and retries by itself); the
# reconciler records them, with an event when a condition or a restart is new.
_ENGINE_MANAGED = ("running", "restarting", "starting", "pulling", "failed")


def _engine_managed(observed: Observed, before: Any, engine_name: str) -> _Outcome:
    outcome = _Outcome(observed=observed, status=observed.status, error=observed.error)
    count = before.restart_count if before is not None else 0
    pulling = bool(observed.error and observed.error.startswith("image pull failed"))
    if observed.status != "failed" and not pulling and observed.engine_restarts > count:
        outcome.restart_count = observed.engine_restarts
        last = f" (last: {observed.error})" if observed.error else ""
        outcome.event = (
            "deployment.container_restarted",
            f"Restarted by engine {engine_name} (restart {observed.engine_restarts}){last}.",
            {"restart_count": observed.engine_restarts, "exit_code": observed.exit_code},
        )
    elif observed.error and (before is None or before.error != observed.error):
        if observed.error.startswith("image pull failed"):
            action = "deployment.pull_failed"
        elif observed.error.startswith("no suitable node"):
            action = "deployment.unschedulable"
        else:
            action = "deployment.condition"
        outcome.event = (
            action,
            observed.error[0].upper() + observed.error[1:] + ".",
            {"error": observed.error},
        )
    return outcome


def _steady(before: Any, outcome: _Outcome, wanted: _Desired | None) -> bool:
    """Nothing to write: the pass saw exactly what the row already says (most passes)."""
    observed = outcome.observed
    if before is None or wanted is None or observed is None:
        return False
    if outcome.event or outcome.restarted or outcome.stopped or outcome.retry_at:
        return False
    return (
        before.status == outcome.status
        and before.container_id == observed.workload_id
        and before.generation == wanted.generation
        and before.error == (outcome.error or observed.error)
        and (observed.status == "failed" or observed.engine_restarts <= before.restart_count)
    )


def _ports_text(ports: Iterable[Mapping[str, Any]]) -> str:
    published = [f"{p['address']}:{p['host']}->{p['container']}" for p in ports]
    return f", publishing {', '.join(published)}" if published else ""


def _write_back(
    cluster_id: int,
    organization_id: int,
    engine_name: str,
    desired: Mapping[int, _Desired],
    previous: Mapping[int, Any],
    outcomes: Mapping[int, _Outcome],
    report: PassReport,
) -> None:
    """Write observed state and events in one transaction under the cluster's lock, for the
    deployments whose desired state is still what this pass acted on."""
    if not outcomes:
        return
    try:
        cluster = clusters.lock(cluster_id, organization_id)
    except NotFound:
        db.session.rollback()
        return
    now = utcnow()
    current = {
        row.id: (row.status, generation_of(row.started_at), row.name)
        for row in db.session.execute(
            sa.select(
                Deployment.id, Deployment.status, Deployment.started_at, Deployment.name
            ).where(Deployment.id.in_(list(outcomes)))
        )
    }
    rows = {
        row.deployment_id: row
        for row in db.session.scalars(
            sa.select(DeploymentRuntime).where(DeploymentRuntime.deployment_id.in_(list(outcomes)))
        )
    }
    events = []
    changed = False
    for deployment_id, outcome in outcomes.items():
        if deployment_id not in current:
            continue  # deleted meanwhile: its runtime row went with it
        status, generation, name = current[deployment_id]
        row = rows.get(deployment_id)
        if outcome.stopped and deployment_id not in desired:
            if row is not None and row.status != "stopped":
                row.status, row.container_id, row.ports = "stopped", None, None
                row.error, row.retry_at, row.observed_at = None, None, now
                events.append(
                    (
                        deployment_id,
                        name,
                        "deployment.container_stopped",
                        "Container stopped and removed.",
                        {},
                    )
                )
                changed = True
            continue
        wanted = desired.get(deployment_id)
        if wanted is None or status != "running" or generation != wanted.generation:
            continue  # the scheduler decided again meanwhile: the next pass acts on it
        if row is None:
            row = DeploymentRuntime(
                deployment_id=deployment_id,
                cluster_id=cluster_id,
                status="starting",
                restart_count=0,
                observed_at=now,
            )
            db.session.add(row)
        before = _shown(row)
        observed = outcome.observed
        if observed is not None:
            row.container_id = observed.workload_id
            if observed.started_at is not None:
                row.started_at = observed.started_at
            elif row.status != "running" or row.started_at is None:
                row.started_at = row.started_at if row.status == "running" else now
            if observed.ports or observed.status == "running":
                row.ports = list(observed.ports) or None
            row.exit_code = observed.exit_code
        if outcome.status is not None:
            row.status = outcome.status
        if outcome.restarted and observed is not None:
            row.restart_count = (row.restart_count or 0) + 1
        if outcome.restart_count is not None:
            row.restart_count = outcome.restart_count
        row.generation = wanted.generation
        if outcome.status == "running":
            row.error, row.retry_at = None, None
        else:
            row.error = outcome.error if outcome.error is not None else row.error
            row.retry_at = outcome.retry_at
        row.observed_at = now
        after = _shown(row)
        changed = changed or before != after
        if outcome.event is not None:
            action, message, data = outcome.event
            events.append((deployment_id, name, action, message, data))
    history.record_all(
        history.entry(
            organization_id,
            history.RECONCILER,
            action,
            history.Subject("deployment", deployment_id, name),
            message,
            data or None,
            cluster_id=cluster.id,
        )
        for deployment_id, name, action, message, data in events
    )
    if changed or events:
        clusters.touch(cluster_id)
    db.session.commit()


def _shown(row: DeploymentRuntime) -> tuple[object, ...]:
    """What a runtime row shows (a write-back that changes none of it touches nothing)."""
    return (
        row.status,
        row.container_id,
        row.error,
        row.exit_code,
        row.restart_count,
        row.generation,
        tuple(map(str, row.ports or ())),
    )


def _write_engine_state(
    cluster_id: int,
    organization_id: int,
    state: str,
    error: str | None,
    nodes: list[dict[str, Any]] | None = None,
    capacity: dict[str, int] | None = None,
) -> None:
    """Record the engine's health (and nodes), with an event when it changes."""
    transactions.begin_write()
    row = db.session.get(ClusterRuntime, cluster_id, populate_existing=True)
    if row is None:
        db.session.rollback()
        return
    now = utcnow()
    was = row.engine_state
    row.engine_state, row.engine_error, row.checked_at, row.last_pass_at = state, error, now, now
    if nodes is not None:
        row.nodes = nodes
    if capacity is not None:
        row.capacity = capacity
    if was != state and state in ("ok", "unreachable") and not (was == "unknown" and state == "ok"):
        name = clusters.names(organization_id).get(cluster_id)
        message = (
            f"Engine unreachable: {error}." if state == "unreachable" else "Engine reachable again."
        )
        history.record(
            organization_id,
            history.RECONCILER,
            "cluster.engine_unreachable" if state == "unreachable" else "cluster.engine_reachable",
            history.Subject("cluster", cluster_id, name),
            message,
            {"error": error} if error else None,
            cluster_id=cluster_id,
        )
    if was != state:
        clusters.touch(cluster_id)
    db.session.commit()


# --------------------------------------------------------------------------------------------
# Waking up: what changed since the last look


def change_token() -> tuple[int, int]:
    """Changes with every scheduling commit on an engine-backed cluster."""
    token = clusters.engine_clusters_version()
    db.session.rollback()
    return token


def retry_due() -> bool:
    """Is a restart or a retry due now (a backoff ran out)?"""
    due = db.session.scalar(
        sa.select(DeploymentRuntime.deployment_id)
        .where(DeploymentRuntime.retry_at.is_not(None), DeploymentRuntime.retry_at <= utcnow())
        .limit(1)
    )
    db.session.rollback()
    return due is not None


def run_pass(holder: str, share: bool = False) -> list[PassReport]:
    """One pass over every engine-backed cluster whose lease this reconciler holds; first,
    deployments whose maximum run time is over finish (`deployments.expire_due`: idempotent,
    under each cluster's lock), so their containers stop in this very pass.

    `share` (the long-running loop): the live reconcilers share the clusters. This one says it
    is alive, takes new leases only up to its share (the clusters divided by the live
    reconcilers, rounded up) and gives back those beyond it, highest ids first, for a newcomer
    to take at its next pass. A one-off pass (`reconcile --once`) takes whatever is free.
    """
    try:
        deployments.expire_due()
    except Exception:
        db.session.rollback()
        metrics.RECONCILE_ERRORS.labels("expire").inc()
        current_app.logger.exception("reconcile pass: finishing expired deployments failed")
    targets = clusters.cluster_ids_with_engine()
    db.session.rollback()
    limit = len(targets)
    held: set[int] = set()
    if share and targets:
        limit = math.ceil(len(targets) / announce(holder))
        mine = _held(holder)
        for cluster_id in mine[limit:]:
            _release_lease(cluster_id, holder)
            current_app.logger.info(
                "reconciler %s gives back cluster %s: its share is %s of %s clusters",
                holder,
                cluster_id,
                limit,
                len(targets),
            )
        held = set(mine[:limit])
    reports = []
    for cluster_id, organization_id, engine_name in targets:
        # A lease it holds is renewed; a new one is taken only within its share.
        if (cluster_id not in held and len(held) >= limit) or not acquire_lease(cluster_id, holder):
            reports.append(PassReport(cluster_id, skipped=True))
            continue
        held.add(cluster_id)
        try:
            reports.append(reconcile_cluster(cluster_id, organization_id, engine_name, holder))
        except Exception:
            db.session.rollback()
            metrics.RECONCILE_ERRORS.labels("pass").inc()
            current_app.logger.exception("reconcile pass failed for cluster %s", cluster_id)
    return reports


def watch_engines(changed: Callable[[], None]) -> list[Watch]:
    """Follow the events of every declared engine (`Driver.watch`): `changed()` is called
    when a container of this install ends on one of them. An engine whose driver cannot be
    built is left to the passes, which report it."""
    watches: list[Watch] = []
    try:
        names = list(engines.engines())
    except Exception:
        current_app.logger.exception("reconciler: the engines cannot be read; no events followed")
        return watches
    for name in names:
        try:
            watches.append(engines.driver(name).watch(changed))
        except Exception:
            current_app.logger.exception("reconciler: cannot follow the events of engine %s", name)
    return watches


class Waker:
    """How the reconciler sleeps until something may have changed.

    PostgreSQL: LISTEN on the channel every scheduling commit notifies (`clusters.touch`), so
    a decision wakes it at once. SQLite (and PostgreSQL as a fallback): a short sleep; the
    caller then compares `change_token()`.
    """

    def __init__(self) -> None:
        self._connection = None
        url = db.engine.url
        if url.get_backend_name() == "postgresql":
            try:
                import psycopg

                plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
                self._connection = psycopg.connect(plain, autocommit=True)
                self._connection.execute(f"LISTEN {clusters.NOTIFY_CHANNEL}")
            except Exception:  # no LISTEN: polling still converges, only a little later
                current_app.logger.warning("reconciler: LISTEN unavailable, polling instead")
                self._connection = None

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when notified of a change."""
        if self._connection is None:
            time.sleep(seconds)
            return False
        try:
            for _ in self._connection.notifies(timeout=seconds, stop_after=1):
                return True
        except Exception:
            self.close()
        return False

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
