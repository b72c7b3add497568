"""Regression cases for the defects found by an outside checker (issue 11), each exactly as
reported. The fourth defect, a mass preemption whose decision time grew as n^1.8, is a time
matter: `bench/scheduler_bench.py` measures it (its "mass preemption" case), not a test.
"""

from __future__ import annotations

from fractions import Fraction

from app.scheduler import (
    ClusterState,
    Delete,
    Job,
    Reconcile,
    schedule,
    transition_violations,
    violations,
)


def utilization(capacity: dict[str, int], jobs: list[Job]) -> Fraction:
    return sum(
        (Fraction(sum(j.requests.get(k, 0) for j in jobs), capacity[k]) for k in capacity),
        Fraction(0),
    )


def final_state(state: ClusterState, decision, deleted=frozenset()):
    everyone = {j.id: j for j in (*state.running, *state.pending)}
    leaving = set(decision.preempted) | set(decision.evicted) | set(deleted)
    running = [j for j in state.running if j.id not in leaving]
    running += [everyone[i] for i in decision.started]
    pending = [everyone[e.id] for e in decision.queue]
    return running, pending


def test_rule_7_is_exact_with_eight_candidates() -> None:
    """Defect 1: the counted node budget ran out; [4, 8, 9, 10, 11] (U 1.583) was chosen
    although [3, 4, 6, 8, 9] (U 1.850) is valid."""
    capacity = {"gpu": 12, "disk": 30}
    running = [Job(99, 1, {"disk": 27}, 0, 0)]
    pending = [
        Job(job_id, priority, requests, submitted)
        for job_id, priority, requests, submitted in (
            (9, 1, {"gpu": 2, "disk": 4}, 11),
            (10, 1, {"disk": 9}, 1),
            (3, 0, {"gpu": 6, "disk": 4}, 13),
            (11, 1, {"gpu": 2, "disk": 7}, 10),
            (1, 1, {"disk": 13}, 1),
            (8, 1, {"gpu": 3, "disk": 4}, 10),
            (6, 1, {"disk": 10}, 9),
            (4, 1, {"disk": 6}, 3),
        )
    ]
    state = ClusterState(capacity, running, pending)
    decision = schedule(state, Delete(frozenset({99})))
    assert sorted(decision.started) == [3, 4, 6, 8, 9]
    after, waiting = final_state(state, decision, {99})
    assert utilization(capacity, after) == Fraction(37, 20)  # 1.850
    assert violations(capacity, after, waiting) == []


def test_a_walk_preemptor_whose_victims_came_back_is_decided_again() -> None:
    """Defect 2: the walk made #12 a preemptor (its victim #10 came back) and kept it fixed;
    admitting #1 instead, with the same victim #3 preempted by #5, is valid and fuller."""
    capacity = {"cpu": 7, "gpu": 6, "ram": 11}
    running = [
        Job(7, 2, {"cpu": 4}, 0, 103),
        Job(10, 0, {"ram": 1}, 0, 25),
        Job(2, 2, {"ram": 5}, 0, 40),
        Job(8, 2, {"cpu": 3}, 0, 120),
        Job(3, 1, {"gpu": 2, "ram": 3}, 0, 90),
    ]
    pending = [
        Job(5, 2, {"cpu": 1, "gpu": 5}, 8),
        Job(12, 2, {"cpu": 1, "ram": 3}, 4),
        Job(1, 2, {"cpu": 2, "gpu": 1}, 9),
    ]
    state = ClusterState(capacity, running, pending)
    decision = schedule(state, Delete(frozenset({8})))
    assert sorted(decision.started) == [1, 5]
    assert decision.preempted == {3: 5}
    after, waiting = final_state(state, decision, {8})
    assert utilization(capacity, after) == 2 + Fraction(6, 11)  # 2.545, not 2.509
    assert violations(capacity, after, waiting) == []


def test_a_capacity_repair_never_names_a_running_deployment_as_preemptor() -> None:
    """Defect 3: after a capacity cut, a deployment the repair had evicted came back in the
    preemption walk and evicted #5 in turn; the decision named it (running all along) as #5's
    preemptor. What it evicts that way is part of the repair: evicted, with no preemptor."""
    capacity = {"gpu": 6, "cpu": 5}
    running = [
        Job(1, 1, {"gpu": 3, "cpu": 4}, 0, 0),
        Job(2, 1, {"gpu": 3, "cpu": 2}, 1, 1),
        Job(3, 1, {"gpu": 4}, 2, 2),
        Job(4, 3, {"cpu": 3}, 3, 3),
        Job(5, 0, {"gpu": 2}, 4, 4),
        Job(6, 2, {"gpu": 4, "cpu": 3}, 5, 5),
    ]
    pending = [
        Job(20, 3, {"gpu": 1, "cpu": 1}, 10),
        Job(21, 0, {"gpu": 4, "cpu": 2}, 11),
        Job(22, 1, {"gpu": 2}, 12),
    ]
    state = ClusterState(capacity, running, pending)
    decision = schedule(state, Reconcile())
    assert all(preemptor in decision.started for preemptor in decision.preempted.values())
    after, waiting = final_state(state, decision)
    assert violations(capacity, after, waiting) == []
    problems = transition_violations(
        running, after, decision.preempted, None, capacity=capacity, deleted=decision.evicted
    )
    assert problems == []
    assert 5 in decision.evicted
