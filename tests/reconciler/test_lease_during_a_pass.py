"""A cluster's lease held through a whole pass, not only between passes.

A pass can outlast the lease (slow pulls, many starts). The reconciler renews its lease before
each engine action and while it waits on a slow one; when it finds the lease taken by another
reconciler, it makes no further engine call and writes nothing more for that cluster, and says
so (the pass's report, the `lease_lost` error metric, a warning).

No real waiting: the reconcile service's wall clock is the test's, moved forward from inside a
driver call, where the second reconciler's pass then runs (in that call's thread, its own app
context), exactly as if it had run on another machine while the first one's call was slow.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db as _db
from app.models import ClusterRuntime, utcnow
from app.reconciler import Reconciler
from app.runtime.base import WorkloadSpec
from app.services import engines, reconcile
from app.telemetry import metrics
from tests.reconciler.conftest import run, submit

LEASE_SECONDS = 300


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "8", "ram": "8"}}},
        "RECONCILER_LEASE_SECONDS": LEASE_SECONDS,
        "RECONCILER_WORKERS": 1,  # one engine call at a time: the order is the test's
        "RUNTIME_INSTALL_ID": "unit",
    }


class Clock:
    """The reconcile service's `utcnow`, which the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self):
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(reconcile, "utcnow", clock)
    return clock


def holder_of(cluster_id):
    _db.session.rollback()
    return _db.session.scalar(
        sa.select(ClusterRuntime.holder).where(ClusterRuntime.cluster_id == cluster_id)
    )


def lease_lost_count() -> float:
    return metrics.RECONCILE_ERRORS.labels("lease_lost")._value.get()


def test_a_reconciler_whose_lease_was_taken_mid_pass_acts_no_more(
    app, owner, cluster, clock, monkeypatch, caplog
):
    web = [submit(owner, cluster, f"web{i}") for i in range(3)]
    driver = engines.driver("sim")
    plain_start = driver.start
    calls: list[int] = []
    second: list[reconcile.PassReport] = []

    def start(spec):
        calls.append(spec.deployment_id)
        observed = plain_start(spec)
        if len(calls) == 1:
            # The first start outlasts the lease; meanwhile the other reconciler's pass runs.
            clock.advance(LEASE_SECONDS + 1)
            second.extend(Reconciler(app, holder="second").run_once())
        return observed

    monkeypatch.setattr(driver, "start", start)
    lost_before = lease_lost_count()
    with caplog.at_level(logging.WARNING):
        (report,) = run(Reconciler(app, holder="first"))

    # The second reconciler took the cluster and started the other two.
    (taken,) = second
    assert not taken.skipped
    assert sorted(taken.started) == [web[1].id, web[2].id]
    assert holder_of(cluster.id) == "second"
    # The first made no engine call after losing its lease: one container per deployment.
    assert calls[0] == web[0].id and sorted(calls) == [d.id for d in web]
    workloads = driver.observe(cluster.id)
    assert sorted(o.deployment_id for o in workloads) == [d.id for d in web]
    # ...and it noticed: its report, the metric, a warning.
    assert report.lease_lost
    assert report.started == [web[0].id]
    assert lease_lost_count() == lost_before + 1
    assert any("lost its lease" in r.getMessage() for r in caplog.records)
    # What the engine runs is recorded by the holder: every deployment shows running.
    views = engines.views_for([d.id for d in web])
    assert {views[d.id].status for d in web} == {"running"}


def test_a_pass_longer_than_its_lease_keeps_it_by_renewing(app, owner, cluster, clock, monkeypatch):
    web = [submit(owner, cluster, f"web{i}") for i in range(4)]
    driver = engines.driver("sim")
    plain_start = driver.start
    taken: list[bool] = []

    def start(spec):
        observed = plain_start(spec)
        clock.advance(LEASE_SECONDS * 0.6)  # four such starts take 2.4 leases
        with app.app_context():
            taken.append(reconcile.acquire_lease(cluster.id, "second"))
        return observed

    monkeypatch.setattr(driver, "start", start)
    (report,) = run(Reconciler(app, holder="first"))
    assert taken == [False] * 4
    assert not report.lease_lost
    assert sorted(report.started) == [d.id for d in web]
    assert holder_of(cluster.id) == "first"


def test_stops_end_when_the_lease_is_lost(app, owner, cluster, clock, monkeypatch):
    driver = engines.driver("sim")
    for ghost in (999_001, 999_002, 999_003):  # containers of deployments long gone
        driver.start(WorkloadSpec(ghost, cluster.id, "ghost", "nginx:1.27", "1", {"cpu": 100}))
    plain_stop = driver.stop
    stopped: list[str] = []
    second: list[reconcile.PassReport] = []

    def stop(workload_id, grace_seconds):
        stopped.append(workload_id)
        plain_stop(workload_id, grace_seconds)
        if len(stopped) == 1:
            clock.advance(LEASE_SECONDS + 1)
            second.extend(Reconciler(app, holder="second").run_once())

    monkeypatch.setattr(driver, "stop", stop)
    (report,) = run(Reconciler(app, holder="first"))
    assert report.lease_lost
    assert len(report.stopped) == 1
    assert len(second[0].stopped) == 2
    assert len(stopped) == len(set(stopped)) == 3  # each stopped once, never twice
    assert driver.observe(cluster.id) == []


def test_a_lease_is_renewed_while_a_slow_engine_call_runs(app, owner, cluster, monkeypatch):
    """The one test here that lets real time pass: the renewal while waiting is timed by the
    clock the reconciler waits with (a third of a one-second lease)."""
    app.config["RECONCILER_LEASE_SECONDS"] = 1
    submit(owner, cluster, "slow")
    driver = engines.driver("sim")
    plain_start = driver.start
    engine = _db.engine
    table = ClusterRuntime.__table__

    def expires():
        with engine.connect() as connection:
            return connection.scalar(
                sa.select(table.c.lease_expires_at).where(table.c.cluster_id == cluster.id)
            )

    def start(spec):
        # A slow pull: the call returns once the lease was renewed while it ran (or fails
        # the start after half a minute without a renewal).
        first = expires()
        deadline = time.monotonic() + 30
        while expires() <= first:
            if time.monotonic() > deadline:
                raise RuntimeError("the lease was not renewed during the call")
            time.sleep(0.05)
        return plain_start(spec)

    monkeypatch.setattr(driver, "start", start)
    (report,) = run(Reconciler(app, holder="first"))
    assert not report.lease_lost
    assert report.failed == {}
    assert len(report.started) == 1
