"""The cluster pages over HTTP: list, create (with htmx custom rows), detail, the polling
partial, delete, bad input everywhere, and the cross-organization 404 matrix."""

from __future__ import annotations

import re
import time

import itsdangerous
import pytest
import sqlalchemy as sa

from app.models import Cluster, ClusterResource
from tests.factories import make_cluster, make_deployment, make_org, make_user


@pytest.fixture
def user(app):
    return make_user(role="owner")


@pytest.fixture
def signed_in(client, login_as, user):
    return login_as(client, user)


def cluster_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Cluster))


def text(response) -> str:
    return response.get_data(as_text=True)


def form(**fields) -> dict:
    data = {"name": "prod", "cpu": "", "gpu": "", "ram": "", "max_deployments": "100"}
    data.update(fields)
    return data


# --- login required ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/clusters/"),
        ("get", "/clusters/new"),
        ("post", "/clusters/new"),
        ("get", "/clusters/new/resource-row?index=0"),
        ("get", "/clusters/1"),
        ("get", "/clusters/1/utilization"),
        ("post", "/clusters/1/delete"),
    ],
)
def test_every_page_requires_login(client, db, method, path):
    make_cluster(make_org())
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert cluster_count(db) == 1


def test_a_poll_after_logout_stops_and_sends_to_login(client, db):
    cluster = make_cluster(make_org())
    response = client.get(f"/clusters/{cluster.id}/utilization", headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert "/login" in response.headers["HX-Redirect"]


# --- list -------------------------------------------------------------------------------------


def test_empty_list_invites_to_create(signed_in):
    response = signed_in.get("/clusters/")
    assert response.status_code == 200
    assert "No clusters yet" in text(response)
    assert 'href="/clusters/new"' in text(response)


def test_list_shows_status_counts_and_bars(signed_in, user):
    org = user.organization
    idle = make_cluster(org, name="a-idle")
    busy = make_cluster(org, name="b-busy", resources={"cpu": 4000})
    make_deployment(busy, status="running", requests={"cpu": 1000})
    full = make_cluster(org, name="c-full", resources={"cpu": 1000, "gpu": 1})
    make_deployment(full, status="running", requests={"gpu": 1})
    queued = make_cluster(org, name="d-queued", resources={"cpu": 1000})
    make_deployment(queued, status="running", requests={"cpu": 1000})
    make_deployment(queued, status="pending", requests={"cpu": 1000})
    make_deployment(queued, status="pending", requests={"cpu": 500})
    make_cluster(make_org(), name="e-foreign")

    page = text(signed_in.get("/clusters/"))
    cards = re.findall(r'<article class="cluster-card"[^>]*>(.*?)</article>', page, re.S)
    assert len(cards) == 4
    expectations = [
        (idle, "status-idle", "Idle", 0, 0),
        (busy, "status-running", "Running", 1, 0),
        (full, "status-full", "Full", 1, 0),
        (queued, "status-queue", "Has a queue", 1, 2),
    ]
    for card, (cluster, css, label, running, pending) in zip(cards, expectations, strict=True):
        assert cluster.name in card
        assert f'<span class="status {css}">{label}</span>' in card
        assert f"<strong>{running}</strong> running · <strong>{pending}</strong> pending" in card
    assert "1 / 4 cores · 25.0%" in cards[1]
    assert 'class="full"' in cards[2]
    assert "e-foreign" not in page


def test_list_is_paginated(signed_in, user, app):
    app.config["PAGE_SIZE"] = 2
    for name in ["pool-a", "pool-b", "pool-c", "pool-d", "pool-e"]:
        make_cluster(user.organization, name=name)
    first = text(signed_in.get("/clusters/"))
    assert "pool-a" in first and "pool-b" in first and "pool-c" not in first
    assert "Page 1 of 3" in first and 'href="/clusters/?page=2"' in first
    last = text(signed_in.get("/clusters/?page=3"))
    assert "pool-e" in last and "pool-d" not in last and 'rel="next"' not in last


@pytest.mark.parametrize(
    "page", ["abc", "-1", "0", "1.5", "", " ", "1e3", "99999999999999999999", "²"]
)
def test_a_bad_page_number_is_page_one(signed_in, user, page):
    make_cluster(user.organization, name="only")
    response = signed_in.get("/clusters/", query_string={"page": page})
    assert response.status_code == 200
    assert "only" in text(response)


def test_a_page_past_the_end_says_so(signed_in, user):
    make_cluster(user.organization, name="only")
    response = signed_in.get("/clusters/?page=7")
    assert response.status_code == 200
    assert "There are no clusters on page 7" in text(response)


# --- create -----------------------------------------------------------------------------------


def test_create_form_offers_the_standard_kinds_and_the_default_limit(signed_in, app):
    app.config["DEFAULT_MAX_DEPLOYMENTS"] = 42
    page = text(signed_in.get("/clusters/new"))
    for placeholder in ('placeholder="e.g. 8 or 500m"', 'placeholder="e.g. 16 or 512Mi"'):
        assert placeholder in page
    assert 'name="max_deployments"' in page and 'value="42"' in page
    assert 'hx-get="/clusters/new/resource-row?index=0"' in page
    assert 'hx-swap="beforeend"' in page


def test_create_a_cluster_with_custom_kinds(signed_in, db, user):
    response = signed_in.post(
        "/clusters/new",
        data=form(
            name="gpu-pool",
            cpu=" 8",
            ram="512Mi",
            **{
                "custom-0-kind": "tpu",
                "custom-0-amount": "4",
                "custom-1-kind": "",  # a blank row is ignored
                "custom-1-amount": "",
                "custom-5-kind": "disk_gb",  # rows numbered with gaps after removals
                "custom-5-amount": "100",
            },
        ),
    )
    assert response.status_code == 302
    cluster = db.session.scalar(sa.select(Cluster))
    assert response.headers["Location"] == f"/clusters/{cluster.id}"
    assert cluster.organization_id == user.organization_id
    assert cluster.created_by_id == user.id
    resources = {r.kind: (r.capacity, r.used) for r in cluster.resources}
    assert resources == {"cpu": (8000, 0), "ram": (512, 0), "tpu": (4, 0), "disk_gb": (100, 0)}
    page = text(signed_in.get(response.headers["Location"]))
    assert "Cluster gpu-pool created." in page
    assert "4 tpu" in page and "100 disk_gb" in page


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"cpu": "0"}, "cpu", "cpu must be greater than zero"),
        ({"cpu": "-2"}, "cpu", "cpu must be greater than zero"),
        ({"cpu": "lots"}, "cpu", "is not a number"),
        ({"cpu": "2x"}, "cpu", "unknown unit"),
        ({"cpu": "0.0001"}, "cpu", "precise to 0.001"),
        ({"gpu": "1.5"}, "gpu", "gpu must be a whole number"),
        ({"gpu": "10000000000000"}, "gpu", "gpu is too large"),
        ({"ram": "4PB"}, "ram", "unknown unit"),
        ({"ram": "9" * 40}, "ram", "too long"),
        ({"cpu": "1", "name": ""}, "name", "give the cluster a name"),
        ({"cpu": "1", "name": "-bad-"}, "name", "lowercase letters"),
        ({"cpu": "1", "name": "x" * 64}, "name", "at most 63"),
        ({"cpu": "1", "max_deployments": "0"}, "max_deployments", "from 1 to 1,000"),
        ({"cpu": "1", "max_deployments": "abc"}, "max_deployments", "from 1 to 1,000"),
        ({"cpu": "1", "max_deployments": "1001"}, "max_deployments", "from 1 to 1,000"),
        (
            {"cpu": "1", "custom-0-kind": "tpu", "custom-0-amount": "-1"},
            "custom-0-amount",
            "tpu must be greater than zero",
        ),
        (
            {"cpu": "1", "custom-0-kind": "tpu", "custom-0-amount": ""},
            "custom-0-amount",
            "give an amount of tpu",
        ),
        (
            {"cpu": "1", "custom-0-kind": "", "custom-0-amount": "3"},
            "custom-0-kind",
            "name this resource kind",
        ),
        (
            {"cpu": "1", "custom-0-kind": "Bad Kind", "custom-0-amount": "3"},
            "custom-0-kind",
            "resource kind must start with a letter",
        ),
        (
            {"cpu": "1", "custom-0-kind": "cpu", "custom-0-amount": "3"},
            "custom-0-amount",
            "cpu is given twice",
        ),
        (
            {
                "custom-0-kind": "tpu",
                "custom-0-amount": "1",
                "custom-1-kind": "TPU",
                "custom-1-amount": "2",
            },
            "custom-1-amount",
            "tpu is given twice",
        ),
    ],
)
def test_every_bad_input_is_shown_next_to_its_field_and_writes_nothing(
    signed_in, db, fields, field_id, message
):
    response = signed_in.post("/clusters/new", data=form(**fields))
    assert response.status_code == 422
    page = text(response)
    error = re.search(rf'<small id="{field_id}-error" class="field-error">(.*?)</small>', page)
    assert error, f"no error shown next to {field_id}"
    # The page words each message as a sentence (a capital, a final stop).
    assert message.lower() in error.group(1).replace("&#39;", "'").lower()
    assert f'aria-describedby="{field_id}-error" aria-invalid="true"' in page
    assert cluster_count(db) == 0


