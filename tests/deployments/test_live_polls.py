"""The live partials' polls over HTTP: an unchanged poll costs a 204 (the version header) or a
304 (If-None-Match) with an empty body, a change answers 200 with the new version, an ended
session stops the poll and sends to login, and an object that is gone stops it too.

Covers the cluster dashboard, the deployment page, the deployments list and the clusters list.
"""

from __future__ import annotations

import pytest

from app.services import deployments
from tests.factories import make_cluster, make_org, make_user

HX = {"HX-Request": "true"}
VERSION = "X-Kargo-Live-Version"


@pytest.fixture
def user(app):
    return make_user(role="owner")


@pytest.fixture
def cluster(user):
    return make_cluster(user.organization, name="web", resources={"cpu": 2000})


@pytest.fixture
def first(user, cluster):
    return deployments.submit(user, cluster.id, "nginx:1.27", "first", "normal", {"cpu": "1"})


def poll_paths(cluster_id: int, deployment_id: int) -> dict[str, str]:
    return {
        "cluster": f"/clusters/{cluster_id}/utilization",
        "deployment": f"/deployments/{deployment_id}/live",
        "deployments list": "/deployments/live?status=running",
        "clusters list": "/clusters/live",
    }


@pytest.mark.parametrize("which", ["cluster", "deployment", "deployments list", "clusters list"])
def test_an_unchanged_poll_is_empty_and_a_change_is_a_new_version(
    client, login_as, user, cluster, first, which
):
    path = poll_paths(cluster.id, first.deployment.id)[which]
    login_as(client, user)
    full = client.get(path, headers=HX)
    assert full.status_code == 200
    etag = full.headers["ETag"].strip('"')
    assert f'data-live-version="{etag}"' in full.get_data(as_text=True)
    assert full.headers["Cache-Control"] == "private, no-cache"

    # The page's htmx names the version it shows: nothing to swap.
    same = client.get(path, headers={**HX, VERSION: etag})
    assert same.status_code == 204 and same.data == b""
    # A plain HTTP client revalidates with If-None-Match.
    cached = client.get(path, headers={**HX, "If-None-Match": f'"{etag}"'})
    assert cached.status_code == 304 and cached.data == b""

    deployments.submit(user, cluster.id, "redis:7", "second", "normal", {"cpu": "1"})
    changed = client.get(path, headers={**HX, VERSION: etag, "If-None-Match": f'"{etag}"'})
    assert changed.status_code == 200
    assert changed.headers["ETag"].strip('"') != etag
    shown = changed.get_data(as_text=True)
    if which == "clusters list":
        assert "<strong>2</strong> running" in shown
    elif which != "deployment":
        assert "second" in shown


def test_the_pages_carry_the_version_their_poll_sends(client, login_as, user, cluster, first):
    login_as(client, user)
    pages = {
        f"/clusters/{cluster.id}": f"/clusters/{cluster.id}/utilization",
        f"/deployments/{first.deployment.id}": f"/deployments/{first.deployment.id}/live",
        "/deployments/": "/deployments/live",
        "/clusters/": "/clusters/live",
    }
    for page, poll in pages.items():
        html = client.get(page).get_data(as_text=True)
        etag = client.get(poll, headers=HX).headers["ETag"].strip('"')
        assert f'data-live-version="{etag}"' in html, page
        assert 'hx-swap="morph:outerHTML"' in html, page


def test_a_priority_change_shows_on_the_deployment_page(client, login_as, user, cluster, first):
    path = f"/deployments/{first.deployment.id}/live"
    login_as(client, user)
    etag = client.get(path, headers=HX).headers["ETag"].strip('"')
    deployments.change_priority(user, first.deployment.id, "critical")
    changed = client.get(path, headers={**HX, VERSION: etag})
    assert changed.status_code == 200
    assert "critical (1000)" in changed.get_data(as_text=True)


def test_another_viewer_gets_another_version(client, login_as, user, cluster, first):
    colleague = make_user(user.organization, role="member")
    path = f"/deployments/{first.deployment.id}/live"
    login_as(client, user)
    mine = client.get(path, headers=HX).headers["ETag"]
    login_as(client, colleague)
    theirs = client.get(path, headers=HX).headers["ETag"]
    assert mine != theirs


@pytest.mark.parametrize("which", ["cluster", "deployment", "deployments list", "clusters list"])
def test_a_poll_after_the_session_ended_stops_and_sends_to_login(
    client, user, cluster, first, which
):
    path = poll_paths(cluster.id, first.deployment.id)[which]
    response = client.get(path, headers=HX)
    assert response.status_code == 286
    assert response.headers["HX-Redirect"].startswith("/login")
    plain = client.get(path)
    assert plain.status_code == 302 and "/login" in plain.headers["Location"]


def test_a_poll_for_a_deleted_deployment_stops(client, login_as, user, cluster, first):
    login_as(client, user)
    deployments.delete(user, first.deployment.id)
    response = client.get(f"/deployments/{first.deployment.id}/live", headers=HX)
    assert response.status_code == 286
    assert "This deployment no longer exists." in response.get_data(as_text=True)
    assert client.get(f"/deployments/{first.deployment.id}/live").status_code == 404


def test_another_organizations_deployment_is_not_found(client, login_as, user, cluster, first):
    stranger = make_user(make_org(), role="owner")
    login_as(client, stranger)
    assert client.get(f"/deployments/{first.deployment.id}/live").status_code == 404
    assert client.get(f"/deployments/{first.deployment.id}/live", headers=HX).status_code == 286
    # Their lists do not change when this organization's clusters do.
    etag = client.get("/clusters/live", headers=HX).headers["ETag"].strip('"')
    make_cluster(user.organization, name="more", resources={"cpu": 1000})
    assert client.get("/clusters/live", headers={**HX, VERSION: etag}).status_code == 204
    make_cluster(stranger.organization, name="theirs", resources={"cpu": 1000})
    assert client.get("/clusters/live", headers={**HX, VERSION: etag}).status_code == 200
