"""Requests as integer vectors over a cluster's kinds, and utilization as an exact integer.

A cluster's kinds are its capacity's names, sorted; a job's requests become a tuple of amounts
in that order (amounts of kinds the cluster lacks are dropped, and `runnable` says whether the
job could run at all: rule 8). Normalized utilization U = sum_k used_k / cap_k is compared
exactly by scaling with L = lcm(capacities): U * L = sum_k used_k * (L // cap_k).

Reading requests one job at a time is the largest fixed cost of a decision on a big cluster,
so the many-jobs helpers walk whole lists with map/zip/compress, which run in C; they give the
same results as the one-job functions.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, compress, repeat
from operator import add, attrgetter, le, mul, sub

from .types import Job

Vec = tuple[int, ...]
# Beyond this many kinds, requests are read by what each job names (few of the kinds).
_SPARSE_FROM = 8
Row = tuple[int, ...]  # (priority, *amounts over the cluster's kinds)


def fits(vec: Vec, room: Vec) -> bool:
    # An explicit loop: measurably faster than all() over a generator on this hot path.
    for need, have in zip(vec, room, strict=True):  # noqa: SIM110
        if need > have:
            return False
    return True


def vadd(a: Vec, b: Vec) -> Vec:
    return tuple(map(add, a, b))


def vsub(a: Vec, b: Vec) -> Vec:
    return tuple(map(sub, a, b))


def vscale(a: Vec, factor: int) -> Vec:
    return tuple(x * factor for x in a)


def fit_count(vec: Vec, room: Vec, limit: int) -> int:
    """How many copies of `vec` fit in `room`, at most `limit` (vec has a positive amount)."""
    count = limit
    for need, have in zip(vec, room, strict=True):
        if need > 0:
            count = min(count, have // need)
            if count <= 0:
                return 0
    return count


class Cluster:
    """Capacity as a vector, plus the integer weights that make U exact."""

    __slots__ = ("cap", "kind_set", "kinds", "scale", "weights", "zero")

    def __init__(self, capacity: Mapping[str, int]) -> None:
        self.kinds: tuple[str, ...] = tuple(sorted(capacity))
        self.kind_set = frozenset(self.kinds)
        self.cap: Vec = tuple(int(capacity[k]) for k in self.kinds)
        positive = [c for c in self.cap if c > 0]
        self.scale = math.lcm(*positive) if positive else 1
        # A kind with capacity 0 can hold nothing; it contributes nothing to U.
        self.weights: Vec = tuple(self.scale // c if c > 0 else 0 for c in self.cap)
        self.zero: Vec = (0,) * len(self.kinds)

    def vec(self, requests: Mapping[str, int]) -> Vec:
        """Requests over the cluster's kinds (amounts of unknown kinds are dropped)."""
        return tuple([requests.get(k, 0) for k in self.kinds])

    def pending_vec(self, requests: Mapping[str, int]) -> Vec | None:
        """Like `vec`, or None if the job can never run here (rule 8)."""
        vec = self.vec(requests)
        return vec if self.runnable(requests, vec) else None

    def runnable(self, requests: Mapping[str, int], vec: Vec) -> bool:
        """Could a job with these requests (and `vec`, their vector) ever run here (rule 8)?

        True exactly when no amount is negative, the total is positive, every positive amount
        is of a kind the cluster has (the vector, which drops unknown kinds, keeps the whole
        total) and the vector fits in capacity.
        """
        values = requests.values()
        total = sum(values)
        return total > 0 and sum(vec) == total and min(values) >= 0 and fits(vec, self.cap)

    def value(self, vec: Vec) -> int:
        """U * L of `vec` (see the module docstring)."""
        return sum(map(math.prod, zip(vec, self.weights, strict=True)))

    def as_map(self, vec: Vec) -> dict[str, int]:
        return dict(zip(self.kinds, vec, strict=True))

    # -- many jobs at once -------------------------------------------------------------------

    def columns(self, jobs: Sequence[Job]) -> list[list[int]]:
        """Per kind (in `kinds` order), every job's amount of it; unknown kinds are dropped."""
        return self.columns_of([job.requests for job in jobs])

    def columns_of(self, requests: list[Mapping[str, int]]) -> list[list[int]]:
        """`columns` for the jobs' requests."""
        if len(self.kinds) > _SPARSE_FROM:
            return self._sparse_columns(requests)
        try:
            # dict.get as an unbound method: the fast path for plain dicts (and subclasses).
            return [list(map(dict.get, requests, repeat(k), repeat(0))) for k in self.kinds]
        except TypeError:  # some requests are another Mapping type
            return [[r.get(k, 0) for r in requests] for k in self.kinds]

    def _sparse_columns(self, requests: list[Mapping[str, int]]) -> list[list[int]]:
        """`columns_of` for many kinds, of which each job names a few: one pass over what
        each job names rather than one lookup per kind and job."""
        columns = [[0] * len(requests) for _ in self.kinds]
        index = {kind: columns[k] for k, kind in enumerate(self.kinds)}
        for j, named in enumerate(requests):
            for kind, amount in named.items():
                column = index.get(kind)
                if column is not None:
                    column[j] = amount
        return columns

    def vectors(self, jobs: Sequence[Job]) -> list[Vec]:
        """`[self.vec(job.requests) for job in jobs]`, computed column by column."""
        if not self.kinds:
            return [()] * len(jobs)
        return list(zip(*self.columns(jobs), strict=True))

    def sum_vecs(self, vecs: Iterable[Vec]) -> Vec:
        cols = list(zip(*vecs, strict=True))
        if not cols:
            return self.zero
        return tuple(map(sum, cols))

    def sum_jobs(self, jobs: Sequence[Job]) -> Vec:
        """The sum of the jobs' requests as a vector."""
        return tuple(map(sum, self.columns(jobs))) if self.kinds else ()

    def rows(self, jobs: Sequence[Job]) -> list[Row | None]:
        """Each job as a row (priority, *vector), None for a job naming a kind the cluster
        lacks with a positive amount (it can never run here). Whether any other row can run
        (rule 8) depends on the row alone: `row_runs`, once per distinct row.

        Whether a pending job can run, fits in free or fits in its room_for depends on its row
        alone, so most work is done per distinct row rather than per job.
        """
        if not self.kinds:  # nothing can ever run here
            return [None] * len(jobs)
        requests = [job.requests for job in jobs]
        priorities = [job.priority for job in jobs]
        rows: list[Row | None] = list(zip(priorities, *self.columns_of(requests), strict=True))
        if not all(map(self.kind_set.issuperset, requests)):
            # A job naming a kind the cluster lacks: its row drops that amount, so whether it
            # can run is decided per job (an amount of 0 of an unknown kind is harmless).
            rows = [
                row if self.runnable(req, row[1:]) else None  # type: ignore[index]
                for row, req in zip(rows, requests, strict=True)
            ]
        return rows

    def row_runs(self, row: Row | None) -> bool:
        """Rule 8 for a row from `rows`: every amount is then known, so the row decides."""
        if row is None:
            return False
        vec = row[1:]
        return min(vec) >= 0 and sum(vec) > 0 and all(map(le, vec, self.cap))


