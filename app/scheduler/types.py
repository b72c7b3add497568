"""What goes into a decision and what comes out: plain frozen dataclasses, no behaviour.

Amounts are exact integers in base units (cpu in millicores, ram in MiB, other kinds whole
units). Times are monotone integer keys chosen by the caller (the service passes microseconds
since the epoch); the scheduler only compares them and never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Job:
    """A deployment as the scheduler sees it.

    `requests` maps kind -> exact integer amount in base units (kinds absent mean 0).
    `submitted` is a monotone integer key of submission time (ties broken by `id`).
    `started` is a monotone integer key of the last start time, for running jobs.
    `preempted_by` is the id of the deployment that last sent this job back to the queue (by
    preemption, or by a repack when it has the same priority), if any.
    """

    id: int
    priority: int
    requests: Mapping[str, int]
    submitted: int
    started: int | None = None
    preempted_by: int | None = None


@dataclass(frozen=True, slots=True)
class Repack:
    """A cluster's opt-in repack, as the caller computes it for one decision (docs/scheduling.md,
    "Repack").

    Running work of a priority may be moved back to the queue to start pending work of the
    same priority when every such eviction raises the cluster's mean utilization (U divided by
    the number of kinds) by at least `threshold_bp` basis points (200 = 2%) against the best
    arrangement that evicts one fewer. `evictions_left` is what the cluster's hourly budget
    still allows; running deployments in `cooling` (moved within the cooldown) are never moved.
    The scheduler stays clock-free: the caller turns times into these numbers.
    """

    threshold_bp: int = 200
    evictions_left: int = 0
    cooling: frozenset[int] = frozenset()


# A decision's default work budget, in counted steps of the admission search (about 1 us of
# work each on the benchmark machine); see docs/scheduling.md, "Exactness and the budget".
DEFAULT_WORK_BUDGET = 20_000
# How many of the running deployments that hold what a pending one waits for a `Wait` names.
DEFAULT_BLOCKERS_LISTED = 5


@dataclass(frozen=True, slots=True)
class Quota:
    """One resource quota as one decision on one cluster sees it (docs/scheduling.md, "Fair
    use").

    At most `limit` of `kind` (base units) may be held by running deployments it counts:
    `used_elsewhere` is what they hold on other clusters, `members` the ids of this cluster's
    deployments (running or pending) it counts (the caller applies owner and priority range).
    `label` words whose quota it is in a reason: "over your gpu quota (6 of 8 used)".
    """

    kind: str
    limit: int
    members: frozenset[int]
    used_elsewhere: int = 0
    label: str = "your"


@dataclass(frozen=True, slots=True)
class Fairness:
    """The fair-use rules of one decision (docs/scheduling.md, "Fair use"); None on a
    `ClusterState` skips them all (the plain rules, at no extra cost).

    `now` is the caller's time key (same unit as `Job.submitted`); `unit` is how many time keys
    make a second (the service uses microseconds). `quotas` never preempt: a deployment over
    one waits. `never_preempts` holds the ids of deployments that wait for free room instead
    of evicting anyone. `max_run` maps ids to their maximum run time (time keys): a running
    job ends at `started + max_run` at the latest. `min_run`: a running job that started
    less than this ago is a victim only when no other choice makes room. `starve_after`: a
    pending job that has waited longer than this (since `waiting_since.get(id, submitted)`)
    gets a reservation (backfill: later work starts only where it does not delay it).
    `horizon` bounds the simulated end events of an estimate or a reservation.
    """

    now: int
    quotas: tuple[Quota, ...] = ()
    never_preempts: frozenset[int] = frozenset()
    max_run: Mapping[int, int] = field(default_factory=dict)
    min_run: int = 0
    starve_after: int | None = None
    waiting_since: Mapping[int, int] = field(default_factory=dict)
    unit: int = 1_000_000
    horizon: int = 200


@dataclass(frozen=True, slots=True)
class ClusterState:
    """One cluster before an event.

    `max_deployments` is carried for the caller (rule 9 is the service's). `repack` turns the
    opt-in repack on for this decision. `work_budget` bounds the admission search (counted, so
    decisions stay deterministic); `blockers_listed` bounds `Wait.blocking_ids`. `fair` holds
    the fair-use rules (quotas, non-preempting work, minimum run time, reservations).
    """

    capacity: Mapping[str, int]
    running: Sequence[Job]
    pending: Sequence[Job]
    max_deployments: int | None = None
    repack: Repack | None = None
    work_budget: int = DEFAULT_WORK_BUDGET
    blockers_listed: int = DEFAULT_BLOCKERS_LISTED
    fair: Fairness | None = None


@dataclass(frozen=True, slots=True)
class Submit:
    job: Job


@dataclass(frozen=True, slots=True)
class Delete:
    ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Re-evaluate the cluster with no change (repairs a state that breaks the rules, e.g.
    after its capacity changed)."""


Event = Submit | Delete | Reconcile


class Wait(NamedTuple):
    """Why a pending deployment waits, as data: what the `reason` text says, for pages to word.

    `cause`: "blocked" (room is held by deployments of at least its priority), "preempted"
    (sent back to the queue for `preempted_by`, of priority `preemptor_priority`, higher than
    its own), "repacked" (moved for `preempted_by`, of its own priority, by the cluster's
    repack) or "infeasible" (it can never run on this cluster; `message` says why).
    `kind` is the resource most short of room (None when no kind applies), `needed` the amount
    of it the deployment asks for, `free` what is free now, `held` what running deployments of
    priority >= `priority` (its own) hold; amounts in base units. `blocking_ids` names a few of
    those running deployments holding `kind`, largest holding first (ties by id), and
    `blocking_more` counts the others. So a page can say "needs 2 gpu: 1 free, 3 held by
    #12 web, #14 api (priority >= 500)" or "preempted by #42 (priority 900); restarts when
    4 cpu is free". (A named tuple: a mass preemption makes thousands.)
    """

    cause: str  # also "quota", "no_preempt" and "reserved" (docs/scheduling.md, "Fair use")
    kind: str | None
    needed: int
    free: int
    held: int
    priority: int
    blocking_ids: tuple[int, ...] = ()
    blocking_more: int = 0
    preempted_by: int | None = None
    preemptor_priority: int | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (the tuple of ids becomes a list)."""
        return {
            "cause": self.cause,
            "kind": self.kind,
            "needed": self.needed,
            "free": self.free,
            "held": self.held,
            "priority": self.priority,
            "blocking_ids": list(self.blocking_ids),
            "blocking_more": self.blocking_more,
            "preempted_by": self.preempted_by,
            "preemptor_priority": self.preemptor_priority,
            "message": self.message,
        }


class QueueEntry(NamedTuple):
    """One pending deployment's place in the queue (a named tuple: a decision makes one per
    pending deployment, thousands on a large cluster, and tuples are made in C)."""

    id: int
    position: int  # 1-based, in queue order
    reason: str
    wait: Wait


@dataclass(slots=True)
class Decision:
    """The outcome of one event.

    Final running set = (running - deleted - preempted - evicted - repacked) + started.
    `started` lists ids in queue order; a job never appears both in `started` and among the
    ones that leave. `preempted` maps each victim to a strictly higher-priority deployment
    that started in this decision. `evicted` is only non-empty for a Reconcile of a cluster
    whose running jobs exceed its capacity (no preemptor). `repacked` maps each deployment a
    repack moved back to the queue to a same-priority deployment started in its place.
    `exact` is False when the admission search reached its work budget and a bounded
    fallback chose (rules 1-6 hold either way); `work` is the counted work the decision spent.
    """

    started: list[int] = field(default_factory=list)  # pending (or submitted) -> running
    preempted: dict[int, int] = field(default_factory=dict)  # victim id -> preemptor id
    queue: list[QueueEntry] = field(default_factory=list)  # every pending job after the event
    used: dict[str, int] = field(default_factory=dict)  # usage per kind after the decision
    evicted: list[int] = field(default_factory=list)  # running -> pending to restore rule 1
    repacked: dict[int, int] = field(default_factory=dict)  # moved id -> id started for it
    exact: bool = field(default=True, compare=False)
    work: int = field(default=0, compare=False)
    # Fair use: this decision sent running work back to the queue while some deployments were
    # held (over a quota, never preempting, behind a reservation); the room or quota it freed
    # may let them start, so the caller should follow it with a Reconcile.
    settle: bool = field(default=False, compare=False)
    # The pending deployment holding the cluster's reservation (starvation guard), if any.
    reserved: int | None = field(default=None, compare=False)
