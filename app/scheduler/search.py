"""Rule 7: among the admissions rules 1-6 allow, the one with the largest U, ties going to the
set first in queue order (docs/scheduling.md, "Best packing" and "Exactness and the budget").

The running work that stays put ("fixed") is given; the search chooses how many members of
each class to admit. A class is a set of interchangeable items: same priority, same requests,
same category. Categories:

  PENDING   a queued job; admitting it starts it.
  VICTIM    a running job the preemption walk evicted; admitting it gives it back. Left out,
            it must stay justified: some pending job of strictly higher priority starts (rule
            5), and it does not fit in the room left by everything of higher priority, the
            fixed work of its own priority and the work of its own priority admitted ahead of
            it in queue order (rule 4: no victim could be given back).
  EVICTED   a running job the capacity repair evicted (rule 1); admitting it gives it back.
  RUNNING   a running job a repack may move (opt-in); left out, some pending job of its own
            priority must start, and each one left out costs the repack threshold.

Members of a class are admitted in order (queue order; for RUNNING, most important first), so
a solution is a count per class. The constraints, checked level by level from the highest
priority down (a level's checks are final once every class of at least its priority is
decided, since lower classes never enlarge its room):
  * capacity: the admitted work fits in free0 = capacity - fixed;
  * rule 3: every item left out, and every "threat" (a pending job that does not fit in free0
    but fits its base room), does not fit in base_room(p) - admitted(>= p), where
    base_room(p) = capacity - fixed(>= p);
  * the VICTIM and RUNNING conditions above, and at most `evictions_left` RUNNING left out.

Ties on U go to the admission first in queue order, class by class: with the classes in the
order their first (longest-waiting) member joined the queue, the one admitting more of the
first class where two admissions differ wins (docs/scheduling.md, "Ties").

Method, exact for up to EXACT_CLASS_LIMIT classes when it completes within the work budget:
  1. a depth-first branch and bound over the class counts (classes by priority, then value),
     seeded with the incumbents and greedy fills, pruning a node when an upper bound of every
     completion cannot beat the best value found: per kind, the admitted amount is at most
     what remains free and at most what the undecided classes could add; per kind that cannot
     hold all of that, a fractional knapsack of the classes using it; a Lagrangian bound with
     prices near the linear relaxation's duals; a node is also pruned when an item already
     left out at its level (or a threat there) would still fit whatever the level adds, and
     when an equivalent prefix was searched already (same depth, room left and facts the
     checks still need). It proves the best value V*;
  2. the tie-break: the same search with the classes in queue order of their first member,
     each taking its most first, asked for the first solution of value V*: the search meets
     the solutions in that order, so the first it meets is the answer.
Up to SINGLE_PASS_CLASSES classes step 2 alone runs, from the best incumbent. Beyond
EXACT_CLASS_LIMIT classes a bounded heuristic decides (greedy fills in four orders, a
drop-one-refill local search, then the exact search with what is left of HEURISTIC_WORK, or of
the whole budget for a repack), and
when the budget runs out the best valid solution found so far stands; every solution kept
passed the full check, so rules 1-6 hold whatever the budget.
"""

from __future__ import annotations

import contextlib
import math
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from operator import mul

from .types import Job
from .vectors import Cluster, Vec, fit_count, fits, vadd, vscale, vsub

PENDING, VICTIM, EVICTED, RUNNING = 0, 1, 2, 3
BEST, FIRST, LEX = 0, 1, 2  # what `Problem._search` looks for

# Rule 7 is exact when the candidates form at most this many classes and the search completes
# within the decision's work budget; beyond, a bounded heuristic (still checked) decides.
EXACT_CLASS_LIMIT = 20
# The branch and bound recurses once per class; beyond this many classes only the heuristic
# runs (the recursion stays far below Python's limit).
SEARCH_CLASS_LIMIT = 400

