"""Decision latency of Kargo's scheduler: the states, the cases and the timing of the benchmark.

Every decision is timed around `schedule()`, which builds the whole queue (every pending
deployment's position and reason) as the service always needs it. Two clocks are read: the
thread's CPU time (what the scheduler costs; on a machine shared with other busy processes the
wall clock mostly measures them) and the wall clock. The garbage collector is frozen and off
while timing (`gc.freeze()`, `gc.disable()`), as a long-lived process holding its state would
mostly see.

Cases:
  * typical: n deployments from the benchmark's resource classes and tiers, about 70% running,
    made valid by the scheduler; a submission, a delete of a running and of a pending one.
  * mass preemption: one deployment of high priority holds all the ram, fillers of the lowest
    priority hold all the cpu, and as many queued deployments of a middle priority each need
    a little of both. Deleting the large one makes every queued one preempt a filler (the case
    that took 4.1 s at 10,000 deployments before the walk was incremental).
  * 32 kinds: a typical state on a cluster of 32 resource kinds.
  * knapsack-20: twenty distinct deployments of two priorities compete for an empty cluster
    of three kinds (rule 7 at its exactness limit).
  * distinct: every deployment has its own priority; deletes of running ones.
"""

from __future__ import annotations

import gc
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from app.scheduler import ClusterState, Delete, Event, Job, Reconcile, Submit, schedule
from bench.metrics import priority_greedy, quantile
from bench.workloads import RESOURCE_CLASSES, draw_requests, tiered_priority


def settle(capacity: dict[str, int], jobs: list[Job]) -> ClusterState:
    """A valid state of `jobs` (rules 1-3 hold): the priority-order greedy's."""
    started = priority_greedy(capacity, jobs)
    running = [
        Job(j.id, j.priority, j.requests, j.submitted, rank)
        for rank, j in enumerate((j for j in jobs if j.id in started), 1)
    ]
    return ClusterState(capacity, running, [j for j in jobs if j.id not in started])


def typical_state(n: int, rng: random.Random, kinds: int = 3) -> ClusterState:
    """n deployments, about 70% running. With `kinds` above 3, every job also asks for a few
    of the extra kinds (kind3, kind4, ...)."""
    extra = [f"kind{k}" for k in range(3, kinds)]
    jobs = []
    for i in range(1, n + 1):
        requests = draw_requests(rng)
        for kind in rng.sample(extra, min(len(extra), rng.randint(1, 4))):
            requests[kind] = rng.choice((1, 2, 4, 8))
        jobs.append(Job(i, tiered_priority(rng), requests, i))
    share = jobs[: max(1, int(n * 0.7))]
    largest: dict[str, int] = defaultdict(lambda: 8)
    for _, _, menus in RESOURCE_CLASSES:
        for kind, menu in menus.items():
            largest[kind] = max(largest[kind], max(menu))
    capacity = {
        k: max(largest[k], sum(j.requests.get(k, 0) for j in share))
        for k in ("cpu", "gpu", "ram", *extra)
    }
    return settle(capacity, jobs)


def mass_preemption_state(n: int) -> tuple[ClusterState, Event]:
    """About n deployments; the event deletes the one holding all the ram (see above)."""
    half = max(1, (n - 1) // 2)
    capacity = {"cpu": half * 1000, "ram": half * 1024}
    running = [Job(1, 900, {"ram": half * 1024}, 0, 0)]
    running += [Job(10 + i, 0, {"cpu": 1000}, 1 + i, 1 + i) for i in range(half)]
    pending = [Job(10 + half + i, 500, {"cpu": 1000, "ram": 1024}, 10 + i) for i in range(half)]
    return ClusterState(capacity, running, pending), Delete(frozenset({1}))


def knapsack_state(seed: int) -> tuple[ClusterState, Event]:
    """Twenty distinct deployments of two priorities on an empty cluster (Reconcile)."""
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
        for i in range(1, 21)
    ]
    return ClusterState({"cpu": 64_000, "gpu": 8, "ram": 262_144}, [], pending), Reconcile()


def distinct_state(n: int, rng: random.Random) -> ClusterState:
    jobs = [Job(i, p, draw_requests(rng), i) for i, p in
            enumerate(rng.sample(range(1, 100 * n), n), 1)]  # fmt: skip
    share = jobs[: max(1, int(n * 0.7))]
    capacity = {k: max(8, sum(j.requests.get(k, 0) for j in share)) for k in ("cpu", "gpu", "ram")}
    return settle(capacity, jobs)


