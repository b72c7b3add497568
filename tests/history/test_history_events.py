"""The history of deployments and clusters is written with the change it describes.

Every scheduling transaction records who did what (submitted, deleted) and what the scheduler
made of it (started, queued, preempted, restarted); a change that fails leaves no entry, and an
entry never lands without its change.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Deployment, Event
from app.services import clusters, deployments, history
from app.services.errors import QuotaExceeded
from tests.factories import make_org, make_user

REQUEUED = "queued again to restart when room returns."


def _actions(db, deployment_id: int) -> list[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(Event.action, Event.actor_kind)
        .where(Event.subject_kind == "deployment", Event.subject_id == deployment_id)
        .order_by(Event.id)
    )
    return [tuple(row) for row in rows]


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner", display_name="Ada")


@pytest.fixture
def cluster(owner):
    return clusters.create_cluster(owner, "pool", {"cpu": "4", "gpu": "2"})


def test_cluster_creation_is_recorded_with_its_capacity(db, owner, cluster) -> None:
    event = db.session.scalar(sa.select(Event).where(Event.action == "cluster.created"))
    assert (event.actor_kind, event.actor_id, event.actor_name) == ("user", owner.id, "Ada")
    assert (event.subject_kind, event.subject_id, event.subject_name) == (
        "cluster",
        cluster.id,
        "pool",
    )
    assert event.data == {
        "capacity": {"cpu": 4000, "gpu": 2},
        "max_deployments": 100,
        "engine": None,
    }
    assert event.message == "Created cluster pool with 4 cores, 2 gpu and room for 100 deployments."


def test_preemption_and_restart_tell_the_whole_story(db, owner, cluster) -> None:
    low = deployments.submit(owner, cluster.id, "web:1", "low", 100, {"cpu": "3"}).deployment
    high = deployments.submit(owner, cluster.id, "db:1", "high", 900, {"cpu": "2"}).deployment
    deployments.delete(owner, high.id)

    assert _actions(db, low.id) == [
        ("deployment.submitted", "user"),
        ("deployment.started", "scheduler"),
        ("deployment.preempted", "scheduler"),
        ("deployment.restarted", "scheduler"),
    ]
    assert _actions(db, high.id) == [
        ("deployment.submitted", "user"),
        ("deployment.started", "scheduler"),
        ("deployment.deleted", "user"),
    ]
    timeline = deployments.timeline(owner, low.id)
    assert [entry.message for entry in timeline] == [
        "Submitted web:1 at priority low (100), requesting 3 cores.",
        "Started on pool.",
        f"Preempted by #{high.id} high (priority 900); {REQUEUED}",
        "Restarted when room returned.",
    ]
    assert timeline[2].data == {"preempted_by": high.id, "preemptor_priority": 900}


def test_a_queued_submission_records_its_position_and_reason(db, owner, cluster) -> None:
    deployments.submit(owner, cluster.id, "web:1", "big", 500, {"cpu": "4"})
    waiting = deployments.submit(owner, cluster.id, "web:1", "late", 500, {"cpu": "1"}).deployment
    (queued,) = [
        e for e in deployments.timeline(owner, waiting.id) if e.action == "deployment.queued"
    ]
    assert queued.data == {"position": 1}
    assert queued.message.startswith("Queued at position 1: ")


def test_delete_all_records_one_entry_per_deployment(db, owner, cluster) -> None:
    ids = [
        deployments.submit(owner, cluster.id, "web:1", f"app-{i}", 500, {"cpu": "2"}).deployment.id
        for i in range(3)
    ]
    assert deployments.delete_all(owner, cluster.id) == 3
    deleted = db.session.scalars(
        sa.select(Event.subject_id).where(Event.action == "deployment.deleted").order_by(Event.id)
    ).all()
    assert deleted == ids


def test_a_refused_submission_leaves_neither_row_nor_entry(db, owner, cluster) -> None:
    """The quota check runs after the entry is written: the rollback must take both."""
    org = owner.organization
    org.deployment_quota = 1
    db.session.commit()
    deployments.submit(owner, cluster.id, "web:1", "first", 500, {"cpu": "1"})
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Event))
    with pytest.raises(QuotaExceeded):
        deployments.submit(owner, cluster.id, "web:1", "second", 500, {"cpu": "1"})
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == before
    assert db.session.scalar(sa.select(Deployment.id).where(Deployment.name == "second")) is None


def test_an_entry_never_lands_without_its_change(db, owner, cluster) -> None:
    history.record(
        owner.organization_id,
        history.actor_of(owner),
        "cluster.renamed",
        history.Subject("cluster", cluster.id, "pool"),
        "Renamed.",
    )
    db.session.rollback()
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Event).where(Event.action == "cluster.renamed")
        )
        == 0
    )


def test_a_timeline_shows_nothing_of_another_organization(db, owner, cluster) -> None:
    mine = deployments.submit(owner, cluster.id, "web:1", "mine", 500, {"cpu": "1"}).deployment
    stranger = make_user(make_org(), role="owner")
    assert history.of_subject(stranger.organization_id, "deployment", mine.id) == []
    with pytest.raises(deployments.NotFound):
        deployments.timeline(stranger, mine.id)


def test_long_messages_are_cut_to_the_column(db, owner, cluster) -> None:
    history.record(
        owner.organization_id,
        history.SYSTEM,
        "cluster.noted",
        history.Subject("cluster", cluster.id, "x" * 300),
        "y" * 600,
    )
    db.session.commit()
    event = db.session.scalar(sa.select(Event).where(Event.action == "cluster.noted"))
    assert len(event.message) == history.MESSAGE_MAX and event.message.endswith("…")
    assert len(event.subject_name) == 100
