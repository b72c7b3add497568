"""Exact references for the benchmark: the best inversion-free state, solved with CP-SAT.

Given the deployments present in a cluster at one decision point, `solve` maximizes normalized
utilization U = sum_k used_k / cap_k over the admitted set S subject to:
  * capacity: sum over S of r_jk <= cap_k for every kind k;
  * the count limit: |S| <= max_deployments (when given);
  * no inversion: every j not in S does not fit in room_S(j) = cap - sum of S with priority
    >= p_j, i.e. for some kind k, held_k(>= p_j) + r_jk > cap_k;
  * work conservation, stated explicitly although no-inversion implies it: every j not in S
    does not fit in free = cap - sum of S;
  * `protected` jobs are in S (OPT_stable; empty for OPT_NI, which may evict anything).

Model. Identical jobs (same priority and requests) are interchangeable in every constraint and
in the objective, so they form one class c with an integer count n_c in [protected_c, size_c].
For each distinct priority level t (descending) and kind k an integer H_tk = sum of r_ck n_c
over classes of priority >= t, built as a chain H_tk = H_(t-1)k + (this level's sum), so the
model stays O(jobs x kinds) even when every priority differs. For a class not entirely admitted
(boolean z_c, forced true when n_c < size_c), the no-inversion disjunction is one boolean b_ck
per kind with r_ck > 0, b_ck => H_(t_c)k + r_ck >= cap_k + 1 (an enforced linear constraint,
CP-SAT's OnlyEnforceIf, which linearizes as big-M), and OR_k b_ck. H includes the class's own
admitted members, which is right: an excluded member sees them as held.

Objective, exactly in integers: with L = lcm of the capacities, U * L = sum_k w_k used_k where
w_k = L / cap_k. If L exceeds 10^12 (odd capacities), w_k = round(10^9 / cap_k) instead and the
optimum is exact up to that rounding (never on the benchmark's capacities).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from app.scheduler import Job

EXACT_SCALE_LIMIT = 10**12


@dataclass(slots=True)
class Reference:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    value: float  # U of the best state found (nan when none)
    bound: float  # proven upper bound on U (nan when unknown)
    admitted: set[int] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"


def weights(capacity: Mapping[str, int]) -> tuple[dict[str, int], int]:
    """Integer weights w_k and the scale L with U * L = sum_k w_k used_k (see docstring)."""
    positive = [c for c in capacity.values() if c > 0]
    scale = math.lcm(*positive) if positive else 1
    if scale <= EXACT_SCALE_LIMIT:
        return {k: (scale // c if c > 0 else 0) for k, c in capacity.items()}, scale
    scale = 10**9
    return {k: (round(scale / c) if c > 0 else 0) for k, c in capacity.items()}, scale


def solve(
    capacity: Mapping[str, int],
    jobs: Iterable[Job],
    protected: Iterable[int] = (),
    max_deployments: int | None = None,
    time_limit: float = 1.0,
    workers: int = 2,
    capacity_only: bool = False,
) -> Reference:
    """The best state (see the module docstring). `capacity_only`: the repack-everything
    bound, which drops no-inversion and work conservation and keeps capacity (and the count
    limit) alone: what any placement of the deployments present could use at most."""
    kinds = sorted(capacity)
    cap = {k: capacity[k] for k in kinds}
    weight, scale = weights(cap)
    keep = set(protected)

    classes: dict[tuple[int, tuple[int, ...]], list[Job]] = {}
    for job in jobs:
        vec = tuple(job.requests.get(k, 0) for k in kinds)
        if any(v > c for v, c in zip(vec, cap.values(), strict=True)):
            continue  # can never run: not part of the choice
        classes.setdefault((job.priority, vec), []).append(job)

    model = cp_model.CpModel()
    count: dict[tuple[int, tuple[int, ...]], cp_model.IntVar] = {}
    for key, members in classes.items():
        floor = sum(1 for j in members if j.id in keep)
        count[key] = model.NewIntVar(floor, len(members), f"n{len(count)}")

    levels = sorted({prio for prio, _ in classes}, reverse=True)
    held: dict[int, dict[str, cp_model.IntVar]] = {}
    previous: dict[str, cp_model.IntVar | int] = dict.fromkeys(kinds, 0)
    for level in levels:
        held[level] = {}
        for i, k in enumerate(kinds):
            top = sum(vec[i] * len(m) for (_, vec), m in classes.items())
            var = model.NewIntVar(0, max(top, 0), f"h{level}_{k}")
            here = [count[key] * key[1][i] for key in classes if key[0] == level and key[1][i]]
            model.Add(var == previous[k] + sum(here))
            held[level][k] = var
        previous = held[level]
    total = previous  # the lowest level's sums: everything admitted

    for k in kinds:
        model.Add(total[k] <= cap[k])
    if max_deployments is not None:
        model.Add(sum(count.values()) <= max_deployments)

    for (prio, vec), members in classes.items():
        if capacity_only:
            break
        n = count[(prio, vec)]
        excluded = model.NewBoolVar("")
        model.Add(n >= len(members)).OnlyEnforceIf(excluded.Not())
        blocked_by_priority = []
        blocked_in_free = []
        for i, k in enumerate(kinds):
            if vec[i] <= 0:
                continue
            b = model.NewBoolVar("")
            model.Add(held[prio][k] + vec[i] >= cap[k] + 1).OnlyEnforceIf(b)
            blocked_by_priority.append(b)
            c = model.NewBoolVar("")
            model.Add(total[k] + vec[i] >= cap[k] + 1).OnlyEnforceIf(c)
            blocked_in_free.append(c)
        model.AddBoolOr([excluded.Not(), *blocked_by_priority])
        model.AddBoolOr([excluded.Not(), *blocked_in_free])

    model.Maximize(sum(weight[k] * total[k] for k in kinds))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    status = solver.Solve(model)
    seconds = solver.WallTime()
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        name = "infeasible" if status == cp_model.INFEASIBLE else "unknown"
        return Reference(name, math.nan, math.nan, set(), seconds)
    admitted: set[int] = set()
    for key, members in classes.items():
        # Members are interchangeable; take protected ones first, then queue order.
        ordered = sorted(members, key=lambda j: (j.id not in keep, j.submitted, j.id))
        admitted.update(j.id for j in ordered[: solver.Value(count[key])])
    value = sum(solver.Value(total[k]) / cap[k] for k in kinds)
    bound = solver.BestObjectiveBound() / scale
    return Reference(
        "optimal" if status == cp_model.OPTIMAL else "feasible", value, bound, admitted, seconds
    )
