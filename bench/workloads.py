"""Seeded workload traces for the scheduler benchmark, and their JSON-lines form.

A trace is one cluster (capacity per kind, optional deployment-count limit) and a time-ordered
list of events: `submit` (a deployment with a priority and requests) and `delete` (the owner
removes it when its lifetime expires). Lifetimes are measured from submission, whether the
deployment ran or waited, so a trace does not depend on the policy replaying it: every policy
sees exactly the same events and the same set of deployments present at every instant.

This module owns the generator (resource classes, priority tiers, Poisson arrivals at an
offered load, lognormal lifetimes, and the named scenarios) and the export/import of traces.
It knows nothing about policies or metrics. Same seed, same traces, on any machine.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The cluster every scenario uses: 64 cores, 256 GiB, 8 GPUs (cpu in millicores, ram in MiB).
CAPACITY = {"cpu": 64_000, "ram": 262_144, "gpu": 8}

# Priority tiers and how often each is picked: most work is best effort, little is critical.
TIERS = ((0, 0.50), (100, 0.30), (500, 0.15), (1000, 0.05))

# Resource classes: (name, weight, menu per kind). People pick sizes from presets, so requests
# are drawn from small menus rather than from a continuum (identical requests are common).
RESOURCE_CLASSES = (
    ("small", 0.60, {"cpu": (250, 500, 1000), "ram": (256, 512, 1024)}),
    ("memory", 0.15, {"cpu": (1000, 2000), "ram": (8192, 16384, 32768)}),
    ("cpu", 0.15, {"cpu": (4000, 8000, 16000), "ram": (2048, 4096)}),
    ("gpu", 0.10, {"cpu": (4000, 8000), "ram": (16384, 32768), "gpu": (1, 2, 4)}),
)
# A "whale" asks for half of the cluster's cpu and ram.
WHALE = {"cpu": CAPACITY["cpu"] // 2, "ram": CAPACITY["ram"] // 2}

LIFETIME_MEDIAN = 60.0  # time units
LIFETIME_SIGMA = 1.0  # lognormal shape: a long tail of long-lived services

LOADS = (0.8, 1.2, 1.5, 2.0)


@dataclass(frozen=True, slots=True)
class Event:
    """One trace line. `priority` and `requests` are set for submits only."""

    time: float
    op: str  # "submit" | "delete"
    id: int
    priority: int = 0
    requests: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Trace:
    name: str
    capacity: dict[str, int]
    events: list[Event]
    max_deployments: int | None = None
    description: str = ""
    params: dict[str, object] = field(default_factory=dict)

    @property
    def submissions(self) -> int:
        return sum(1 for event in self.events if event.op == "submit")


def _pick(rng: random.Random, weighted: Iterable[tuple[object, float]]) -> object:
    choices = list(weighted)
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


Classes = tuple[tuple[str, float, dict[str, tuple[int, ...]]], ...]


def draw_requests(rng: random.Random, classes: Classes = RESOURCE_CLASSES) -> dict[str, int]:
    """Requests of one deployment from a resource class's menus."""
    _, _, menus = _pick(rng, ((c, c[1]) for c in classes))  # type: ignore[misc]
    return {kind: rng.choice(menu) for kind, menu in menus.items()}


def expected_requests(
    classes: Classes = RESOURCE_CLASSES, capacity: dict[str, int] = CAPACITY
) -> dict[str, float]:
    """Mean request per kind of `draw_requests` (exact, from the menus)."""
    mean = dict.fromkeys(capacity, 0.0)
    for _, weight, menus in classes:
        for kind, menu in menus.items():
            mean[kind] += weight * sum(menu) / len(menu)
    return mean


def mean_lifetime() -> float:
    return LIFETIME_MEDIAN * math.exp(LIFETIME_SIGMA**2 / 2)


def arrival_rate(
    load: float, capacity: dict[str, int] = CAPACITY, classes: Classes = RESOURCE_CLASSES
) -> float:
    """Arrivals per time unit so that the most demanded kind is offered `load` x its capacity.

    Offered load of kind k = rate * E[lifetime] * E[request_k] / capacity_k (Little's law).
    """
    mean = expected_requests(classes, capacity)
    bottleneck = max(mean[k] / capacity[k] for k in capacity)
    return load / (mean_lifetime() * bottleneck)


