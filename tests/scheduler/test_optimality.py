"""Rule 7 against exhaustive search on small random cases (at most 10 pending jobs).

With the running jobs fixed (stability), enumerate every subset of the pending jobs, keep those
after which rules 1-3 hold, and take the largest U (exact, with fractions); ties go to the subset
that is lexicographically first in queue order. The scheduler must pick the same set and must
not preempt when such a subset exists; when none exists it must preempt.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduler import ClusterState, Delete, Job, Reconcile, schedule, violations

KINDS = ("cpu", "gpu", "ram")


def fits(requests, room) -> bool:
    return all(amount <= room.get(kind, 0) for kind, amount in requests.items())


def utilization(capacity, jobs) -> Fraction:
    return sum(
        (Fraction(sum(j.requests.get(k, 0) for j in jobs), capacity[k]) for k in capacity),
        Fraction(0),
    )


def brute_force(capacity, running, pending):
    """(best U, best set of ids) over stable admissions, or None if no subset keeps rules 1-3."""
    queue = sorted(pending, key=lambda j: (-j.priority, j.submitted, j.id))
    best = None
    for size in range(len(queue) + 1):
        for subset in combinations(queue, size):
            chosen = {j.id for j in subset}
            final = [*running, *subset]
            rest = [j for j in queue if j.id not in chosen]
            if violations(capacity, final, rest):
                continue
            key = (utilization(capacity, final), tuple(j.id in chosen for j in queue))
            if best is None or key > best[0]:
                best = (key, chosen)
    if best is None:
        return None
    return best[0][0], best[1]


@st.composite
def cases(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True))
    capacity = {kind: draw(st.integers(2, 12)) for kind in kinds}
    tiers = draw(st.lists(st.sampled_from((0, 100, 500)), min_size=1, max_size=3, unique=True))

    def requests():
        out = {k: draw(st.integers(1, capacity[k])) for k in kinds if draw(st.booleans())}
        return out or {kinds[0]: draw(st.integers(1, capacity[kinds[0]]))}

    running = []
    used = dict.fromkeys(kinds, 0)
    for i in range(draw(st.integers(0, 4))):
        req = requests()
        if all(used[k] + v <= capacity[k] for k, v in req.items()):
            running.append(Job(100 + i, draw(st.sampled_from(tiers)), req, i, i))
            for k, v in req.items():
                used[k] += v
    pending = [
        Job(i, draw(st.sampled_from(tiers)), requests(), 10 + i)
        for i in range(1, draw(st.integers(1, 10)) + 1)
    ]
    delete = draw(st.booleans()) and running
    return capacity, running, pending, delete


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_admissions_match_exhaustive_search(case) -> None:
    capacity, running, pending, delete = case
    state = ClusterState(capacity, running, pending)
    if delete:
        event = Delete(frozenset({running[0].id}))
        running = running[1:]
    else:
        event = Reconcile()
    decision = schedule(state, event)
    reference = brute_force(capacity, running, pending)
    if reference is None:
        assert decision.preempted, "rules 1-3 need an eviction, yet nothing was preempted"
        return
    best_u, best_set = reference
    assert decision.preempted == {}, "preempted although a stable admission exists"
    chosen = set(decision.started)
    final = [*running, *(j for j in pending if j.id in chosen)]
    assert utilization(capacity, final) == best_u
    assert chosen == best_set


def test_across_priorities_example_is_optimal() -> None:
    capacity = {"cpu": 10}
    pending = [Job(1, 500, {"cpu": 6}, 1), Job(2, 500, {"cpu": 5}, 2), Job(3, 100, {"cpu": 5}, 3)]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    assert brute_force(capacity, [], pending) == (Fraction(1), {2, 3})
    assert set(decision.started) == {2, 3}


def test_identical_jobs_prefer_the_oldest() -> None:
    capacity = {"cpu": 10}
    pending = [Job(i, 100, {"cpu": 3}, i) for i in range(1, 6)]
    decision = schedule(ClusterState(capacity, [], pending), Reconcile())
    assert decision.started == [1, 2, 3]


def test_many_candidates_heuristic_keeps_rules() -> None:
    # More classes than the exact limit: the heuristic must still leave rules 1-3 true.
    capacity = {"cpu": 1000, "gpu": 40}
    pending = [
        Job(i, (0, 100, 500)[i % 3], {"cpu": 7 + (i * 37) % 90, "gpu": i % 4}, i)
        for i in range(1, 120)
    ]
    state = ClusterState(capacity, [], pending)
    decision = schedule(state, Reconcile())
    chosen = set(decision.started)
    final = [j for j in pending if j.id in chosen]
    rest = [j for j in pending if j.id not in chosen]
    assert violations(capacity, final, rest) == []
    # And it is at least as good as first-fit in queue order.
    used = {"cpu": 0, "gpu": 0}
    first_fit = []
    for j in sorted(pending, key=lambda j: (-j.priority, j.submitted, j.id)):
        if fits(j.requests, {k: capacity[k] - used[k] for k in capacity}):
            first_fit.append(j)
            for k, v in j.requests.items():
                used[k] += v
    assert utilization(capacity, final) >= utilization(capacity, first_fit)
