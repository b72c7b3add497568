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
    KueueBestEffortFifo,
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
    assert [t.name for t in first] == list(workloads.SCENARIOS)


def test_the_harder_workloads_ask_what_they_say():
    traces = {t.name: t for t in workloads.scenarios(300, seed=1)}
    gpus = [e.requests.get("gpu", 0) for e in traces["gpu-bimodal"].events if e.op == "submit"]
    assert set(gpus) == {0, 1, 8} and traces["gpu-bimodal"].capacity["gpu"] == 16
    awkward = {e.requests.get("gpu", 0) for e in traces["awkward-gpu"].events if e.op == "submit"}
    assert awkward == {0, 3, 5, 6}
    assert len(traces["8-kinds"].capacity) == 8
    kinds_used = {k for e in traces["8-kinds"].events if e.op == "submit" for k in e.requests}
    assert kinds_used == set(traces["8-kinds"].capacity)
    knapsack = traces["knapsack"]
    assert {e.priority for e in knapsack.events if e.op == "submit"} == {0, 100}
    assert max(e.requests["cpu"] for e in knapsack.events if e.op == "submit") > 30_000


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


def test_kueue_best_effort_fifo_tries_the_ones_behind_a_head_that_does_not_fit():
    sim = sim_with({"cpu": 10}, running=[job(1, 500, cpu=5)], pending=[job(2, 100, cpu=8)])
    outcome = KueueBestEffortFifo().decide(sim, job(3, 0, cpu=2), None)
    assert outcome.started == [3] and outcome.preempted == {}
    # Priority order still decides who goes first: the higher one takes the room.
    sim = sim_with({"cpu": 10}, running=[job(1, 500, cpu=5)], pending=[job(2, 0, cpu=4)])
    outcome = KueueBestEffortFifo().decide(sim, job(3, 900, cpu=4), None)
    assert outcome.started == [3]


def test_kargo_with_repack_counts_its_moves_per_hour_of_trace_time():
    """cpu 4: small (3) runs; big (4) arrives at the same priority and moves it (2% threshold,
    one move an hour, 30 units of cooldown); within the hour no second move is made."""
    policy = KargoPolicy((200, 1, 30.0), "kargo-repack")
    sim = sim_with({"cpu": 4}, running=[job(1, 500, cpu=3)])
    sim.now = 10.0
    big = job(2, 500, cpu=4)
    outcome = policy.decide(sim, big, None)
    assert outcome.started == [2] and outcome.repacked == {1: 2}
    sim.apply(outcome, big)
    gone = sim.remove(2)
    sim.now = 20.0
    back = policy.decide(sim, None, gone)
    sim.apply(back, None)
    assert set(sim.running) == {1}
    sim.now = 40.0
    outcome = policy.decide(sim, job(3, 500, cpu=4), None)
    assert outcome.repacked == {}  # the hour's one move is spent
    sim.now = 71.0
    outcome = policy.decide(sim, job(4, 500, cpu=4), None)
    assert outcome.repacked == {1: 4}


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
    # A repack move is allowed for a start of exactly the same priority, nothing else.
    assert check_transition(before, {3: same}, {}, None, {1: 3}) == (1, 0)
    assert check_transition(before, {2: high}, {}, None, {1: 2}) == (1, 1)


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


def test_the_capacity_only_bound_ignores_priorities():
    """H (500, cpu 6), L and M (100, cpu 5 each) on cpu 10. Inversion-free, H must run and
    neither 5 fits beside it (U 0.6); by capacity alone L and M fill the cluster (U 1.0)."""
    jobs = [job(1, 500, cpu=6), job(2, 100, cpu=5), job(3, 100, cpu=5)]
    ni = reference.solve({"cpu": 10}, jobs, workers=1)
    cap = reference.solve({"cpu": 10}, jobs, workers=1, capacity_only=True)
    assert ni.optimal and ni.value == pytest.approx(0.6)  # H runs; neither 5 fits beside it
    assert cap.optimal and cap.value == pytest.approx(1.0)  # the two 5s, H left out


def test_objective_weights_are_exact():
    weights, scale = reference.weights({"cpu": 64_000, "ram": 262_144, "gpu": 8})
    assert all(
        scale == weights[k] * c for k, c in {"cpu": 64_000, "ram": 262_144, "gpu": 8}.items()
    )


# -- end to end --------------------------------------------------------------------------------


def test_quick_run_end_to_end(tmp_path):
    results = scheduler_bench.main(
        [
            "--quick", "--seeds", "1", "--scenarios", "load-1.5", "knapsack",
            "--arrivals", "15", "--ref-every", "5", "--ref-time", "2",
            "--latency-sizes", "10", "--latency-trials", "3", "--adversarial-sizes", "40",
            "--out", str(tmp_path), "--no-docs-img", "--export-traces",
        ]
    )  # fmt: skip
    saved = json.loads((tmp_path / "scheduler.json").read_text())
    assert set(saved["by_seed"]["1"]["scenarios"]) == {"load-1.5", "knapsack"}
    for scenario in saved["by_seed"]["1"]["scenarios"].values():
        assert set(scenario["policies"]) == {
            "kargo", "kargo-repack", "kargo-repack-dflt", "kube", "kueue-besteffort",
            "kueue-strict", "fifo",
        }  # fmt: skip
        for name in ("kargo", "kargo-repack", "kargo-repack-dflt"):
            kargo = scenario["policies"][name]
            assert kargo["error"] is None
            assert kargo["inversions"] == 0 and kargo["same_or_lower_priority_evictions"] == 0
        assert scenario["references"]["cap"]["solved"] == scenario["references"]["ni"]["solved"]
    row = saved["across_seeds"]["knapsack"]["kargo"]
    assert row["seeds"] == 1 and row["inversions"] == 0
    # Latency is measured per seed (each seed draws its own states).
    assert set(saved["latency"]) == {"1"}
    assert set(saved["latency"]["1"]) == {"10"}
    assert {"cpu", "wall"} <= set(saved["latency"]["1"]["10"])
    assert any(name.startswith("mass preemption") for name in saved["adversarial"]["1"])
    assert any(row["target"].startswith("slowest adversarial") for row in results["targets"])
    assert (tmp_path / "scheduler_utilization.png").stat().st_size > 0
    assert results["targets"]
    # The exported traces replay to the same scenarios.
    replayed = scheduler_bench.main(
        ["--replay", str(tmp_path / "traces.jsonl"), "--seeds", "1", "--ref-every", "0",
         "--latency-sizes", "--adversarial-sizes", "--out", str(tmp_path / "replay"),
         "--no-docs-img"]
    )  # fmt: skip
    first = results["by_seed"]["1"]["scenarios"]
    again = replayed["by_seed"]["1"]["scenarios"]
    assert again.keys() == first.keys()
    for name, scenario in again.items():
        assert scenario["policies"]["kargo"]["utilization_mean"] == pytest.approx(
            first[name]["policies"]["kargo"]["utilization_mean"], rel=1e-6
        )
