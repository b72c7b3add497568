"""Start-time estimates against actual start times in scripted scenarios: a fake clock is
advanced and `expire_due` is called, and the deployments start exactly when estimated."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.models import Deployment
from app.services import deployments
from tests.api.conftest import make_member
from tests.factories import make_cluster
from tests.fairuse.conftest import submit_cpu


def _submit(user, cluster, name, cpu, max_run=None, priority="normal"):
    return submit_cpu(user, cluster, name, cpu, max_run, priority).deployment


def _started_at(deployment_id):
    return deployments.db.session.scalar(
        sa.select(Deployment.started_at).where(Deployment.id == deployment_id)
    )


def test_estimates_match_the_actual_starts_on_a_fake_clock(app, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    a = _submit(owner.user, cluster, "a", 2, max_run="40m")
    b = _submit(owner.user, cluster, "b", 2, max_run="10m")
    c = _submit(owner.user, cluster, "c", 2, max_run="20m")
    d = _submit(owner.user, cluster, "d", 4)
    e = _submit(owner.user, cluster, "e", 1, priority="low")
    t0 = _started_at(a.id)
    views = [deployments.get(owner.user, i) for i in (c.id, d.id, e.id)]
    found = deployments.start_estimates(owner.user, views, now=t0)
    # c starts when b ends (10 min); e (low, 1 cpu) in the room c leaves at 30 min; d when
    # a ends (40 min), preempting e.
    assert found[c.id].at == _started_at(b.id) + timedelta(minutes=10)
    assert found[d.id].at == t0 + timedelta(minutes=40)
    assert found[c.id].text.startswith("expected to start in about 10 min (at the latest ")
    assert found[e.id].at == found[c.id].at + timedelta(minutes=20)
    for target, at in ((c.id, found[c.id].at), (d.id, found[d.id].at)):
        deployments.expire_due(at - timedelta(seconds=1))
        db.session.expire_all()
        assert deployments.get(owner.user, target).status == "pending"
        deployments.expire_due(at)
        db.session.expire_all()
        assert deployments.get(owner.user, target).status == "running"
        assert _started_at(target) == at


def test_an_estimate_behind_work_without_limits_is_unknown(app, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    _submit(owner.user, cluster, "forever", 3)
    _submit(owner.user, cluster, "again", 1, priority="high")
    queued = _submit(owner.user, cluster, "queued", 2)
    view = deployments.get(owner.user, queued.id)
    found = deployments.start_estimates(owner.user, [view])[queued.id]
    assert found.at is None
    assert found.text == "unknown: 2 running deployments ahead of it have no run-time limit"


def test_estimate_words():
    now = datetime(2026, 11, 30, 13, 40)
    words = deployments.estimate_words
    assert words(now + timedelta(minutes=40), now) == (
        "expected to start in about 40 min (at the latest 14:20)"
    )
    assert words(now + timedelta(minutes=150), now).startswith("expected to start in about 2 h 30")
    assert words(now + timedelta(days=3), now).endswith("(at the latest 2026-12-03 13:40)")
    assert words(now, now) == "expected to start in less than a minute (at the latest 13:40)"


def test_the_api_and_the_pages_show_the_estimate(api, client, login_as, db):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, resources={"cpu": 4000})
    _submit(owner.user, cluster, "a", 4, max_run="1h")
    queued = _submit(owner.user, cluster, "q", 4)
    shown = api.get(f"/deployment/{queued.id}/", token=owner.token).get_json()
    assert shown["estimate"]["text"].startswith("expected to start in about 60 min")
    assert shown["estimate"]["at"] is not None
    login_as(client, owner.user)
    page = client.get(f"/deployments/{queued.id}").get_data(as_text=True)
    assert "Expected start" in page and "expected to start in about" in page
    listing = client.get(f"/deployments/?cluster_id={cluster.id}&status=pending")
    assert "expected to start in about" in listing.get_data(as_text=True)