_PRIORITY = attrgetter("priority")
_ID = attrgetter("id")


def levels_of(jobs: Iterable[Job]) -> dict[int, list[Job]]:
    """The jobs grouped by priority (each group in the given order)."""
    groups: dict[int, list[Job]] = {}
    for job in jobs:
        group = groups.get(job.priority)
        if group is None:
            groups[job.priority] = [job]
        else:
            group.append(job)
    return groups


def sums_by_priority(cluster: Cluster, jobs: Iterable[Job]) -> dict[int, Vec]:
    """Per priority, the sum of the jobs' requests as a vector (unknown kinds dropped)."""
    return {prio: cluster.sum_jobs(group) for prio, group in levels_of(jobs).items()}


def adjusted(
    cluster: Cluster, by_priority: Mapping[int, Vec], minus: Iterable[Job], plus: Iterable[Job]
) -> dict[int, Vec]:
    """`by_priority` without the jobs in `minus` and with those in `plus` (read per priority
    in whole-list passes)."""
    out = dict(by_priority)
    for jobs, sign in ((minus, -1), (plus, 1)):
        for prio, group in levels_of(jobs).items():
            total = cluster.sum_jobs(group)
            old = out.get(prio, cluster.zero)
            out[prio] = vadd(old, total) if sign > 0 else vsub(old, total)
    return out


