"""Rule 6 and rule 8: the queue in order, with a reason for every pending deployment, in words
and as data (`Wait`), and the refusal of requests that could never run (`infeasible`).

Queue order is priority descending, then submission ascending, then id. A reason names the
resource most short of the deployment's room_for (relative to capacity), how much it needs,
how much is free and how much deployments of at least its priority hold, and, for a preempted
or repacked one, who sent it back (docs/scheduling.md, "Pending reasons"). Amounts are written
by `app.quantities`, the same formatter as every page.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate, compress, count, repeat
from operator import attrgetter, itemgetter, le, mul, neg, sub
from typing import NamedTuple

from app.quantities import format_amount

from .types import Job, QueueEntry, Wait
from .vectors import Cluster, Rooms, Row, Usage, Vec, vsub

_PRIORITY = attrgetter("priority")
_SUBMITTED_ID = attrgetter("submitted", "id")
_ID = attrgetter("id")
_PREEMPTED_BY = attrgetter("preempted_by")
_FIRST = itemgetter(0)
_SECOND = itemgetter(1)


def _row_priority(pair: tuple[Row, int]) -> int:
    return pair[0][0]


def in_queue_order(jobs: Iterable[Job]) -> list[Job]:
    """`sorted(jobs, key=(-priority, submitted, id))` with C-level keys: two stable sorts (the
    second, by priority descending, keeps the submitted/id order within a priority)."""
    ordered = sorted(jobs, key=_SUBMITTED_ID)
    ordered.sort(key=_PRIORITY, reverse=True)
    return ordered


def infeasible(capacity: Mapping[str, int], requests: Mapping[str, int]) -> str | None:
    """Rule 8: why `requests` could never run on this cluster, or None if it fits when empty.

    Invariant: returns None exactly when the request names at least one positive amount, no
    negative amount, and every positive amount is of a kind the cluster has and at most its
    capacity, i.e. exactly when the job would fit in an empty cluster.
    """
    found = _infeasible(capacity, requests)
    return None if found is None else found[1]


def _infeasible(
    capacity: Mapping[str, int], requests: Mapping[str, int]
) -> tuple[str | None, str] | None:
    """(the kind at fault or None, why) or None; see `infeasible`."""
    if not any(amount > 0 for amount in requests.values()):
        return None, "requests nothing: ask for a positive amount of at least one resource"
    for kind in sorted(requests):
        amount = requests[kind]
        if amount < 0:
            return kind, f"{kind} cannot be negative"
        if amount == 0:
            continue
        if kind not in capacity:
            return kind, f"this cluster has no {kind}"
        if amount > capacity[kind]:
            return kind, (
                f"needs {_named(kind, amount)} but the cluster has only "
                f"{format_amount(kind, capacity[kind])} in total"
            )
    return None


def _are(amount: str) -> str:
    return "is" if amount.startswith("1 ") else "are"


def _named(kind: str, base: int) -> str:
    """An amount that names its kind: "2 gpu", "500m cpu", "2 cpu cores", "3 GiB of ram"."""
    text = format_amount(kind, base)
    if kind in text:
        return text
    if kind == "cpu":  # "1 core", "1.5 cores"
        number, unit = text.split(" ", 1)
        return f"{number} cpu {unit}"
    return f"{text} of {kind}"


class Holders:
    """Which running deployments hold a kind, for `Wait.blocking_ids`: per (priority, kind),
    those of at least that priority holding a positive amount, largest first (ties by id).

    It works per distinct row (priority and requests) of the final running set, and answers
    every priority of the queue for a kind in one sweep (see `_sweep`).
    """

    __slots__ = ("_added", "_found", "_leaving", "_limit", "_live", "_removed", "_sizes",
                 "_sorted", "_thresholds", "_usage")  # fmt: skip

    def __init__(
        self,
        cluster: Cluster,
        usage: Usage,
        leaving: Sequence[Job],
        added: Sequence[Job],
        limit: int,
    ) -> None:
        """The final running set: `usage`'s jobs but those in `leaving`, plus `added`."""
        self._limit = max(0, limit)
        self._usage = usage
        self._leaving = {job.id for job in leaving}
        self._removed = Counter(cluster.rows(leaving))
        self._added: dict[Row | None, list[int]] = {}
        for job, row in zip(added, cluster.rows(added), strict=True):
            self._added.setdefault(row, []).append(job.id)
        # How many jobs of each row run at the end.
        sizes = dict(usage.counts)
        for row, gone in self._removed.items():
            sizes[row] = sizes.get(row, 0) - gone  # type: ignore[index]
        for row, ids in self._added.items():
            if row is not None:
                sizes[row] = sizes.get(row, 0) + len(ids)
        self._sizes = sizes
        # The rows that run at the end, priority descending, and how many jobs have each.
        self._live: tuple[list[Row], list[int], list[tuple[int, ...]]] | None = None
        self._sorted: dict[Row, list[int]] = {}  # row -> its final ids, sorted
        self._thresholds: list[int] = []
        self._found: dict[tuple[int, int], tuple[tuple[int, ...], int]] = {}

    def _ids_of(self, row: Row) -> list[int]:
        """The row's ids in the final running set, ascending."""
        ids = self._sorted.get(row)
        if ids is None:
            ids = self._usage.ids_of(row) if row in self._usage.counts else []
            if self._removed.get(row) or row in self._added:
                ids = [i for i in ids if i not in self._leaving]
                ids.extend(self._added.get(row, ()))
            ids.sort()  # in place: the usage's own list keeps its members, in id order
            self._sorted[row] = ids
        return ids

    def expect(self, priorities: Iterable[int]) -> None:
        """The priorities reasons will ask about (those of the pending jobs)."""
        self._thresholds = sorted(set(priorities), reverse=True)

    def of(self, prio: int, k: int) -> tuple[tuple[int, ...], int]:
        """(ids of the largest holders of kind k among priority >= prio, how many more)."""
        found = self._found.get((prio, k))
        if found is None:
            self._sweep(k, prio)
            found = self._found[(prio, k)]
        return found

    def _sweep(self, k: int, prio: int) -> None:
        """Answer `of(p, k)` for every expected priority p at once.

        The rows holding kind k, by priority (highest first), are read in segments, one per
        threshold: a bounded heap keeps the best holders so far, and each threshold reads it
        once the rows of at least its priority are in. Only rows at least as large as the
        heap's smallest can enter it, so a segment is filtered (in C) before the loop; how
        many hold the kind is a prefix sum. O(rows + thresholds log rows) in C, plus the
        few rows that reach the heap."""
        if self._live is None:
            live = [(row, size) for row, size in self._sizes.items() if size > 0]
            live.sort(key=_row_priority, reverse=True)
            rows = list(map(_FIRST, live))
            # Per column of the rows (priority, then each kind's amounts), in C.
            columns = list(zip(*rows, strict=True)) if rows else []
            self._live = (rows, list(map(_SECOND, live)), columns)
        live_rows, live_sizes, columns = self._live
        thresholds = sorted({*self._thresholds, prio}, reverse=True)
        amount_of = itemgetter(k + 1)
        holding = columns[k + 1] if columns else ()  # amounts are >= 0: held when truthy
        rows = list(compress(live_rows, holding))
        held_upto = list(accumulate(compress(live_sizes, holding)))
        # Priorities negated: ascending, for bisect.
        negated = list(map(neg, compress(columns[0], holding))) if columns else []
        limit = self._limit
        kept: list[tuple[int, int]] = []  # (amount, -id): the smallest is the worst kept
        index = 0
        found: tuple[tuple[int, ...], int] = ((), 0)
        for threshold in thresholds:
            end = bisect_right(negated, -threshold)  # the rows of priority >= threshold
            if end > index:
                if limit:
                    segment = rows[index:end]
                    if len(kept) == limit:
                        worst = kept[0][0]
                        segment = list(
                            compress(segment, map(le, repeat(worst), map(amount_of, segment)))
                        )
                    segment.sort(key=amount_of, reverse=True)
                    for row in segment:
                        amount = row[k + 1]
                        if len(kept) == limit and amount < kept[0][0]:
                            break  # nor would any later (smaller) row's
                        for job_id in self._ids_of(row)[:limit]:
                            entry = (amount, -job_id)
                            if len(kept) < limit:
                                heapq.heappush(kept, entry)
                            elif entry > kept[0]:
                                heapq.heapreplace(kept, entry)
                            else:
                                break
                index = end
                best = tuple(-negative for _, negative in sorted(kept, reverse=True))
                found = (best, held_upto[end - 1] - len(best))
            self._found[(threshold, k)] = found


