"""Smoke tests of the scheduler benchmark (bench/): generator, peers, checker, CP-SAT, one run.

The benchmark's numbers are only as good as its parts: the generator must be deterministic for
a seed (so anyone can rerun it), the peers and the independent checker must do what their
docstrings say on hand-made cases, and the CP-SAT reference must agree with brute force.
Skipped when the bench extras (ortools, matplotlib) are not installed.
"""

from __future__ import annotations

import itertools
import json
import random
from fractions import Fraction

import pytest

pytest.importorskip("ortools")
pytest.importorskip("matplotlib")

from app.scheduler import Job
from bench import reference, scheduler_bench, workloads
from bench.metrics import check_snapshot, check_transition, priority_greedy
from bench.policies import (
    ClusterSim,
    FifoFirstFit,
    KargoPolicy,
    KubeStyle,
    KueueStrictFifo,
)


def job(job_id: int, priority: int, submitted: int | None = None, **requests: int) -> Job:
    return Job(job_id, priority, requests, job_id if submitted is None else submitted)


def sim_with(capacity, running=(), pending=()) -> ClusterSim:
    sim = ClusterSim(capacity, None)
    for order, j in enumerate(running, 1):
        sim.running[j.id] = Job(j.id, j.priority, j.requests, j.submitted, order)
        sim.clock = order
    for j in pending:
        sim.pending[j.id] = j
    return sim


# -- generator ---------------------------------------------------------------------------------


def test_generator_is_deterministic_for_a_seed():
    first = workloads.scenarios(30, seed=5)
    again = workloads.scenarios(30, seed=5)
    other = workloads.scenarios(30, seed=6)
    assert [t.events for t in first] == [t.events for t in again]
    assert [t.events for t in first] != [t.events for t in other]
    assert {t.name for t in first} >= {"load-0.8", "load-2.0", "burst", "whales", "distinct"}


def test_every_submit_has_a_later_delete_and_loads_hit_their_target():
    for trace in workloads.scenarios(40, seed=1):
        submitted = {e.id: e.time for e in trace.events if e.op == "submit"}
        deleted = {e.id: e.time for e in trace.events if e.op == "delete"}
        assert submitted.keys() == deleted.keys()
        assert all(deleted[i] >= submitted[i] for i in submitted)
        assert [e.time for e in trace.events] == sorted(e.time for e in trace.events)
    rate = workloads.arrival_rate(1.5)
    assert max(workloads.offered_loads(rate).values()) == pytest.approx(1.5, abs=1e-3)


def test_traces_round_trip_through_json_lines(tmp_path):
    traces = workloads.scenarios(15, seed=2)
    path = tmp_path / "traces.jsonl"
    workloads.write_traces(traces, path)
    back = workloads.read_traces(path)
    assert [t.name for t in back] == [t.name for t in traces]
    assert [t.max_deployments for t in back] == [t.max_deployments for t in traces]
    for a, b in zip(traces, back, strict=True):
        assert [(e.op, e.id, e.priority, e.requests) for e in a.events] == [
            (e.op, e.id, e.priority, e.requests) for e in b.events
        ]
    assert all(json.loads(line) for line in path.read_text().splitlines())


# -- peers -------------------------------------------------------------------------------------


def test_fifo_ignores_priority_and_never_preempts():
    sim = sim_with({"cpu": 10}, running=[job(1, 0, cpu=6)], pending=[job(2, 0, cpu=6)])
    outcome = FifoFirstFit().decide(sim, job(3, 1000, cpu=4), None)
    assert outcome.started == [3] and outcome.preempted == {}


def test_kueue_strict_fifo_head_blocks_the_queue():
    sim = sim_with({"cpu": 10}, running=[job(1, 500, cpu=5)], pending=[job(2, 100, cpu=8)])
    outcome = KueueStrictFifo().decide(sim, job(3, 0, cpu=2), None)
    assert outcome.started == [] and outcome.preempted == {}
    fifo = FifoFirstFit().decide(sim, job(3, 0, cpu=2), None)  # first-fit skips the head
    assert fifo.started == [3]