class Usage:
    """A running set read once, in whole-list passes: each job's row (priority and requests),
    how many jobs have each row, and the sums per priority (`by_priority`) that every
    room_for is made of. The jobs of one row or one priority are found when asked for.
    """

    __slots__ = ("_groups", "by_priority", "counts", "ids", "jobs", "priorities", "row_list")

    def __init__(self, cluster: Cluster, jobs: Sequence[Job]) -> None:
        self.jobs = jobs
        self.ids = list(map(_ID, jobs))
        self.priorities = list(map(_PRIORITY, jobs))
        self.row_list: list[Row] = list(zip(self.priorities, *cluster.columns(jobs), strict=True))
        self.counts = Counter(self.row_list)  # row -> how many jobs have it
        self.by_priority: dict[int, Vec] = _sums_by_priority(self.row_list, self.counts)
        self._groups: dict[Row, list[int]] | None = None

    def total(self, cluster: Cluster) -> Vec:
        return cluster.sum_vecs(self.by_priority.values())

    def level(self, prio: int) -> list[Job]:
        """The jobs of one priority, in the given order."""
        return list(compress(self.jobs, map(prio.__eq__, self.priorities)))

    def ids_of(self, row: Row) -> list[int]:
        """The ids of the jobs of one row (grouped once, when asked; the same list each
        time)."""
        if self._groups is None:
            # One empty list per distinct row, then every id appended to its row's list by
            # map (in C): no Python loop over the jobs.
            groups: dict[Row, list[int]] = {key: [] for key in self.counts}
            deque(map(list.append, map(groups.__getitem__, self.row_list), self.ids), maxlen=0)
            self._groups = groups
        return self._groups.get(row, [])  # the caller may reorder it, not change it


def _sums_by_priority(rows: Sequence[Row], counts: Mapping[Row, int]) -> dict[int, Vec]:
    """Per priority, the sum of the rows' amounts (`counts`: how many times each row occurs).

    Each priority's rows are summed column by column (in C), a lone row is its own sum; when
    rows repeat a lot, the distinct rows are summed, each times its count.
    """
    repeated = len(counts) * 4 <= len(rows)
    levels: dict[int, list[Row]] = {}
    for row in counts if repeated else rows:
        level = levels.get(row[0])
        if level is None:
            levels[row[0]] = [row]
        else:
            level.append(row)
    sums: dict[int, Vec] = {}
    for prio, group in levels.items():
        if not repeated:
            sums[prio] = (
                group[0][1:] if len(group) == 1 else tuple(map(sum, zip(*group, strict=True)))[1:]
            )
            continue
        times = list(map(counts.__getitem__, group))
        columns = list(zip(*group, strict=True))[1:]
        sums[prio] = tuple([sum(map(mul, column, times)) for column in columns])
    return sums


class Rooms:
    """room_for(p) = capacity - running work of priority >= p, for any p, from per-priority
    sums of the running requests (prefix sums over the priorities, highest first)."""

    __slots__ = ("_cache", "_negated", "_prefix", "cap", "zero")

    def __init__(self, cluster: Cluster, by_priority: Mapping[int, Vec]) -> None:
        self.cap = cluster.cap
        self.zero = cluster.zero
        levels = sorted(by_priority, reverse=True)
        self._negated = [-prio for prio in levels]  # ascending, for bisect
        if levels and cluster.kinds:
            # Per kind, the running sums of the levels from the highest down (in C).
            columns = zip(*map(by_priority.__getitem__, levels), strict=True)
            self._prefix: list[Vec] = list(zip(*map(accumulate, columns), strict=True))
        else:
            self._prefix = [cluster.zero] * len(levels)
        self._cache: dict[int, Vec] = {}

    def held(self, prio: int) -> Vec:
        """Sum of running requests with priority >= prio."""
        count = bisect_right(self._negated, -prio)  # the levels >= prio
        return self._prefix[count - 1] if count else self.zero

    def room(self, prio: int) -> Vec:
        room = self._cache.get(prio)
        if room is None:
            room = self._cache[prio] = vsub(self.cap, self.held(prio))
        return room
