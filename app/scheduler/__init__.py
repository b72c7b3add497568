"""Kargo's scheduling core: pure, deterministic, standard library only (plus `app.quantities`,
itself standard library only). The rules, worked examples and promises are in
docs/scheduling.md; each file of this package is one step of a decision:

    types.py       what goes in (ClusterState, Job, events, Repack) and comes out (Decision,
                   QueueEntry, Wait)
    vectors.py     requests as integer vectors, exact utilization, room_for per priority
    preemption.py  rule 1's capacity repair and rule 4's preemption walk (incremental)
    search.py      rule 7: the best admitted set, exact within a counted work budget
    queue.py       rules 6 and 8: the queue in order with a reason for everyone; infeasible
    decide.py      schedule(): the steps in order, fast paths first
    checks.py      violations (rules 1-3) and transition_violations (rules 4-5)
    fairness.py    schedule(): fair use on top (quotas, non-preempting work, the minimum run
                   time, the starvation guard's reservation) and the forward simulation of
                   start-time estimates

INTERFACE CONTRACT (the deployments service and the benchmarks depend on these names):

    Job(id, priority, requests, submitted, started=None, preempted_by=None)
    ClusterState(capacity, running, pending, max_deployments=None, repack=None,
                 work_budget=DEFAULT_WORK_BUDGET, blockers_listed=DEFAULT_BLOCKERS_LISTED,
                 fair=None)
    Fairness(now, quotas, never_preempts, max_run, min_run, starve_after, waiting_since,
             unit, horizon)          Quota(kind, limit, members, used_elsewhere, label)
    simulate(state, targets) -> Simulation(starts, running_at, unlimited, events)
    Repack(threshold_bp, evictions_left, cooling)
    Submit(job) | Delete(ids) | Reconcile()
    schedule(state, event) -> Decision(started, preempted, queue, used, evicted, repacked,
                                       exact, work)
    QueueEntry(id, position, reason, wait: Wait)
    infeasible(capacity, requests) -> str | None
    violations(capacity, running, pending) -> list[str]            (rules 1-3, a snapshot)
    transition_violations(before_running, after_running, preempted, submitted_or_none)
                                                                    (rules 4-5, a transition)

It reads no clock, draws no random numbers, does no I/O and never mutates its inputs, so a dry
run (the what-if preview) is simply a call whose Decision is not persisted. Amounts are exact
integers in base units (cpu in millicores, ram in MiB, other kinds whole units).
"""

from .checks import transition_violations, violations
from .fairness import Simulation, quota_violations, schedule, simulate
from .queue import infeasible
from .search import EXACT_CLASS_LIMIT
from .types import (
    DEFAULT_BLOCKERS_LISTED,
    DEFAULT_WORK_BUDGET,
    ClusterState,
    Decision,
    Delete,
    Event,
    Fairness,
    Job,
    QueueEntry,
    Quota,
    Reconcile,
    Repack,
    Submit,
    Wait,
)

__all__ = [
    "DEFAULT_BLOCKERS_LISTED",
    "DEFAULT_WORK_BUDGET",
    "EXACT_CLASS_LIMIT",
    "ClusterState",
    "Decision",
    "Delete",
    "Event",
    "Fairness",
    "Job",
    "QueueEntry",
    "Quota",
    "Reconcile",
    "Repack",
    "Simulation",
    "Submit",
    "Wait",
    "infeasible",
    "quota_violations",
    "schedule",
    "simulate",
    "transition_violations",
    "violations",
]
