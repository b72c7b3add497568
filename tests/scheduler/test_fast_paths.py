"""The speed-ups of the scheduler give the same decisions as the plain ways they replace.

The scheduler reads requests with whole-list passes (a fast path for plain dicts, a generic one
for any Mapping), sorts with C-level keys when every running job has a start key (Python keys
otherwise), reads rule 8 off a job's row unless the job names a kind the cluster lacks, and
walks the queue incrementally when it preempts (a stream per row, room_for kept as it
descends, victims found with prefix-sum trees). Each test below compares one of those choices
with the plain way, through the public interface only.
"""

from __future__ import annotations

import heapq
import random
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduler import (
    ClusterState,
    Decision,
    Delete,
    Job,
    Reconcile,
    Submit,
    schedule,
    violations,
)

KINDS = ("cpu", "gpu", "ram")
TIERS = (0, 100, 500, 900)


def snapshot(decision: Decision) -> tuple[object, ...]:
    return (
        decision.started,
        decision.preempted,
        [(e.id, e.position, e.reason) for e in decision.queue],
        decision.used,
        decision.evicted,
    )


def build(seed: int, size: int) -> tuple[dict[str, int], list[Job], list[Job]]:
    """A valid cluster state of `size` jobs (about 70% running), built by the scheduler."""
    rng = random.Random(seed)
    kinds = rng.sample(KINDS, rng.randint(1, 3))
    shapes = [{k: rng.randint(1, 6) for k in kinds if rng.random() < 0.7} for _ in range(4)]
    shapes = [shape or {kinds[0]: 1} for shape in shapes]
    jobs = [Job(i, rng.choice(TIERS), dict(rng.choice(shapes)), i) for i in range(1, size + 1)]
    share = jobs[: max(1, int(size * 0.7))]
    capacity = {k: max(1, sum(j.requests.get(k, 0) for j in share)) for k in kinds}
    decision = schedule(ClusterState(capacity, [], jobs), Reconcile())
    started = set(decision.started)
    running = [
        Job(j.id, j.priority, j.requests, j.submitted, rank)
        for rank, j in enumerate(j for j in jobs if j.id in started)
    ]
    pending = [j for j in jobs if j.id not in started]
    return capacity, running, pending


def events(seed: int, running: list[Job], pending: list[Job], size: int) -> list[object]:
    rng = random.Random(seed + 1)
    out: list[object] = []
    for t in range(6):
        requests = dict(rng.choice([*running, *pending]).requests)
        out.append(Submit(Job(size + 1 + t, rng.choice(TIERS), requests, size + 1 + t)))
    out.extend(Delete(frozenset({job.id})) for job in rng.sample(running, min(4, len(running))))
    out.extend(Delete(frozenset({job.id})) for job in rng.sample(pending, min(2, len(pending))))
    out.append(Reconcile())
    return out


def proxied(job: Job) -> Job:
    return Job(
        job.id,
        job.priority,
        MappingProxyType(dict(job.requests)),
        job.submitted,
        job.started,
        job.preempted_by,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from((5, 30, 120)))
def test_requests_of_any_mapping_type_decide_the_same(seed: int, size: int) -> None:
    capacity, running, pending = build(seed, size)
    plain = ClusterState(capacity, running, pending)
    other = ClusterState(capacity, [proxied(j) for j in running], [proxied(j) for j in pending])
    for event in events(seed, running, pending, size):
        other_event = Submit(proxied(event.job)) if isinstance(event, Submit) else event
        assert snapshot(schedule(other, other_event)) == snapshot(schedule(plain, event))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from((5, 30, 120)))
def test_running_jobs_without_a_start_key_rank_last_by_id(seed: int, size: int) -> None:
    # A running job without `started` ranks after every started one (ties by id). The same
    # order, with numbers, is "started after everyone, in id order": both must decide alike.
    capacity, running, pending = build(seed, size)
    rng = random.Random(seed)
    unknown = {job.id for job in running if rng.random() < 0.3}
    late = max((job.started or 0 for job in running), default=0) + 1

    def restarted(job: Job, started: int | None) -> Job:
        return Job(job.id, job.priority, job.requests, job.submitted, started)

    without = [restarted(j, None) if j.id in unknown else j for j in running]
    numbered = [restarted(j, late + j.id) if j.id in unknown else j for j in running]
    for event in events(seed, running, pending, size):
        a = schedule(ClusterState(capacity, without, pending), event)
        b = schedule(ClusterState(capacity, numbered, pending), event)
        assert snapshot(a) == snapshot(b)


