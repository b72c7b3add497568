"""Rules 1 and 4: the capacity repair and the preemption walk (docs/scheduling.md, "Preemption").

The walk goes through the queue once, in order, like kube-scheduler: a job that fits in free
starts; one that fits in its room_for (capacity minus running work of at least its priority)
evicts lower-priority work and starts; any other is blocked. Victims are chosen by removing
every running job of lower priority and giving back the most important first (higher
priority, then earlier start) while the preemptor still fits. Victims re-enter the walk at
their queue place (they keep their submission time): one that fits again comes back; one that
must preempt in turn does so, its victims attributed to the preemptor that began the chain.

Every step is incremental, so a decision costs O((n + victims) log n) whatever it evicts:
  * Blocked is final. After the walk passes a job, only work of its priority or lower starts
    and only work of lower priority leaves, which never enlarges its room_for (nor free,
    which is smaller). So the pending jobs of one row (priority and requests) form one stream
    in queue order, and a stream whose head is blocked is dropped whole.
  * room_for(current priority) is kept as the walk descends: the running levels at or above it
    are added once, as the walk passes them, and every start is at the current priority.
  * Victims come from per-level usage in Fenwick trees (prefix sums with point updates): the
    first level below the preemptor that cannot be given back whole is found by a search on
    the level sums, and inside it the next job that does not fit by a search on its jobs'
    prefix sums. A preemption costs O((victims + 1) * kinds * log n).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from operator import attrgetter

from .types import Job
from .vectors import Cluster, Row, Usage, Vec, fits, vadd, vsub

QueueKey = tuple[int, int, int]


def queue_key(job: Job) -> QueueKey:
    return (-job.priority, job.submitted, job.id)


def importance_key(job: Job) -> tuple[int, float, int]:
    """Most important first: higher priority, then earlier start (the reprieve order)."""
    return (-job.priority, job.started if job.started is not None else math.inf, job.id)


_SUBMITTED_ID = attrgetter("submitted", "id")


class Fenwick:
    """Prefix sums of a list of amounts with point updates, both in O(log n)."""

    __slots__ = ("size", "tree")

    def __init__(self, values: Sequence[int]) -> None:
        size = len(values)
        tree = [0, *values]
        for i in range(1, size + 1):
            parent = i + (i & -i)
            if parent <= size:
                tree[parent] += tree[i]
        self.size = size
        self.tree = tree

    def add(self, index: int, delta: int) -> None:
        i = index + 1
        tree = self.tree
        size = self.size
        while i <= size:
            tree[i] += delta
            i += i & -i

    def prefix(self, index: int) -> int:
        """Sum of the amounts at 0..index (0 for index -1)."""
        i = index + 1
        total = 0
        tree = self.tree
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def first_above(self, target: int) -> int:
        """The smallest index whose prefix sum exceeds `target` (`size` if none); the amounts
        must not be negative."""
        pos = 0
        step = 1 << self.size.bit_length()
        tree = self.tree
        size = self.size
        while step:
            nxt = pos + step
            if nxt <= size and tree[nxt] <= target:
                pos = nxt
                target -= tree[nxt]
            step >>= 1
        return pos

    def first_at_least(self, target: int) -> int:
        """The smallest index whose prefix sum reaches `target` (`size` if none)."""
        return self.first_above(target - 1)


def capacity_repair(cluster: Cluster, running: list[Job]) -> tuple[list[Job], list[Job]]:
    """Rule 1 after a capacity cut: evict the least important running jobs until usage fits,
    then give back the most important of them that still fit. Returns (kept, evicted)."""
    cap = cluster.cap
    order = sorted(running, key=importance_key)
    vecs = dict(zip((job.id for job in order), cluster.vectors(order), strict=True))
    used = cluster.sum_vecs(vecs.values())
    removed: list[Job] = []
    while not fits(used, cap):
        job = order.pop()
        removed.append(job)
        used = vsub(used, vecs[job.id])
    evicted: list[Job] = []
    for job in reversed(removed):  # most important first
        with_job = vadd(used, vecs[job.id])
        if fits(with_job, cap):
            used = with_job
            order.append(job)
        else:
            evicted.append(job)
    return order, evicted


class _Level:
    """One running priority level, built when a preemption first needs its jobs: the jobs in
    importance order and one Fenwick tree per kind over their amounts (victims set to 0)."""

    __slots__ = ("jobs", "out", "plain", "trees", "used_kinds", "vecs")

    def __init__(self, cluster: Cluster, jobs: list[Job]) -> None:
        jobs = sorted(jobs, key=importance_key)
        columns = cluster.columns(jobs)
        self.jobs = jobs
        self.vecs = list(zip(*columns, strict=True)) if columns else [()] * len(jobs)
        # A negative amount (only in a corrupt state) breaks the searches: plain loops then.
        self.plain = any(min(column, default=0) < 0 for column in columns)
        self.trees = [Fenwick(column) for column in columns]
        self.out: set[int] = set()  # indices of the victims taken from this level
        # The kinds this level holds any of: the others never stop a give-back.
        self.used_kinds = [k for k, column in enumerate(columns) if any(column)]


class Walk:
    """The preemption walk over one cluster state (see the module docstring).

    After `run`: `victims` maps every running job evicted and still out to the preemptor that
    began its chain; `came_back` holds the victims the walk started again (they never left);
    `admitted` lists the pending jobs it started, in walk order.
    """

    def __init__(
        self,
        cluster: Cluster,
        usage: Usage,
        pending: Sequence[Job],
        rows: Sequence[Row | None],
    ) -> None:
        """`usage` (the running set) satisfies rule 1; `rows` are `cluster.rows(pending)`."""
        self.cluster = cluster
        self.usage = usage
        self.level_sums: dict[int, Vec] = dict(usage.by_priority)
        # Free room per kind (capacity - running), kept in place as the walk goes.
        used = cluster.sum_vecs(self.level_sums.values())
        self.free = [c - u for c, u in zip(cluster.cap, used, strict=True)]
        # Levels ascending, for the victim searches (one tree per kind over their sums).
        self.ascending = sorted(self.level_sums)
        self.level_index = {prio: i for i, prio in enumerate(self.ascending)}
        kinds = range(len(cluster.kinds))
        self.level_trees = [Fenwick([self.level_sums[p][k] for p in self.ascending]) for k in kinds]
        self.plain_levels = any(min(v, default=0) < 0 for v in self.level_sums.values())
        self.levels: dict[int, _Level] = {}
        self.pending = pending
        self.rows = rows
        self.victims: dict[int, int] = {}
        self.victim_jobs: dict[int, Job] = {}
        self.came_back: set[int] = set()
        self.admitted: list[Job] = []
        self.steps = 0  # counted work, reported with the decision

    # -- the walk ----------------------------------------------------------------------------

    def run(self) -> Walk:
        cluster = self.cluster
        streams: dict[Row | None, list[Job]] = {}
        for job, row in zip(self.pending, self.rows, strict=True):
            group = streams.get(row)
            if group is None:
                streams[row] = [job]
            else:
                group.append(job)
        stream_rows: list[Row] = [row for row in streams if cluster.row_runs(row)]  # type: ignore[misc]
        # One row is one priority: queue order within it is (submitted, id).
        stream_jobs = [sorted(streams[row], key=_SUBMITTED_ID) for row in stream_rows]
        stream_vecs = [row[1:] for row in stream_rows]
        next_index = [1] * len(stream_rows)
        heap: list[tuple[QueueKey, int, Job]] = [
            (queue_key(jobs[0]), si, jobs[0]) for si, jobs in enumerate(stream_jobs)
        ]
        heapq.heapify(heap)
        descending = self.ascending[::-1]
        pointer = 0
        free = self.free
        room = list(cluster.cap)  # room_for(the current priority): capacity - held(>= it)
        kinds = range(len(room))
        blocked: set[Row] = set()
        victim_vecs: dict[int, Vec] = {}
        victims = self.victims
        steps = len(heap)
        pop, push = heapq.heappop, heapq.heappush
        while heap:
            steps += 1
            _, si, job = pop(heap)
            prio = job.priority
            while pointer < len(descending) and descending[pointer] >= prio:
                for k, amount in enumerate(self.level_sums[descending[pointer]]):
                    room[k] -= amount
                pointer += 1
            if si >= 0:
                vec = stream_vecs[si]
                row = stream_rows[si]
            else:
                vec = victim_vecs[job.id]
                row = (prio, *vec)
            if row in blocked:
                continue  # a stream is dropped whole; a victim stays out
            if not fits(vec, free):
                if not fits(vec, room):
                    blocked.add(row)
                    continue
                root = victims.pop(job.id, job.id)
                for victim, victim_vec in self.choose_victims(prio, vec):
                    steps += 1
                    victims[victim.id] = root
                    self.victim_jobs[victim.id] = victim
                    victim_vecs[victim.id] = victim_vec
                    push(heap, ((-victim.priority, victim.submitted, victim.id), -1, victim))
            # Start it (at the current priority: it counts in room from now on).
            for k in kinds:
                free[k] -= vec[k]
                room[k] -= vec[k]
            if si < 0:
                victims.pop(job.id, None)
                self.came_back.add(job.id)
            else:
                self.admitted.append(job)
                index = next_index[si]
                jobs = stream_jobs[si]
                if index < len(jobs):
                    next_index[si] = index + 1
                    push(heap, (queue_key(jobs[index]), si, jobs[index]))
        self.steps = steps
        return self

    # -- victims -----------------------------------------------------------------------------

    def _level(self, prio: int) -> _Level:
        level = self.levels.get(prio)
        if level is None:
            level = self.levels[prio] = _Level(self.cluster, self.usage.level(prio))
        return level

    def choose_victims(self, prio: int, vec: Vec) -> list[tuple[Job, Vec]]:
        """Victims for a preemptor of priority `prio` and requests `vec`, which fits in its
        room_for but not in free: remove every lower level, give back the most important
        first while the preemptor still fits (see the module docstring)."""
        free = self.free
        excess = [need - have for need, have in zip(vec, free, strict=True)]
        top = bisect_left(self.ascending, prio)  # the levels below the preemptor: [0, top)
        victims: list[tuple[Job, Vec]] = []
        trees = self.level_trees
        while top > 0:
            short = [(k, e) for k, e in enumerate(excess) if e > 0]
            if not short:
                break
            # The first level from the top that cannot be given back whole: for each kind
            # short, the lowest level whose sum with everything below reaches the excess.
            if self.plain_levels:
                star = self._plain_victim_level(top, excess)
            else:
                star = min(max(trees[k].first_at_least(e) for k, e in short), top - 1)
            level_prio = self.ascending[star]
            level = self._level(level_prio)
            # Room for this level's jobs, in the kinds it holds: capacity minus everything
            # kept above it (free - the preemptor + all the levels up to it).
            room = {k: free[k] - vec[k] + trees[k].prefix(star) for k in level.used_kinds}
            if self._give_back(level_prio, level, room, excess, victims):
                break
            top = star
        return victims

    def _plain_victim_level(self, top: int, excess: list[int]) -> int:
        below = [0] * len(excess)
        for star in range(top):
            below = [
                b + s for b, s in zip(below, self.level_sums[self.ascending[star]], strict=True)
            ]
            if all(b >= e for b, e in zip(below, excess, strict=True)):
                return star
        return top - 1

    def _give_back(
        self,
        prio: int,
        level: _Level,
        room: dict[int, int],
        excess: list[int],
        victims: list[tuple[Job, Vec]],
    ) -> bool:
        """Walk the level most important first: a job that fits in `room` (per kind the level
        holds) is given back, one that does not becomes a victim, until the victims cover
        `excess` (True) or the level ends (False). `room` and `excess` change in place."""
        size = len(level.jobs)
        if level.plain:
            for index, job_vec in enumerate(level.vecs):
                if index in level.out:
                    continue
                if all(job_vec[k] <= have for k, have in room.items()):
                    for k in room:
                        room[k] -= job_vec[k]
                    continue
                self._take(prio, level, index, excess, victims)
                if max(excess) <= 0:
                    return True
            return False
        trees = level.trees
        start = 0
        while start < size:
            stop = size
            base: dict[int, int] = {}
            for k, have in room.items():
                tree = trees[k]
                base[k] = below = tree.prefix(start - 1)
                stop = min(stop, tree.first_above(have + below))
            if stop >= size:
                return False
            for k in room:
                room[k] -= trees[k].prefix(stop - 1) - base[k]
            self._take(prio, level, stop, excess, victims)
            if max(excess) <= 0:
                return True
            start = stop + 1
        return False

    def _take(
        self,
        prio: int,
        level: _Level,
        index: int,
        excess: list[int],
        victims: list[tuple[Job, Vec]],
    ) -> None:
        """Evict the level's job at `index`: its amounts leave the trees and free room."""
        level.out.add(index)
        vec = level.vecs[index]
        position = self.level_index[prio]
        free = self.free
        for k, amount in enumerate(vec):
            if amount:
                level.trees[k].add(index, -amount)
                self.level_trees[k].add(position, -amount)
                free[k] += amount
                excess[k] -= amount
        self.level_sums[prio] = vsub(self.level_sums[prio], vec)
        victims.append((level.jobs[index], vec))


def walk(
    cluster: Cluster, usage: Usage, pending: Sequence[Job], rows: Iterable[Row | None]
) -> Walk:
    """Run the preemption walk (see `Walk`)."""
    return Walk(cluster, usage, pending, list(rows)).run()