def timed(state: ClusterState, event: Event) -> tuple[float, float, object]:
    """(CPU ms, wall ms, decision) of one schedule() call."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    decision = schedule(state, event)
    cpu, wall = time.thread_time_ns() - cpu, time.perf_counter_ns() - wall
    return cpu / 1e6, wall / 1e6, decision


def distribution(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": quantile(samples, 0.5),
        "p90": quantile(samples, 0.9),
        "p99": quantile(samples, 0.99),
        "max": max(samples) if samples else math.nan,
    }


def frozen(measure: Callable[[], dict[str, object]]) -> dict[str, object]:
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return measure()
    finally:
        gc.enable()
        gc.unfreeze()


def typical(sizes: Sequence[int], trials: Callable[[int], int], seed: int) -> dict[str, object]:
    """p50/p90/p99/max of a submission, a delete of a running and of a pending deployment, for
    each size, in CPU and wall milliseconds."""
    rng = random.Random(f"latency-{seed}")
    out: dict[str, object] = {}
    for n in sizes:
        state = typical_state(n, rng)
        count = trials(n)

        def measure(
            state: ClusterState = state, count: int = count, n: int = n
        ) -> dict[str, object]:
            cpu: dict[str, list[float]] = defaultdict(list)
            wall: dict[str, list[float]] = defaultdict(list)
            for t in range(count):
                new = Job(n + 1 + t, tiered_priority(rng), draw_requests(rng), n + 1 + t)
                events: dict[str, Event] = {"submit": Submit(new)}
                if state.running:
                    events["delete running"] = Delete(frozenset({rng.choice(state.running).id}))
                if state.pending:
                    events["delete pending"] = Delete(frozenset({rng.choice(state.pending).id}))
                for name, event in events.items():
                    c, w, _ = timed(state, event)
                    cpu[name].append(c)
                    wall[name].append(w)
            return {
                "running": len(state.running),
                "pending": len(state.pending),
                "trials": count,
                "cpu": {name: distribution(s) for name, s in cpu.items()},
                "wall": {name: distribution(s) for name, s in wall.items()},
            }

        out[str(n)] = frozen(measure)
    return out


def adversarial(sizes: Sequence[int], repeats: int, seed: int) -> dict[str, object]:
    """The adversarial cases (module docstring), each repeated; every decision's times and
    whether the admission search finished within its budget."""
    rng = random.Random(f"adversarial-{seed}")
    cases: dict[str, tuple[ClusterState, list[Event]]] = {}
    for n in sizes:
        state, event = mass_preemption_state(n)
        cases[f"mass preemption {n}"] = (state, [event])
        state = typical_state(n, rng, kinds=32)
        events: list[Event] = [Delete(frozenset({j.id})) for j in rng.sample(state.running, 3)]
        events += [
            Submit(Job(n + 10 + t, tiered_priority(rng), draw_requests(rng), n + 10 + t))
            for t in range(3)
        ]
        cases[f"32 kinds {n}"] = (state, events)
        state = distinct_state(n, rng)
        cases[f"distinct priorities {n}"] = (
            state,
            [Delete(frozenset({j.id})) for j in rng.sample(state.running, 5)],
        )
    for s in range(3):
        state, event = knapsack_state(seed * 10 + s)
        cases[f"knapsack-20 #{s + 1}"] = (state, [event])
    out: dict[str, object] = {}
    for name, (state, events) in cases.items():

        def measure(state: ClusterState = state, events: list[Event] = events) -> dict[str, object]:
            cpu: list[float] = []
            wall: list[float] = []
            inexact = 0
            work = 0
            for _ in range(repeats):
                for event in events:
                    c, w, decision = timed(state, event)
                    cpu.append(c)
                    wall.append(w)
                    inexact += not decision.exact  # type: ignore[attr-defined]
                    work = max(work, decision.work)  # type: ignore[attr-defined]
            return {
                "deployments": len(state.running) + len(state.pending),
                "kinds": len(state.capacity),
                "cpu": distribution(cpu),
                "wall": distribution(wall),
                "inexact": inexact,
                "max_work": work,
            }

        out[name] = frozen(measure)
    return out
