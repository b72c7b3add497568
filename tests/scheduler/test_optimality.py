"""Rule 7 against exhaustive search on small random cases (docs/scheduling.md, "Exactness").

An independent checker written from the document's definitions (it uses nothing of the
scheduler but `schedule`): it enumerates every admitted set, keeps those the rules allow, and
takes the largest U (exact, with fractions). Ties go to the set first in queue order class by
class: identical deployments (same priority, requests and standing) form a class; with the
classes in the order their longest-waiting member joined the queue, the set admitting more of
the first class where two sets differ wins.

  * No eviction needed: the running jobs stay (rule 5); every subset of the pending jobs after
    which rules 1-3 hold is allowed. The scheduler must pick the best, and must not preempt
    when one exists.
  * Eviction needed (no such subset): the victims V are the scheduler's (its preemption walk
    chooses them); the jobs that stay running are fixed, and every subset A of pending + V is
    allowed when rules 1-3 hold and every victim left out is justified: a pending job of
    strictly higher priority starts, and the victim does not fit beside everything of higher
    priority, the fixed work of its priority and the work of its priority admitted ahead of
    it in queue order. This covers choosing the preemptor among equal-priority heads and
    victims that could come back (issue 11, defect 2).
  * Repack (opt-in): running jobs at the priorities of pending ones (outside the cooldown)
    may be left out, each costing the threshold, when a pending job of their priority starts,
    at most `evictions_left` of them; the objective is U minus the cost.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduler import (
    EXACT_CLASS_LIMIT,
    ClusterState,
    Delete,
    Job,
    Reconcile,
    Repack,
    Submit,
    schedule,
    violations,
)

KINDS = ("cpu", "gpu", "ram")


def fits(requests, room) -> bool:
    return all(amount <= room.get(kind, 0) for kind, amount in requests.items())


def total(capacity, jobs) -> dict[str, int]:
    return {k: sum(j.requests.get(k, 0) for j in jobs) for k in capacity}


def minus(room, used) -> dict[str, int]:
    return {k: room[k] - used.get(k, 0) for k in room}


def utilization(capacity, jobs) -> Fraction:
    used = total(capacity, jobs)
    return sum((Fraction(used[k], capacity[k]) for k in capacity), Fraction(0))


def queue_key(job: Job) -> tuple[int, int, int]:
    return (-job.priority, job.submitted, job.id)


def rules_1_to_3(capacity, running, waiting) -> bool:
    if not fits(total(capacity, running), capacity):
        return False
    free = minus(capacity, total(capacity, running))
    for job in waiting:
        if fits(job.requests, free):
            return False
        held = total(capacity, [r for r in running if r.priority >= job.priority])
        if fits(job.requests, minus(capacity, held)):
            return False
    return True


def victim_justified(capacity, fixed, admitted, victim) -> bool:
    started = [j for j in admitted if j.started is None]
    if not any(j.priority > victim.priority for j in started):
        return False
    final = [*fixed, *admitted]
    held = [j for j in final if j.priority > victim.priority]
    held += [j for j in fixed if j.priority == victim.priority]
    held += [
        j for j in admitted if j.priority == victim.priority and queue_key(j) < queue_key(victim)
    ]
    return not fits(victim.requests, minus(capacity, total(capacity, held)))


def classes_of(items, key) -> list[tuple]:
    """The class of each item: (priority, requests, standing), the classes ordered by their
    first member's `key`."""
    first: dict[tuple, tuple] = {}
    for item, standing in items:
        name = (item.priority, tuple(sorted(item.requests.items())), standing)
        first[name] = min(first.get(name, key(item)), key(item))
    return sorted(first, key=first.__getitem__)


def tie_key(order, classes, chosen: set[int], standing_of) -> tuple[int, ...]:
    counts = dict.fromkeys(classes, 0)
    for item in order:
        if item.id in chosen:
            counts[(item.priority, tuple(sorted(item.requests.items())), standing_of(item))] += 1
    return tuple(counts[c] for c in classes)


def best_admission(capacity, fixed, choices, victims=()):
    """(U, counts per class in class order) of the best allowed admitted subset of
    `choices`, or None if none is allowed. `victims` (a subset of `choices`, running before)
    must stay justified when left out."""
    order = sorted(choices, key=queue_key)
    victim_ids = {v.id for v in victims}

    def standing(item):
        return "victim" if item.id in victim_ids else "queued"

    classes = classes_of(((item, standing(item)) for item in order), queue_key)
    best = None
    for size in range(len(order) + 1):
        for subset in combinations(order, size):
            ids = {j.id for j in subset}
            rest = [j for j in order if j.id not in ids]
            final = [*fixed, *subset]
            if not rules_1_to_3(capacity, final, rest):
                continue
            if not all(
                victim_justified(capacity, fixed, list(subset), v)
                for v in victims
                if v.id not in ids
            ):
                continue
            key = (utilization(capacity, final), tie_key(order, classes, ids, standing))
            if best is None or key > best:
                best = key
    return best