def offered_loads(
    rate: float, capacity: dict[str, int] = CAPACITY, classes: Classes = RESOURCE_CLASSES
) -> dict[str, float]:
    mean = expected_requests(classes, capacity)
    return {k: round(rate * mean_lifetime() * mean[k] / capacity[k], 3) for k in capacity}


class _Builder:
    """Accumulates submits with their expiry and yields a time-sorted event list."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.events: list[Event] = []
        self.next_id = 1

    def submit(self, time: float, priority: int, requests: dict[str, int]) -> None:
        job_id = self.next_id
        self.next_id += 1
        lifetime = self.rng.lognormvariate(math.log(LIFETIME_MEDIAN), LIFETIME_SIGMA)
        self.events.append(Event(time, "submit", job_id, priority, requests))
        self.events.append(Event(time + lifetime, "delete", job_id))

    def poisson(self, rate: float, count: int, start: float = 0.0) -> Iterator[float]:
        time = start
        for _ in range(count):
            time += self.rng.expovariate(rate)
            yield time

    def trace(self, name: str, capacity: dict[str, int] | None = None, **kwargs: object) -> Trace:
        # Submits before deletes at equal times; ids break the remaining ties.
        self.events.sort(key=lambda e: (e.time, e.op != "submit", e.id))
        return Trace(name, dict(capacity or CAPACITY), self.events, **kwargs)  # type: ignore[arg-type]


def tiered_priority(rng: random.Random) -> int:
    return _pick(rng, TIERS)  # type: ignore[return-value]


def load_trace(load: float, arrivals: int, seed: int) -> Trace:
    rng = random.Random(f"load-{load}-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(load)
    for time in build.poisson(rate, arrivals):
        build.submit(time, tiered_priority(rng), draw_requests(rng))
    return build.trace(
        f"load-{load}",
        description=f"Poisson arrivals at {load}x capacity, tiered priorities",
        params={"load": load, "rate": rate, "offered": offered_loads(rate)},
    )


def burst_trace(arrivals: int, seed: int) -> Trace:
    """Steady load 1.2; a third of the way in, a burst of priority-1000 work arrives at 10x."""
    rng = random.Random(f"burst-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(1.2)
    times = list(build.poisson(rate, arrivals))
    for time in times:
        build.submit(time, tiered_priority(rng), draw_requests(rng))
    start = times[len(times) // 3]
    for time in build.poisson(rate * 10, max(10, arrivals // 6), start):
        build.submit(time, 1000, draw_requests(rng))
    return build.trace(
        "burst",
        description="load 1.2 plus a burst of priority-1000 work at 10x the arrival rate",
        params={"load": 1.2, "rate": rate, "burst_start": start},
    )


def whales_trace(arrivals: int, seed: int) -> Trace:
    """Load 1.2 where 5% of the arrivals are whales asking for half the cluster's cpu and ram."""
    rng = random.Random(f"whales-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(1.2)
    for time in build.poisson(rate, arrivals):
        if rng.random() < 0.05:
            build.submit(time, rng.choice((0, 100)), dict(WHALE))
        else:
            build.submit(time, tiered_priority(rng), draw_requests(rng))
    return build.trace(
        "whales",
        description="load 1.2, 5% of arrivals ask for half the cluster (priority 0 or 100)",
        params={"load": 1.2, "rate": rate, "whale": WHALE},
    )


def distinct_trace(arrivals: int, seed: int) -> Trace:
    """Load 1.5 where every deployment has its own priority: only the greedy state is valid."""
    rng = random.Random(f"distinct-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(1.5)
    priorities = rng.sample(range(1, 100 * arrivals), arrivals)
    for time, priority in zip(build.poisson(rate, arrivals), priorities, strict=True):
        build.submit(time, priority, draw_requests(rng))
    return build.trace(
        "distinct",
        description="load 1.5, every priority distinct (correct policies = priority greedy)",
        params={"load": 1.5, "rate": rate},
    )


def limit_trace(arrivals: int, seed: int, limit: int = 40) -> Trace:
    """Load 1.5 on a cluster that accepts at most `limit` deployments (running plus pending)."""
    rng = random.Random(f"limit-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(1.5)
    for time in build.poisson(rate, arrivals):
        build.submit(time, tiered_priority(rng), draw_requests(rng))
    return build.trace(
        "count-limit",
        max_deployments=limit,
        description=f"load 1.5, at most {limit} deployments (more are rejected at submission)",
        params={"load": 1.5, "rate": rate, "max_deployments": limit},
    )


# GPU-bimodal: a 16-GPU cluster where GPU work asks for one GPU or for a whole 8-GPU node.
GPU_CLUSTER = {"cpu": 128_000, "ram": 524_288, "gpu": 16}
GPU_BIMODAL = (
    ("small", 0.55, {"cpu": (500, 1000, 2000), "ram": (1024, 2048)}),
    ("one-gpu", 0.30, {"cpu": (4000, 8000), "ram": (16384, 32768), "gpu": (1,)}),
    ("eight-gpu", 0.15, {"cpu": (32000, 48000), "ram": (131072,), "gpu": (8,)}),
)
# Awkward GPU sizes: 3, 5 and 6 of 8 GPUs, which no two of a kind pair up to fill.
AWKWARD_GPU = (
    ("small", 0.50, {"cpu": (500, 1000), "ram": (512, 1024)}),
    ("gpu", 0.50, {"cpu": (4000, 8000, 12000), "ram": (16384, 32768), "gpu": (3, 5, 6)}),
)
# Eight kinds: cpu, ram, gpu and five custom ones, each job asking for a few of them.
EIGHT_KINDS_CLUSTER = {
    "cpu": 64_000, "ram": 262_144, "gpu": 8, "disk_gb": 4000, "iops": 100_000,
    "net_mbps": 40_000, "fpga": 4, "licenses": 20,
}  # fmt: skip
EIGHT_KINDS = (
    ("web", 0.40, {"cpu": (500, 1000), "ram": (512, 1024), "net_mbps": (500, 1000, 2000)}),
    ("db", 0.20, {"cpu": (2000, 4000), "ram": (8192, 16384), "disk_gb": (100, 250, 500),
                  "iops": (5000, 10000, 20000)}),
    ("ml", 0.15, {"cpu": (4000, 8000), "ram": (16384, 32768), "gpu": (1, 2), "disk_gb": (200,)}),
    ("hw", 0.10, {"cpu": (2000,), "ram": (4096,), "fpga": (1, 2), "licenses": (1, 2, 4)}),
    ("batch", 0.15, {"cpu": (8000, 16000), "ram": (4096, 8192), "licenses": (1,),
                     "iops": (2000,)}),
)  # fmt: skip
# Adversarial knapsack: one tier, sizes near a third and a half of the cluster in cpu and ram,
# with small fillers: first-fit strands room that a better set would use.
KNAPSACK = (
    ("third", 0.35, {"cpu": (20_000, 21_000, 22_000), "ram": (90_000, 86_000)}),
    ("half", 0.25, {"cpu": (31_000, 33_000, 34_000), "ram": (120_000, 135_000)}),
    ("quarter", 0.25, {"cpu": (15_000, 17_000), "ram": (60_000, 70_000)}),
    ("filler", 0.15, {"cpu": (1000, 3000), "ram": (4096, 8192)}),
)


def menu_trace(
    name: str,
    description: str,
    classes: Classes,
    capacity: dict[str, int],
    load: float,
    arrivals: int,
    seed: int,
    tiers: tuple[tuple[int, float], ...] = TIERS,
) -> Trace:
    """Poisson arrivals at `load` on `capacity`, requests from `classes`, priority tiers."""
    rng = random.Random(f"{name}-{seed}")
    build = _Builder(rng)
    rate = arrival_rate(load, capacity, classes)
    for time in build.poisson(rate, arrivals):
        build.submit(time, _pick(rng, tiers), draw_requests(rng, classes))  # type: ignore[arg-type]
    return build.trace(
        name,
        capacity,
        description=description,
        params={"load": load, "rate": rate, "offered": offered_loads(rate, capacity, classes)},
    )


def gpu_bimodal_trace(arrivals: int, seed: int) -> Trace:
    return menu_trace(
        "gpu-bimodal",
        "load 1.5 on a 16-GPU cluster; GPU work asks for 1 GPU or a whole 8-GPU node",
        GPU_BIMODAL, GPU_CLUSTER, 1.5, arrivals, seed,
    )  # fmt: skip


def awkward_gpu_trace(arrivals: int, seed: int) -> Trace:
    return menu_trace(
        "awkward-gpu",
        "load 1.5; half the work asks for 3, 5 or 6 of the 8 GPUs",
        AWKWARD_GPU, CAPACITY, 1.5, arrivals, seed,
    )  # fmt: skip


def eight_kinds_trace(arrivals: int, seed: int) -> Trace:
    return menu_trace(
        "8-kinds",
        "load 1.5 on a cluster of 8 resource kinds, each job asking for a few of them",
        EIGHT_KINDS, EIGHT_KINDS_CLUSTER, 1.5, arrivals, seed,
    )  # fmt: skip


def knapsack_trace(arrivals: int, seed: int) -> Trace:
    return menu_trace(
        "knapsack",
        "load 1.5, two tiers, sizes near 1/4, 1/3 and 1/2 of the cluster (adversarial packing)",
        KNAPSACK, {"cpu": 64_000, "ram": 262_144}, 1.5, arrivals, seed, ((0, 0.7), (100, 0.3)),
    )  # fmt: skip


def scenarios(arrivals: int, seed: int, names: Iterable[str] | None = None) -> list[Trace]:
    """Every scenario of the benchmark (or those named), `arrivals` submissions each (the
    burst adds more)."""
    makers = {
        **{f"load-{load}": (lambda load=load: load_trace(load, arrivals, seed)) for load in LOADS},
        "burst": lambda: burst_trace(arrivals, seed),
        "whales": lambda: whales_trace(arrivals, seed),
        "distinct": lambda: distinct_trace(arrivals, seed),
        "count-limit": lambda: limit_trace(arrivals, seed),
        "gpu-bimodal": lambda: gpu_bimodal_trace(arrivals, seed),
        "awkward-gpu": lambda: awkward_gpu_trace(arrivals, seed),
        "8-kinds": lambda: eight_kinds_trace(arrivals, seed),
        "knapsack": lambda: knapsack_trace(arrivals, seed),
    }
    wanted = list(makers) if names is None else list(names)
    return [makers[name]() for name in wanted]


SCENARIOS = (
    *(f"load-{load}" for load in LOADS),
    "burst", "whales", "distinct", "count-limit",
    "gpu-bimodal", "awkward-gpu", "8-kinds", "knapsack",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# JSON lines: one header line per trace, then one line per event.


def write_traces(traces: Iterable[Trace], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for trace in traces:
            header = {
                "trace": trace.name,
                "capacity": trace.capacity,
                "max_deployments": trace.max_deployments,
                "description": trace.description,
                "params": trace.params,
            }
            out.write(json.dumps(header, sort_keys=True) + "\n")
            for event in trace.events:
                line: dict[str, object] = {"t": round(event.time, 6), "op": event.op}
                line["id"] = event.id
                if event.op == "submit":
                    line["priority"] = event.priority
                    line["requests"] = event.requests
                out.write(json.dumps(line, sort_keys=True) + "\n")


def read_traces(path: Path) -> list[Trace]:
    """Traces from a JSON-lines file written by `write_traces` (or by hand, same format)."""
    traces: list[Trace] = []
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, 1):
            if not text.strip():
                continue
            row = json.loads(text)
            if "trace" in row:
                traces.append(
                    Trace(
                        row["trace"],
                        {k: int(v) for k, v in row["capacity"].items()},
                        [],
                        row.get("max_deployments"),
                        row.get("description", ""),
                        row.get("params", {}),
                    )
                )
                continue
            if not traces:
                raise ValueError(f"{path}:{number}: an event before any trace header")
            if row["op"] not in ("submit", "delete"):
                raise ValueError(f"{path}:{number}: unknown op {row['op']!r}")
            requests = {k: int(v) for k, v in row.get("requests", {}).items()}
            traces[-1].events.append(
                Event(
                    float(row["t"]),
                    row["op"],
                    int(row["id"]),
                    int(row.get("priority", 0)),
                    requests,
                )
            )
    return traces
