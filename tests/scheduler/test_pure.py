"""The scheduler is pure: standard library only, deterministic, and it never mutates its inputs."""

from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path

from app.scheduler import ClusterState, Delete, Job, Reconcile, Submit, schedule

MODULE = Path(__file__).resolve().parents[2] / "app" / "scheduler.py"


def test_imports_only_the_standard_library() -> None:
    tree = ast.parse(MODULE.read_text())
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import reaches into the app package
                offenders.append(f"relative import from {node.module!r}")
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top != "__future__" and top not in sys.stdlib_module_names:
                offenders.append(name)
    assert offenders == []


def test_no_clock_or_randomness() -> None:
    tree = ast.parse(MODULE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"time", "datetime", "random", "secrets", "os", "io", "socket"}


def _state() -> ClusterState:
    running = [
        Job(1, 100, {"cpu": 2000, "gpu": 1}, 1, 1),
        Job(2, 100, {"cpu": 2000, "gpu": 1}, 2, 2),
        Job(3, 0, {"ram": 2048}, 3, 3),
    ]
    pending = [
        Job(4, 100, {"cpu": 3000}, 4),
        Job(5, 0, {"ram": 1024, "cpu": 500}, 5),
        Job(6, 500, {"gpu": 2}, 6, None, 9),
    ]
    return ClusterState({"cpu": 4000, "gpu": 2, "ram": 4096}, running, pending)


EVENTS = [
    Submit(Job(10, 900, {"cpu": 1000, "gpu": 1}, 10)),
    Submit(Job(11, 0, {"cpu": 100}, 11)),
    Delete(frozenset({1, 5})),
    Delete(frozenset({4})),
    Reconcile(),
]


def test_same_input_same_decision() -> None:
    for event in EVENTS:
        assert schedule(_state(), event) == schedule(_state(), event)


def test_inputs_not_mutated() -> None:
    for event in EVENTS:
        state = _state()
        running, pending = list(state.running), list(state.pending)
        requests = [dict(j.requests) for j in (*running, *pending)]
        event_copy = copy.deepcopy(event)
        schedule(state, event)
        assert list(state.running) == running and list(state.pending) == pending
        assert [dict(j.requests) for j in (*state.running, *state.pending)] == requests
        assert event == event_copy


def test_mutable_containers_are_left_alone() -> None:
    running = [Job(1, 0, {"cpu": 4000}, 1, 1)]
    pending = [Job(2, 0, {"cpu": 1000}, 2)]
    capacity = {"cpu": 4000}
    state = ClusterState(capacity, running, pending)
    schedule(state, Submit(Job(3, 900, {"cpu": 1000}, 3)))
    schedule(state, Delete(frozenset({1})))
    assert running == [Job(1, 0, {"cpu": 4000}, 1, 1)]
    assert pending == [Job(2, 0, {"cpu": 1000}, 2)]
    assert capacity == {"cpu": 4000}


def test_lazy_queue_behaves_like_a_list() -> None:
    import dataclasses
    import pickle

    from app.scheduler import QueueEntry

    def fresh():
        return schedule(_state(), Reconcile()).queue

    expected = list(fresh())
    assert expected and all(isinstance(e, QueueEntry) for e in expected)
    assert len(fresh()) == len(expected)
    assert fresh() == expected and expected == fresh() and fresh() == fresh()
    assert [] + fresh() == expected  # noqa: RUF005 (exercises __radd__)
    assert fresh() + [] == expected  # noqa: RUF005 (exercises __add__)
    assert fresh()[0] == expected[0]
    assert copy.deepcopy(fresh()) == expected
    assert pickle.loads(pickle.dumps(fresh())) == expected
    assert dataclasses.asdict(schedule(_state(), Reconcile()))["queue"] == [
        dataclasses.asdict(e) for e in expected
    ]
    queue = fresh()
    queue.append(expected[0])
    assert len(queue) == len(expected) + 1
