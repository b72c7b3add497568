"""Maximum run time: `deployments.expire_due(now)` and `flask kargo expire` (issue 15)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from app.models import ClusterResource, Deployment, Event, utcnow
from app.services import deployments
from tests.api.conftest import make_member
from tests.factories import make_cluster
from tests.fairuse.conftest import submit_cpu


def _started_minutes_ago(db, deployment_id, minutes):
    """Move a running deployment's start back, as if it had run that long."""
    db.session.execute(
        sa.update(Deployment)
        .where(Deployment.id == deployment_id)
        .values(started_at=utcnow() - timedelta(minutes=minutes))
    )
    db.session.commit()


def test_expiry_finishes_frees_and_starts_the_queue_idempotently(app, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    short = submit_cpu(owner.user, cluster, "short", 4, max_run="30m")
    waiting = submit_cpu(owner.user, cluster, "waiting", 2)
    assert (short.status, waiting.status) == ("running", "pending")
    now = utcnow()
    assert deployments.expire_due(now + timedelta(minutes=29)) == []
    finished = deployments.expire_due(now + timedelta(minutes=31))
    assert finished == [short.deployment.id]
    assert deployments.expire_due(now + timedelta(minutes=31)) == []  # idempotent
    db.session.expire_all()
    assert db.session.get(Deployment, short.deployment.id) is None
    assert db.session.get(Deployment, waiting.deployment.id).status == "running"
    used = db.session.scalar(
        sa.select(ClusterResource.used).where(ClusterResource.cluster_id == cluster.id)
    )
    assert used == 2000
    event = db.session.scalar(sa.select(Event).where(Event.action == "deployment.expired"))
    assert event.subject_id == short.deployment.id and "maximum run time" in event.message


def test_a_scheduling_operation_expires_lazily(app, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    short = submit_cpu(owner.user, cluster, "short", 4, max_run=1)
    _started_minutes_ago(db, short.deployment.id, 5)
    later = submit_cpu(owner.user, cluster, "later", 4)
    assert later.status == "running"
    db.session.expire_all()
    assert db.session.get(Deployment, short.deployment.id) is None


def test_the_expire_command_runs_once(app, runner, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    short = submit_cpu(owner.user, cluster, "short", 1, max_run=1)
    _started_minutes_ago(db, short.deployment.id, 5)
    result = runner.invoke(args=["kargo", "expire", "--once"])
    assert result.exit_code == 0, result.output
    assert f"#{short.deployment.id}" in result.output
    again = runner.invoke(args=["kargo", "expire", "--once"])
    assert "Finished 0 deployment(s)" in again.output
    bad = runner.invoke(args=["kargo", "expire", "--once", "--interval", "0"])
    assert bad.exit_code != 0


def test_every_reconciler_pass_finishes_expired_deployments(app, db):
    from app.services import reconcile

    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    short = submit_cpu(owner.user, cluster, "short", 1, max_run=1)
    _started_minutes_ago(db, short.deployment.id, 5)
    reconcile.run_pass("test-holder")
    db.session.expire_all()
    assert db.session.get(Deployment, short.deployment.id) is None