def test_no_resources_at_all_is_a_form_error(signed_in, db):
    response = signed_in.post("/clusters/new", data=form())
    assert response.status_code == 422
    assert "give the capacity of at least one resource kind" in text(response)
    assert cluster_count(db) == 0


def test_a_duplicate_name_is_refused(signed_in, db, user):
    make_cluster(user.organization, name="prod")
    response = signed_in.post("/clusters/new", data=form(name="Prod", cpu="1"))
    assert response.status_code == 422
    assert "a cluster named prod already exists" in text(response).lower()
    assert cluster_count(db) == 1


def test_rows_survive_a_failed_submission_and_the_add_button_continues_after_them(signed_in):
    response = signed_in.post(
        "/clusters/new",
        data=form(cpu="x", **{"custom-3-kind": "tpu", "custom-3-amount": "2"}),
    )
    page = text(response)
    assert 'value="tpu"' in page and 'value="2"' in page
    assert 'hx-get="/clusters/new/resource-row?index=1"' in page


def test_too_many_rows_are_not_processed(signed_in, db):
    data = form(cpu="1")
    for index in range(100):
        data[f"custom-{index}-kind"] = f"k{index}"
        data[f"custom-{index}-amount"] = "1"
    response = signed_in.post("/clusters/new", data=data)
    assert response.status_code == 422
    assert "at most 16 resource kinds" in text(response)
    assert cluster_count(db) == 0


