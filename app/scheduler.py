"""Kargo's scheduling core: pure, deterministic, standard library only.

INTERFACE CONTRACT (the deployments service and the benchmarks depend on these names):

    Job(id, priority, requests, submitted, started=None, preempted_by=None)
    ClusterState(capacity, running, pending, max_deployments=None)
    Submit(job) | Delete(ids) | Reconcile()
    schedule(state, event) -> Decision
    infeasible(capacity, requests) -> str | None

Implementation in progress.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Job:
    """A deployment as the scheduler sees it.

    `requests` maps kind -> exact integer amount in base units (kinds absent mean 0).
    `submitted` is a monotone integer key of submission time (ties broken by `id`).
    `started` is a monotone integer key of the last start time, for running jobs.
    `preempted_by` is the id of the deployment that last preempted this job, if any.
    """

    id: int
    priority: int
    requests: Mapping[str, int]
    submitted: int
    started: int | None = None
    preempted_by: int | None = None


@dataclass(frozen=True, slots=True)
class ClusterState:
    capacity: Mapping[str, int]
    running: Sequence[Job]
    pending: Sequence[Job]


@dataclass(frozen=True, slots=True)
class Submit:
    job: Job


@dataclass(frozen=True, slots=True)
class Delete:
    ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Re-evaluate the cluster with no change (repairs a state that breaks the rules)."""


Event = Submit | Delete | Reconcile


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    position: int  # 1-based, in queue order
    reason: str


@dataclass(slots=True)
class Decision:
    started: list[int] = field(default_factory=list)  # pending (or submitted) -> running
    preempted: dict[int, int] = field(default_factory=dict)  # victim id -> preemptor id
    queue: list[QueueEntry] = field(default_factory=list)  # every pending job after the event
    used: dict[str, int] = field(default_factory=dict)  # usage per kind after the decision
