"""One decision, step by step: `schedule(state, event) -> Decision` (docs/scheduling.md).

  0. Fast paths, which assume the state before a Submit or Delete satisfies rules 1-3 (as
     every Decision leaves it; a Reconcile repairs a state that may not, e.g. after the
     capacity of a cluster changed):
       - Submit of a job that fits in free: it starts; nothing else can change.
       - Submit of a job that does not fit in its room_for: it queues; nothing else changes
         (unless the cluster repacks: the new job may be worth moving work for).
       - Delete of pending jobs only: free and every room_for are unchanged.
  1. Rule 1 repair (`preemption.capacity_repair`), when running work exceeds capacity.
  2. Admissions without evicting anyone (`search`): the best admitted set among the pending
     jobs, running work fixed. If none satisfies rule 3, some pending job needs room that only
     evicting lower-priority work can give:
  3. the preemption walk (`preemption.walk`) chooses the victims, and the admissions are
     searched again with every surviving running job fixed and the victims free to come back
     (the walk's own outcome is one of the candidates, so a solution exists).
  4. With the cluster's repack on, the admissions are searched once more with the running work
     it may move added to the choice (each move costing the threshold).
  5. The queue, in order, with every pending job's reason (`queue`).

Pure: the state and event are not mutated, no clock is read, equal inputs give equal
Decisions. Cost: O(n k) to read the state, O(n log n) for the queue and the walk; the
admission search is bounded by the state's work budget (its fallback keeps rules 1-6).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from itertools import compress, islice
from operator import attrgetter, not_

from .preemption import capacity_repair, importance_key, walk
from .queue import Holders, build_queue, in_queue_order
from .search import EVICTED, PENDING, RUNNING, VICTIM, Class, Problem, Work, tie_key
from .types import ClusterState, Decision, Delete, Event, Job, Reconcile, Repack, Submit
from .vectors import Cluster, Rooms, Row, Usage, Vec, adjusted, fit_count, fits, vsub

_ID = attrgetter("id")
_SUBMITTED_ID = attrgetter("submitted", "id")
# The repack's objective: U * L times this, plus the threshold's worth for each item kept
# (basis points of mean utilization: 10_000 is 100%).
_BASIS = 10_000


def schedule(state: ClusterState, event: Event) -> Decision:
    """Decide what runs after `event` on the cluster described by `state` (jobs before it).

    Invariants: the result satisfies rules 1-6 of docs/scheduling.md and rule 7 as promised
    there (exact unless `Decision.exact` is False); final running = (running - deleted -
    preempted - evicted - repacked) + started; `queue` lists every pending job once, positions
    1..n in queue order; `used` covers every capacity kind.
    """
    cluster = Cluster(state.capacity)
    running: list[Job] = list(state.running)
    pending: list[Job] = list(state.pending)
    submitted: Job | None = None
    repack = state.repack if state.repack and state.repack.evictions_left > 0 else None
    if isinstance(event, Submit):
        submitted = event.job
        new_id = submitted.id
        if new_id in map(_ID, running) or new_id in map(_ID, pending):
            raise ValueError(f"deployment #{new_id} is already in this cluster")
    elif isinstance(event, Delete):
        pending = _without(pending, event.ids)
        kept = _without(running, event.ids)
        if kept is running:
            # Only pending jobs left: free and every room_for are unchanged.
            return _unchanged(cluster, state, Usage(cluster, running), pending, None)
        running = kept
    elif not isinstance(event, Reconcile):
        raise TypeError(f"unknown event {event!r}")

    usage = Usage(cluster, running)
    must_preempt = False
    if submitted is not None:
        vec = cluster.pending_vec(submitted.requests)
        if vec is None:
            return _unchanged(cluster, state, usage, [*pending, submitted], None)
        if fits(vec, vsub(cluster.cap, usage.total(cluster))):
            return _unchanged(cluster, state, usage, pending, submitted)
        # The state before was valid, so only the submitted job can fit its room_for and
        # nothing fits in free: eviction is needed exactly when the submitted job fits.
        must_preempt = fits(vec, Rooms(cluster, usage.by_priority).room(submitted.priority))
        if not must_preempt and repack is None:
            return _unchanged(cluster, state, usage, [*pending, submitted], None)
        pending.append(submitted)
    ids = usage.ids + [job.id for job in pending]
    if len(set(ids)) != len(ids):
        raise ValueError("a deployment id appears twice in the cluster state")
    return _general(cluster, state, usage, pending, must_preempt, repack)


def _without(jobs: list[Job], gone: AbstractSet[int]) -> list[Job]:
    """`jobs` but those whose id is in `gone`: `jobs` itself when none is (passes in C)."""
    ids = list(map(_ID, jobs))
    if gone.isdisjoint(ids):
        return jobs
    return list(compress(jobs, map(not_, map(gone.__contains__, ids))))


def _unchanged(
    cluster: Cluster,
    state: ClusterState,
    usage: Usage,
    pending: list[Job],
    started: Job | None,
) -> Decision:
    """Decision for a fast path: nothing moves but `started`, if any."""
    added = [started] if started is not None else []
    by_priority = adjusted(cluster, usage.by_priority, (), added)
    lookup = _Lookup((usage.jobs, pending, added))
    holders = Holders(cluster, usage, (), added, state.blockers_listed)
    return Decision(
        started=[started.id] if started is not None else [],
        queue=build_queue(cluster, by_priority, holders, pending, {}, lookup),
        used=cluster.as_map(cluster.sum_vecs(by_priority.values())),
    )


class _Lookup:
    """Priorities of the deployments asked for, found in whole-list passes over the jobs."""

    __slots__ = ("_groups",)

    def __init__(self, groups: Sequence[Sequence[Job]]) -> None:
        self._groups = groups

    def __call__(self, wanted: set[int]) -> dict[int, int]:
        if not wanted:
            return {}
        table: dict[int, int] = {}
        for group in self._groups:
            for job in compress(group, map(wanted.__contains__, map(_ID, group))):
                table[job.id] = job.priority
        return table


def _general(
    cluster: Cluster,
    state: ClusterState,
    usage: Usage,
    pending: list[Job],
    must_preempt: bool,
    repack: Repack | None,
) -> Decision:
    """Steps 1-5 of the module docstring. Ids are unique across running and `pending`."""
    everyone = (usage.jobs, pending)
    work = Work(state.work_budget)
    exact = True
    category: dict[int, int] = {}  # running jobs that are part of the choice -> category
    roots: dict[int, int] = {}  # victim id -> the preemptor that began its chain
    if not fits(usage.total(cluster), cluster.cap):
        kept, evicted = capacity_repair(cluster, usage.jobs)
        usage = Usage(cluster, kept)
        pending = [*pending, *evicted]
        category.update((job.id, EVICTED) for job in evicted)
    was_running = set(category)  # jobs evicted by the repair (running before)
    rows = cluster.rows(pending)
    fixed = usage.by_priority  # sums of the running work that stays put
    leaving: list[Job] = []  # running jobs part of the choice (victims, moved ones)
    chosen: list[tuple[Job, int]] | None = None
    if not must_preempt:
        chosen, step_exact = _admissions(cluster, fixed, pending, rows, category, [], work)
        exact = exact and step_exact
    if chosen is None:
        done = walk(cluster, usage, pending, rows)
        work.spent += done.steps
        out = [done.victim_jobs[v] for v in done.victims]
        for victim in out:
            root = done.victims[victim.id]
            roots[victim.id] = root
            # A chain begun by a job the repair evicted is part of the repair (no preemptor).
            category[victim.id] = EVICTED if root in was_running else VICTIM
        fixed = adjusted(cluster, fixed, out, ())
        leaving = out
        pending = [*pending, *out]
        rows = [*rows, *cluster.rows(out)]
        incumbent = [job.id for job in done.admitted]
        chosen, step_exact = _admissions(cluster, fixed, pending, rows, category, [incumbent], work)
        exact = exact and step_exact
        if chosen is None:  # cannot happen: the walk's own outcome satisfies every check
            raise AssertionError("no admission after the preemption walk")
    if repack is not None:
        moved = {job.id for job in leaving}
        stay = [job for job in usage.jobs if job.id not in moved]
        found = _repack(cluster, repack, fixed, stay, pending, rows, category, chosen, work)
        if found is not None:
            chosen, fixed, movable, step_exact = found
            exact = exact and step_exact
            leaving = [*leaving, *movable]
    return _decision(
        cluster, state, usage, everyone, fixed, leaving, pending, rows, chosen, category, roots,
        work, exact,
    )  # fmt: skip


def _repack(
    cluster: Cluster,
    repack: Repack,
    fixed: dict[int, Vec],
    stay: list[Job],
    pending: list[Job],
    rows: list[Row | None],
    category: dict[int, int],
    chosen: list[tuple[Job, int]],
    work: Work,
) -> tuple[list[tuple[Job, int]], dict[int, Vec], list[Job], bool] | None:
    """Step 4: the same choice with the running work a repack may move added to it: the
    running jobs in `stay` at a priority some queued job has, outside the cooldown. Returns
    (admissions, sums of what stays put, the movable jobs, exact) when a move is made."""
    queued_rows = set(rows)
    if category:  # only queued jobs (not victims, not evicted ones) can be repacked for
        queued_rows = {
            row for row, job in zip(rows, pending, strict=True) if job.id not in category
        }
    levels = {row[0] for row in queued_rows if cluster.row_runs(row)}  # type: ignore[index]
    movable = [j for j in stay if j.priority in levels and j.id not in repack.cooling]
    if not movable:
        return None
    base = adjusted(cluster, fixed, movable, ())
    with_movable = {**category, **dict.fromkeys((job.id for job in movable), RUNNING)}
    items = [*pending, *movable]
    item_rows = [*rows, *cluster.rows(movable)]
    incumbent = [*(job.id for job, _ in chosen), *(job.id for job in movable)]
    found, exact = _admissions(
        cluster, base, items, item_rows, with_movable, [incumbent], work, repack
    )
    if found is None:  # cannot happen: the incumbent (no move) satisfies every check
        return None
    kept = {job.id for job, _ in found}
    if all(job.id in kept for job in movable):
        return None
    category.update((job.id, RUNNING) for job in movable)
    return found, base, movable, exact


def _admissions(
    cluster: Cluster,
    fixed: Mapping[int, Vec],
    items: Sequence[Job],
    rows: Sequence[Row | None],
    category: Mapping[int, int],
    incumbents: Sequence[Sequence[int]],
    work: Work,
    repack: Repack | None = None,
) -> tuple[list[tuple[Job, int]] | None, bool]:
    """Rule 7 over `items` (pending jobs, and running ones named in `category`) with the
    running work summed per priority in `fixed` staying put: the admitted items with their
    categories, or None if rule 3 cannot hold without evicting someone; and whether the
    choice is exact. `incumbents` are sets of ids known to be valid choices."""
    rooms = Rooms(cluster, fixed)
    free0 = vsub(cluster.cap, cluster.sum_vecs(fixed.values()))
    if not items:
        return [], True
    # Per distinct row: a candidate (fits in free0), a threat (fits its base room only) or
    # blocked whatever is admitted (admissions only shrink room).
    candidate_rows: set[Row] = set()
    threats: list[tuple[int, Vec]] = []
    for row in dict.fromkeys(rows):
        if not cluster.row_runs(row):
            continue
        vec = row[1:]  # type: ignore[index]
        if fits(vec, free0):
            candidate_rows.add(row)
        elif fits(vec, rooms.room(row[0])):
            threats.append((row[0], vec))
    if not candidate_rows:
        return (None, True) if threats else ([], True)
    mask = list(map(candidate_rows.__contains__, rows))
    if repack is None and _surely_blocked(free0, rooms, Counter(compress(rows, mask)), threats):
        return None, True
    selected = list(compress(zip(items, rows, strict=True), mask))
    classes, everyone = _classes(cluster, selected, category, free0, repack)
    problem = Problem(
        cluster,
        free0,
        rooms.room,
        classes,
        threats,
        repack.evictions_left if repack is not None else 0,
        work,
        _BASIS if repack is not None else 1,
    )
    starts = [_counts_of(everyone, ids) for ids in incumbents]
    outcome = problem.solve([counts for counts in starts if counts is not None])
    if outcome.counts is None:
        return None, outcome.exact
    return problem.chosen(outcome.counts), outcome.exact


def _surely_blocked(
    free0: Vec,
    rooms: Rooms,
    candidates: Mapping[Row | None, int],
    threats: Iterable[tuple[int, Vec]],
) -> bool:
    """Is there a threat no admitted set can block (so eviction is certainly needed)?

    A threat t of priority p is blocked only if some kind k has t_k > room_for(p)_k - S_k, S
    counted at priorities >= p; S fits in free0 and holds only candidates, so S_k <=
    min(free0_k, all candidates >= p in k). When even that leaves t fitting, no S works: a
    quick, sufficient test that spares the search in the common case.
    """
    totals: dict[int, list[int]] = {}
    for row, count in candidates.items():
        acc = totals.setdefault(row[0], [0] * len(free0))  # type: ignore[index]
        for k in range(len(free0)):
            acc[k] += row[1 + k] * count  # type: ignore[index]
    for prio, vec in threats:
        most = [0] * len(free0)
        for level, acc in totals.items():
            if level >= prio:
                most = [m + a for m, a in zip(most, acc, strict=True)]
        room = rooms.room(prio)
        if all(min(f, m) <= r - t for f, m, r, t in zip(free0, most, room, vec, strict=True)):
            return True
    return False


def _classes(
    cluster: Cluster,
    selected: Sequence[tuple[Job, Row]],
    category: Mapping[int, int],
    free0: Vec,
    repack: Repack | None,
) -> tuple[list[Class], list[list[Job]]]:
    """The candidates grouped into classes (priority, requests, category), members in
    admission order, classes in queue order of their first member; and every member of each
    class in that order (a class stores only the first ones that fit together)."""
    groups: dict[tuple[Row, int], list[Job]] = {}
    for job, row in selected:
        key = (row, category.get(job.id, PENDING) if category else PENDING)
        group = groups.get(key)
        if group is None:
            groups[key] = [job]
        else:
            group.append(job)
    scale = _BASIS if repack is not None else 1
    bonus = repack.threshold_bp * len(cluster.kinds) * cluster.scale if repack else 0
    # Tie keys of every admissible member matter only where classes of one priority share
    # the queue, or at a priority with victims (their check reads them); elsewhere the
    # first member's key orders the class.
    per_level = Counter(row[0] for row, _ in groups)
    contested = {p for p, n in per_level.items() if n > 1}
    contested |= {row[0] for row, cat in groups if cat == VICTIM}
    classes = []
    ordered: list[list[Job]] = []
    for (row, cat), jobs in groups.items():
        vec = row[1:]
        if cat == RUNNING:
            jobs.sort(key=importance_key)
        else:
            jobs.sort(key=_SUBMITTED_ID)  # one priority: queue order
        take = fit_count(vec, free0, len(jobs))
        keyed = jobs[: take + 1] if row[0] in contested else jobs[:1]
        value = scale * cluster.value(vec) + (bonus if cat == RUNNING else 0)
        classes.append(
            Class(
                row[0],
                vec,
                cat,
                value,
                len(jobs),
                take,
                jobs[:take],
                [tie_key(job, cat) for job in keyed],
            )
        )
        ordered.append(jobs)
    order = sorted(range(len(classes)), key=lambda ci: classes[ci].keys[0])
    return [classes[ci] for ci in order], [ordered[ci] for ci in order]


def _counts_of(members: Sequence[Sequence[Job]], ids: Iterable[int]) -> list[int] | None:
    """The count vector of an admitted set given every class's members in order, or None
    when it is not each class's first members (then the search could not return it)."""
    wanted = set(ids)
    counts = []
    for jobs in members:
        x = 0
        while x < len(jobs) and jobs[x].id in wanted:
            x += 1
        if not wanted.isdisjoint(map(_ID, islice(jobs, x, None))):
            return None
        counts.append(x)
    return counts


