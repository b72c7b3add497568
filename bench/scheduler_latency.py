"""Quick decision-latency check of app.scheduler (a development aid, not the benchmark).

For n deployments in one cluster (about 70% running, 30% pending, 3 kinds, 4 priority tiers),
build a valid state with the scheduler itself, then time dry-run decisions on it: submitting a
new deployment, deleting a running one, deleting a pending one. Prints p50/p99 in milliseconds.

    python bench/scheduler_latency.py [--sizes 10 100 1000 10000] [--trials 200] [--shapes N]

`--shapes 0` draws every request at random (every job unique) instead of from a few shapes.
`--freeze-gc` moves the built state out of the garbage collector's reach (gc.freeze), as a
long-lived service process holding its state would; without it, occasional full collections
over the ~10,000 Job objects show up in p99. `--queue` also times reading the whole (lazy)
queue, i.e. ordering it and writing every reason. `--clock cpu` measures the thread's CPU time
instead of wall time: on a machine shared with other busy processes, wall-clock percentiles
mostly measure the neighbours (time spent descheduled), CPU time measures the scheduler.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.scheduler import ClusterState, Delete, Job, Reconcile, Submit, schedule

TIERS = (0, 100, 500, 900)


def make_requests(rng: random.Random, shapes: list[dict[str, int]]) -> dict[str, int]:
    if shapes:
        return dict(rng.choice(shapes))
    return {
        "cpu": rng.randrange(100, 4000, 50),
        "ram": rng.randrange(256, 8192, 128),
        **({"gpu": rng.randint(1, 2)} if rng.random() < 0.2 else {}),
    }


def build_state(n: int, rng: random.Random, shapes: list[dict[str, int]]) -> ClusterState:
    jobs = [Job(i, rng.choice(TIERS), make_requests(rng, shapes), i) for i in range(1, n + 1)]
    # Size the cluster to hold roughly 70% of the deployments.
    share = jobs[: max(1, int(n * 0.7))]
    capacity = {
        kind: max(1, sum(j.requests.get(kind, 0) for j in share)) for kind in ("cpu", "gpu", "ram")
    }
    decision = schedule(ClusterState(capacity, [], jobs), Reconcile())
    started = set(decision.started)
    running = [
        Job(j.id, j.priority, j.requests, j.submitted, k)
        for k, j in enumerate(j for j in jobs if j.id in started)
    ]
    pending = [j for j in jobs if j.id not in started]
    return ClusterState(capacity, running, pending)


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99


CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def run(
    n: int,
    trials: int,
    shapes: list[dict[str, int]],
    seed: int,
    freeze: bool,
    queue: bool,
    clock: str = "wall",
) -> dict[str, tuple]:
    rng = random.Random(seed)
    state = build_state(n, rng, shapes)
    if freeze:
        gc.collect()
        gc.freeze()
    results: dict[str, list[float]] = {"submit": [], "delete running": [], "delete pending": []}
    for t in range(trials):
        job = Job(n + 1 + t, rng.choice(TIERS), make_requests(rng, shapes), n + 1 + t)
        events = {"submit": Submit(job)}
        if state.running:
            events["delete running"] = Delete(frozenset({rng.choice(state.running).id}))
        if state.pending:
            events["delete pending"] = Delete(frozenset({rng.choice(state.pending).id}))
        now = CLOCKS[clock]
        for name, event in events.items():
            begin = now()
            decision = schedule(state, event)
            if queue:
                len(decision.queue)
            results[name].append((now() - begin) / 1e6)
    summary = {name: percentiles(s) for name, s in results.items() if s}
    summary["_shape"] = (len(state.running), len(state.pending))
    if freeze:
        gc.unfreeze()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--shapes", type=int, default=6, help="distinct request shapes; 0: random")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--freeze-gc", action="store_true")
    parser.add_argument("--queue", action="store_true", help="include building the queue")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shapes = [make_requests(rng, []) for _ in range(args.shapes)]
    print(
        f"shapes: {args.shapes or 'random'}; gc frozen: {args.freeze_gc}; "
        f"queue built: {args.queue}; {args.clock} clock; times in ms (p50 / p99)"
    )
    for n in args.sizes:
        trials = args.trials if n < 10000 else max(20, args.trials // 2)
        summary = run(n, trials, shapes, args.seed, args.freeze_gc, args.queue, args.clock)
        running, pending = summary.pop("_shape")
        cells = "  ".join(
            f"{name}: {p50:7.3f} / {p99:7.3f}" for name, (p50, p99) in summary.items()
        )
        print(f"n={n:>6} (run {running:>5}, pend {pending:>5})  {cells}")


if __name__ == "__main__":
    main()