# --- the custom row endpoint ------------------------------------------------------------------


def test_the_row_endpoint_returns_a_row_and_rearms_the_button(signed_in):
    response = signed_in.get("/clusters/new/resource-row?index=3")
    assert response.status_code == 200
    page = text(response)
    assert 'name="custom-3-kind"' in page and 'name="custom-3-amount"' in page
    assert "data-remove-row" in page
    assert 'hx-swap-oob="true"' in page
    assert 'hx-get="/clusters/new/resource-row?index=4"' in page
    assert "<html" not in page


def test_the_last_row_index_disables_the_button(signed_in):
    page = text(signed_in.get("/clusters/new/resource-row?index=999"))
    assert 'name="custom-999-kind"' in page
    assert "disabled" in page and "No more resource kinds" in page


@pytest.mark.parametrize("index", ["", "x", "-1", "1000", "1.5", "99999999999999999999"])
def test_the_row_endpoint_refuses_a_bad_index(signed_in, index):
    response = signed_in.get("/clusters/new/resource-row", query_string={"index": index})
    assert response.status_code == 400
    assert "index must be a whole number" in text(response)


# --- detail and the partial -------------------------------------------------------------------


def test_detail_shows_usage_counts_deployments_and_the_deploy_link(signed_in, user, app):
    app.config["POLL_INTERVAL_SECONDS"] = 7
    cluster = make_cluster(user.organization, name="web", resources={"cpu": 4000, "ram": 8192})
    make_deployment(cluster, name="api", status="running", requests={"cpu": 1500, "ram": 2048})
    make_deployment(
        cluster,
        name="batch",
        status="pending",
        requests={"cpu": 4000},
        queue_position=1,
        reason="needs 4 cores, 2.5 free",
    )
    page = text(signed_in.get(f"/clusters/{cluster.id}"))
    assert "<h1>web</h1>" in page
    assert "<td>4 cores</td>" in page and "<td>1.5 cores</td>" in page  # capacity, used
    assert "<td>2.5 cores</td>" in page  # available
    assert "<td>37.5%</td>" in page and "<td>25.0%</td>" in page
    assert "<strong>1</strong> running · <strong>1</strong> pending" in page
    assert ">api</a>" in page and ">batch</a>" in page
    assert "needs 4 cores, 2.5 free" in page
    assert f"/deployments/new?cluster_id={cluster.id}" in page
    assert "Deploy to this cluster" in page
    root = re.search(r'<section id="cluster-live"[^>]*>', page).group(0)
    assert f'hx-get="/clusters/{cluster.id}/utilization"' in root
    assert 'hx-trigger="every 7s"' in root and 'hx-swap="morph:outerHTML"' in root
    assert "data-confirm=" in page and f'action="/clusters/{cluster.id}/delete"' in page