def test_kube_style_preempts_with_reprieve_as_in_scheduling_md():
    capacity = {"cpu": 4, "gpu": 2}
    sim = sim_with(capacity, running=[job(1, 100, cpu=2, gpu=1), job(2, 100, cpu=2, gpu=1)])
    preemptor = job(3, 500, cpu=1, gpu=1)
    outcome = KubeStyle().decide(sim, preemptor, None)
    assert outcome.started == [3] and outcome.preempted == {2: 3}
    sim.apply(outcome, preemptor)
    assert set(sim.running) == {1, 3} and sim.pending[2].preempted_by == 3


def test_kube_style_is_best_effort_in_priority_order():
    sim = sim_with({"cpu": 10}, running=[job(1, 500, cpu=5)], pending=[job(2, 500, cpu=8)])
    outcome = KubeStyle().decide(sim, job(3, 0, cpu=2), None)
    assert outcome.started == [3] and outcome.preempted == {}


def test_kargo_policy_sees_the_deleted_job_and_restarts_work():
    sim = sim_with({"cpu": 10}, running=[job(1, 100, cpu=10)])
    for j in (job(2, 100, cpu=6), job(3, 100, cpu=5), job(4, 100, cpu=5)):
        sim.pending[j.id] = j
    gone = sim.remove(1)
    outcome = KargoPolicy().decide(sim, None, gone)
    assert sorted(outcome.started) == [3, 4]  # SCHEDULING.md: rule 7 beats first-fit


# -- independent checker -----------------------------------------------------------------------


def test_checker_counts_inversions_and_work_conservation_misses():
    capacity = {"cpu": 10}
    clean = check_snapshot(capacity, [job(1, 100, cpu=8)], [job(2, 0, cpu=5)])
    assert (clean.inversions, clean.work_conservation_misses) == (0, 0)
    inverted = check_snapshot(capacity, [job(1, 0, cpu=8)], [job(2, 100, cpu=5)])
    assert inverted.inversions == 1 and inverted.inverted_ids == [2]
    assert inverted.work_conservation_misses == 0
    lazy = check_snapshot(capacity, [job(1, 0, cpu=2)], [job(2, 0, cpu=5)])
    assert lazy.work_conservation_misses == 1 and lazy.inversions == 1
    over = check_snapshot(capacity, [job(1, 0, cpu=8), job(2, 0, cpu=5)], [])
    assert over.capacity_violations == 1


def test_checker_flags_evictions_that_rule_5_forbids():
    low, high, same = job(1, 0, cpu=5), job(2, 100, cpu=5), job(3, 0, cpu=5)
    before = {1: low}
    assert check_transition(before, {2: high}, {1: 2}, None) == (1, 0)
    assert check_transition(before, {3: same}, {1: 3}, None) == (1, 1)
    assert check_transition(before, {}, {}, None) == (1, 1)
    assert check_transition(before, {}, {}, deleted=1) == (0, 0)


def test_priority_greedy():
    jobs = [job(1, 0, cpu=5), job(2, 9, cpu=6), job(3, 5, cpu=4)]
    assert priority_greedy({"cpu": 10}, jobs) == {2, 3}


# -- CP-SAT reference against brute force ------------------------------------------------------


def brute_force(capacity, jobs, protected=(), limit=None):
    """Largest U (exact) over every admitted subset satisfying the reference's constraints."""
    best = None
    for size in range(len(jobs) + 1):
        for chosen in itertools.combinations(jobs, size):
            ids = {j.id for j in chosen}
            if not set(protected) <= ids or (limit is not None and size > limit):
                continue
            used = {k: sum(j.requests.get(k, 0) for j in chosen) for k in capacity}
            if any(used[k] > capacity[k] for k in capacity):
                continue
            ok = True
            for j in jobs:
                if j.id in ids:
                    continue
                held = {
                    k: sum(c.requests.get(k, 0) for c in chosen if c.priority >= j.priority)
                    for k in capacity
                }
                if all(j.requests.get(k, 0) + held[k] <= capacity[k] for k in capacity):
                    ok = False  # j would fit in room_for(j): an inversion
                    break
            if ok:
                value = sum(Fraction(used[k], capacity[k]) for k in capacity)
                best = value if best is None else max(best, value)
    return best


