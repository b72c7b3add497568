"""The benchmark's independent checker and its small statistics helpers.

The checker is written here from SCHEDULING.md's definitions, on purpose without calling
`app.scheduler.violations` or anything else of the scheduler's, so a bug shared by the scheduler
and its own checker cannot hide. On a snapshot (capacity, running, pending) it counts:
  * capacity violations: kinds where the sum of running requests exceeds capacity;
  * work-conservation misses: pending jobs that fit in free = capacity - running;
  * priority inversions: pending jobs p that fit in room_for(p) = capacity - running with
    priority >= p's;
and across one decision (running before minus deleted, running after, victim -> preemptor):
  * evictions: running jobs that stopped without being deleted;
  * bad evictions: evictions with no preemptor, a preemptor that does not run afterwards, or a
    preemptor of the same or lower priority (rule 5).
It also computes the priority-order greedy state used by the all-distinct-priorities scenario.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.scheduler import Job


def _vec(job: Job, kinds: Sequence[str]) -> tuple[int, ...]:
    return tuple(job.requests.get(k, 0) for k in kinds)


def _fits(vec: Sequence[int], room: Sequence[int]) -> bool:
    return all(need <= have for need, have in zip(vec, room, strict=True))


@dataclass(slots=True)
class Snapshot:
    capacity_violations: int
    work_conservation_misses: int
    inversions: int
    inverted_ids: list[int]


def check_snapshot(
    capacity: Mapping[str, int], running: Iterable[Job], pending: Iterable[Job]
) -> Snapshot:
    kinds = sorted(capacity)
    cap = [capacity[k] for k in kinds]
    used = [0] * len(kinds)
    held_by_priority: dict[int, list[int]] = {}
    for job in running:
        vec = _vec(job, kinds)
        held = held_by_priority.setdefault(job.priority, [0] * len(kinds))
        for i, amount in enumerate(vec):
            used[i] += amount
            held[i] += amount
    over = sum(1 for u, c in zip(used, cap, strict=True) if u > c)
    free = [c - u for c, u in zip(cap, used, strict=True)]
    # held_at_least[i] = running requests of priority >= levels[i] (levels ascending).
    levels = sorted(held_by_priority)
    held_at_least: list[list[int]] = [[0] * len(kinds) for _ in levels]
    acc = [0] * len(kinds)
    for i in range(len(levels) - 1, -1, -1):
        acc = [a + b for a, b in zip(acc, held_by_priority[levels[i]], strict=True)]
        held_at_least[i] = acc
    misses = 0
    inverted: list[int] = []
    for job in pending:
        vec = _vec(job, kinds)
        if any(amount < 0 for amount in vec) or not _fits(vec, cap):
            continue  # could never run here: not a scheduling failure
        if _fits(vec, free):
            misses += 1
        i = bisect.bisect_left(levels, job.priority)
        held = held_at_least[i] if i < len(levels) else [0] * len(kinds)
        if _fits(vec, [c - h for c, h in zip(cap, held, strict=True)]):
            inverted.append(job.id)
    return Snapshot(over, misses, len(inverted), inverted)


def check_transition(
    before_running: Mapping[int, Job],
    after_running: Mapping[int, Job],
    preempted: Mapping[int, int],
    deleted: int | None,
    repacked: Mapping[int, int] | None = None,
) -> tuple[int, int]:
    """(evictions, bad evictions) across one decision; see the module docstring. With
    `repacked` (a cluster's opt-in repack: moved -> the job started for it), a move is not bad
    when that job runs afterwards and has exactly the moved one's priority."""
    moved = repacked or {}
    evictions = bad = 0
    for job_id, job in before_running.items():
        if job_id == deleted or job_id in after_running:
            continue
        evictions += 1
        if job_id in moved:
            partner = after_running.get(moved[job_id])
            if (
                partner is None
                or partner.priority != job.priority
                or moved[job_id] in (before_running)
            ):
                bad += 1
            continue
        preemptor = after_running.get(preempted.get(job_id, -1))
        if preemptor is None or preemptor.priority <= job.priority:
            bad += 1
    return evictions, bad


def priority_greedy(capacity: Mapping[str, int], jobs: Iterable[Job]) -> set[int]:
    """Ids a plain greedy starts: jobs by priority desc, submission asc, each if it fits."""
    kinds = sorted(capacity)
    free = [capacity[k] for k in kinds]
    chosen: set[int] = set()
    for job in sorted(jobs, key=lambda j: (-j.priority, j.submitted, j.id)):
        vec = _vec(job, kinds)
        if _fits(vec, free):
            free = [f - v for f, v in zip(free, vec, strict=True)]
            chosen.add(job.id)
    return chosen


# --------------------------------------------------------------------------------------------
# Statistics.


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]) of a non-empty sequence; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "mean": math.nan, "p10": math.nan, "min": math.nan}
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "p10": quantile(values, 0.10),
        "min": min(values),
    }


class TimeAverage:
    """Time-weighted average of a piecewise-constant vector over [start, end]."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.area = [0.0] * width
        self.last_time: float | None = None
        self.last_value = [0.0] * width
        self.start: float | None = None

    def observe(self, time: float, value: Sequence[float]) -> None:
        """The vector becomes `value` at `time` (times must not decrease)."""
        self._advance(time)
        if self.start is None:
            self.start = time
        self.last_value = list(value)

    def _advance(self, time: float) -> None:
        if self.last_time is not None:
            span = time - self.last_time
            self.area = [a + v * span for a, v in zip(self.area, self.last_value, strict=True)]
        self.last_time = time

    def averages(self, end: float) -> list[float]:
        self._advance(end)
        duration = end - (self.start if self.start is not None else end)
        return [a / duration if duration > 0 else math.nan for a in self.area]