def build_queue(
    cluster: Cluster,
    by_priority: Mapping[int, Vec],
    holders: Holders,
    pending: Sequence[Job],
    sent_back: Mapping[int, int],
    priorities: Callable[[set[int]], Mapping[int, int]],
    rows: Sequence[Row | None] | None = None,
) -> list[QueueEntry]:
    """Every pending job of the final state, in queue order, with its reason.

    `by_priority` sums the final running set per priority, and `holders` reads it; `sent_back`
    maps the jobs this decision preempted or repacked to who they made room for (the others'
    `preempted_by` stands); `priorities(ids)` gives the priorities of those senders. Reasons
    are computed once per distinct (priority, requests, sender). `rows`:
    `cluster.rows(pending)`, when the caller has it.
    """
    if not pending:
        return []
    if rows is None:
        ordered = in_queue_order(pending)
        rows = cluster.rows(ordered)
    else:  # the same order, on indices, so the rows follow
        keys = list(map(_SUBMITTED_ID, pending))
        order = sorted(range(len(pending)), key=keys.__getitem__)
        order.sort(key=list(map(_PRIORITY, pending)).__getitem__, reverse=True)
        ordered = list(map(pending.__getitem__, order))
        rows = list(map(rows.__getitem__, order))
    rooms = Rooms(cluster, by_priority)
    free = vsub(cluster.cap, cluster.sum_vecs(by_priority.values()))
    if sent_back:
        senders = [sent_back.get(job.id, job.preempted_by) for job in ordered]
    else:
        senders = list(map(_PREEMPTED_BY, ordered))
    if None in rows:  # a job that can never run here: its own reason (rule 8)
        keys = [
            (row, by) if row is not None else (job.id, by)
            for job, row, by in zip(ordered, rows, senders, strict=True)
        ]
    else:
        keys = list(zip(rows, senders, strict=True))
    # One reason per distinct key, for the first job having it; then every entry in C.
    first = dict(zip(reversed(keys), reversed(ordered), strict=True))
    senders_of = priorities({by for _, by in first if by is not None})
    holders.expect(job.priority for job in first.values())
    shortfalls: dict[object, _Shortfall | None] = {}
    said: dict[tuple[int, int, int], _Shortfall] = {}
    found = {
        key: reason(
            cluster,
            job,
            free,
            rooms.room(job.priority),
            key[1],
            senders_of,
            holders,
            shortfalls,
            key[0] if isinstance(key[0], tuple) else None,
            said,
        )
        for key, job in first.items()
    }
    results = list(map(found.__getitem__, keys))
    return list(
        map(
            tuple.__new__,
            repeat(QueueEntry),
            zip(
                map(_ID, ordered),
                count(1),
                map(itemgetter(0), results),
                map(itemgetter(1), results),
            ),
        )
    )


