"""The reconciler's loop: it wakes on a scheduling commit (PostgreSQL NOTIFY, or the poll of
the clusters' versions on SQLite), converges, and releases its leases when stopped."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from app.extensions import db as _db
from app.models import ClusterRuntime
from app.reconciler import Reconciler
from app.services import clusters, deployments, engines, reconcile
from tests.factories import make_org, make_user


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "4", "ram": "4"}}},
        "RECONCILER_POLL_MS": 100,
        "RECONCILER_RESYNC_SECONDS": 30,
    }


def test_the_loop_reacts_to_a_submission_and_releases_its_leases(app):
    owner = make_user(make_org(), role="owner")
    cluster = clusters.create_cluster(owner, "sim", {}, 10, engine="sim")
    reconciler = Reconciler(app, holder="loop")
    thread = threading.Thread(target=reconciler.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # its first pass (nothing to do) is over
        submitted = time.monotonic()
        web = deployments.submit(
            owner, cluster.id, "nginx:1.27", name="web", requests_raw={"cpu": 1, "ram": "1"}
        ).deployment
        deadline = submitted + 10
        status = None
        while time.monotonic() < deadline:
            _db.session.rollback()
            view = engines.views_for([web.id]).get(web.id)
            status = view.status if view else None
            if status == "running":
                break
            time.sleep(0.05)
        assert status == "running"
        # About a second (the poll is 100 ms here); generous for a loaded machine.
        assert time.monotonic() - submitted < 5
    finally:
        reconciler.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    _db.session.rollback()
    holder = _db.session.scalar(
        sa.select(ClusterRuntime.holder).where(ClusterRuntime.cluster_id == cluster.id)
    )
    assert holder is None  # released: another reconciler takes over at once


def test_a_scheduling_commit_wakes_a_listening_reconciler_on_postgresql(app):
    if _db.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite is polled")
    owner = make_user(make_org(), role="owner")
    cluster = clusters.create_cluster(owner, "plain", {"cpu": "2"}, 10)
    waker = reconcile.Waker()
    try:
        assert waker.wait(0.1) is False  # nothing happened yet
        deployments.submit(owner, cluster.id, "nginx:1.27", requests_raw={"cpu": 1})
        started = time.monotonic()
        assert waker.wait(5) is True
        assert time.monotonic() - started < 2
    finally:
        waker.close()