def test_the_partial_alone_has_the_same_root_and_no_page(signed_in, user):
    cluster = make_cluster(user.organization, resources={"cpu": 2000})
    make_deployment(cluster, status="running", requests={"cpu": 2000})
    response = signed_in.get(f"/clusters/{cluster.id}/utilization", headers={"HX-Request": "true"})
    assert response.status_code == 200
    page = text(response)
    assert page.strip().startswith('<section id="cluster-live"')
    assert "<html" not in page
    assert 'data-status="full"' in page and "100.0%" in page
    assert "HX-Request" in response.headers.get("Vary", "")


def test_polling_a_deleted_cluster_stops_the_poll(signed_in, user, db):
    cluster = make_cluster(user.organization)
    signed_in.post(f"/clusters/{cluster.id}/delete")
    response = signed_in.get(f"/clusters/{cluster.id}/utilization", headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert "This cluster no longer exists" in text(response)
    assert "hx-trigger" not in text(response)


def test_there_is_no_way_to_edit_capacity(signed_in, user):
    cluster = make_cluster(user.organization)
    assert signed_in.get(f"/clusters/{cluster.id}/edit").status_code == 404
    assert signed_in.post(f"/clusters/{cluster.id}/edit", data={"cpu": "99"}).status_code == 404
    for method in ("put", "patch", "post"):
        response = getattr(signed_in, method)(f"/clusters/{cluster.id}", data={"cpu": "99"})
        assert response.status_code == 405
    assert "Fixed once the cluster exists" in text(signed_in.get("/clusters/new"))


# --- delete -----------------------------------------------------------------------------------


def test_delete_an_empty_cluster(signed_in, user, db):
    cluster = make_cluster(user.organization, name="old")
    response = signed_in.post(f"/clusters/{cluster.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/clusters/"
    assert cluster_count(db) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ClusterResource)) == 0
    assert "Cluster deleted." in text(signed_in.get("/clusters/"))


def test_delete_with_deployments_explains_and_keeps_everything(signed_in, user, db):
    cluster = make_cluster(user.organization, name="busy")
    for _ in range(3):
        make_deployment(cluster, status="running")
    for _ in range(2):
        make_deployment(cluster, status="pending")
    response = signed_in.post(f"/clusters/{cluster.id}/delete", follow_redirects=True)
    assert response.request.path == f"/clusters/{cluster.id}"
    assert "Cluster busy still has 3 running and 2 pending deployments; delete them first." in text(
        response
    )
    assert cluster_count(db) == 1


def test_delete_is_post_only(signed_in, user, db):
    cluster = make_cluster(user.organization)
    assert signed_in.get(f"/clusters/{cluster.id}/delete").status_code == 405
    assert cluster_count(db) == 1


# --- isolation: another organization's cluster is exactly like one that does not exist -------

ROUTES = [
    ("get", "/clusters/{id}", {}),
    ("get", "/clusters/{id}/utilization", {}),
    ("get", "/clusters/{id}/utilization", {"HX-Request": "true"}),
    ("post", "/clusters/{id}/delete", {}),
]


@pytest.mark.parametrize(("method", "path", "headers"), ROUTES)
@pytest.mark.parametrize("target", ["other-organization", "nonexistent", "huge"])
def test_other_organizations_clusters_are_not_found(signed_in, db, method, path, headers, target):
    foreign = make_cluster(make_org(), name="secret-plans")
    make_deployment(foreign, status="running")
    cluster_id = {"other-organization": foreign.id, "nonexistent": foreign.id + 1000}.get(
        target, 2**40
    )
    response = getattr(signed_in, method)(path.format(id=cluster_id), headers=headers)
    expected = 286 if headers else 404
    assert response.status_code == expected
    assert "secret-plans" not in text(response)
    if expected == 404:
        assert "No such cluster." in text(response)
    assert cluster_count(db) == 1


@pytest.mark.parametrize(("method", "path", "headers"), ROUTES)
def test_a_foreign_id_answers_byte_for_byte_like_a_missing_one(
    signed_in, monkeypatch, method, path, headers
):
    # Each response names its request id: give both the same one, so only the rest can differ.
    headers = {**headers, "X-Request-ID": "compare-0001"}
    # A page's CSRF token is signed with the current second: two requests on either side of a
    # second's boundary (a loaded machine) would differ there. Both are signed in one second.
    second = int(time.time())
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: second)
    foreign = make_cluster(make_org())
    first = getattr(signed_in, method)(path.format(id=foreign.id), headers=headers)
    second = getattr(signed_in, method)(path.format(id=foreign.id + 1000), headers=headers)
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()