def reason(
    cluster: Cluster,
    job: Job,
    free: Vec,
    room: Vec,
    sent_back_by: int | None,
    priority_of: Mapping[int, int],
    holders: Holders,
    shortfalls: dict[object, _Shortfall | None] | None = None,
    row: Row | None = None,
    said: dict[tuple[int, int, int], _Shortfall] | None = None,
) -> tuple[str, Wait]:
    """The reason text and the `Wait` of one pending job in the final state. `shortfalls`
    caches what does not depend on the sender, per row, across the jobs of a queue; `row` is
    the job's row from `cluster.rows`, when the caller has it; `said` caches shortfalls per
    (priority, kind, amount needed), which is all their words depend on."""
    if row is not None:
        vec = row[1:] if cluster.row_runs(row) else None
    else:
        vec = cluster.pending_vec(job.requests)
        row = None if vec is None else (job.priority, *vec)
    if vec is None:
        fault = _infeasible(cluster.as_map(cluster.cap), job.requests)
        kind, text = fault if fault is not None else (None, "cannot run on this cluster")
        index = cluster.kinds.index(kind) if kind in cluster.kind_set else -1
        wait = Wait(
            "infeasible",
            kind,
            job.requests.get(kind, 0) if kind is not None else 0,
            free[index] if index >= 0 else 0,
            cluster.cap[index] - room[index] if index >= 0 else 0,
            job.priority,
            message=text,
        )
        return text, wait
    short = shortfalls.get(row, _UNKNOWN) if shortfalls is not None else _UNKNOWN
    if short is _UNKNOWN:
        short = _shortfall(cluster, job.priority, vec, free, room, holders, said)
        if shortfalls is not None:
            shortfalls[row] = short
    if short is None:
        return "waiting to be scheduled", Wait("blocked", None, 0, 0, 0, job.priority)
    assert isinstance(short, _Shortfall)
    if sent_back_by is not None:
        prio = priority_of.get(sent_back_by)
        cause = "repacked" if prio == job.priority else "preempted"
        who = f"deployment #{sent_back_by}" + (f" (priority {prio})" if prio is not None else "")
        verb = "repacked to fit" if cause == "repacked" else "preempted by"
        text = f"{verb} {who}; restarts by itself {short.restarts}"
        wait = Wait(
            cause,
            short.kind,
            short.needed,
            short.free,
            short.held,
            job.priority,
            short.ids,
            short.more,
            sent_back_by,
            prio,
        )
        return text, wait
    return short.text, short.wait