@st.composite
def states(draw, max_pending=9):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True))
    capacity = {kind: draw(st.integers(2, 12)) for kind in kinds}
    tiers = draw(st.lists(st.sampled_from((0, 100, 500)), min_size=1, max_size=3, unique=True))

    def requests():
        out = {k: draw(st.integers(1, capacity[k])) for k in kinds if draw(st.booleans())}
        return out or {kinds[0]: draw(st.integers(1, capacity[kinds[0]]))}

    running = []
    used = dict.fromkeys(kinds, 0)
    for i in range(draw(st.integers(0, 5))):
        req = requests()
        if all(used[k] + v <= capacity[k] for k, v in req.items()):
            running.append(Job(100 + i, draw(st.sampled_from(tiers)), req, i, i))
            for k, v in req.items():
                used[k] += v
    # Pending jobs often share shapes, so classes hold several members.
    shapes = [requests() for _ in range(draw(st.integers(1, 4)))]
    pending = [
        Job(
            i,
            draw(st.sampled_from(tiers)),
            dict(draw(st.sampled_from(shapes)) if draw(st.booleans()) else requests()),
            draw(st.integers(10, 30)),
        )
        for i in range(1, draw(st.integers(1, max_pending)) + 1)
    ]
    return capacity, running, pending


def as_pending(job: Job) -> Job:
    return Job(job.id, job.priority, job.requests, job.submitted)


def key_of(capacity, fixed, choices, victims, chosen: set[int]) -> tuple:
    """The (U, counts per class) of the scheduler's admission, as `best_admission` ranks it."""
    order = sorted(choices, key=queue_key)
    victim_ids = {v.id for v in victims}

    def standing(item):
        return "victim" if item.id in victim_ids else "queued"

    classes = classes_of(((item, standing(item)) for item in order), queue_key)
    final = [*fixed, *(j for j in order if j.id in chosen)]
    return utilization(capacity, final), tie_key(order, classes, chosen, standing)


def check_decision(capacity, running, pending, decision) -> None:
    """Rule 7 for a decision on (running, pending), running within capacity."""
    assert decision.exact
    assert decision.evicted == [] and decision.repacked == {}
    stable = best_admission(capacity, running, pending)
    chosen = set(decision.started)
    if not decision.preempted:
        assert stable is not None, "rules 1-3 need an eviction, yet nothing was preempted"
        assert key_of(capacity, running, pending, (), chosen) == stable
        return
    assert stable is None, "preempted although a stable admission exists"
    victims = [as_pending(j) for j in running if j.id in decision.preempted]
    fixed = [j for j in running if j.id not in decision.preempted]
    best = best_admission(capacity, fixed, [*pending, *victims], victims)
    assert best is not None
    assert key_of(capacity, fixed, [*pending, *victims], victims, chosen) == best


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states(), st.booleans())
def test_admissions_match_exhaustive_search(case, delete) -> None:
    capacity, running, pending = case
    if delete and running:
        decision = schedule(
            ClusterState(capacity, running, pending), Delete(frozenset({running[0].id}))
        )
        running = running[1:]
    else:
        decision = schedule(ClusterState(capacity, running, pending), Reconcile())
    check_decision(capacity, running, pending, decision)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states(max_pending=6), st.integers(0, 2), st.integers(1, 6))
def test_submissions_match_exhaustive_search(case, tier, size) -> None:
    """From a valid state (the scheduler's own), a submission, often of higher priority."""
    capacity, running, pending = case
    settled = schedule(ClusterState(capacity, running, pending), Reconcile())
    jobs = {j.id: j for j in (*running, *pending)}
    gone = set(settled.preempted) | set(settled.started)
    running = [j for j in running if j.id not in gone]
    running += [Job(i, jobs[i].priority, jobs[i].requests, jobs[i].submitted, 50) for i in
                settled.started]  # fmt: skip
    pending = [as_pending(jobs[e.id]) for e in settled.queue]
    assert violations(capacity, running, pending) == []
    kind = sorted(capacity)[size % len(capacity)]
    new = Job(999, (0, 500, 900)[tier], {kind: min(size, capacity[kind])}, 40)
    decision = schedule(ClusterState(capacity, running, pending), Submit(new))
    check_decision(capacity, running, [*pending, new], decision)


def repack_key(job):
    """Tie order of a repack: running jobs (kept first) ahead of their priority's queue."""
    if job.started is not None:
        return (-job.priority, 0, job.started, job.id)
    return (-job.priority, 1, job.submitted, job.id)


