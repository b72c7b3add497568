"""`flask kargo demo`: seeds a living demo through the services, and is idempotent."""

from __future__ import annotations

import sqlalchemy as sa

from app.cli import DEMO_PASSWORD
from app.models import Cluster, Deployment, User
from tests.deployments.invariants import assert_cluster_consistent


def test_demo_seeds_running_queued_and_preempted_deployments(runner, db):
    result = runner.invoke(args=["kargo", "demo"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8001" in result.output
    assert f"demo / {DEMO_PASSWORD}" in result.output and f"dev / {DEMO_PASSWORD}" in result.output
    users = db.session.scalars(sa.select(User.username)).all()
    assert sorted(users) == ["demo", "dev"]
    statuses = db.session.scalars(sa.select(Deployment.status)).all()
    assert "running" in statuses and "pending" in statuses
    assert db.session.scalar(sa.select(sa.func.max(Deployment.preemptions))) >= 1
    for cluster_id in db.session.scalars(sa.select(Cluster.id)):
        assert_cluster_consistent(cluster_id)

    again = runner.invoke(args=["kargo", "demo"])
    assert again.exit_code == 0, again.output
    assert "already exists" in again.output and f"demo / {DEMO_PASSWORD}" in again.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deployment)) == len(statuses)


def test_demo_refuses_when_the_name_is_taken_by_someone_else(runner, db):
    from tests.factories import make_user

    make_user(username="demo")
    result = runner.invoke(args=["kargo", "demo"])
    assert result.exit_code != 0
    assert "already exists with another password" in result.output