# Up to this many classes, one search in queue order decides; beyond, a search by value first
# proves the best U, then one in queue order breaks its ties (cheaper with many classes).
SINGLE_PASS_CLASSES = 6
# Work the heuristic beyond EXACT_CLASS_LIMIT classes may spend (of the decision's budget);
# a repack's may spend all that is left of it.
HEURISTIC_WORK = 2_000
# The Lagrangian bound of `_search` is set up once the search has visited this many nodes, with
# this many subgradient steps.
LAGRANGE_AFTER = 48
LAGRANGE_STEPS = 40

Key = tuple[int, int, int, int]  # (-priority, 0 running / 1 queued, time key, id)
Counts = list[int]


class OutOfWork(Exception):
    """The decision's work budget is spent."""


class Work:
    """Counted work of one decision against its budget (deterministic: never timed)."""

    __slots__ = ("limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, amount: int) -> None:
        self.spent += amount
        if self.spent > self.limit:
            raise OutOfWork

    @property
    def left(self) -> int:
        return self.limit - self.spent


def tie_key(job: Job, category: int) -> Key:
    """Queue order for queued items; running ones (kept first) before their priority's queue."""
    if category == RUNNING:
        started = job.started if job.started is not None else sys.maxsize
        return (-job.priority, 0, started, job.id)
    return (-job.priority, 1, job.submitted, job.id)


@dataclass(slots=True)
class Class:
    """Interchangeable items, `members` in admission order (their `keys` likewise).

    `count` is how many there are; `take` how many could be admitted together (all fit in
    free0); `members` holds the first `take`. `keys` holds their tie keys and one more when
    there are more (the first one left out, for the victim check) where other classes of the
    same priority share the queue or victims wait; elsewhere only the first member's.
    """

    prio: int
    vec: Vec
    category: int
    value: int  # objective per admitted member
    count: int
    take: int
    members: list[Job]
    keys: list[Key]


@dataclass(slots=True)
class Level:
    prio: int
    base_room: Vec
    classes: list[int]  # class indices at this priority
    threats: list[Vec]
    victims: list[int]
    running: list[int]
    queued: list[int]  # PENDING classes (their admissions are starts)


@dataclass(slots=True)
class Outcome:
    counts: Counts | None  # None: no admission satisfies the rules
    exact: bool


class Problem:
    """One admission choice (see the module docstring)."""

    def __init__(
        self,
        cluster: Cluster,
        free0: Vec,
        base_room: Callable[[int], Vec],
        classes: list[Class],
        threats: Iterable[tuple[int, Vec]],
        evictions_left: int,
        work: Work,
        usage_scale: int = 1,
    ) -> None:
        """`base_room(p)` is capacity - fixed(>= p); `threats` are (priority, vector) of the
        pending jobs that do not fit in free0 but fit their base room; `usage_scale` is the
        factor of U * L in every class's value (the repack adds a bonus per kept item)."""
        self.cluster = cluster
        self.usage_scale = usage_scale
        self.base_room = base_room
        self.threats = list(dict.fromkeys(threats))
        self.found: tuple[int, Counts] | None = None
        self.free0 = free0
        self.classes = classes
        self.evictions_left = evictions_left
        self.work = work
        levels: dict[int, Level] = {}

        def level_of(prio: int) -> Level:
            level = levels.get(prio)
            if level is None:
                level = levels[prio] = Level(prio, base_room(prio), [], [], [], [], [])
            return level

        for ci, cls in enumerate(classes):
            level = level_of(cls.prio)
            level.classes.append(ci)
            if cls.category == VICTIM:
                level.victims.append(ci)
            elif cls.category == RUNNING:
                level.running.append(ci)
            elif cls.category == PENDING:
                level.queued.append(ci)
        for prio, vec in self.threats:  # each distinct threat once
            level_of(prio).threats.append(vec)
        self.levels = [levels[p] for p in sorted(levels, reverse=True)]

    # -- evaluation --------------------------------------------------------------------------

    def value(self, counts: Sequence[int]) -> int:
        return sum(cls.value * x for cls, x in zip(self.classes, counts, strict=True))

    def level_ok(
        self,
        level: Level,
        counts: Sequence[int],
        s_ge: Vec,
        s_above: Vec,
        started_above: int,
        started_here: int,
    ) -> bool:
        """The checks of one level once every class of at least its priority is decided.

        `s_ge`, `s_above`: what is admitted at priorities >= and > the level's; `started_*`:
        how many PENDING items start above it and at it.
        """
        classes = self.classes
        room = vsub(level.base_room, s_ge)
        for threat in level.threats:
            if fits(threat, room):
                return False
        for ci in level.classes:
            cls = classes[ci]
            if counts[ci] < cls.count and fits(cls.vec, room):
                return False
        for ci in level.running:
            if counts[ci] < classes[ci].count and not started_here:
                return False  # a repack moves work only for work of its own priority
        for ci in level.victims:
            cls = classes[ci]
            x = counts[ci]
            if x >= cls.count:
                continue
            if not started_above:
                return False  # rule 5: a victim needs a strictly higher-priority start
            # Rule 4: the first victim left out must not fit beside everything of higher
            # priority and its own priority's work ahead of it in queue order.
            key = cls.keys[x]
            held = vsub(level.base_room, s_above)
            for cj in level.classes:
                other = classes[cj]
                taken = counts[cj]
                if taken and cj != ci:
                    if other.category != RUNNING:
                        taken = min(taken, bisect_left(other.keys, key))
                    held = vsub(held, vscale(other.vec, taken))
            if x:
                held = vsub(held, vscale(cls.vec, x))
            if fits(cls.vec, held):
                return False
        return True

    def _fits_all(self, counts: Sequence[int]) -> bool:
        used = self.cluster.zero
        for cls, x in zip(self.classes, counts, strict=True):
            used = vadd(used, vscale(cls.vec, x))
        return fits(used, self.free0)

    def check(self, counts: Sequence[int]) -> bool:
        """Every constraint of the module docstring, from scratch."""
        classes = self.classes
        used = self.cluster.zero
        for cls, x in zip(classes, counts, strict=True):
            if x < 0 or x > cls.take:
                return False
            if x:
                used = vadd(used, vscale(cls.vec, x))
        if not fits(used, self.free0):
            return False
        evictions = sum(
            cls.count - x for cls, x in zip(classes, counts, strict=True) if cls.category == RUNNING
        )
        if evictions > self.evictions_left:
            return False
        s_above = self.cluster.zero
        started_above = 0
        for level in self.levels:
            here = self.cluster.zero
            started_here = 0
            for ci in level.classes:
                if counts[ci]:
                    here = vadd(here, vscale(classes[ci].vec, counts[ci]))
                    if classes[ci].category == PENDING:
                        started_here += counts[ci]
            s_ge = vadd(s_above, here)
            if not self.level_ok(level, counts, s_ge, s_above, started_above, started_here):
                return False
            s_above = s_ge
            started_above += started_here
        return True

    # -- starting points ---------------------------------------------------------------------

    def greedy(self, order: Sequence[int]) -> Counts:
        counts = [0] * len(self.classes)
        rem = self.free0
        for ci in order:
            cls = self.classes[ci]
            take = fit_count(cls.vec, rem, cls.take)
            if take:
                counts[ci] = take
                rem = vsub(rem, vscale(cls.vec, take))
        return counts

    def repair(self, counts: Counts) -> Counts | None:
        """Restore rule 3 level by level (priority desc) in place, or None.

        At each level, while a left-out member of a class fits in the level's room, admit one,
        first dropping admitted members of strictly lower priority (latest class first) if
        free0 is short. A level is final once done: later changes are of lower priority and
        cannot enlarge its room. The other conditions are left to `check`.
        """
        classes = self.classes
        used = self.cluster.zero
        for cls, x in zip(classes, counts, strict=True):
            if x:
                used = vadd(used, vscale(cls.vec, x))
        if not fits(used, self.free0):
            return None
        s_ge = self.cluster.zero
        for level in self.levels:
            for ci in level.classes:
                if counts[ci]:
                    s_ge = vadd(s_ge, vscale(classes[ci].vec, counts[ci]))
            while True:
                self.work.spend(1 + len(level.classes))
                room = vsub(level.base_room, s_ge)
                for threat in level.threats:
                    if fits(threat, room):
                        return None
                need = -1
                for ci in level.classes:
                    cls = classes[ci]
                    if counts[ci] < cls.count and fits(cls.vec, room):
                        need = ci
                        break
                if need < 0:
                    break
                if counts[need] >= classes[need].take:
                    return None  # more of it would not fit in free0 anyway
                vec = classes[need].vec
                rem = vsub(self.free0, used)
                drop = len(classes) - 1
                while not fits(vec, rem):
                    while drop >= 0 and (counts[drop] == 0 or classes[drop].prio >= level.prio):
                        drop -= 1
                    if drop < 0:
                        return None
                    counts[drop] -= 1
                    used = vsub(used, classes[drop].vec)
                    rem = vadd(rem, classes[drop].vec)
                counts[need] += 1
                used = vadd(used, vec)
                s_ge = vadd(s_ge, vec)
        return counts

    def starts(self) -> list[Counts]:
        """Greedy fills in a few orders, repaired and checked: queue order (first-fit), largest
        value first within each priority, largest value first overall, and largest value per
        share of the scarcest free kind."""
        classes = self.classes
        queue_order = sorted(range(len(classes)), key=lambda i: classes[i].keys[0])
        by_prio_value = sorted(queue_order, key=lambda i: (-classes[i].prio, -classes[i].value))
        by_value = sorted(queue_order, key=lambda i: -classes[i].value)
        free0 = self.free0
        scarce = [
            max(
                (need * 10**6 // have if have > 0 else 10**12)
                for need, have in zip(cls.vec, free0, strict=True)
                if need > 0
            )
            for cls in classes
        ]
        by_scarce = sorted(
            queue_order, key=lambda i: -classes[i].value * 10**6 // max(1, scarce[i])
        )
        found = []
        for order in (queue_order, by_prio_value, by_value, by_scarce):
            self.work.spend(3 * len(classes))
            counts = self.repair(self.greedy(order))
            if counts is not None and self.check(counts):
                found.append(counts)
        return found

    # -- the exact search ----------------------------------------------------------------------

    def _plan(self, in_queue_order: bool = False) -> None:
        """What every search of this problem shares: the depth-first order (classes by
        priority, then value, largest first; or in queue order of their first member), per
        depth the levels whose checks become final there and the level it belongs to, and the
        classes' data in that order."""
        classes = self.classes
        n = len(classes)
        if in_queue_order:
            order = sorted(range(n), key=lambda ci: classes[ci].keys[0])
        else:
            order = sorted(range(n), key=lambda ci: (-classes[ci].prio, -classes[ci].value, ci))
        self.order = order
        checks: list[list[Level]] = [[] for _ in range(n + 1)]
        li = 0
        for i in range(n + 1):
            while li < len(self.levels) and (
                i == n or self.levels[li].prio > classes[order[i]].prio
            ):
                checks[i].append(self.levels[li])
                li += 1
        self.checks = checks
        # A new level starts at depth i when the class there has another priority than the
        # previous one; level_first / level_end bound the depths of i's level.
        self.level_start = [
            i == 0 or classes[order[i]].prio != classes[order[i - 1]].prio for i in range(n)
        ]
        self.level_first = [0] * n
        for i in range(n):
            self.level_first[i] = i if self.level_start[i] else self.level_first[i - 1]
        self.level_end = [0] * n
        end = n
        for i in range(n - 1, -1, -1):
            self.level_end[i] = end
            if self.level_start[i]:
                end = i
        with_victims = {level.prio for level in self.levels if level.victims}
        self.has_victims = [classes[ci].prio in with_victims for ci in order]
        by_prio = {level.prio: level for level in self.levels}
        self.level_at = [by_prio[classes[ci].prio] for ci in order]
        vecs = [classes[ci].vec for ci in order]
        values = [classes[ci].value for ci in order]
        self.vecs = vecs
        self.values = values
        self.bonus = [values[i] - self.usage_scale * self.cluster.value(vecs[i]) for i in range(n)]
        self.nonzero = [[(k, need) for k, need in enumerate(vec) if need > 0] for vec in vecs]
        # Per kind, the classes using it by value per unit of it, best first (exact order:
        # the fractional knapsack bound is an upper bound only in that order).
        self.ratio = []
        for k in range(len(self.free0)):

            def better(a: int, b: int, k: int = k) -> int:
                # values[a] / vecs[a][k] against values[b] / vecs[b][k], exactly.
                return values[b] * vecs[a][k] - values[a] * vecs[b][k] or a - b

            using = [j for j in range(n) if vecs[j][k] > 0]
            self.ratio.append(sorted(using, key=cmp_to_key(better)))

    def _search(
        self, lo: Sequence[int], hi: Sequence[int], floor: int, mode: int
    ) -> tuple[int, Counts] | None:
        """Depth-first branch and bound over counts in [lo, hi].

        `mode` BEST: the best solution of value > `floor` (None if there is none). FIRST: the
        first solution met of value >= `floor`. LEX: the best solution of value >= `floor`,
        the first met among those of its value (with the classes in queue order, the first in
        queue order). Raises OutOfWork when the budget runs out; the best found so far is then
        in `self.found`.

        A node is pruned when an upper bound of every completion cannot reach the bar: per
        kind, what is admitted is at most what remains free and at most what the undecided
        classes could add (first with their upper counts, then with the counts that fit in
        the room left); and per kind that cannot hold all of that, a fractional knapsack of
        the classes using it. It is pruned too when an item already left out at the current
        level, or a threat there, would still fit in its room whatever the level's
        undecided classes add, and when an equivalent prefix was searched already.
        """
        classes = self.classes
        order = self.order
        n = len(order)
        weights = self.cluster.weights
        kinds = range(len(self.free0))
        free0 = self.free0
        scale_usage = self.usage_scale
        vecs, values, bonus, nonzero, ratio = (
            self.vecs, self.values, self.bonus, self.nonzero, self.ratio
        )  # fmt: skip
        los = [lo[ci] for ci in order]
        his = [hi[ci] for ci in order]
        counts_full = [classes[ci].count for ci in order]
        running = [classes[ci].category == RUNNING for ci in order]
        queued = [classes[ci].category == PENDING for ci in order]
        # Suffix sums for the quick bound: every undecided class at its upper count.
        suffix: list[Vec] = [self.cluster.zero] * (n + 1)
        suffix_bonus = [0] * (n + 1)
        for i in range(n - 1, -1, -1):
            suffix[i] = vadd(suffix[i + 1], vscale(vecs[i], his[i]))
            suffix_bonus[i] = suffix_bonus[i + 1] + bonus[i] * his[i]
        checks = self.checks
        level_start = self.level_start
        level_first = self.level_first
        level_end = self.level_end
        level_at = self.level_at
        has_victims = self.has_victims
        fit_of = [0] * n
        # The Lagrangian bound (see `_multipliers`): set up after the first nodes, when the
        # search proves to be more than a walk down.
        prices: list[int] = []
        reduced: list[int] = []
        nodes = [0]
        counts = list(lo)
        best: list[tuple[int, Counts] | None] = [None]
        bar = [floor]  # a solution must reach this (while `ties`) or beat it
        ties = [mode != BEST]
        seen: set[tuple[object, ...]] = set()
        work = self.work
        evictions_left = self.evictions_left
        level_ok = self.level_ok

        class Found(Exception):
            pass

        def search(
            i: int,
            rem: Vec,
            value: int,
            rem_top: Vec,
            started_above: int,
            started_here: int,
            evicted: int,
        ) -> None:
            work.spend(1 + n - i)
            nodes[0] += 1
            if nodes[0] == LAGRANGE_AFTER and not prices:
                prices.extend(self._multipliers(his, bar[0]))
                reduced.extend(max(0, values[j] - sum(map(mul, prices, vecs[j]))) for j in range(n))
            if checks[i]:
                s_ge = vsub(free0, rem)
                s_above = vsub(free0, rem_top)
                for level in checks[i]:
                    if not level_ok(level, counts, s_ge, s_above, started_above, started_here):
                        return
            if i == n:
                if value > bar[0] or (ties[0] and value >= bar[0]):
                    best[0] = (value, counts.copy())
                    self.found = best[0]
                    if mode == FIRST:
                        raise Found
                    bar[0] = value
                    ties[0] = False
                return
            if level_start[i]:
                rem_top = rem
                started_above += started_here
                started_here = 0
            target = bar[0] if ties[0] else bar[0] + 1
            # Quick bound: every undecided class at its upper count.
            bound = (
                value
                + suffix_bonus[i]
                + scale_usage
                * sum(map(math.prod, zip(map(min, rem, suffix[i]), weights, strict=True)))
            )
            if bound < target:
                return
            # Tighter: only the members of each undecided class that fit in the room left.
            # `add` is what the current level's undecided classes could add.
            end = level_end[i]
            reach = [0] * len(rem)
            add = reach
            reach_bonus = 0
            reach_value = 0
            lagrange = 0
            for j in range(i, n):
                if j == end:
                    add = reach.copy()
                fit = his[j]
                for k, need in nonzero[j]:
                    have = rem[k] // need
                    if have < fit:
                        fit = have
                        if fit <= 0:
                            break
                fit_of[j] = fit
                if fit > 0:
                    for k, need in nonzero[j]:
                        reach[k] += need * fit
                    reach_bonus += bonus[j] * fit
                    reach_value += values[j] * fit
                    if reduced:
                        lagrange += reduced[j] * fit
            bound = (
                value
                + reach_bonus
                + scale_usage * sum(map(math.prod, zip(map(min, rem, reach), weights, strict=True)))
            )
            if bound < target:
                return
            node_bound = bound  # the lowest bound of this node: it covers every child
            if prices:
                bound = value + lagrange + sum(map(mul, prices, rem))
                if bound < target:
                    return
                node_bound = min(node_bound, bound)
            # Per kind that cannot hold all of that: the classes using it fill it best first,
            # the last one fractionally; the others add their whole value.
            for k in kinds:
                room_k = rem[k]
                if reach[k] <= room_k:
                    continue
                fill = 0
                using = 0
                for j in ratio[k]:
                    if j < i:
                        continue
                    fit = fit_of[j]
                    if fit <= 0:
                        continue
                    gain = values[j] * fit
                    using += gain
                    if room_k > 0:
                        need = vecs[j][k] * fit
                        if need <= room_k:
                            fill += gain
                            room_k -= need
                        else:
                            fill += -(-values[j] * room_k // vecs[j][k])
                            room_k = 0
                bound = value + reach_value - using + fill
                if bound < target:
                    return
                node_bound = min(node_bound, bound)
            # Forward check of the current level (see the docstring).
            level = level_at[i]
            first_here = level_first[i]
            least = [
                b - f + r - min(a, r)
                for b, f, r, a in zip(level.base_room, free0, rem, add, strict=True)
            ]
            for threat in level.threats:
                if fits(threat, least):
                    return
            for j in range(first_here, i):
                if counts[order[j]] < counts_full[j] and fits(vecs[j], least):
                    return
            if has_victims[i]:
                state: object = tuple(counts[order[j]] for j in range(first_here, i))
            else:
                # What the level's checks will read of its decided classes: which requests
                # (and whether a running class) have a member left out.
                state = frozenset(
                    (running[j], vecs[j])
                    for j in range(first_here, i)
                    if counts[order[j]] < counts_full[j]
                )
            key = (i, rem, state, started_above > 0, started_here > 0, evicted)
            if key in seen:
                return
            seen.add(key)
            vec = vecs[i]
            ci = order[i]
            top = fit_of[i]
            bottom = los[i]
            if running[i]:
                # At most `evictions_left` running items left out in all.
                bottom = max(bottom, counts_full[i] - (evictions_left - evicted))
            for take in range(top, bottom - 1, -1):
                counts[ci] = take
                search(
                    i + 1,
                    tuple([r - need * take for r, need in zip(rem, vec, strict=True)])
                    if take
                    else rem,
                    value + take * values[i],
                    rem_top,
                    started_above,
                    started_here + (take if queued[i] else 0),
                    evicted + (counts_full[i] - take if running[i] else 0),
                )
                if node_bound < (bar[0] if ties[0] else bar[0] + 1):
                    break  # a solution found meanwhile reaches what this node could give
            counts[ci] = lo[ci]

        self.found = None
        with contextlib.suppress(Found):
            search(0, free0, 0, free0, 0, 0, 0)
        return best[0]

    def solve(self, incumbents: Iterable[Counts]) -> Outcome:
        """The admission (counts per class) rule 7 chooses, or None when no admission
        satisfies the rules; see the module docstring for exactness."""
        classes = self.classes
        n = len(classes)
        if not n:
            return Outcome([] if self.check([]) else None, True)
        # Everything admissible fits at once: that is the most and, all in, first in queue
        # order (every class's value is positive), if it satisfies the checks.
        takes = [cls.take for cls in classes]
        if self._fits_all(takes) and self.check(takes):
            return Outcome(takes, True)
        candidates = [list(counts) for counts in incumbents if self.check(counts)]
        try:
            if n <= SINGLE_PASS_CLASSES:
                # Small: one search with the classes in queue order finds the answer.
                floor = max(map(self.value, candidates), default=-1)
                return Outcome(self._in_queue_order(floor), True)
            if n > EXACT_CLASS_LIMIT:
                # The bounded heuristic: greedy fills and a local search, then the exact
                # search only with what is left of the heuristic's allowance. A repack (opt-in:
                # it has evictions to spend) may use the decision's whole budget: choosing
                # among many movable items is where its packing is won.
                allowance = self.work.left if self.evictions_left else HEURISTIC_WORK
                cap = min(self.work.limit, self.work.spent + allowance)
                self.work, outer = Work(cap), self.work
                self.work.spent = outer.spent
                try:
                    candidates.extend(self.starts())
                    best = self._improve(max(candidates, key=self.value, default=None))
                    if n > SEARCH_CLASS_LIMIT or best is None:
                        return Outcome(best, False)
                    return self._exact(best)
                finally:
                    outer.spent = self.work.spent
                    self.work = outer
            candidates.extend(self.starts())
        except OutOfWork:
            if self.found is not None:
                candidates.append(self.found[1])
            return Outcome(max(candidates, key=self.value, default=None), False)
        return self._exact(max(candidates, key=self.value, default=None))

    def _exact(self, best: Counts | None) -> Outcome:
        """Step 1 (the best value, by value order) then step 2 (its tie-break, in queue
        order), from `best`; the best found stands when the work runs out (not exact)."""
        classes = self.classes
        n = len(classes)
        self._plan()
        try:
            floor = -1 if best is None else self.value(best)
            found = self._search([0] * n, [c.take for c in classes], floor, BEST)
            if found is not None:
                best = found[1]
            if best is not None and any(x < c.take for c, x in zip(classes, best, strict=True)):
                best = self._in_queue_order(self.value(best)) or best
        except OutOfWork:
            if self.found is not None and (best is None or self.found[0] > self.value(best)):
                best = self.found[1]
            return Outcome(best, False)
        return Outcome(best, True)

    def _multipliers(self, his: Sequence[int], floor: int) -> list[int]:
        """Prices per unit of each kind for the Lagrangian bound of `_search`.

        For any prices p >= 0, value + p . rem + sum over undecided classes of
        fit * max(0, value_j - p . vec_j) bounds every completion (each kind's use is at most
        rem, and each class takes at most what fits); the best prices are the linear
        relaxation's duals. They are approached by a few subgradient steps (Polyak's step
        toward the best value known) from the prices that make every class worth nothing
        but its repack bonus, then rounded down to integers (still a valid bound).
        """
        order = self.order
        vecs = self.vecs
        values = self.values
        free0 = self.free0
        kinds = range(len(free0))
        prices = [float(self.usage_scale * w) for w in self.cluster.weights]
        best_prices = prices
        best_bound = math.inf
        target = max(floor, 0)
        classes = range(len(order))
        for _ in range(LAGRANGE_STEPS):
            bound = sum(map(mul, prices, free0))
            slope = list(map(float, free0))
            for j in classes:
                gain = values[j] - sum(map(mul, prices, vecs[j]))
                if gain > 0:
                    bound += gain * his[j]
                    many = his[j]
                    for k in kinds:
                        slope[k] -= vecs[j][k] * many
            if bound < best_bound:
                best_bound, best_prices = bound, prices
            norm = sum(g * g for g in slope)
            if norm <= 0 or bound <= target:
                break
            step = (bound - target) / norm
            prices = [max(0.0, p - step * g) for p, g in zip(prices, slope, strict=True)]
        return [math.floor(p) for p in best_prices]

    def _in_queue_order(self, floor: int) -> Counts | None:
        """The best solution of value >= `floor`, first in queue order among those of its
        value (or None when none reaches `floor`): one search with the classes in queue order
        of their first member, each taking its most first, meets the solutions first in queue
        order first (see the module docstring)."""
        problem = Problem(
            self.cluster,
            self.free0,
            self.base_room,
            self.classes,
            self.threats,
            self.evictions_left,
            self.work,
            self.usage_scale,
        )
        problem._plan(in_queue_order=True)
        try:
            found = problem._search([0] * len(self.classes), [c.take for c in self.classes],
                                    floor, LEX)  # fmt: skip
        finally:
            if problem.found is not None:
                self.found = problem.found
        return None if found is None else found[1]

    def _improve(self, best: Counts | None) -> Counts | None:
        """Bounded drop-one-refill local search from `best` (kept only when checked)."""
        if best is None:
            return None
        classes = self.classes
        n = len(classes)
        by_value = sorted(range(n), key=lambda i: -classes[i].value)
        best_value = self.value(best)
        improved = True
        try:
            while improved:
                improved = False
                for ci in range(n):
                    if best[ci] == 0:
                        continue
                    self.work.spend(4 * n)
                    trial = best.copy()
                    trial[ci] -= 1
                    rem = self.free0
                    for cj in range(n):
                        if trial[cj]:
                            rem = vsub(rem, vscale(classes[cj].vec, trial[cj]))
                    for cj in by_value:
                        if cj == ci:
                            continue
                        take = fit_count(classes[cj].vec, rem, classes[cj].take - trial[cj])
                        if take:
                            trial[cj] += take
                            rem = vsub(rem, vscale(classes[cj].vec, take))
                    repaired = self.repair(trial)
                    if repaired is not None and self.check(repaired):
                        value = self.value(repaired)
                        if value > best_value:
                            best, best_value, improved = repaired, value, True
        except OutOfWork:
            pass
        return best

    def chosen(self, counts: Sequence[int]) -> list[tuple[Job, int]]:
        """The admitted items of a solution, with their categories."""
        out: list[tuple[Job, int]] = []
        for cls, x in zip(self.classes, counts, strict=True):
            out.extend((job, cls.category) for job in cls.members[:x])
        return out
