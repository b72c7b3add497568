"""A deployment whose image must be pulled first shows "pulling" while it is pulled.

A pull can take minutes; "starting" for all that time says nothing. The reconciler asks the
driver whether a start will pull (docker: the image is not on the engine) and, if so, writes
"pulling" before it hands the start over. The simulated driver "pulls" the images a test names.
"""

from __future__ import annotations

import pytest

from app.extensions import db as _db
from app.reconciler import Reconciler
from app.services import deployments, engines


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "8", "ram": "8"}}},
        "RECONCILER_WORKERS": 1,
        "RUNTIME_INSTALL_ID": "unit",
    }


def test_a_start_that_pulls_shows_pulling_until_it_runs(app, owner, cluster, monkeypatch):
    fresh = deployments.submit(
        owner,
        cluster.id,
        "registry.example.com/team/fresh:1",
        requests_raw={"cpu": 1, "ram": "64Mi"},
    ).deployment
    cached = deployments.submit(
        owner, cluster.id, "nginx:1.27", requests_raw={"cpu": 1, "ram": "64Mi"}
    ).deployment
    driver = engines.driver("sim")
    driver.pull_images = {"registry.example.com/team/fresh:1"}
    plain_start = driver.start
    seen_during: dict[int, str | None] = {}

    def start(spec):
        with app.app_context():
            view = engines.views_for([spec.deployment_id]).get(spec.deployment_id)
            seen_during[spec.deployment_id] = view.status if view else None
            if view is not None:
                seen_during[-spec.deployment_id] = view.describe()
        return plain_start(spec)

    monkeypatch.setattr(driver, "start", start)
    (report,) = Reconciler(app, holder="only").run_once()
    _db.session.rollback()

    assert sorted(report.started) == sorted([fresh.id, cached.id])
    assert seen_during[fresh.id] == "pulling"
    assert seen_during[-fresh.id] == "pulling the image"
    assert seen_during[cached.id] is None  # nothing written before a plain start
    views = engines.views_for([fresh.id, cached.id])
    assert {views[fresh.id].status, views[cached.id].status} == {"running"}