def test_pending_job_naming_an_unknown_kind_never_starts() -> None:
    # By cpu alone it would fit once the running job leaves; the tpu it asks for never will.
    capacity = {"cpu": 4}
    running = [Job(1, 100, {"cpu": 4}, 1, 1)]
    pending = [
        Job(2, 500, {"cpu": 1, "tpu": 1}, 2),
        Job(3, 0, {"cpu": 2, "tpu": 0}, 3),  # a zero amount of an unknown kind is harmless
        Job(4, 0, {"cpu": -1, "gpu": 2}, 4),
    ]
    decision = schedule(ClusterState(capacity, running, pending), Delete(frozenset({1})))
    assert decision.started == [3]
    assert [e.id for e in decision.queue] == [2, 4]
    assert decision.queue[0].reason == "this cluster has no tpu"
    final_running = [j for j in pending if j.id in decision.started]
    rest = [j for j in pending if j.id not in decision.started]
    assert violations(capacity, final_running, rest) == []


def walk_heavy(seed: int) -> tuple[dict[str, int], list[Job], list[Job], list[Submit]]:
    """A full cluster of low-priority work with many identical pending jobs, and submissions
    of higher priority that must preempt: the walks then rescan long runs of one row."""
    rng = random.Random(seed)
    kinds = rng.sample(KINDS, rng.randint(1, 2))
    shapes = [{k: rng.randint(1, 3) for k in kinds} for _ in range(rng.randint(1, 3))]
    size = rng.randint(20, 90)
    jobs = [
        Job(i, 0 if rng.random() < 0.7 else rng.randint(1, 3), dict(rng.choice(shapes)), i)
        for i in range(1, size + 1)
    ]
    capacity = {k: rng.randint(6, 20) for k in kinds}
    decision = schedule(ClusterState(capacity, [], jobs), Reconcile())
    started = set(decision.started)
    running = [
        Job(j.id, j.priority, j.requests, j.submitted, rank)
        for rank, j in enumerate(j for j in jobs if j.id in started)
    ]
    pending = [j for j in jobs if j.id not in started]
    rng.shuffle(pending)  # the state's lists come in any order; the walk must sort its own
    submits = [
        Submit(Job(size + t, rng.randint(2, 5), dict(rng.choice(shapes)), size + t))
        for t in range(1, 6)
    ]
    return capacity, running, pending, submits


def queue_key(job: Job) -> tuple[int, int, int]:
    return (-job.priority, job.submitted, job.id)


def plain_walk(capacity: dict[str, int], running: list[Job], pending: list[Job]) -> set[int]:
    """The preemption walk of docs/scheduling.md with plain loops: the queue in order, each
    job started if it fits in free, else, if it fits in its room_for, every lower-priority
    job removed and the most important given back while it still fits (victims re-enter the
    queue), else left waiting. Returns the ids of the running jobs still evicted at the end."""
    kinds = sorted(capacity)

    def vec(job: Job) -> list[int]:
        return [job.requests.get(k, 0) for k in kinds]

    def fits(need: list[int], room: list[int]) -> bool:
        return all(n <= r for n, r in zip(need, room, strict=True))

    def free_of(jobs) -> list[int]:
        return [capacity[k] - sum(j.requests.get(k, 0) for j in jobs) for k in kinds]

    now = {j.id: j for j in running}
    out: set[int] = set()
    heap = [(queue_key(j), j) for j in pending]
    heapq.heapify(heap)
    while heap:
        _, job = heapq.heappop(heap)
        if fits(vec(job), free_of(now.values())):
            now[job.id] = job
            out.discard(job.id)
            continue
        above = [j for j in now.values() if j.priority >= job.priority]
        if not fits(vec(job), free_of(above)):
            continue
        lower = sorted(
            (j for j in now.values() if j.priority < job.priority),
            key=lambda j: (-j.priority, j.started if j.started is not None else 1e18, j.id),
        )
        kept = [*above, job]
        for candidate in lower:
            if fits(vec(candidate), free_of(kept)):
                kept.append(candidate)
            else:
                del now[candidate.id]
                out.add(candidate.id)
                heapq.heappush(heap, (queue_key(candidate), candidate))
        now[job.id] = job
        out.discard(job.id)
    return out & {j.id for j in running}


def test_victims_are_the_plain_walks() -> None:
    """The incremental walk (streams per row, room_for kept as it descends, victims found in
    prefix-sum trees) evicts what the plain walk does: every victim of the decision is one of
    the plain walk's, and the plain walk's others run at the end (the admission search after
    the walk may give a victim back, never evict another)."""
    checked = 0
    for seed in range(300):
        capacity, running, pending, submits = walk_heavy(seed)
        state = ClusterState(capacity, running, pending)
        deletes = [Delete(frozenset({job.id})) for job in running[:3]]
        for event in [*submits, *deletes]:
            decision = schedule(state, event)
            if isinstance(event, Submit):
                before_running, waiting = running, [*pending, event.job]
            else:
                before_running = [j for j in running if j.id not in event.ids]
                waiting = pending
            if not decision.preempted:
                continue
            expected = plain_walk(capacity, before_running, waiting)
            assert set(decision.preempted) <= expected
            final = {j.id for j in before_running} - set(decision.preempted)
            assert expected - set(decision.preempted) <= final
            checked += 1
    assert checked > 300  # the cases above do preempt, often
