"""The policies the benchmark compares, all driven by the same small cluster simulator.

`ClusterSim` holds one policy's view of one cluster (running and pending deployments as
`app.scheduler.Job`) and applies an `Outcome` (who starts, who is preempted by whom). A policy is
an object with a `name` and `decide(sim, submitted, deleted) -> Outcome`, called after the
simulator has already removed the `deleted` job (passed as it was, running or pending); for a
submit, the new job is passed and is not yet pending. Policies:

  * `KargoPolicy`: Kargo's real scheduler, imported from `app.scheduler` (never re-implemented);
    its Decision is translated into an Outcome.
  * `FifoFirstFit`: submission order, start everything that fits in free, never preempt.
  * `KubeStyle`: kube-scheduler-like: queue by priority then submission time, best effort
    (a pod that does not fit is skipped, the ones behind it are still tried), and preemption
    of strictly lower-priority pods by "remove all lower, then reprieve the most important
    first while the preemptor still fits".
  * `KueueStrictFifo`: Kueue's StrictFIFO queueing: the same priority order, but the head of the
    queue blocks everything behind it; no preemption (Kueue's default withinClusterQueue: Never).
  * `KueueBestEffortFifo`: Kueue's default queueing, BestEffortFIFO: the same priority order, a
    workload that does not fit is set aside and the ones behind it are still tried; no
    preemption.
  * `KargoPolicy(repack=...)`: Kargo with a cluster's opt-in repack on. The simulator's time
    unit is read as a minute: the hourly budget and the cooldown are counted in trace time
    from the moves this policy made, as the deployments service counts them from the history.

This module does not measure anything (see metrics.py) and does not touch the scheduler's state
beyond the public interface.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.scheduler import ClusterState, Delete, Job, Repack, Submit, schedule

Vec = tuple[int, ...]


@dataclass(slots=True)
class Outcome:
    started: list[int] = field(default_factory=list)
    preempted: dict[int, int] = field(default_factory=dict)  # victim -> preemptor
    repacked: dict[int, int] = field(default_factory=dict)  # moved -> same-priority start


class ClusterSim:
    """One policy's cluster: running and pending jobs, with vectors over the capacity's kinds."""

    def __init__(self, capacity: Mapping[str, int], max_deployments: int | None) -> None:
        self.capacity = dict(capacity)
        self.kinds = tuple(sorted(capacity))
        self.cap: Vec = tuple(capacity[k] for k in self.kinds)
        self.max_deployments = max_deployments
        self.running: dict[int, Job] = {}
        self.pending: dict[int, Job] = {}
        self.clock = 0  # monotone start key for `Job.started`
        self.now = 0.0  # trace time of the event being decided (set by the replay)

    def remove(self, job_id: int) -> Job | None:
        """Drop a deleted job (running or pending); None if this cluster never had it."""
        job = self.running.pop(job_id, None)
        return job if job is not None else self.pending.pop(job_id, None)

    def vec(self, job: Job) -> Vec:
        return tuple(job.requests.get(k, 0) for k in self.kinds)

    def used(self) -> Vec:
        total = [0] * len(self.kinds)
        for job in self.running.values():
            for i, k in enumerate(self.kinds):
                total[i] += job.requests.get(k, 0)
        return tuple(total)

    def utilization(self) -> float:
        """U = sum over kinds of used_k / capacity_k."""
        return sum(u / c for u, c in zip(self.used(), self.cap, strict=True))

    def apply(self, outcome: Outcome, submitted: Job | None) -> None:
        """Preempted jobs go back to pending (keeping their submission key); started ones run."""
        if submitted is not None:
            self.pending[submitted.id] = submitted
        for victim_id, preemptor_id in {**outcome.preempted, **outcome.repacked}.items():
            victim = self.running.pop(victim_id)
            self.pending[victim_id] = Job(
                victim.id, victim.priority, victim.requests, victim.submitted, None, preemptor_id
            )
        for job_id in outcome.started:
            job = self.pending.pop(job_id)
            self.clock += 1
            self.running[job_id] = Job(
                job.id, job.priority, job.requests, job.submitted, self.clock, job.preempted_by
            )


def _fits(vec: Vec, room: Vec) -> bool:
    return all(need <= have for need, have in zip(vec, room, strict=True))


def _sub(a: Vec, b: Vec) -> Vec:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _add(a: Vec, b: Vec) -> Vec:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def queue_key(job: Job) -> tuple[int, int, int]:
    return (-job.priority, job.submitted, job.id)


class KargoPolicy:
    name = "kargo"

    def __init__(
        self,
        repack: tuple[int, int, float] | None = None,
        name: str | None = None,
        work_budget: int | None = None,
    ) -> None:
        """`repack`: (threshold in basis points, moves per hour, cooldown in time units)."""
        self.repack = repack
        if name:
            self.name = name
        self.work_budget = work_budget
        self.moves: list[tuple[float, int]] = []  # (time, id) of every repack move
        self.exact = 0
        self.inexact = 0
        self.cpu_ms: list[float] = []  # CPU time of every schedule() call, queue built

    def _repack(self, now: float) -> Repack | None:
        if self.repack is None:
            return None
        threshold, per_hour, cooldown = self.repack
        made = sum(1 for at, _ in self.moves if at > now - 60)
        cooling = frozenset(job_id for at, job_id in self.moves if at > now - cooldown)
        return Repack(threshold, max(0, per_hour - made), cooling)

    def decide(self, sim: ClusterSim, submitted: Job | None, deleted: Job | None) -> Outcome:
        # The simulator has already dropped the deleted job; Kargo must see the state before.
        running = list(sim.running.values())
        pending = list(sim.pending.values())
        if deleted is not None:
            # Running jobs carry a start key in this simulator; pending ones (even victims) do not.
            (running if deleted.started is not None else pending).append(deleted)
            event = Delete(frozenset({deleted.id}))
        else:
            assert submitted is not None
            event = Submit(submitted)
        extra = {"work_budget": self.work_budget} if self.work_budget else {}
        state = ClusterState(
            sim.capacity, running, pending, sim.max_deployments, self._repack(sim.now), **extra
        )
        began = time.thread_time_ns()
        decision = schedule(state, event)
        self.cpu_ms.append((time.thread_time_ns() - began) / 1e6)
        if decision.evicted:
            raise AssertionError(f"kargo evicted {decision.evicted} on a valid state")
        self.last_decision = decision
        if decision.exact:
            self.exact += 1
        else:
            self.inexact += 1
        self.moves.extend((sim.now, job_id) for job_id in decision.repacked)
        return Outcome(list(decision.started), dict(decision.preempted), dict(decision.repacked))


class FifoFirstFit:
    name = "fifo"

    def decide(self, sim: ClusterSim, submitted: Job | None, deleted: Job | None) -> Outcome:
        free = _sub(sim.cap, sim.used())
        queue = list(sim.pending.values()) + ([submitted] if submitted else [])
        started = []
        for job in sorted(queue, key=lambda j: (j.submitted, j.id)):
            vec = sim.vec(job)
            if _fits(vec, free):
                free = _sub(free, vec)
                started.append(job.id)
        return Outcome(started)


class KueueStrictFifo:
    name = "kueue-strict"

    def decide(self, sim: ClusterSim, submitted: Job | None, deleted: Job | None) -> Outcome:
        free = _sub(sim.cap, sim.used())
        queue = list(sim.pending.values()) + ([submitted] if submitted else [])
        started = []
        for job in sorted(queue, key=queue_key):
            vec = sim.vec(job)
            if not _fits(vec, free):
                break  # the head blocks everything behind it
            free = _sub(free, vec)
            started.append(job.id)
        return Outcome(started)


class KueueBestEffortFifo:
    name = "kueue-besteffort"

    def decide(self, sim: ClusterSim, submitted: Job | None, deleted: Job | None) -> Outcome:
        free = _sub(sim.cap, sim.used())
        queue = list(sim.pending.values()) + ([submitted] if submitted else [])
        started = []
        for job in sorted(queue, key=queue_key):
            vec = sim.vec(job)
            if _fits(vec, free):  # one that does not fit is set aside; the next is tried
                free = _sub(free, vec)
                started.append(job.id)
        return Outcome(started)


class KubeStyle:
    name = "kube"

    def decide(self, sim: ClusterSim, submitted: Job | None, deleted: Job | None) -> Outcome:
        running = dict(sim.running)
        vec_of = {job_id: sim.vec(job) for job_id, job in running.items()}
        free = _sub(sim.cap, sim.used())
        heap = [(queue_key(j), j) for j in sim.pending.values()]
        if submitted is not None:
            heap.append((queue_key(submitted), submitted))
        heapq.heapify(heap)
        started: list[int] = []
        preempted: dict[int, int] = {}
        order = sim.clock
        while heap:
            _, job = heapq.heappop(heap)
            vec = sim.vec(job)
            if not _fits(vec, free):
                victims = self._victims(sim, running, vec_of, free, job, vec)
                if victims is None:
                    continue  # unschedulable for now; best effort: try the next pod
                for victim in victims:
                    del running[victim.id]
                    free = _add(free, vec_of[victim.id])
                    if victim.id in started:  # (re)started earlier in this same pass
                        started.remove(victim.id)
                    if victim.id in sim.running:  # it ran before the event: a real eviction
                        preempted[victim.id] = job.id
                    back = Job(victim.id, victim.priority, victim.requests, victim.submitted)
                    heapq.heappush(heap, (queue_key(back), back))
            free = _sub(free, vec)
            order += 1
            running[job.id] = Job(job.id, job.priority, job.requests, job.submitted, order)
            vec_of[job.id] = vec
            started.append(job.id)
            preempted.pop(job.id, None)  # a victim that came back within the pass never left
        started = [i for i in started if i not in sim.running]
        return Outcome(started, preempted)

    @staticmethod
    def _victims(
        sim: ClusterSim,
        running: dict[int, Job],
        vec_of: dict[int, Vec],
        free: Vec,
        job: Job,
        vec: Vec,
    ) -> list[Job] | None:
        """Remove every lower-priority job; give back the most important ones while job fits."""
        lower = [r for r in running.values() if r.priority < job.priority]
        room = free
        for r in lower:
            room = _add(room, vec_of[r.id])
        if not _fits(vec, room):
            return None
        room = _sub(room, vec)
        victims = []
        for r in sorted(lower, key=lambda r: (-r.priority, r.started or 0, r.id)):
            if _fits(vec_of[r.id], room):
                room = _sub(room, vec_of[r.id])  # reprieved
            else:
                victims.append(r)
        return victims


# The repacks the benchmark measures (a time unit of the traces read as a minute): the one
# its targets are judged on, a 1% threshold, at most 60 moves an hour, a 10-minute cooldown;
# and a cluster's defaults, 2%, 6 moves an hour, a 60-minute cooldown.
BENCH_REPACK = (100, 60, 10.0)
DEFAULT_REPACK = (200, 6, 60.0)


def all_policies(repack: tuple[int, int, float] | None = BENCH_REPACK) -> list[object]:
    policies: list[object] = [KargoPolicy()]
    if repack is not None:
        policies.append(KargoPolicy(repack, "kargo-repack"))
        policies.append(KargoPolicy(DEFAULT_REPACK, "kargo-repack-dflt"))
    policies += [KubeStyle(), KueueBestEffortFifo(), KueueStrictFifo(), FifoFirstFit()]
    return policies
