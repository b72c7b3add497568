"""What a decision reads and writes through the service: the cluster's state is loaded once
(the expiry check reads only running deployments with a run limit), and only the queued rows
whose place, reason or wait changed are written (bench/decision_path_bench.py measures why)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.models import Deployment, utcnow
from app.services import deployments
from tests.deployments.invariants import assert_cluster_consistent
from tests.factories import make_cluster, make_user

STATE_LOAD = "AS TEXT)"  # the state reads its JSON columns as text (`_load_state`)


@pytest.fixture
def owner(app):
    return make_user(role="owner")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, resources={"cpu": 4000, "ram": 8192})


def submit(owner, cluster, name, priority=100, cpu="1", ram="1"):
    requests = {"cpu": cpu, "ram": ram}
    return deployments.submit(owner, cluster.id, "nginx:1.27", name, priority, requests)


class Statements:
    """Every statement sent while the block runs, with its parameter sets."""

    def __init__(self, db) -> None:
        self.engine = db.engine
        self.seen: list[tuple[str, list[dict]]] = []

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, parameters, _context, executemany) -> None:
        sets = list(parameters) if executemany else [parameters]
        self.seen.append((statement, sets))

    def loads(self) -> int:
        return sum(STATE_LOAD in statement for statement, _ in self.seen)

    def updated_deployments(self) -> int:
        """How many deployments rows UPDATE statements named: a parameter set each, or, in
        PostgreSQL's one-statement form, an element of the ids array each."""
        count = 0
        for statement, sets in self.seen:
            if statement.startswith("UPDATE deployments"):
                arrays = "unnest(" in statement
                count += sum(len(params["ids"]) for params in sets) if arrays else len(sets)
        return count


def fill_queue(owner, cluster, waiting: int) -> None:
    submit(owner, cluster, "holder", priority=1000, cpu="4", ram="1")  # all the cpu, for good
    for i in range(waiting):
        submit(owner, cluster, f"queued-{i}", priority=100)


def test_a_submission_loads_the_state_once(db, owner, cluster):
    fill_queue(owner, cluster, 3)
    with Statements(db) as seen:
        submit(owner, cluster, "one-more")
    assert seen.loads() == 1


def test_a_run_limit_is_checked_without_loading_the_state_until_one_is_due(db, owner, cluster):
    limited = deployments.submit(
        owner, cluster.id, "nginx:1.27", "limited", 100, {"cpu": "4", "ram": "1"}, max_run=1
    )
    with Statements(db) as seen:
        assert submit(owner, cluster, "while-it-runs").status == "pending"
    assert seen.loads() == 1  # running under its limit: nothing to finish
    db.session.execute(
        sa.update(Deployment)
        .where(Deployment.id == limited.deployment.id)
        .values(started_at=utcnow() - timedelta(minutes=5))
    )
    db.session.commit()
    with Statements(db) as seen:
        result = submit(owner, cluster, "after-it")
    assert seen.loads() == 2  # the expiry's decision, then the submission's
    db.session.expire_all()
    assert db.session.get(Deployment, limited.deployment.id) is None
    assert result.status == "running"
    assert_cluster_consistent(cluster.id)


def test_a_submission_queued_last_rewrites_no_other_row(db, owner, cluster):
    fill_queue(owner, cluster, 5)
    with Statements(db) as seen:
        result = submit(owner, cluster, "last", priority=0)
    assert result.status == "pending"
    # Only the new row gets its place; the five ahead keep theirs, word for word.
    assert seen.updated_deployments() == 1
    assert_cluster_consistent(cluster.id)


def test_a_submission_queued_first_moves_every_place_behind_it(db, owner, cluster):
    fill_queue(owner, cluster, 5)
    with Statements(db) as seen:
        submit(owner, cluster, "first", priority=500)
    assert seen.updated_deployments() == 1 + 5
    db.session.expire_all()
    places = db.session.execute(
        sa.select(Deployment.name, Deployment.queue_position)
        .where(Deployment.status == "pending")
        .order_by(Deployment.queue_position)
    ).all()
    assert [name for name, _ in places] == ["first", *(f"queued-{i}" for i in range(5))]
    assert [place for _, place in places] == [1, 2, 3, 4, 5, 6]
    assert_cluster_consistent(cluster.id)


def test_rows_sharing_a_wait_are_written_each_with_their_own_place(db, owner, cluster):
    fill_queue(owner, cluster, 4)
    submit(owner, cluster, "first", priority=500)
    db.session.expire_all()
    queued = db.session.scalars(
        sa.select(Deployment).where(Deployment.status == "pending").order_by(Deployment.id)
    ).all()
    waits = {row.name: row.wait for row in queued}
    # The four alike wait for the same thing; their stored waits are equal JSON objects.
    assert len({repr(sorted(waits[f"queued-{i}"].items())) for i in range(4)}) == 1
    assert waits["queued-0"]["kind"] == "cpu"
    assert sorted(row.queue_position for row in queued) == [1, 2, 3, 4, 5]
