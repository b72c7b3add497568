"""Starvation guard benchmark: the wait of the largest deployments with and without the guard,
and the utilization it costs (docs/scheduling.md, "Starvation guard"; issue 15).

    .venv/bin/python bench/starvation_bench.py            # 5 seeds, about a minute
    .venv/bin/python bench/starvation_bench.py --quick    # seconds: a smoke run for tests
    .venv/bin/python bench/starvation_bench.py --seeds 1 2 3 --arrivals 800

The workload is the one the issue measured: one cluster of 10 cpu, every deployment at the
same priority, a stream of small ones (1-5 cpu) that fit in the gaps and now and then a large
one (6-8 cpu) that needs the cluster to drain. Every deployment states a maximum run time and
ends at a random moment before it (uniform in [25%, 100%] of it), so the scheduler knows only
the latest ends. Arrivals are Poisson at an offered load of `--load` (cpu-time over capacity).

Each seed's trace is replayed through `app.scheduler.schedule` twice: without the guard
(`starve_after` None) and with it (`--threshold` minutes). Reported per run: the maximum and
p99 wait of the large deployments (start minus submission; one that never started counts
with its wait until the end of the run), the same for the small ones, the time-averaged
utilization over [first arrival, last arrival], and the decision time (CPU) per event.
Prints a table and writes bench/results/starvation.json.
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import json
import math
import platform
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.scheduler import (  # noqa: E402
    ClusterState,
    Delete,
    Fairness,
    Job,
    Reconcile,
    Submit,
    schedule,
)
from bench.metrics import quantile  # noqa: E402

SECOND = 1_000_000  # time keys (microseconds)
CAPACITY = {"cpu": 10}
PRIORITY = 500
LARGE = 6  # cpu from which a deployment counts as large


def trace(seed: int, arrivals: int, load: float, large_share: float) -> list[dict]:
    """Arrivals: submission time, cpu, maximum run time and actual run time (seconds)."""
    rng = random.Random(seed)
    jobs = []
    mean_cpu = (1 - large_share) * 3 + large_share * 7
    mean_run = 600 * 0.625  # max run averages 600 s; the actual run averages 62.5% of it
    rate = load * CAPACITY["cpu"] / (mean_cpu * mean_run)
    now = 0.0
    for n in range(arrivals):
        now += rng.expovariate(rate)
        large = rng.random() < large_share
        cpu = rng.randint(LARGE, 8) if large else rng.randint(1, 5)
        limit = rng.randint(5, 15) * 60
        actual = max(1, int(limit * rng.uniform(0.25, 1.0)))
        jobs.append({"id": n + 1, "at": int(now), "cpu": cpu, "limit": limit, "run": actual})
    return jobs


def replay(jobs: list[dict], threshold: int | None) -> dict[str, object]:
    """Replay the arrivals through the scheduler; `threshold` in seconds (None: no guard)."""
    events: list[tuple[int, int, int]] = []  # (time, 0 end / 1 arrival, id)
    spec = {job["id"]: job for job in jobs}
    for job in jobs:
        heapq.heappush(events, (job["at"], 1, job["id"]))
    running: list[Job] = []
    pending: list[Job] = []
    max_run = {job["id"]: job["limit"] * SECOND for job in jobs}
    starts: dict[int, int] = {}
    used, last_t, area = 0, jobs[0]["at"], 0.0
    horizon_end = jobs[-1]["at"]
    spent = 0.0
    decisions = 0
    while events:
        t, kind, job_id = heapq.heappop(events)
        if t <= horizon_end:
            area += used * (min(t, horizon_end) - last_t)
            last_t = t
        fair = Fairness(
            now=t * SECOND,
            max_run=max_run,
            starve_after=None if threshold is None else threshold * SECOND,
            horizon=60,
        )
        state = ClusterState(CAPACITY, running, pending, fair=fair)
        if kind == 1:
            job = Job(job_id, PRIORITY, {"cpu": spec[job_id]["cpu"]}, t * SECOND)
            event: object = Submit(job)
            pending = [*pending, job]
        else:
            if all(j.id != job_id for j in running):
                continue
            event = Delete(frozenset([job_id]))
        clock = time.process_time()
        decision = schedule(state, event)  # type: ignore[arg-type]
        rounds = 0
        running = [j for j in running if not (kind == 0 and j.id == job_id)]
        while True:
            started = set(decision.started)
            left = set(decision.preempted) | set(decision.evicted) | set(decision.repacked)
            back = [replace(j, started=None) for j in running if j.id in left]
            running = [j for j in running if j.id not in left]
            for j in pending:
                if j.id in started:
                    running.append(replace(j, started=t * SECOND))
                    starts.setdefault(j.id, t)
                    heapq.heappush(events, (t + spec[j.id]["run"], 0, j.id))
            pending = [j for j in pending if j.id not in started] + back
            if not decision.settle or rounds >= 3:
                break
            rounds += 1
            decision = schedule(
                ClusterState(CAPACITY, running, pending, fair=replace(fair)), Reconcile()
            )
        spent += time.process_time() - clock
        decisions += 1
        used = sum(j.requests["cpu"] for j in running)
    final = max(t, horizon_end)  # the last event: a deployment never started waited until then
    waits = {"large": [], "small": []}
    for job in jobs:
        wait = starts.get(job["id"], final) - job["at"]
        waits["large" if job["cpu"] >= LARGE else "small"].append(wait / 60)
    span = max(1, horizon_end - jobs[0]["at"])
    result: dict[str, object] = {
        "utilization": area / (span * CAPACITY["cpu"]),
        "decision_ms": 1000 * spent / max(1, decisions),
    }
    for group, values in waits.items():
        result[f"{group}_max_min"] = max(values) if values else 0.0
        result[f"{group}_p99_min"] = quantile(values, 0.99) if values else 0.0
        result[f"{group}_mean_min"] = sum(values) / len(values) if values else 0.0
        result[f"{group}_count"] = len(values)
    return result


def machine() -> dict[str, object]:
    cpus = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpus = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpu": cpus,
        "cores": __import__("os").cpu_count(),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--arrivals", type=int, default=600)
    parser.add_argument("--load", type=float, default=0.95)
    parser.add_argument("--large-share", type=float, default=0.12)
    parser.add_argument("--threshold", type=int, default=15, help="minutes")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.arrivals = [1], 80
    rows = []
    for seed in args.seeds:
        jobs = trace(seed, args.arrivals, args.load, args.large_share)
        for label, threshold in (("no guard", None), ("guard", args.threshold * 60)):
            result = replay(jobs, threshold)
            rows.append({"seed": seed, "policy": label, **result})
    header = (
        f"{'seed':>4} {'policy':<9} {'large max':>9} {'large p99':>9} {'small p99':>9} "
        f"{'util':>6} {'ms/dec':>7}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['seed']:>4} {row['policy']:<9} {row['large_max_min']:>9.1f} "
            f"{row['large_p99_min']:>9.1f} {row['small_p99_min']:>9.1f} "
            f"{row['utilization']:>6.3f} {row['decision_ms']:>7.2f}"
        )
    summary = {}
    for label in ("no guard", "guard"):
        mine = [row for row in rows if row["policy"] == label]
        summary[label] = {
            key: sum(row[key] for row in mine) / len(mine)  # type: ignore[misc]
            for key in (
                "large_max_min",
                "large_p99_min",
                "small_p99_min",
                "utilization",
                "decision_ms",
            )
        }
        worst = max(float(row["large_max_min"]) for row in mine)  # type: ignore[arg-type]
        summary[label]["worst_large_max_min"] = worst
    print("mean over seeds (waits in minutes):")
    for label, values in summary.items():
        print(
            f"  {label:<9} large max {values['large_max_min']:.1f} (worst seed "
            f"{values['worst_large_max_min']:.1f}), large p99 {values['large_p99_min']:.1f}, "
            f"small p99 {values['small_p99_min']:.1f}, utilization {values['utilization']:.3f}, "
            f"{values['decision_ms']:.2f} ms per decision"
        )
    output = {
        "machine": machine(),
        "settings": {
            "seeds": args.seeds,
            "arrivals": args.arrivals,
            "load": args.load,
            "large_share": args.large_share,
            "threshold_min": args.threshold,
        },
        "rows": rows,
        "summary": summary,
    }
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "starvation.json").write_text(json.dumps(output, indent=2) + "\n")
    if any(math.isnan(row["utilization"]) for row in rows):  # type: ignore[arg-type]
        raise SystemExit("a run produced no utilization")
    return output


if __name__ == "__main__":
    main()
