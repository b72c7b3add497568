"""Compatibility with the seed's API: ids as decimal strings, `clusterId`, unprefixed paths.

The seed's appendix sends `"cluster_id": "1"`, writes `?clusterId=` and calls its paths without
the /api/v1 prefix through `curl --location`. Its whole curl sequence is replayed against a real
server in tests/api/test_api_seed_replay.py; these tests pin each rule down in process.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.models import Deployment
from tests.api.conftest import error_of, make_member
from tests.factories import make_cluster

CURL_ACCEPT = {"Accept": "*/*"}
BROWSER_ACCEPT = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
}


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.org, resources={"cpu": 4000, "gpu": 2, "ram": 8192})


def submit(api, token, cluster_id, **fields):
    body = {"cluster_id": cluster_id, "image": "nginx:1.25", "resource": {"cpu": 1}, **fields}
    return api.put("/deployment/", json=body, token=token)


def deployments_in_db(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


# --------------------------------------------------------------------------------------------
# 1. Ids as decimal strings


@pytest.mark.parametrize("spelling", ["{id}", " {id} ", "+{id}"])
def test_cluster_id_may_be_a_decimal_string(api, owner, cluster, spelling):
    response = submit(api, owner.token, spelling.format(id=cluster.id))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["deployment"]["cluster_id"] == cluster.id


@pytest.mark.parametrize("value", [0, -3, 2**31, 2**40])
def test_a_string_id_is_answered_like_the_integer_it_spells(api, owner, cluster, db, value):
    as_integer = submit(api, owner.token, value)
    as_string = submit(api, owner.token, str(value))
    assert as_integer.status_code == as_string.status_code == 404
    same = ("code", "message", "fields")
    assert [error_of(as_integer)[k] for k in same] == [error_of(as_string)[k] for k in same]
    assert deployments_in_db(db) == 0


@pytest.mark.parametrize("value", ["", "one", "1.0", "1e3", "0x10", "\uff11", "9" * 20, [1], True])
def test_a_cluster_id_that_is_not_an_integer_is_400(api, owner, cluster, db, value):
    response = submit(api, owner.token, value)
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"cluster_id"}
    assert deployments_in_db(db) == 0


def test_another_organizations_cluster_is_404_as_a_string_too(api, owner, outsider):
    theirs = make_cluster(outsider.org)
    assert submit(api, owner.token, str(theirs.id)).status_code == 404


# --------------------------------------------------------------------------------------------
# 2. clusterId, the seed's spelling of cluster_id


def test_cluster_id_alias_filters_the_list(api, owner, cluster):
    other = make_cluster(owner.org)
    submit(api, owner.token, cluster.id)
    submit(api, owner.token, other.id)
    body = api.get(f"/deployment/?clusterId={cluster.id}", token=owner.token).get_json()
    assert body["total"] == 1
    assert body["items"][0]["cluster_id"] == cluster.id


def test_delete_with_cluster_id_alias_empties_the_cluster(api, owner, cluster, db):
    submit(api, owner.token, cluster.id)
    submit(api, owner.token, cluster.id)
    response = api.delete(f"/deployment/?clusterId={cluster.id}", token=owner.token)
    assert response.status_code == 200
    assert response.get_json() == {"deleted": 2}
    assert deployments_in_db(db) == 0


def test_both_spellings_must_agree(api, owner, cluster, db):
    submit(api, owner.token, cluster.id)
    same = api.delete(
        f"/deployment/?cluster_id={cluster.id}&clusterId=%20{cluster.id}", token=owner.token
    )
    assert same.status_code == 200
    submit(api, owner.token, cluster.id)
    response = api.delete(
        f"/deployment/?cluster_id={cluster.id}&clusterId={cluster.id + 1}", token=owner.token
    )
    assert response.status_code == 400
    assert set(error_of(response)["fields"]) == {"cluster_id", "clusterId"}
    assert deployments_in_db(db) == 1


@pytest.mark.parametrize(("value", "status"), [("abc", 400), ("0", 422), ("--1", 400)])
def test_cluster_id_alias_is_checked_like_cluster_id(api, owner, value, status):
    response = api.get(f"/deployment/?clusterId={value}", token=owner.token)
    assert response.status_code == status


# --------------------------------------------------------------------------------------------
# 3. Unprefixed seed paths


def test_every_seed_root_is_an_api_path(app):
    """Each root that is redirected has API routes under /api/v1."""
    from app.blueprints.api.seed import SEED_ROOTS

    api_roots = {
        rule.rule.removeprefix("/api/v1/").split("/")[0]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }
    assert api_roots >= SEED_ROOTS


def test_only_organization_collides_with_a_page(app):
    from app.blueprints.api.seed import is_seed_path

    pages = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith("api.") and is_seed_path(rule.rule)
    }
    assert pages == {"/organization"}


SEED_REQUESTS = [
    ("GET", "/user/", None),
    ("PUT", "/user/create/", {"user": {}, "organization": {}}),
    ("POST", "/user/login/", {"username": "a", "password": "b"}),
    ("GET", "/organization/", None),
    ("PATCH", "/organization/invite/", None),
    ("GET", "/organization/invite/?code=abc", None),
    ("POST", "/organization/invite/", {"username": "a"}),
    ("GET", "/cluster/?page=0&offset=1", None),
    ("GET", "/cluster/7/", None),
    ("PUT", "/cluster/", {"cluster_name": "x"}),
    ("DELETE", "/cluster/7/", None),
    ("PATCH", "/cluster/7/resource/", {"resource": {}}),
    ("POST", "/cluster/7/resource/", {"resource": {}}),
    ("DELETE", "/cluster/7/resource/", {"resource": {}}),
    ("GET", "/deployment/?cluster_id=11&id=1", None),
    ("PUT", "/deployment/", {"cluster_id": "1"}),
    ("DELETE", "/deployment/7/", None),
    ("DELETE", "/deployment/?clusterId=7", None),
    ("GET", "/organization", None),
    ("GET", "/user", None),
]


def send(client, method, path, body, headers):
    kwargs = {"json": body} if body is not None else {}
    return client.open(path, method=method, headers=headers, **kwargs)


@pytest.mark.parametrize(("method", "path", "body"), SEED_REQUESTS)
def test_api_clients_are_redirected_and_browsers_are_not(client, method, path, body):
    api_clients = [
        ("bearer token", None, {"Authorization": "Bearer x", **BROWSER_ACCEPT}),
        ("JSON preferred", None, {"Accept": "application/json, text/html;q=0.5"}),
    ]
    if body is not None:
        api_clients.append(("JSON body", body, CURL_ACCEPT))
    for who, sent, headers in api_clients:
        response = send(client, method, path, sent, headers)
        assert response.status_code == 308, who
        assert response.headers["Location"] == "/api/v1" + path, who
        assert response.headers["Cache-Control"] == "no-store", who
        assert "Authorization" in response.headers["Vary"], who
    browser = send(client, method, path, None, BROWSER_ACCEPT)
    assert browser.status_code != 308
    assert browser.mimetype == "text/html"
    htmx = send(client, method, path, None, {"HX-Request": "true", **CURL_ACCEPT})
    assert htmx.status_code != 308


def test_the_organization_page_stays_a_page_for_a_browser(client, login_as, owner):
    login_as(client, owner.user)
    response = client.get("/organization", headers=BROWSER_ACCEPT)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    # curl's default Accept says nothing either way: the page answers it too.
    assert client.get("/organization", headers=CURL_ACCEPT).status_code == 200


def test_a_plain_curl_reaches_the_api_where_no_page_lives(client):
    response = client.get("/organization/invite/?code=abc", headers=CURL_ACCEPT)
    assert response.status_code == 308
    assert response.headers["Location"] == "/api/v1/organization/invite/?code=abc"
    assert client.get("/user/", headers={}).status_code == 308


def test_pages_and_other_paths_are_left_alone(client):
    bearer = {"Authorization": "Bearer x", "Accept": "application/json"}
    for path in ("/clusters/", "/deployments/", "/login", "/healthz", "/users/", "/api/v1/user/"):
        assert client.get(path, headers=bearer).status_code != 308, path


def test_the_location_keeps_an_escaped_path_and_the_raw_query(client):
    response = client.get(
        "/cluster/a%20b/?name=x%26y&z=%C3%A9", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 308
    assert response.headers["Location"] == "/api/v1/cluster/a%20b/?name=x%26y&z=%C3%A9"


def test_following_the_redirect_keeps_method_and_body(client, owner, cluster, db):
    response = client.put(
        "/deployment/",
        json={"cluster_id": str(cluster.id), "image": "nginx:1.25", "resource": {"cpu": "1"}},
        headers={"Authorization": f"Bearer {owner.token}"},
        follow_redirects=True,
    )
    assert response.status_code == 201
    assert [r.status_code for r in response.history] == [308]
    assert deployments_in_db(db) == 1


def test_an_unrelated_member_cannot_use_a_seed_path_to_reach_others(client, cluster):
    stranger = make_member()
    response = client.get(
        f"/cluster/{cluster.id}/",
        headers={"Authorization": f"Bearer {stranger.token}"},
        follow_redirects=True,
    )
    assert response.status_code == 404
