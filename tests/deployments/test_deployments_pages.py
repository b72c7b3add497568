"""The deployment pages: list and filters, deploy form and preview, detail, delete, delete-all,
preemption notices, CSRF and the cross-organization 404 matrix."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.models import ClusterResource, Deployment
from app.services import deployments
from tests.factories import make_cluster, make_org, make_user


def count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


def cpu_used(db, cluster_id: int) -> int:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(ClusterResource.used).where(
            ClusterResource.cluster_id == cluster_id, ClusterResource.kind == "cpu"
        )
    )


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def owner(app):
    return make_user(role="owner", display_name="Olga")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, name="main", resources={"cpu": 4000, "gpu": 2})


@pytest.fixture
def logged_in(client, login_as, owner):
    return login_as(client, owner)


def deploy(user, cluster, name, priority=100, **requests):
    return deployments.submit(user, cluster.id, "nginx:1.27", name, priority, requests).deployment


def form(cluster, **fields):
    data = {"cluster_id": str(cluster.id), "image": "nginx:1.27", "priority_preset": "normal"}
    data.update(fields)
    return data


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/deployments/"),
        ("get", "/deployments/new"),
        ("post", "/deployments/new"),
        ("post", "/deployments/preview"),
        ("get", "/deployments/1"),
        ("post", "/deployments/1/delete"),
        ("get", "/deployments/cluster/1/delete-all"),
        ("post", "/deployments/cluster/1/delete-all"),
    ],
)
def test_every_page_needs_a_login(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/deployments/{d}"),
        ("post", "/deployments/{d}/delete"),
        ("get", "/deployments/cluster/{c}/delete-all"),
        ("post", "/deployments/cluster/{c}/delete-all"),
        ("get", "/deployments/new?cluster_id={c}"),
        ("post", "/deployments/new"),
        ("post", "/deployments/preview"),
        ("get", "/deployments/?cluster_id={c}"),
    ],
)
def test_another_organizations_objects_answer_404(db, client, login_as, method, path):
    stranger = make_user(role="owner")
    theirs = make_cluster(stranger.organization, resources={"cpu": 4000})
    victim = deploy(stranger, theirs, "theirs", cpu=1)
    me = make_user(make_org(), role="owner")
    make_cluster(me.organization, resources={"cpu": 4000})
    login_as(client, me)
    url = path.format(d=victim.id, c=theirs.id)
    data = {"cluster_id": str(theirs.id), "image": "nginx", "resource_cpu": "1"}
    response = client.get(url) if method == "get" else client.post(url, data=data)
    assert response.status_code == 404
    assert "Not found" in text(response)
    assert count(db) == 1 and cpu_used(db, theirs.id) == 1000


@pytest.mark.parametrize(
    "path",
    [
        "/deployments/abc",
        "/deployments/-1",
        "/deployments/99999999999999999999",
        "/deployments/0",
        "/deployments/cluster/abc/delete-all",
        "/deployments/cluster/99999999999999999999/delete-all",
        "/deployments/new?cluster_id=abc",
        "/deployments/new?cluster_id=99999999999999999999",
    ],
)
def test_odd_ids_are_clean_404s(logged_in, cluster, path):
    response = logged_in.get(path)
    assert response.status_code == 404
    assert "Not found" in text(response)


# -- list -----------------------------------------------------------------------------------


def test_the_list_shows_running_and_queued_deployments(logged_in, owner, cluster):
    deploy(owner, cluster, "web", cpu=4)
    deploy(owner, cluster, "worker", cpu=1)
    response = logged_in.get("/deployments/")
    assert response.status_code == 200
    page = text(response)
    assert page.index("web") < page.index("worker")
    assert "Queued #1" in page and "Short of 1 core: it needs 1 core" in page and "Olga" in page


def test_the_list_filters_by_cluster_and_status(logged_in, owner, cluster):
    other = make_cluster(owner.organization, name="other", resources={"cpu": 1000})
    deploy(owner, cluster, "web", cpu=1)
    deploy(owner, other, "batch", cpu=1)
    deploy(owner, other, "queued-one", cpu=1)
    page = text(logged_in.get(f"/deployments/?cluster_id={other.id}"))
    assert "batch" in page and "queued-one" in page and ">web<" not in page
    page = text(logged_in.get(f"/deployments/?cluster_id={other.id}&status=pending"))
    # batch is named only as what queued-one waits for, not as a row of the list.
    assert "queued-one" in page and ">batch</a></th>" not in page
    page = text(logged_in.get("/deployments/?status=running&cluster_id="))
    assert "web" in page and "batch" in page and "queued-one" not in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=done", "Unknown status &#39;done&#39;"),
        ("cluster_id=abc", "&#39;abc&#39; is not a cluster id"),
        ("cluster_id=-3", "is not a cluster id"),
        ("page=abc", "is not a page number"),
        ("page=0", "is not a page number"),
        ("page=1e9", "is not a page number"),
    ],
)
def test_bad_filters_get_a_clear_message(logged_in, owner, cluster, query, message):
    deploy(owner, cluster, "web", cpu=1)
    response = logged_in.get(f"/deployments/?{query}")
    assert response.status_code == 400
    assert message in text(response)
    assert "web" in text(response)  # the bad filter is dropped, the list still shows


def test_the_list_pages(app, logged_in, owner, cluster):
    app.config["PAGE_SIZE"] = 2
    for number in range(5):
        deploy(owner, cluster, f"app-{number}", cpu="0.1")
    page = text(logged_in.get("/deployments/?page=3"))
    assert "Page 3 of 3" in page and "app-4" in page and "app-0" not in page
    assert text(logged_in.get("/deployments/?page=9")).count("No deployments match") == 1


def test_the_list_without_clusters_points_to_creating_one(client, login_as):
    login_as(client, make_user(role="member"))
    page = text(client.get("/deployments/"))
    assert "has no clusters yet" in page


# -- deploy form ----------------------------------------------------------------------------


def test_the_form_preselects_the_cluster_and_shows_its_kinds(logged_in, owner, cluster):
    other = make_cluster(owner.organization, name="tpus", resources={"tpu": 8, "ram": 4096})
    page = text(logged_in.get(f"/deployments/new?cluster_id={other.id}"))
    assert f'<option selected value="{other.id}">tpus</option>' in page
    assert (
        'name="resource_tpu"' in page and 'for="resource_tpu">tpu' in page and "ram (GiB)" in page
    )
    assert 'name="resource_cpu"' not in page
    assert "8 tpu free of 8 tpu" in page
    assert 'hx-post="/deployments/preview"' in page
    default = text(logged_in.get("/deployments/new"))
    assert 'name="resource_cpu"' in default and "cpu (cores)" in default


def test_the_form_without_clusters_points_to_creating_one(client, login_as):
    login_as(client, make_user(role="owner"))
    page = text(client.get("/deployments/new"))
    assert "has none yet" in page and 'name="image"' not in page


def test_deploying_that_runs_redirects_to_its_page_with_a_flash(db, logged_in, cluster):
    response = logged_in.post(
        "/deployments/new", data=form(cluster, name="web", resource_cpu="1.5", resource_gpu="")
    )
    assert response.status_code == 302
    created = db.session.scalar(sa.select(Deployment))
    assert response.headers["Location"].endswith(f"/deployments/{created.id}")
    assert created.requests == {"cpu": 1500} and created.priority == 500
    page = text(logged_in.get(response.headers["Location"]))
    assert "web is running." in page
    for fact in ("nginx:1.27", "normal (500)", "1.5 cores", "Running", "Olga", "started"):
        assert fact in page


def test_deploying_that_waits_says_where_and_why(db, logged_in, owner, cluster):
    deploy(owner, cluster, "big", priority=900, cpu=4)
    response = logged_in.post(
        "/deployments/new",
        data=form(cluster, name="small", resource_cpu="1"),
        follow_redirects=True,
    )
    page = text(response)
    assert (
        "small is waiting at position 1: needs 1 cpu core: 0 cores free, "
        "4 cores held by deployments of" in page
    )
    assert "Why it waits" in page


def test_deploying_with_priority_preempts_and_names_the_victims(db, logged_in, owner, cluster):
    member = make_user(owner.organization, role="member", display_name="Mia")
    low = deploy(member, cluster, "low", priority=100, cpu=4)
    response = logged_in.post(
        "/deployments/new",
        data=form(cluster, name="urgent", priority_preset="critical", resource_cpu="2"),
        follow_redirects=True,
    )
    page = text(response)
    assert f"It preempted #{low.id} low (priority 100, owned by Mia)" in page
    assert "critical (1000)" in page


def test_the_exact_priority_overrides_the_preset(db, logged_in, cluster):
    logged_in.post(
        "/deployments/new",
        data=form(cluster, name="x", priority_preset="low", priority="777", resource_cpu="1"),
    )
    assert db.session.scalar(sa.select(Deployment.priority)) == 777


@pytest.mark.parametrize(
    ("fields", "messages"),
    [
        ({"image": "Nginx", "resource_cpu": "1"}, ["image must be lowercase"]),
        ({"image": "", "resource_cpu": "1"}, ["image is required"]),
        ({"name": "Bad_Name", "resource_cpu": "1"}, ["name must be lowercase"]),
        ({"priority": "5000", "resource_cpu": "1"}, ["priority must be between 0 and 1000"]),
        ({"priority": "abc", "resource_cpu": "1"}, ["priority must be a whole number"]),
        ({"priority_preset": "urgent", "resource_cpu": "1"}, ["Not a valid choice"]),
        ({"resource_cpu": "lots"}, ["cpu: &#39;lots&#39; is not a number"]),
        ({"resource_cpu": "-1"}, ["cpu must be greater than zero"]),
        ({"resource_gpu": "3"}, ["needs 3 gpu but the cluster has only 2 gpu in total"]),
        ({}, ["it requests nothing"]),
        ({"image": "x" * 700, "resource_cpu": "1"}, ["Field cannot be longer than 600"]),
    ],
)
def test_bad_form_input_is_explained_and_nothing_is_written(
    db, logged_in, cluster, fields, messages
):
    response = logged_in.post("/deployments/new", data=form(cluster, **fields))
    assert response.status_code == 422
    page = text(response)
    for message in messages:
        assert message.lower() in page.lower()  # the page words each one as a sentence
    assert count(db) == 0 and cpu_used(db, cluster.id) == 0


def test_limits_are_explained_on_the_form(db, client, login_as):
    org = make_org(deployment_quota=1)
    owner = make_user(org)
    cluster = make_cluster(org, resources={"cpu": 4000})
    deploy(owner, cluster, "one", cpu=1)
    login_as(client, owner)
    response = client.post("/deployments/new", data=form(cluster, resource_cpu="1"))
    assert response.status_code == 422
    assert "reached its quota of 1 deployments" in text(response)
    assert count(db) == 1


def test_switching_cluster_keeps_what_was_typed(logged_in, owner, cluster):
    other = make_cluster(owner.organization, name="tpus", resources={"tpu": 8})
    response = logged_in.get(
        f"/deployments/new?cluster_id={other.id}&image=redis:7&name=cache",
        headers={"HX-Request": "true"},
    )
    page = text(response)
    assert 'value="redis:7"' in page and 'value="cache"' in page and "resource_tpu" in page


# -- preview --------------------------------------------------------------------------------


def preview(client, cluster, **fields):
    response = client.post("/deployments/preview", data=form(cluster, **fields))
    assert response.status_code == 200
    assert "<html" not in text(response)
    return text(response)


def test_the_preview_answers_as_the_user_types(db, logged_in, owner, cluster):
    assert "Fill in an image" in preview(logged_in, cluster, image="")
    assert "Would start now." in preview(logged_in, cluster, resource_cpu="1")
    low = deploy(owner, cluster, "low", priority=100, cpu=4)
    waiting = preview(logged_in, cluster, resource_cpu="1", priority_preset="low")
    assert "Would wait at position 1:" in waiting and "needs 1 cpu core" in waiting
    preempting = preview(logged_in, cluster, resource_cpu="1", priority_preset="high")
    assert "Would preempt:" in preempting
    assert f"#{low.id} low (priority 100, owned by Olga)" in preempting
    assert count(db) == 1 and cpu_used(db, cluster.id) == 4000


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resource_gpu": "5"}, "needs 5 gpu but the cluster has only 2 gpu in total"),
        ({"image": "UPPER", "resource_cpu": "1"}, "image must be lowercase"),
        ({"resource_cpu": "x"}, "is not a number"),
        ({"image": "nginx:" + "t" * 129, "resource_cpu": "1"}, "tag is longer than 128"),
    ],
)
def test_the_preview_explains_problems_in_plain_words(db, logged_in, cluster, fields, message):
    page = preview(logged_in, cluster, **fields)
    assert "Cannot deploy this yet" in page and message.lower() in page.lower()
    assert count(db) == 0


def test_the_preview_without_clusters_says_so(client, login_as):
    login_as(client, make_user(role="owner"))
    response = client.post("/deployments/preview", data={"image": "nginx"})
    assert "Choose a cluster first." in text(response)


# -- detail and delete ----------------------------------------------------------------------


def test_the_detail_page_shows_the_queue_facts(logged_in, owner, cluster):
    deploy(owner, cluster, "big", priority=900, cpu=4)
    queued = deploy(owner, cluster, "queued", priority=100, cpu=1, gpu=1)
    page = text(logged_in.get(f"/deployments/{queued.id}"))
    for fact in ("Queued", "Queue position", "it needs 1 core", "low (100)", "1 core, 1 gpu"):
        assert fact in page
    assert "Not running" in page and "Delete deployment" in page


@pytest.mark.parametrize(
    ("role", "own", "can"),
    [
        ("member", True, True),
        ("member", False, False),
        ("admin", False, True),
    ],
)
def test_the_delete_button_and_route_follow_permissions(
    db, client, login_as, owner, cluster, role, own, can
):
    actor = make_user(owner.organization, role=role)
    target = deploy(actor if own else owner, cluster, "web", cpu=1)
    login_as(client, actor)
    assert ("Delete deployment" in text(client.get(f"/deployments/{target.id}"))) is can
    response = client.post(f"/deployments/{target.id}/delete")
    if can:
        assert response.status_code == 302
        assert response.headers["Location"].endswith(f"/clusters/{cluster.id}")
        assert count(db) == 0 and cpu_used(db, cluster.id) == 0
    else:
        assert response.status_code == 403
        assert count(db) == 1


def test_deleting_frees_room_and_the_queue_moves(db, logged_in, owner, cluster):
    first = deploy(owner, cluster, "first", cpu=4)
    waiting = deploy(owner, cluster, "waiting", cpu=2)
    response = logged_in.post(f"/deployments/{first.id}/delete", follow_redirects=True)
    assert "Deployment first deleted" in text(response)
    db.session.expire_all()
    assert db.session.get(Deployment, waiting.id).status == "running"


def test_delete_by_get_is_not_allowed(logged_in, owner, cluster):
    target = deploy(owner, cluster, "web", cpu=1)
    assert logged_in.get(f"/deployments/{target.id}/delete").status_code == 405


# -- delete all -----------------------------------------------------------------------------


def test_delete_all_asks_then_deletes(db, logged_in, owner, cluster):
    deploy(owner, cluster, "one", cpu=4)
    deploy(owner, cluster, "two", cpu=4)
    cluster_page = text(logged_in.get(f"/clusters/{cluster.id}"))
    assert f"/deployments/cluster/{cluster.id}/delete-all" in cluster_page
    confirm = logged_in.get(f"/deployments/cluster/{cluster.id}/delete-all")
    assert confirm.status_code == 200
    assert "<strong>1</strong> running and <strong>1</strong> queued" in text(confirm)
    response = logged_in.post(f"/deployments/cluster/{cluster.id}/delete-all")
    assert response.status_code == 302
    assert "Deleted 2 deployments." in text(logged_in.get(response.headers["Location"]))
    assert count(db) == 0 and cpu_used(db, cluster.id) == 0


def test_members_cannot_delete_all(db, client, login_as, owner, cluster):
    member = make_user(owner.organization, role="member")
    deploy(member, cluster, "mine", cpu=1)
    login_as(client, member)
    assert f"/deployments/cluster/{cluster.id}/delete-all" not in text(
        client.get(f"/clusters/{cluster.id}")
    )
    assert client.get(f"/deployments/cluster/{cluster.id}/delete-all").status_code == 403
    assert client.post(f"/deployments/cluster/{cluster.id}/delete-all").status_code == 403
    assert count(db) == 1


# -- notices --------------------------------------------------------------------------------


def test_the_preemption_notice_is_shown_once_on_the_creators_next_page(
    db, client, login_as, owner, cluster
):
    member = make_user(owner.organization, role="member")
    victim = deploy(member, cluster, "web-1", priority=100, cpu=4)
    boss = deploy(owner, cluster, "boss", priority=900, cpu=4)
    notice = (
        f"Your deployment web-1 was preempted by deployment #{boss.id} (priority 900); "
        "it is queued again and will restart by itself."
    )
    login_as(client, member)
    partial = client.get(f"/clusters/{cluster.id}/utilization", headers={"HX-Request": "true"})
    assert notice not in text(partial)  # polling partials never consume it
    assert notice in text(client.get(f"/deployments/{victim.id}"))
    assert notice not in text(client.get(f"/deployments/{victim.id}"))
    login_as(client, owner)
    assert "was preempted" not in text(client.get("/deployments/"))


# -- CSRF -----------------------------------------------------------------------------------


class TestWithCsrf:
    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_forms_need_the_token(self, db, logged_in, owner, cluster):
        data = form(cluster, name="web", resource_cpu="1")
        assert logged_in.post("/deployments/new", data=data).status_code == 400
        assert logged_in.post("/deployments/preview", data=data).status_code == 400
        assert count(db) == 0
        page = text(logged_in.get(f"/deployments/new?cluster_id={cluster.id}"))
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        preview = logged_in.post("/deployments/preview", headers={"X-CSRFToken": token}, data=data)
        assert "Would start now." in text(preview)
        response = logged_in.post("/deployments/new", data={**data, "csrf_token": token})
        assert response.status_code == 302 and count(db) == 1
        target = db.session.scalar(sa.select(Deployment.id))
        assert logged_in.post(f"/deployments/{target}/delete").status_code == 400
        assert logged_in.post(f"/deployments/cluster/{cluster.id}/delete-all").status_code == 400
        assert count(db) == 1
