"""Fair use on top of the plain rules: quotas, non-preempting work, a minimum run time and
the starvation guard's reservation (docs/scheduling.md, "Fair use").

`schedule(state, event)` is the package's entry point. With `state.fair` None it is the plain
decision (`decide.schedule`) and costs nothing more. Otherwise some pending deployments are
*held*: they take no part in the plain decision (they are neither candidates nor threats, so
they never start and never cause an eviction) and wait with their own reason:

  quota       admitting it would take a quota over its limit (quotas never preempt);
  no_preempt  it never preempts and does not fit in the free room;
  reserved    it is behind the reservation of a starving deployment and would delay it.

The holds are found in rounds: first each pending job against the running work alone, then,
after a plain decision over the rest, the started jobs in queue order against what the
earlier ones took (a quota, the reservation's spare room) and any non-preempting job the
decision made a preemptor. A round holds at least one more job, so the rounds end. Rules 2
and 3 hold for every pending job that is not held; every quota's use after a decision is at
most its limit, or at most what it was when its running work already exceeded it.

The minimum run time: when a decision would evict running work younger than `min_run`, the
decision is made again with that work protected (as if it outranked everything); if every
deployment the first decision evicted for still starts and rules 2 and 3 hold at the real
priorities (sparing young low-priority work must not evict older higher-priority work), the
second stands, else the first does and its young victims' reasons say that no other choice
made room.

Pure, like the rest of the package: `Fairness.now` is the caller's clock reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from app.quantities import format_amount, format_number

from .checks import violations
from .decide import schedule as plain_schedule
from .queue import in_queue_order
from .types import (
    ClusterState,
    Decision,
    Delete,
    Event,
    Fairness,
    Job,
    QueueEntry,
    Quota,
    Reconcile,
    Submit,
    Wait,
)
from .vectors import Cluster, Vec, fits, vsub

# A protected (young) running job outranks every real priority while a decision is redone.
_PROTECTED = 1 << 40
QUOTA, NO_PREEMPT, RESERVED = "quota", "no_preempt", "reserved"
_RESERVED_NOTE = (
    "holds the cluster's reservation: later work starts only where it does not delay it"
)
_YOUNG_NOTE = "it had run less than the cluster's minimum run time, but no other choice made room"


class _Hold(NamedTuple):
    cause: str
    detail: int  # the quota's index, or the reserved job's id; -1 for no_preempt


@dataclass(slots=True)
class _Reservation:
    """The starving job `job_id`: jobs in `behind` may start only if they end by `start` (a
    time key; None when unknown) or fit in `spare`, shared among them in queue order."""

    job_id: int
    start: int | None
    spare: Vec
    behind: frozenset[int]


def schedule(state: ClusterState, event: Event) -> Decision:
    """The decision after `event`: the plain rules of docs/scheduling.md, and the fair-use
    rules of `state.fair` when it is set (see the module docstring).

    Invariants besides the plain ones: with `fair` set, no quota's use grows above its limit,
    no job in `fair.never_preempts` is a preemptor, a job behind the reservation starts only
    where it does not delay the reserved start, and `queue` lists every pending job (held ones
    included) in queue order, positions 1..n.
    """
    fair = state.fair
    if fair is None:
        return plain_schedule(state, event)
    running, pending = _after(state, event)
    cluster = Cluster(state.capacity)
    base = replace(state, running=running, pending=(), fair=None)
    first = _initial_holds(cluster, fair, running, pending)
    reservation = _reservation(cluster, state, running, pending, first)
    if reservation is not None:
        _hold_behind(cluster, reservation, fair, pending, first)
    held = dict(first)
    decision = _rounds(base, cluster, fair, running, pending, held, reservation, frozenset())
    young_hit: set[int] = set()
    if fair.min_run > 0:
        young = frozenset(
            job.id
            for job in running
            if job.started is not None and fair.now - job.started < fair.min_run
        )
        hit = young & (set(decision.preempted) | set(decision.repacked))
        if hit:
            needed = set(decision.preempted.values()) | set(decision.repacked.values())
            again = dict(first)
            trial = _rounds(base, cluster, fair, running, pending, again, reservation, young)
            if needed <= set(trial.started) and _valid(state, trial, running, pending, again):
                decision, held = trial, again
            else:
                young_hit = hit
    return _finish(cluster, fair, decision, running, pending, held, reservation, young_hit)


def _valid(
    state: ClusterState,
    decision: Decision,
    running: list[Job],
    pending: list[Job],
    held: Mapping[int, _Hold],
) -> bool:
    """Do rules 2 and 3 hold, at the real priorities, for the pending jobs not held after
    `decision` (a decision made with young work protected may have evicted higher-priority
    work instead, which rule 3 forbids: then it is no valid choice)."""
    left = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
    started = set(decision.started)
    final = [job for job in running if job.id not in left]
    final += [job for job in pending if job.id in started]
    waiting = [job for job in pending if job.id not in started and job.id not in held]
    waiting += [job for job in running if job.id in left]
    return not violations(state.capacity, final, waiting)


def _after(state: ClusterState, event: Event) -> tuple[list[Job], list[Job]]:
    """The running and pending jobs once the event is applied (a submitted job is pending)."""
    running, pending = list(state.running), list(state.pending)
    if isinstance(event, Submit):
        new_id = event.job.id
        if any(job.id == new_id for job in running) or any(job.id == new_id for job in pending):
            raise ValueError(f"deployment #{new_id} is already in this cluster")
        pending.append(event.job)
    elif isinstance(event, Delete):
        gone = event.ids
        running = [job for job in running if job.id not in gone]
        pending = [job for job in pending if job.id not in gone]
    elif not isinstance(event, Reconcile):
        raise TypeError(f"unknown event {event!r}")
    ids = [job.id for job in running] + [job.id for job in pending]
    if len(set(ids)) != len(ids):
        raise ValueError("a deployment id appears twice in the cluster state")
    return running, pending


def _amount(job: Job, kind: str) -> int:
    return job.requests.get(kind, 0)


def _quota_use(quota: Quota, jobs: Sequence[Job]) -> int:
    members = quota.members
    return quota.used_elsewhere + sum(_amount(job, quota.kind) for job in jobs if job.id in members)


def _initial_holds(
    cluster: Cluster, fair: Fairness, running: Sequence[Job], pending: Sequence[Job]
) -> dict[int, _Hold]:
    """Each pending job on its own against the running work: over a quota, or never
    preempting and not fitting in the free room."""
    held: dict[int, _Hold] = {}
    for index, quota in enumerate(fair.quotas):
        used = _quota_use(quota, running)
        for job in pending:
            if job.id in quota.members and job.id not in held:
                need = _amount(job, quota.kind)
                if need > 0 and used + need > quota.limit:
                    held[job.id] = _Hold(QUOTA, index)
    if fair.never_preempts:
        free = vsub(cluster.cap, cluster.sum_jobs(running))
        for job in pending:
            if job.id in fair.never_preempts and job.id not in held:
                vec = cluster.pending_vec(job.requests)
                if vec is not None and not fits(vec, free):
                    held[job.id] = _Hold(NO_PREEMPT, -1)
    return held


def _rounds(
    base: ClusterState,
    cluster: Cluster,
    fair: Fairness,
    running: list[Job],
    pending: list[Job],
    held: dict[int, _Hold],
    reservation: _Reservation | None,
    protected: frozenset[int],
) -> Decision:
    """Plain decisions over the jobs not held, holding more until none breaks a fair-use
    rule (updates `held`)."""
    run = running
    if protected:
        run = [replace(job, priority=_PROTECTED) if job.id in protected else job for job in running]
    by_id = {job.id: job for job in pending}
    while True:
        todo = [job for job in pending if job.id not in held]
        decision = plain_schedule(replace(base, running=run, pending=todo), Reconcile())
        more = _breaches(cluster, fair, decision, running, by_id, reservation)
        if not more:
            return decision
        held.update(more)


def _breaches(
    cluster: Cluster,
    fair: Fairness,
    decision: Decision,
    running: Sequence[Job],
    by_id: Mapping[int, Job],
    reservation: _Reservation | None,
) -> dict[int, _Hold]:
    """The started jobs that break a fair-use rule together, to hold in the next round."""
    more: dict[int, _Hold] = {}
    for preemptor in (*decision.preempted.values(), *decision.repacked.values()):
        if preemptor in fair.never_preempts:
            more[preemptor] = _Hold(NO_PREEMPT, -1)
    if not decision.started:
        return more
    started = [by_id[i] for i in decision.started]
    if fair.quotas:
        left = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
        stay = [job for job in running if job.id not in left]
        for index, quota in enumerate(fair.quotas):
            used = None
            for job in started:
                if job.id not in quota.members or job.id in more:
                    continue
                need = _amount(job, quota.kind)
                if need <= 0:
                    continue
                if used is None:
                    used = _quota_use(quota, stay)
                if used + need <= quota.limit:
                    used += need
                else:
                    more[job.id] = _Hold(QUOTA, index)
    if reservation is not None:
        spare = reservation.spare
        for job in started:
            if (
                job.id not in reservation.behind
                or job.id in more
                or _ends_by(fair, job, reservation)
            ):
                continue
            vec = cluster.vec(job.requests)
            if fits(vec, spare):
                spare = vsub(spare, vec)
            else:
                more[job.id] = _Hold(RESERVED, reservation.job_id)
    return more


def _ends_by(fair: Fairness, job: Job, reservation: _Reservation) -> bool:
    """Would `job`, started now, end by the reserved start (so it cannot delay it)?"""
    limit = fair.max_run.get(job.id)
    return (
        reservation.start is not None
        and limit is not None
        and fair.now + limit <= reservation.start
    )


# -- the starvation guard ------------------------------------------------------------------


def _reservation(
    cluster: Cluster,
    state: ClusterState,
    running: list[Job],
    pending: list[Job],
    held: Mapping[int, _Hold],
) -> _Reservation | None:
    """The reservation of the first job in queue order that has waited longer than
    `starve_after`, if any: its start is now when it fits in the free room, else simulated over
    the known end times with only the work ahead of it queued; the room left beside it then is
    what later work may take."""
    fair = state.fair
    if fair is None or fair.starve_after is None or not pending:
        return None
    order = in_queue_order(job for job in pending if job.id not in held)
    free = vsub(cluster.cap, cluster.sum_jobs(running))
    for index, job in enumerate(order):
        since = fair.waiting_since.get(job.id, job.submitted)
        if fair.now - since <= fair.starve_after:
            continue
        vec = cluster.pending_vec(job.requests)
        if vec is None:
            continue
        behind = frozenset(other.id for other in order[index + 1 :])
        if fits(vec, free):
            # It fits now: later work may take only what it leaves (best packing alone could
            # prefer smaller work that fills the room better, again and again).
            return _Reservation(job.id, fair.now, vsub(free, vec), behind)
        ahead = order[: index + 1]
        sim = simulate(
            replace(state, running=running, pending=ahead, fair=replace(fair, starve_after=None)),
            frozenset([job.id]),
        )
        start = sim.starts.get(job.id)
        if start is None:
            spare = vsub(free, vec)  # no known start: nothing behind it takes what it needs
        else:
            spare = vsub(cluster.cap, cluster.sum_jobs(sim.running_at[job.id]))
        return _Reservation(job.id, start, spare, behind)
    return None


def _hold_behind(
    cluster: Cluster,
    reservation: _Reservation,
    fair: Fairness,
    pending: Sequence[Job],
    held: dict[int, _Hold],
) -> None:
    """Hold, on its own, every job behind the reservation that would delay it."""
    for job in pending:
        if job.id in reservation.behind and job.id not in held:
            vec = cluster.pending_vec(job.requests)
            if vec is None or _ends_by(fair, job, reservation):
                continue
            if not fits(vec, reservation.spare):
                held[job.id] = _Hold(RESERVED, reservation.job_id)


# -- forward simulation (start-time estimates, reservations) ----------------------------


@dataclass(slots=True)
class Simulation:
    """What a forward simulation found: `starts` maps the targets that started to their
    first simulated start (a time key); `running_at[id]` is the running set just after that
    start; `unlimited` the ids of jobs still running at the end with no known end."""

    starts: dict[int, int]
    running_at: dict[int, list[Job]]
    unlimited: list[Job]
    events: int


def simulate(state: ClusterState, targets: frozenset[int]) -> Simulation:
    """Run the scheduler forward over the known end times (docs/scheduling.md, "Start-time
    estimates"): at each earliest end (`started + max_run` of a running job), the ending jobs
    leave and a decision follows; jobs that start take their own maximum run time. Stops when
    every target has started, when no running job has a known end, or after `fair.horizon`
    events. Nothing new arrives and nothing ends early: the starts found are those of the
    limits, i.e. the latest if the limits are all that ends work. `state.fair` is required."""
    fair = state.fair
    if fair is None:
        raise ValueError("a simulation needs the fair-use state (its clock and run limits)")
    now = fair.now
    run = list(state.running)
    pend = list(state.pending)
    ends = {
        job.id: max(now, job.started + fair.max_run[job.id])
        for job in run
        if job.id in fair.max_run and job.started is not None
    }
    starts: dict[int, int] = {}
    running_at: dict[int, list[Job]] = {}
    events = 0
    while events < fair.horizon and not targets <= starts.keys():
        if not ends:
            break
        now = min(ends.values())
        gone = frozenset(i for i, end in ends.items() if end <= now)
        step_fair = replace(fair, now=now, starve_after=None)
        decision = schedule(replace(state, running=run, pending=pend, fair=step_fair), Delete(gone))
        events += 1
        run, pend = _advance(run, pend, decision, gone, now, fair, ends, starts, running_at)
        rounds = 0
        while decision.settle and rounds < 3:
            decision = schedule(
                replace(state, running=run, pending=pend, fair=step_fair), Reconcile()
            )
            run, pend = _advance(
                run, pend, decision, frozenset(), now, fair, ends, starts, running_at
            )
            rounds += 1
    unlimited = [job for job in run if job.id not in ends]
    return Simulation(starts, running_at, unlimited, events)


def _advance(
    run: list[Job],
    pend: list[Job],
    decision: Decision,
    gone: frozenset[int],
    now: int,
    fair: Fairness,
    ends: dict[int, int],
    starts: dict[int, int],
    running_at: dict[int, list[Job]],
) -> tuple[list[Job], list[Job]]:
    """Apply one simulated decision (updates `ends`, `starts` and `running_at`)."""
    left = set(gone) | set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
    back = [replace(job, started=None) for job in run if job.id in left and job.id not in gone]
    started = set(decision.started)
    new_run = [job for job in run if job.id not in left]
    for job in pend:
        if job.id in started:
            new_run.append(replace(job, started=now))
            if job.id in fair.max_run:
                ends[job.id] = now + fair.max_run[job.id]
    for job_id in left:
        ends.pop(job_id, None)
    for job_id in decision.started:
        if job_id not in starts:
            starts[job_id] = now
            running_at[job_id] = new_run
    new_pend = [job for job in pend if job.id not in started] + back
    return new_run, new_pend


# -- the decision's queue with the held jobs ------------------------------------------------


def _finish(
    cluster: Cluster,
    fair: Fairness,
    decision: Decision,
    running: list[Job],
    pending: list[Job],
    held: Mapping[int, _Hold],
    reservation: _Reservation | None,
    young_hit: set[int],
) -> Decision:
    """The decision with every held job in its queue (reasons worded against the final
    state), positions renumbered in queue order, and the fair-use notes."""
    if not held and reservation is None and not young_hit:
        return decision
    left = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
    by_id = {job.id: job for job in pending}
    final = [job for job in running if job.id not in left]
    final += [by_id[i] for i in decision.started]
    free = vsub(cluster.cap, cluster.sum_jobs(final))
    entries = list(decision.queue)
    if held:
        uses = [_quota_use(quota, final) for quota in fair.quotas]
        for job_id, hold in held.items():
            job = by_id[job_id]
            wait = _held_wait(cluster, fair, job, hold, free, uses)
            entries.append(QueueEntry(job_id, 0, wait.message or "", wait))
    if reservation is not None or young_hit:
        notes = []
        for entry in entries:
            if reservation is not None and entry.id == reservation.job_id:
                entry = _noted(entry, _RESERVED_NOTE)
            elif entry.id in young_hit:
                entry = _noted(entry, _YOUNG_NOTE)
            notes.append(entry)
        entries = notes
    every = {**by_id, **{job.id: job for job in running}}
    order = {job.id: n for n, job in enumerate(in_queue_order(every[e.id] for e in entries))}
    entries.sort(key=lambda entry: order[entry.id])
    queue = [entry._replace(position=n) for n, entry in enumerate(entries, start=1)]
    settle = bool(held) and bool(left)
    return replace(
        decision,
        queue=queue,
        settle=settle,
        reserved=reservation.job_id if reservation is not None else None,
    )


def _noted(entry: QueueEntry, note: str) -> QueueEntry:
    wait = entry.wait
    message = f"{wait.message}; {note}" if wait.message else note
    return entry._replace(reason=f"{entry.reason}; {note}", wait=wait._replace(message=message))


def _held_wait(
    cluster: Cluster,
    fair: Fairness,
    job: Job,
    hold: _Hold,
    free: Vec,
    uses: Sequence[int],
) -> Wait:
    """Why a held job waits, in words (`message`) and as data."""
    if hold.cause == QUOTA:
        quota = fair.quotas[hold.detail]
        used = uses[hold.detail]
        kind = quota.kind
        text = (
            f"over {quota.label} {kind} quota ({format_number(kind, used)} of "
            f"{format_number(kind, quota.limit)} used); it starts by itself once the quota "
            "allows"
        )
        need = _amount(job, kind)
        return Wait(QUOTA, kind, need, max(0, quota.limit - used), used, job.priority, message=text)
    vec = cluster.vec(job.requests)
    kind_index = _most_short(cluster, vec, free)
    kind = cluster.kinds[kind_index] if kind_index is not None else None
    need = vec[kind_index] if kind_index is not None else 0
    have = free[kind_index] if kind_index is not None else 0
    if hold.cause == NO_PREEMPT:
        text = "never preempts: waits for free room"
        if kind is not None:
            text += (
                f" (needs {format_amount(kind, need)}, {format_amount(kind, max(0, have))} free)"
            )
        return Wait(NO_PREEMPT, kind, need, max(0, have), 0, job.priority, message=text)
    text = (
        f"waits behind deployment #{hold.detail}, which has waited longer than the cluster's "
        "starvation threshold and holds a reservation"
    )
    return Wait(RESERVED, kind, need, max(0, have), 0, job.priority, (hold.detail,), message=text)


def _most_short(cluster: Cluster, vec: Vec, free: Vec) -> int | None:
    """The kind (index) where `vec` is shortest of `free`, relative to capacity."""
    best, worst = None, 0.0
    for k, (need, have, cap) in enumerate(zip(vec, free, cluster.cap, strict=True)):
        if need > have and cap > 0:
            short = (need - have) / cap
            if best is None or short > worst:
                best, worst = k, short
    return best


def quota_violations(
    quotas: Sequence[Quota], before: Sequence[Job], after: Sequence[Job]
) -> list[str]:
    """For tests and benchmarks: quotas whose use grew above their limit across a decision
    (use may stay above a limit lowered under running work, never grow there)."""
    problems = []
    for quota in quotas:
        was, now = _quota_use(quota, before), _quota_use(quota, after)
        if now > quota.limit and now > was:
            problems.append(f"quota {quota.kind} {quota.limit}: use {was} -> {now}")
    return problems
