"""Property tests: random sequences of submits and deletes keep rules 1-5 after every step.

Rules 1-3 are checked by the module's `violations` and by an independent, deliberately naive
re-implementation below; rules 4-5 by `transition_violations` and by an independent check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.scheduler import (
    ClusterState,
    Decision,
    Delete,
    Job,
    Reconcile,
    Submit,
    infeasible,
    schedule,
    transition_violations,
    violations,
)

KINDS = ("cpu", "gpu", "ram")
TIERS = (0, 100, 500, 900)


# ----------------------------------------------------------------- independent checks


def naive_fits(requests: Mapping[str, int], room: Mapping[str, int]) -> bool:
    return all(amount <= room.get(kind, 0) for kind, amount in requests.items())


def naive_snapshot_problems(
    capacity: Mapping[str, int], running: Sequence[Job], pending: Sequence[Job]
) -> list[str]:
    problems = []
    used = {kind: sum(j.requests.get(kind, 0) for j in running) for kind in capacity}
    for kind in capacity:
        if used[kind] > capacity[kind]:
            problems.append(f"rule 1 {kind}")
    free = {kind: capacity[kind] - used[kind] for kind in capacity}
    for p in pending:
        if infeasible(capacity, p.requests) is not None:
            continue
        if naive_fits(p.requests, free):
            problems.append(f"rule 2 #{p.id}")
        room = {
            kind: capacity[kind]
            - sum(j.requests.get(kind, 0) for j in running if j.priority >= p.priority)
            for kind in capacity
        }
        if naive_fits(p.requests, room):
            problems.append(f"rule 3 #{p.id}")
    return problems


def naive_transition_problems(
    capacity: Mapping[str, int],
    before: Sequence[Job],
    after: Sequence[Job],
    deleted: frozenset[int],
    decision: Decision,
) -> list[str]:
    problems = []
    after_by_id = {j.id: j for j in after}
    before_by_id = {j.id: j for j in before}
    for j in before:
        if j.id in deleted or j.id in after_by_id:
            continue
        if j.id not in decision.preempted:
            problems.append(f"rule 5: #{j.id} left without preemptor")
    used = {kind: sum(j.requests.get(kind, 0) for j in after) for kind in capacity}
    for victim_id, preemptor_id in decision.preempted.items():
        victim = before_by_id[victim_id]
        preemptor = after_by_id.get(preemptor_id)
        if preemptor is None or preemptor_id not in decision.started:
            problems.append(f"rule 4: preemptor #{preemptor_id} did not start")
            continue
        if preemptor.priority <= victim.priority:
            problems.append(f"rule 5: #{victim_id} preempted by equal or lower priority")
        # Minimal: giving the victim back must not fit alongside everything that runs.
        if all(victim.requests.get(k, 0) + used[k] <= capacity[k] for k in capacity):
            problems.append(f"rule 4: victim #{victim_id} could be given back")
    if set(decision.started) & set(decision.preempted):
        problems.append("a job both started and preempted")
    return problems


# ----------------------------------------------------------------- a tiny simulated service


class Cluster:
    def __init__(self, capacity: dict[str, int]) -> None:
        self.state = ClusterState(capacity, [], [])
        self.clock = 0

    def step(self, event) -> tuple[ClusterState, Decision]:
        before = self.state
        decision = schedule(before, event)
        self.clock += 1
        jobs = {j.id: j for j in (*before.running, *before.pending)}
        if isinstance(event, Submit):
            jobs[event.job.id] = event.job
        deleted = event.ids if isinstance(event, Delete) else frozenset()
        leaving = set(decision.preempted) | set(decision.evicted) | deleted
        running = [j for j in before.running if j.id not in leaving]
        for job_id in decision.started:
            j = jobs[job_id]
            running.append(Job(j.id, j.priority, j.requests, j.submitted, self.clock))
        pending = []
        for entry in decision.queue:
            j = jobs[entry.id]
            by = decision.preempted.get(j.id, j.preempted_by)
            pending.append(Job(j.id, j.priority, j.requests, j.submitted, None, by))
        self.state = ClusterState(before.capacity, running, pending)
        return before, decision


@st.composite
def scenarios(draw):
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True))
    capacity = {kind: draw(st.integers(1, 12)) for kind in kinds}
    tiers = draw(st.lists(st.sampled_from(TIERS), min_size=1, max_size=3, unique=True))
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 9)) < 7:
            requests = {}
            for kind in kinds:
                if draw(st.booleans()):
                    requests[kind] = draw(st.integers(1, capacity[kind]))
            if not requests:
                requests[kinds[0]] = draw(st.integers(1, capacity[kinds[0]]))
            steps.append(("submit", draw(st.sampled_from(tiers)), requests))
        else:
            steps.append(("delete", draw(st.integers(0, 1000)), draw(st.integers(1, 3))))
    return capacity, steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_random_sequences_keep_rules_1_to_5(scenario) -> None:
    capacity, steps = scenario
    cluster = Cluster(capacity)
    next_id = 1
    for kind, a, b in steps:
        if kind == "submit":
            event = Submit(Job(next_id, a, b, next_id))
            next_id += 1
        else:
            existing = sorted(j.id for j in (*cluster.state.running, *cluster.state.pending))
            if not existing:
                continue
            start = a % len(existing)
            event = Delete(frozenset(existing[start : start + b]))
        before, decision = cluster.step(event)
        after = cluster.state
        deleted = event.ids if isinstance(event, Delete) else frozenset()

        assert violations(capacity, after.running, after.pending) == []
        assert naive_snapshot_problems(capacity, after.running, after.pending) == []
        submitted = event.job if isinstance(event, Submit) else None
        assert (
            transition_violations(
                before.running,
                after.running,
                decision.preempted,
                submitted,
                capacity=capacity,
                deleted=deleted,
            )
            == []
        )
        assert (
            naive_transition_problems(capacity, before.running, after.running, deleted, decision)
            == []
        )

        # Bookkeeping: used matches, queue covers every pending job once in queue order.
        assert decision.used == {
            k: sum(j.requests.get(k, 0) for j in after.running) for k in capacity
        }
        order = sorted(after.pending, key=lambda j: (-j.priority, j.submitted, j.id))
        assert [e.id for e in decision.queue] == [j.id for j in order]
        assert [e.position for e in decision.queue] == list(range(1, len(order) + 1))
        assert all(e.reason for e in decision.queue)
        assert decision.evicted == []

        # A Reconcile of a valid state changes nothing.
        again = schedule(after, Reconcile())
        assert again.started == [] and again.preempted == {} and again.evicted == []
