"""A pass busy starting containers gives way to a decision that stops one of its deployments.

Starting many containers on a busy engine takes a long time; a preemption or a delete
committed meanwhile must not wait for every start: the victim's container is to stop now, and
a pass stops first. So the pass hands over no further start once a deployment it wanted
running no longer is, and the next pass (which the reconciler's loop runs at once) stops the
victim before it starts the rest. No real waiting: the decision is committed from inside the
first start, as if it had arrived while that start was slow.
"""

from __future__ import annotations

import pytest

from app.reconciler import Reconciler
from app.services import engines, reconcile
from tests.reconciler.conftest import run, submit, submitted


@pytest.fixture(autouse=True)
def check_at_every_start(monkeypatch):
    """The pass reads what is wanted at most every quarter second; here, at every handover
    (the starts of a test take microseconds)."""
    monkeypatch.setattr(reconcile, "_SUPERSEDED_CHECK_SECONDS", 0)


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "8", "ram": "8"}}},
        "RECONCILER_WORKERS": 1,  # one engine call at a time: the order is the test's
        "RUNTIME_INSTALL_ID": "unit",
    }


def test_a_preemption_during_many_starts_is_acted_on_by_the_next_pass(
    app, owner, cluster, monkeypatch
):
    low = [submit(owner, cluster, f"low{i}", cpu=2, priority=0) for i in range(4)]
    driver = engines.driver("sim")
    plain_start = driver.start
    calls: list[int] = []
    urgent: list[object] = []

    def start(spec):
        calls.append(spec.deployment_id)
        observed = plain_start(spec)
        if len(calls) == 1:
            # While the first container starts, a high-priority deployment takes the room
            # of one that runs: a preemption the engine must carry out now.
            with app.app_context():
                urgent.append(submitted(owner, cluster, "urgent", cpu=2, priority=900))
        return observed

    monkeypatch.setattr(driver, "start", start)
    (first,) = run(Reconciler(app, holder="only"))

    (outcome,) = urgent
    (victim,) = outcome.preempted
    assert first.superseded
    assert first.started == [calls[0]] and len(calls) == 1  # no further start handed over
    # Nothing is written for the starts the pass never made: they are not shown as started.
    views = engines.views_for([d.id for d in low])
    assert [i for i, view in views.items() if view.status == "running"] == [calls[0]]

    monkeypatch.setattr(driver, "start", plain_start)
    (second,) = run(Reconciler(app, holder="only"))
    assert not second.superseded
    running = {d.id for d in low} - {victim.id} | {outcome.deployment.id}
    assert set(second.started) | set(first.started) - {victim.id} == running
    assert sorted(o.deployment_id for o in driver.observe(cluster.id)) == sorted(running)
    if victim.id == calls[0]:
        assert len(second.stopped) == 1  # the victim's container, stopped first


def test_new_work_alone_does_not_cut_a_pass_short(app, owner, cluster, monkeypatch):
    web = [submit(owner, cluster, f"web{i}", priority=0) for i in range(3)]
    driver = engines.driver("sim")
    plain_start = driver.start
    calls: list[int] = []

    def start(spec):
        calls.append(spec.deployment_id)
        if len(calls) == 1:
            with app.app_context():
                submit(owner, cluster, "later", priority=0)  # fits: nothing is stopped for it
        return plain_start(spec)

    monkeypatch.setattr(driver, "start", start)
    (report,) = run(Reconciler(app, holder="only"))
    assert not report.superseded
    assert sorted(report.started) == sorted(d.id for d in web)
