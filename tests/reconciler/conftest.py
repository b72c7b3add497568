"""What the reconciler tests share: an owner and a cluster on the engine "sim" (each test file
declares that engine, with the simulated driver, in its own `app_config`), a submission to it
and one reconciler pass."""

from __future__ import annotations

import pytest

from app.extensions import db as _db
from app.services import clusters, deployments
from tests.factories import make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner")


@pytest.fixture
def cluster(owner):
    return clusters.create_cluster(owner, "sim", {}, 10, engine="sim")


def submitted(owner, cluster, name, cpu=1, priority="normal"):
    """Submit `cpu` cpu and 64 MiB of ram to the test's cluster: the submission's outcome."""
    return deployments.submit(
        owner,
        cluster.id,
        "nginx:1.27",
        name=name,
        priority=priority,
        requests_raw={"cpu": cpu, "ram": "64Mi"},
    )


def submit(owner, cluster, name, cpu=1, priority="normal"):
    """The same, giving the submitted deployment (its view)."""
    return submitted(owner, cluster, name, cpu, priority).deployment


def run(reconciler):
    """One pass; then the test's session forgets what it read (it outlives the pass)."""
    reports = reconciler.run_once()
    _db.session.rollback()
    return reports
