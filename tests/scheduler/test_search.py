"""Rule 7's search internals: the two branch-and-bound passes and the greedy starts.

The public behaviour (exactness) is covered by test_optimality.py; these tests pin down the
cost-saving structure the latency target relies on: the first pass seeks a strictly higher U
only (so an incumbent that reaches the root bound ends it at once), and the second pass then
chooses among the sets of that U the one first in queue order.
"""

from __future__ import annotations

from app.scheduler import Job, _Class, _Cluster, _Problem, _Rooms


def _problem() -> tuple[_Problem, list[Job]]:
    """4 cpu free, nothing running; pending (one priority): 1 cpu, 3 cpu, 4 cpu in that order.

    {1 cpu, 3 cpu} and {4 cpu} both fill the cluster (same U); the first is first in queue order.
    """
    cluster = _Cluster({"cpu": 4})
    jobs = [Job(1, 0, {"cpu": 1}, 1), Job(2, 0, {"cpu": 3}, 2), Job(3, 0, {"cpu": 4}, 3)]
    classes = [
        _Class(0, (j.requests["cpu"],), cluster.value((j.requests["cpu"],)), 1, [j]) for j in jobs
    ]
    rooms = _Rooms(cluster, {})
    return _Problem(cluster, cluster.cap, rooms, classes, []), jobs


def test_first_pass_stops_at_the_root_when_the_incumbent_reaches_the_bound() -> None:
    problem, _ = _problem()
    only_whole = [0, 0, 1]  # {4 cpu}: U is maximal, but not first in queue order
    incumbent = (problem.score(only_whole), only_whole)
    best, complete = problem.branch_and_bound(incumbent, 100, ties=False)
    assert complete
    assert problem.nodes == 1
    assert best == incumbent  # a tie is not an improvement in this pass


def test_second_pass_prefers_the_set_first_in_queue_order() -> None:
    problem, jobs = _problem()
    only_whole = [0, 0, 1]
    incumbent = (problem.score(only_whole), only_whole)
    best, complete = problem.branch_and_bound(incumbent, 100, ties=True)
    assert complete
    assert best is not None and best[1] == [1, 1, 0]
    assert problem.chosen(best[1]) == jobs[:2]


def test_solve_returns_the_tie_first_in_queue_order() -> None:
    problem, jobs = _problem()
    assert problem.solve([(0, (4,))]) == jobs[:2]


def test_greedy_starts_include_a_fill_by_value_per_scarcest_kind() -> None:
    """Free 10 cpu / 100 ram. Queue order and "largest value first" both take the 6-cpu job
    first (U 0.6), after which no 5-cpu job fits; by value per share of the scarcest kind (cpu)
    the two 5 cpu + 4 ram jobs come first and fill the cpu (U 1.08)."""
    cluster = _Cluster({"cpu": 10, "ram": 100})
    big = Job(1, 0, {"cpu": 6, "ram": 0}, 1)
    pair = [Job(2, 0, {"cpu": 5, "ram": 4}, 2), Job(3, 0, {"cpu": 5, "ram": 4}, 3)]
    classes = [
        _Class(0, (6, 0), cluster.value((6, 0)), 1, [big]),
        _Class(0, (5, 4), cluster.value((5, 4)), 2, pair),
    ]
    problem = _Problem(cluster, cluster.cap, _Rooms(cluster, {}), classes, [])
    assert problem.greedy([0, 1]) == [1, 0]  # the fills the other orders make
    best = problem.starts(None)
    assert best is not None and best[1] == [0, 2]
