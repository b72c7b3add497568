"""A backup restored into an empty database holds every organization, cluster and deployment
with its history, and the restored Kargo keeps working (new ids continue after the old ones)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import Cluster, ClusterResource, Deployment, Event, Organization, User
from app.services import clusters, deployments
from tests.factories import make_org, make_user
from tests.support.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request) -> str:
    return request.param


def flask(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi.py", *args],
        cwd=ROOT,
        env={**_env(), "DATABASE_URL": url, "KARGO_ENV": "development"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "FLASK_APP"}}


def snapshot(url: str) -> dict[str, list]:
    """Everything a restore must bring back, as plain rows."""
    engine = sa.create_engine(url)
    tables = {
        "organizations": sa.select(
            Organization.id, Organization.name, Organization.deployment_quota
        ),
        "users": sa.select(User.id, User.username, User.role, User.password_hash),
        "clusters": sa.select(Cluster.id, Cluster.name, Cluster.organization_id),
        "resources": sa.select(
            ClusterResource.cluster_id,
            ClusterResource.kind,
            ClusterResource.capacity,
            ClusterResource.used,
        ),
        "deployments": sa.select(
            Deployment.id,
            Deployment.name,
            Deployment.status,
            Deployment.priority,
            Deployment.requests,
            Deployment.queue_position,
            Deployment.preemptions,
        ),
        "events": sa.select(Event.id, Event.action, Event.subject_id, Event.message, Event.data),
    }
    with engine.connect() as conn:
        rows = {
            name: sorted(map(tuple, conn.execute(query)), key=repr)
            for name, query in tables.items()
        }
    engine.dispose()
    return rows


@pytest.fixture
def populated(kind, tmp_path) -> Iterator[str]:
    with fresh_database(kind, tmp_path, "backup-src") as url:
        assert flask(url, "db", "upgrade").returncode == 0
        app = create_app({"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            for n in range(2):
                owner = make_user(make_org(f"Org {n}"), role="owner")
                pool = clusters.create_cluster(
                    owner, f"pool-{n}", {"cpu": "4", "gpu": "1", "ram": "8Gi"}
                )
                deployments.submit(owner, pool.id, "web:1", "low", 100, {"cpu": "3"})
                deployments.submit(owner, pool.id, "db:1", "high", 900, {"cpu": "2", "gpu": "1"})
                gone = deployments.submit(owner, pool.id, "job:1", "gone", 500, {"cpu": "1"})
                deployments.delete(owner, gone.deployment.id)
            db.session.remove()
            db.engine.dispose()
        yield url


def test_a_restored_backup_holds_everything(kind, populated, tmp_path) -> None:
    before = snapshot(populated)
    assert len(before["deployments"]) == 4 and len(before["events"]) > 10
    backup_file = tmp_path / "kargo.backup"
    made = flask(populated, "kargo", "backup", str(backup_file))
    assert made.returncode == 0, made.stderr
    assert "Backed up" in made.stdout

    with fresh_database(kind, tmp_path / "restored", "backup-dst") as empty:
        (tmp_path / "restored").mkdir(exist_ok=True)
        restored = flask(empty, "kargo", "restore", str(backup_file))
        assert restored.returncode == 0, restored.stderr
        assert snapshot(empty) == before

        app = create_app({"SQLALCHEMY_DATABASE_URI": empty})
        with app.app_context():
            owner = db.session.scalar(sa.select(User).order_by(User.id))
            pool = db.session.scalar(
                sa.select(Cluster).where(Cluster.organization_id == owner.organization_id)
            )
            newest = max(row[0] for row in before["deployments"])
            made_after = deployments.submit(owner, pool.id, "new:1", "after", 100, {"cpu": "1"})
            assert made_after.deployment.id > newest
            timeline = [
                event.action for event in deployments.timeline(owner, made_after.deployment.id)
            ]
            assert timeline[0] == "deployment.submitted"
            db.session.remove()
            db.engine.dispose()

        again = flask(empty, "kargo", "restore", str(backup_file))
        assert again.returncode != 0
        assert "restore only into an empty database" in again.stderr


def test_backup_refuses_to_overwrite(kind, populated, tmp_path) -> None:
    existing = tmp_path / "taken.backup"
    existing.write_text("keep me")
    result = flask(populated, "kargo", "backup", str(existing))
    assert result.returncode != 0 and "already exists" in result.stderr
    assert existing.read_text() == "keep me"
