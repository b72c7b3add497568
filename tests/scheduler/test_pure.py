"""The scheduler is pure: standard library only, deterministic, and it never mutates its inputs."""

from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path

from app.scheduler import ClusterState, Delete, Job, Reconcile, Submit, schedule

PACKAGE = Path(__file__).resolve().parents[2] / "app" / "scheduler"
MODULES = sorted(PACKAGE.glob("*.py"))
# Besides the standard library, the scheduler may use this one module of the app, itself
# standard library only (tests/test_architecture.py checks that).
ALLOWED = {"app.quantities"}


def imports(path: Path) -> list[str]:
    """What a module of the package imports: absolute names; a relative import must stay
    inside the package (".types", not "..services")."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names.append("app.scheduler" if node.level == 1 else "<outside the package>")
            else:
                names.append(node.module or "")
    return names


def test_the_package_has_its_steps() -> None:
    assert {path.stem for path in MODULES} >= {
        "__init__", "types", "vectors", "search", "preemption", "queue", "decide", "checks",
    }  # fmt: skip


def test_imports_only_the_standard_library() -> None:
    offenders = [
        f"{path.name}: {name}"
        for path in MODULES
        for name in imports(path)
        if name not in ALLOWED
        and name != "app.scheduler"
        and name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}
    ]
    assert offenders == []


def test_no_clock_or_randomness() -> None:
    banned = {"time", "datetime", "random", "secrets", "os", "io", "socket", "threading"}
    used = {name.split(".")[0] for path in MODULES for name in imports(path)}
    assert not used & banned


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