class _Shortfall(NamedTuple):
    """What a pending row lacks: the kind most short of its room_for and the numbers."""

    kind: str
    needed: int
    free: int
    held: int
    ids: tuple[int, ...]
    more: int
    text: str  # the reason of a job nobody sent back
    restarts: str  # "once 4 cpu cores are free"
    wait: Wait


_UNKNOWN: object = object()


def _shortfall(
    cluster: Cluster,
    prio: int,
    vec: Vec,
    free: Vec,
    room: Vec,
    holders: Holders,
    said: dict[tuple[int, int, int], _Shortfall] | None = None,
) -> _Shortfall | None:
    # Name the kind most short of room, relative to capacity: (need - room) / cap, compared
    # exactly as (need - room) * L / cap, the first such kind on ties.
    cap = cluster.cap
    shorts = list(map(mul, map(sub, vec, room), cluster.weights))
    most = max(shorts)
    pick = shorts.index(most) if most > 0 else -1
    if pick < 0:  # only in a state breaking rule 3: say what is missing in free
        pick = next((k for k, (n, f) in enumerate(zip(vec, free, strict=True)) if n > f), -1)
    if pick < 0:
        return None
    needed = vec[pick]
    if said is not None:
        known = said.get((prio, pick, needed))
        if known is not None:
            return known
    kind = cluster.kinds[pick]
    ids, more = holders.of(prio, pick)
    held = cap[pick] - room[pick]
    amount = _named(kind, needed)
    text = (
        f"needs {amount}: {format_amount(kind, free[pick])} free, "
        f"{format_amount(kind, held)} held by deployments of priority {prio} or higher"
    )
    wait = Wait("blocked", kind, needed, free[pick], held, prio, ids, more)
    restarts = f"once {amount} {_are(amount)} free"
    short = _Shortfall(kind, needed, free[pick], held, ids, more, text, restarts, wait)
    if said is not None:
        said[(prio, pick, needed)] = short
    return short