def repack_best(capacity, running, pending, repack):
    """(objective, counts per class) of the best allowed repack, by exhaustive search."""
    levels = {j.priority for j in pending}
    movable = [j for j in running if j.priority in levels and j.id not in repack.cooling]
    fixed = [j for j in running if j not in movable]
    cost = Fraction(repack.threshold_bp * len(capacity), 10_000)

    def standing(item):
        return "running" if item.started is not None else "queued"

    order = sorted([*movable, *pending], key=repack_key)
    classes = classes_of(((item, standing(item)) for item in order), repack_key)
    best = None
    for size in range(len(order) + 1):
        for subset in combinations(order, size):
            ids = {j.id for j in subset}
            moved = [j for j in movable if j.id not in ids]
            if len(moved) > repack.evictions_left:
                continue
            started = [j for j in subset if j.started is None]
            if any(not any(s.priority == m.priority for s in started) for m in moved):
                continue
            final = [*fixed, *subset]
            rest = [as_pending(j) for j in order if j.id not in ids]
            if not rules_1_to_3(capacity, final, rest):
                continue
            value = utilization(capacity, final) - cost * len(moved)
            candidate = (value, tie_key(order, classes, ids, standing))
            if best is None or candidate > best:
                best = candidate
    return best, order, classes, cost, fixed, movable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states(max_pending=5), st.integers(0, 400), st.integers(1, 3), st.booleans())
def test_repack_matches_exhaustive_search(case, threshold, left, cool) -> None:
    capacity, running, pending = case
    cooling = frozenset({running[0].id}) if cool and running else frozenset()
    repack = Repack(threshold, left, cooling)
    plain = schedule(ClusterState(capacity, running, pending), Reconcile())
    if plain.preempted:
        return  # the repack applies to decisions that evict nobody
    decision = schedule(ClusterState(capacity, running, pending, repack=repack), Reconcile())
    assert decision.exact and decision.preempted == {}
    best, order, classes, cost, fixed, movable = repack_best(capacity, running, pending, repack)
    assert best is not None
    chosen = {j.id for j in movable if j.id not in decision.repacked} | set(decision.started)
    final = [*fixed, *(j for j in order if j.id in chosen)]
    value = utilization(capacity, final) - cost * len(decision.repacked)

    def standing(item):
        return "running" if item.started is not None else "queued"

    assert (value, tie_key(order, classes, chosen, standing)) == best
    for moved, started in decision.repacked.items():
        assert started in decision.started
        assert (
            next(j for j in running if j.id == moved).priority
            == next(j for j in pending if j.id == started).priority
        )


def test_across_priorities_example_is_optimal() -> None:
    capacity = {"cpu": 10}
    pending = [Job(1, 500, {"cpu": 6}, 1), Job(2, 500, {"cpu": 5}, 2), Job(3, 100, {"cpu": 5}, 3)]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    assert best_admission(capacity, [], pending)[0] == Fraction(1)
    assert set(decision.started) == {2, 3}


def test_ties_go_to_the_set_first_in_queue_order() -> None:
    """{1 cpu, 3 cpu} and {4 cpu} both fill the cluster; the first comes first in the queue."""
    pending = [Job(1, 0, {"cpu": 1}, 1), Job(2, 0, {"cpu": 3}, 2), Job(3, 0, {"cpu": 4}, 3)]
    decision = schedule(ClusterState({"cpu": 4}, [], pending), Reconcile())
    assert decision.started == [1, 2]


def test_identical_jobs_prefer_the_oldest() -> None:
    capacity = {"cpu": 10}
    pending = [Job(i, 100, {"cpu": 3}, i) for i in range(1, 6)]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    assert decision.started == [1, 2, 3]


@pytest.mark.parametrize("seed", range(3))
def test_twenty_classes_are_solved_exactly(seed) -> None:
    """EXACT_CLASS_LIMIT classes competing for a small free space: the search completes within
    the default budget (exact) and its U is at least that of first-fit in queue order."""
    capacity = {"cpu": 64_000, "gpu": 8, "ram": 262_144}
    pending = [
        Job(
            i,
            (0, 100)[i % 2],
            {
                "cpu": 500 + ((i * 7919 + seed * 104_729) % 16) * 1000,
                "gpu": (i + seed) % 3,
                "ram": 1024 * (1 + (i * 31 + seed) % 24),
            },
            i,
        )
        for i in range(1, EXACT_CLASS_LIMIT + 1)
    ]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    assert decision.exact


def test_many_candidates_heuristic_keeps_rules() -> None:
    # More classes than the exact limit: the heuristic must still leave rules 1-3 true.
    capacity = {"cpu": 1000, "gpu": 40}
    pending = [
        Job(i, (0, 100, 500)[i % 3], {"cpu": 7 + (i * 37) % 90, "gpu": i % 4}, i)
        for i in range(1, 120)
    ]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    chosen = set(decision.started)
    final = [j for j in pending if j.id in chosen]
    rest = [j for j in pending if j.id not in chosen]
    assert violations(capacity, final, rest) == []
    # And it is at least as good as first-fit in queue order.
    used = {"cpu": 0, "gpu": 0}
    first_fit = []
    for j in sorted(pending, key=queue_key):
        if fits(j.requests, minus(capacity, used)):
            first_fit.append(j)
            for k, v in j.requests.items():
                used[k] += v
    assert utilization(capacity, final) >= utilization(capacity, first_fit)