def random_case(rng: random.Random):
    capacity = {"cpu": rng.choice((4, 6, 10)), "gpu": rng.choice((1, 2, 3))}
    jobs = []
    for i in range(1, rng.randint(1, 8) + 1):
        requests = {"cpu": rng.randint(0, 5), "gpu": rng.randint(0, 2)}
        if not any(requests.values()):
            requests["cpu"] = 1
        jobs.append(Job(i, rng.choice((0, 1, 5)), requests, i))
    return capacity, jobs


def assert_same(got, expected, protected=frozenset()):
    if expected is None:  # e.g. a count limit below what no-inversion needs
        assert got.status == "infeasible"
    else:
        assert got.optimal and got.value == pytest.approx(float(expected), abs=1e-9)
        assert protected <= got.admitted


@pytest.mark.parametrize("seed", range(40))
def test_reference_matches_brute_force(seed):
    rng = random.Random(seed)
    capacity, jobs = random_case(rng)
    # The reference ignores jobs that can never run; so must the brute force.
    feasible = [j for j in jobs if all(j.requests.get(k, 0) <= capacity[k] for k in capacity)]
    limit = rng.choice((None, None, 2))
    got = reference.solve(capacity, jobs, (), limit, time_limit=5.0, workers=1)
    assert_same(got, brute_force(capacity, feasible, (), limit))
    if limit is None:
        assert got.optimal  # without a count limit, the priority greedy is always valid
    # OPT_stable: protect a random subset.
    protected = frozenset(j.id for j in feasible if rng.random() < 0.3)
    got = reference.solve(capacity, jobs, protected, limit, time_limit=5.0, workers=1)
    assert_same(got, brute_force(capacity, feasible, protected, limit), protected)


def test_reference_plans_across_priorities_as_in_scheduling_md():
    jobs = [job(1, 500, cpu=6), job(2, 500, cpu=5), job(3, 100, cpu=5)]
    got = reference.solve({"cpu": 10}, jobs, workers=1)
    assert got.optimal and got.value == pytest.approx(1.0) and got.admitted == {2, 3}


def test_objective_weights_are_exact():
    weights, scale = reference.weights({"cpu": 64_000, "ram": 262_144, "gpu": 8})
    assert all(
        scale == weights[k] * c for k, c in {"cpu": 64_000, "ram": 262_144, "gpu": 8}.items()
    )


# -- end to end --------------------------------------------------------------------------------


def test_tiny_run_end_to_end(tmp_path):
    results = scheduler_bench.main(
        [
            "--arrivals", "15", "--ref-every", "5", "--ref-time", "2",
            "--latency-sizes", "10", "--latency-trials", "5",
            "--out", str(tmp_path), "--no-docs-img", "--export-traces",
        ]
    )  # fmt: skip
    saved = json.loads((tmp_path / "scheduler.json").read_text())
    assert set(saved["scenarios"]) == {t.name for t in workloads.scenarios(15, 1)}
    for scenario in saved["scenarios"].values():
        kargo = scenario["policies"]["kargo"]
        assert kargo["error"] is None
        assert kargo["inversions"] == 0 and kargo["same_or_lower_priority_evictions"] == 0
        assert scenario["policies"]["kube"]["inversions"] == 0
    assert set(saved["latency"]) == {"10"}
    assert (tmp_path / "scheduler_utilization.png").stat().st_size > 0
    assert (tmp_path / "scheduler_u_over_opt.png").stat().st_size > 0
    assert results["targets"]
    # The exported traces replay to the same scenarios.
    replayed = scheduler_bench.main(
        ["--replay", str(tmp_path / "traces.jsonl"), "--ref-every", "0",
         "--latency-sizes", "--out", str(tmp_path / "replay"), "--no-docs-img"]
    )  # fmt: skip
    assert replayed["scenarios"].keys() == results["scenarios"].keys()
    for name, scenario in replayed["scenarios"].items():
        assert scenario["policies"]["kargo"]["utilization_mean"] == pytest.approx(
            results["scenarios"][name]["policies"]["kargo"]["utilization_mean"], rel=1e-6
        )
