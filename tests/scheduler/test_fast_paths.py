"""The speed-ups of the scheduler give the same decisions as the plain ways they replace.

The scheduler reads requests with whole-list passes (a fast path for plain dicts, a generic one
for any Mapping), sorts with C-level keys when every running job has a start key (Python keys
otherwise), reads rule 8 off a job's row unless the job names a kind the cluster lacks, and
chooses victims with prefix sums and binary search instead of a job-by-job loop, and lets the
preemption walk keep only the next job of each rescanned row in its heap (parking a blocked
row until the running set changes) instead of every rescanned job. Each test below runs both
sides of one of those choices and asks for equal results.
"""

from __future__ import annotations

import heapq
import random
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduler import (
    ClusterState,
    Decision,
    Delete,
    Job,
    Reconcile,
    Submit,
    _Cluster,
    _levels,
    _Stream,
    _sum_levels,
    _Walk,
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


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 3)),
        min_size=1,
        max_size=25,
    ),
    st.tuples(st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.integers(-10, 20), st.integers(-10, 20)),
    st.lists(st.integers(0, 24), max_size=4),
)
def test_victims_by_prefix_sums_match_the_job_by_job_loop(
    amounts: list[tuple[int, int, int]],
    room: tuple[int, int],
    excess: tuple[int, int],
    already_out: list[int],
) -> None:
    capacity = {"cpu": 1000, "ram": 1000}
    level = [
        Job(i, 0, {"cpu": cpu, "ram": ram}, i, started)
        for i, (cpu, ram, started) in enumerate(amounts, start=1)
    ]
    cluster = _Cluster(capacity)
    levels = _levels(level)

    def walk() -> _Walk:
        fresh = _Walk(cluster, levels, _sum_levels(cluster, levels), [], [])
        fresh.out.update(i for i in already_out if i <= len(level))
        return fresh

    fast, slow = walk(), walk()
    fast_victims: list[Job] = []
    fast_result = fast.give_back(0, room, excess, fast_victims)
    jobs, columns = slow.level(0)
    keep = [job.id not in slow.out for job in jobs]
    jobs = [job for job, kept in zip(jobs, keep, strict=True) if kept]
    columns = [[x for x, kept in zip(column, keep, strict=True) if kept] for column in columns]
    slow_victims: list[Job] = []
    if jobs:
        slow_result = slow.give_back_one_by_one(0, jobs, columns, room, excess, slow_victims)
    else:
        slow_result = (room, False)
    assert fast_result == slow_result
    assert [j.id for j in fast_victims] == [j.id for j in slow_victims]
    assert fast.by_priority == slow.by_priority and fast.used == slow.used


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


STREAM_RESCAN = _Walk.rescan


def one_job_streams(self: _Walk, heap: list, after: tuple, top: int) -> None:
    """The plain rescan: every found job in the heap on its own (a stream of one job)."""
    found: list = []
    STREAM_RESCAN(self, found, after, top)
    for _, _, stream in found:
        for key, job in zip(stream.keys, stream.jobs, strict=True):
            heapq.heappush(heap, (key, job, _Stream(stream.row, [job])))


def walk_outcome(walk: _Walk) -> tuple[object, ...]:
    return (
        list(walk.from_free),  # in the order the walk started them
        walk.victims,
        [job.id for job in walk.forced],
        walk.out,
        set(walk.touched),
        walk.max_victim_priority,
        walk.by_priority,
    )


def test_walk_streams_walk_like_one_heap_entry_per_job() -> None:
    # The walk's own outcome is compared, not only the decision: the search after the walk
    # re-decides the admissions and would hide a walk that started other jobs from free.
    long_streams = 0

    def counting(self: _Walk, heap: list, after: tuple, top: int) -> None:
        nonlocal long_streams
        found: list = []
        STREAM_RESCAN(self, found, after, top)
        long_streams += sum(len(stream.jobs) > 1 for _, _, stream in found)
        for entry in found:
            heapq.heappush(heap, entry)

    def run(rescan: object, state: ClusterState, event: object) -> tuple[object, ...]:
        walks: list[tuple[object, ...]] = []
        original_run = _Walk.run

        def recording_run(self: _Walk, relevant: object) -> None:
            original_run(self, relevant)  # type: ignore[arg-type]
            walks.append(walk_outcome(self))

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_Walk, "rescan", rescan)
            patch.setattr(_Walk, "run", recording_run)
            decision = schedule(state, event)  # type: ignore[arg-type]
        return snapshot(decision), walks

    for seed in range(300):
        capacity, running, pending, submits = walk_heavy(seed)
        state = ClusterState(capacity, running, pending)
        deletes = [Delete(frozenset({job.id})) for job in running[:3]]
        for event in [*submits, *deletes]:
            assert run(counting, state, event) == run(one_job_streams, state, event)
    assert long_streams > 50  # the cases above do exercise streams of many jobs
