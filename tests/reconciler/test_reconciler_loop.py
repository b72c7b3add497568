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
        # No resync (nor lease renewal) within the test: what the loop does after its first
        # pass, it does because it noticed the change.
        "RECONCILER_RESYNC_SECONDS": 3600,
        "RECONCILER_LEASE_SECONDS": 7200,
    }


def wait_until(check, timeout: float = 60) -> bool:
    """Poll `check` until it holds; a generous bound for a loaded machine, not a measure."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_loop_reacts_to_a_submission_and_releases_its_leases(app):
    owner = make_user(make_org(), role="owner")
    cluster = clusters.create_cluster(owner, "sim", {}, 10, engine="sim")
    reconciler = Reconciler(app, holder="loop")
    thread = threading.Thread(target=reconciler.run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: reconciler.passes >= 1)  # its first pass (nothing to do)
        web = deployments.submit(
            owner, cluster.id, "nginx:1.27", name="web", requests_raw={"cpu": 1, "ram": "1"}
        ).deployment

        def status() -> str | None:
            _db.session.rollback()
            view = engines.views_for([web.id]).get(web.id)
            return view.status if view else None

        # With no resync in sight, only the change it noticed can have started it.
        assert wait_until(lambda: status() == "running"), status()
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
        # True only on a notification (a plain wait times out with False); the bound is for
        # a loaded machine and costs nothing when the notification comes.
        assert waker.wait(30) is True
    finally:
        waker.close()
