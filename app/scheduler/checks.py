"""Pure checkers of the rules, for tests and benchmarks: rules 1-3 on a snapshot, rules 4-5
across one decision (docs/scheduling.md, "The invariants")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .types import Job
from .vectors import Cluster, Rooms, fits, sums_by_priority, vsub


def violations(
    capacity: Mapping[str, int], running: Sequence[Job], pending: Sequence[Job]
) -> list[str]:
    """Rules 1-3 on a snapshot; an empty list means the snapshot satisfies them.

    1: per kind, the sum of running requests <= capacity (a running job asking for a kind the
    cluster lacks breaks it too); 2: no pending job fits in free; 3: no pending job fits in
    room_for(p) = capacity - running(priority >= p).
    """
    problems: list[str] = []
    cluster = Cluster(capacity)
    for job in running:
        for kind, amount in job.requests.items():
            if amount > 0 and kind not in capacity:
                problems.append(f"rule 1: running #{job.id} uses {kind}, which the cluster lacks")
    by_priority = sums_by_priority(cluster, running)
    used = cluster.sum_vecs(by_priority.values())
    for kind, amount, cap in zip(cluster.kinds, used, cluster.cap, strict=True):
        if amount > cap:
            problems.append(f"rule 1: {kind} used {amount} > capacity {cap}")
    free = vsub(cluster.cap, used)
    rooms = Rooms(cluster, by_priority)
    for job in pending:
        vec = cluster.pending_vec(job.requests)
        if vec is None:
            continue
        if fits(vec, free):
            problems.append(f"rule 2: pending #{job.id} fits in free {free}")
        room = rooms.room(job.priority)
        if fits(vec, room):
            problems.append(f"rule 3: pending #{job.id} (priority {job.priority}) fits in {room}")
    return problems


def transition_violations(
    before_running: Sequence[Job],
    after_running: Sequence[Job],
    preempted: Mapping[int, int],
    submitted_or_none: Job | None,
    *,
    capacity: Mapping[str, int] | None = None,
    deleted: Iterable[int] = (),
    repacked: Mapping[int, int] | None = None,
) -> list[str]:
    """Rules 4 and 5 across one decision; an empty list means the transition respects them.

    `before_running` is the running set before the event; ids in `deleted` may leave freely.
    Checks: every running job that left (and was not deleted) is a victim in `preempted` (or,
    with `repacked`, moved by a repack); every victim's preemptor started in this decision (it
    was pending, or is `submitted_or_none`) and has strictly higher priority (a repack: the
    same priority); victims do not run afterwards. With `capacity`, minimality: no victim
    could be given back (it fits neither in the final free space nor in its final room_for,
    so keeping it would not have let the preemptors fit too, and no lower-priority running
    job could have been evicted instead).
    """
    problems: list[str] = []
    moved = dict(repacked or {})
    gone = set(deleted)
    before = {job.id: job for job in before_running if job.id not in gone}
    after = {job.id: job for job in after_running}
    for job_id in before:
        if job_id not in after and job_id not in preempted and job_id not in moved:
            problems.append(f"rule 5: running #{job_id} stopped with no higher-priority preemptor")
    senders = [(v, p, False) for v, p in preempted.items()]
    senders += [(v, p, True) for v, p in moved.items()]
    for victim_id, preemptor_id, is_repack in senders:
        victim = before.get(victim_id)
        if victim is None:
            problems.append(f"rule 4: victim #{victim_id} was not running")
            continue
        if victim_id in after:
            problems.append(f"rule 4: victim #{victim_id} still runs")
        preemptor = after.get(preemptor_id)
        if preemptor is None:
            problems.append(f"rule 4: preemptor #{preemptor_id} of #{victim_id} does not run")
            continue
        if preemptor_id in before and (
            submitted_or_none is None or submitted_or_none.id != preemptor_id
        ):
            problems.append(f"rule 4: preemptor #{preemptor_id} was already running")
        if is_repack:
            if preemptor.priority != victim.priority:
                problems.append(
                    f"repack: #{victim_id} (priority {victim.priority}) moved for "
                    f"#{preemptor_id} of priority {preemptor.priority}"
                )
        elif preemptor.priority <= victim.priority:
            problems.append(
                f"rule 5: #{victim_id} (priority {victim.priority}) preempted by "
                f"#{preemptor_id} of priority {preemptor.priority}"
            )
    if capacity is not None and senders:
        cluster = Cluster(capacity)
        by_priority = sums_by_priority(cluster, after.values())
        free = vsub(cluster.cap, cluster.sum_vecs(by_priority.values()))
        rooms = Rooms(cluster, by_priority)
        for victim_id, _, _ in senders:
            victim = before.get(victim_id)
            if victim is None:
                continue
            vec = cluster.vec(victim.requests)
            if fits(vec, free):
                problems.append(f"rule 4: victim #{victim_id} could be given back (fits in free)")
            elif fits(vec, rooms.room(victim.priority)):
                problems.append(
                    f"rule 4: victim #{victim_id} fits by evicting lower priority instead"
                )
    return problems
