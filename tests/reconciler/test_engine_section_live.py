"""The cluster page's engine section is live: it polls like the utilization section, answers
204 while nothing changed, and shows a change of the engine's health at the next poll.

The engine is declared with the simulated driver; the reconciler's passes write what it sees.
"""

from __future__ import annotations

import re

import pytest

from app.extensions import db as _db
from app.reconciler import Reconciler
from app.services import engines
from tests.factories import make_org, make_user


@pytest.fixture
def app_config():
    return {
        "ENGINES": {"sim": {"driver": "simulated", "capacity": {"cpu": "8", "ram": "8"}}},
        "RUNTIME_INSTALL_ID": "unit",
    }


def text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def poll(client, cluster_id, version=None):
    headers = {"HX-Request": "true"}
    if version:
        headers["X-Kargo-Live-Version"] = version
    return client.get(f"/clusters/{cluster_id}/engine", headers=headers)


def version_of(page: str) -> str:
    found = re.search(r'id="cluster-engine"[^>]*data-live-version="([^"]+)"', page)
    assert found, page
    return found.group(1)


def pass_once(app):
    Reconciler(app, holder="only").run_once()
    _db.session.rollback()


def test_the_engine_section_polls_and_shows_a_change(app, client, login_as, owner, cluster):
    login_as(client, owner)
    pass_once(app)
    page = text(client.get(f"/clusters/{cluster.id}"))
    assert "Reachable" in page
    assert f'hx-get="/clusters/{cluster.id}/engine"' in page
    version = version_of(page)

    unchanged = poll(client, cluster.id, version)
    assert unchanged.status_code == 204 and unchanged.get_data() == b""
    assert poll(client, cluster.id, version).status_code == 204  # passes change nothing

    engines.driver("sim").down = True  # the engine stops answering
    pass_once(app)
    changed = poll(client, cluster.id, version)
    assert changed.status_code == 200
    body = text(changed)
    assert "Engine unreachable" in body and "switched off" in body
    assert version_of(body) != version
    assert poll(client, cluster.id, version_of(body)).status_code == 204


def test_another_organizations_engine_section_is_like_a_missing_one(client, login_as, cluster):
    stranger = make_user(make_org(), role="owner")
    login_as(client, stranger)
    theirs = poll(client, cluster.id)
    missing = poll(client, 999_999)
    assert theirs.status_code == missing.status_code == 286  # the poll stops
    assert theirs.get_data() == missing.get_data()
    assert poll(client, 0).status_code == 286  # an id that cannot exist


def test_a_logged_out_poll_stops_and_goes_to_login(client, cluster):
    response = poll(client, cluster.id)
    assert response.status_code == 286
    assert "/login" in response.headers["HX-Redirect"]