def _decision(
    cluster: Cluster,
    state: ClusterState,
    usage: Usage,
    everyone: tuple[Sequence[Job], list[Job]],
    fixed: Mapping[int, Vec],
    leaving: list[Job],
    pending: list[Job],
    rows: list[Row | None],
    chosen: list[tuple[Job, int]],
    category: Mapping[int, int],
    roots: Mapping[int, int],
    work: Work,
    exact: bool,
) -> Decision:
    """Step 5: name what moved and build the queue (`rows`: `cluster.rows(pending)`)."""
    admitted = {job.id for job, _ in chosen}
    started = in_queue_order(job for job, cat in chosen if cat == PENDING)
    started_ids = {job.id for job in started}
    # Victims left out, attributed to the preemptor that began their chain if it started,
    # else to the first started job of higher priority (the search guarantees one); moved
    # ones to the first started job of their priority.
    by_priority_started = [(job.priority, job.id) for job in started]
    preempted: dict[int, int] = {}
    evicted: list[int] = []
    repacked: dict[int, int] = {}
    kept = list(map(admitted.__contains__, map(_ID, pending)))
    if any(kept):
        keep = [not x for x in kept]
        left = list(compress(pending, keep))
        left_rows = list(compress(rows, keep))
    else:
        left, left_rows = list(pending), list(rows)
    if category:
        for job in compress(left, map(category.__contains__, map(_ID, left))):
            cat = category[job.id]
            if cat == VICTIM:
                root = roots.get(job.id)
                if root in started_ids:
                    preempted[job.id] = root  # type: ignore[index]
                else:
                    preempted[job.id] = next(i for p, i in by_priority_started if p > job.priority)
            elif cat == EVICTED:
                evicted.append(job.id)
        for job in leaving:
            if category.get(job.id) == RUNNING and job.id not in admitted:
                repacked[job.id] = next(i for p, i in by_priority_started if p == job.priority)
                left.append(job)
                left_rows.extend(cluster.rows([job]))
    added = [job for job, _ in chosen]
    by_priority = adjusted(cluster, fixed, (), added)
    holders = Holders(cluster, usage, leaving, added, state.blockers_listed)
    return Decision(
        started=[job.id for job in started],
        preempted=preempted,
        queue=build_queue(
            cluster,
            by_priority,
            holders,
            left,
            {**preempted, **repacked},
            _Lookup(everyone),
            left_rows,
        ),
        used=cluster.as_map(cluster.sum_vecs(by_priority.values())),
        evicted=evicted,
        repacked=repacked,
        exact=exact,
        work=work.spent,
    )
