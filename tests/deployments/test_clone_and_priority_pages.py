"""Cloning a deployment from its page (the deploy form prefilled) and changing its priority in
place (a scheduling event with a what-if preview), over HTTP; one banner per action."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.models import Deployment
from app.services import deployments
from tests.factories import make_cluster, make_org, make_user


@pytest.fixture
def owner(app):
    return make_user(role="owner", display_name="Ada")


@pytest.fixture
def cluster(owner):
    return make_cluster(owner.organization, name="web", resources={"cpu": 2000, "ram": 4096})


def submit(user, cluster, name, priority="normal", cpu="1", ram=None):
    requests = {"cpu": cpu} | ({"ram": ram} if ram else {})
    return deployments.submit(user, cluster.id, "nginx:1.27", name, priority, requests)


def text(response) -> str:
    return response.get_data(as_text=True)


def count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Deployment))


# --- clone ---------------------------------------------------------------------------------


def test_the_page_offers_clone_and_the_form_comes_prefilled(client, login_as, owner, cluster):
    source = submit(owner, cluster, "api", priority="high", cpu="0.5", ram="1.5").deployment
    login_as(client, owner)
    page = text(client.get(f"/deployments/{source.id}"))
    assert f'href="/deployments/new?clone={source.id}"' in page
    form = text(client.get(f"/deployments/new?clone={source.id}"))
    assert "<h1>Clone a deployment</h1>" in form
    assert f'name="clone_of" type="hidden" value="{source.id}"' in form
    assert 'value="nginx:1.27"' in form
    assert re.search(r'<option selected value="high">', form)
    assert re.search(r'name="resource_cpu"[^>]*value="0.5"', form)
    assert re.search(r'name="resource_ram"[^>]*value="1.5"', form)
    assert 'hx-trigger="load, input changed' in form  # the preview answers at once


def test_a_clone_is_a_new_deployment_that_remembers_its_source(
    client, login_as, owner, cluster, db
):
    source = submit(owner, cluster, "api", cpu="0.5").deployment
    login_as(client, owner)
    response = client.post(
        "/deployments/new",
        data={
            "cluster_id": cluster.id,
            "clone_of": source.id,
            "image": "nginx:1.28",
            "name": "api-copy",
            "priority_preset": "normal",
            "resource_cpu": "0.5",
            "resource_ram": "",
        },
    )
    assert response.status_code == 302
    copy = db.session.scalar(sa.select(Deployment).where(Deployment.name == "api-copy"))
    assert copy.id != source.id and copy.image == "nginx:1.28" and copy.requests == {"cpu": 500}
    history = text(client.get(f"/deployments/{copy.id}"))
    assert "api-copy" in history


def test_a_clone_of_a_missing_or_foreign_deployment_is_not_found(client, login_as, cluster):
    stranger = make_user(make_org(), role="owner")
    login_as(client, stranger)
    assert client.get("/deployments/new?clone=1").status_code == 404
    assert client.get("/deployments/new?clone=abc").status_code == 404


def test_a_rejected_clone_keeps_the_form_and_writes_nothing(client, login_as, owner, cluster, db):
    source = submit(owner, cluster, "api").deployment
    login_as(client, owner)
    before = count(db)
    response = client.post(
        "/deployments/new",
        data={"cluster_id": cluster.id, "clone_of": source.id, "image": "", "resource_cpu": "x"},
    )
    assert response.status_code == 422 and count(db) == before
    page = text(response)
    assert "<h1>Clone a deployment</h1>" in page
    assert 'hx-trigger="load, input changed' in page  # the preview reads the form as it is


# --- the deploy form (item 8) ----------------------------------------------------------------


def test_the_breadcrumb_follows_the_cluster_picker(client, login_as, owner, cluster):
    other = make_cluster(owner.organization, name="batch", resources={"cpu": 1000})
    login_as(client, owner)
    page = text(client.get(f"/deployments/new?cluster_id={cluster.id}"))
    assert (
        '"hx-select-oob": "#deploy-breadcrumb"' in page
        or 'hx-select-oob="#deploy-breadcrumb"' in page
    )
    switched = text(
        client.get(f"/deployments/new?cluster_id={other.id}", headers={"HX-Request": "true"})
    )
    crumb = re.search(
        r'<nav aria-label="breadcrumb" id="deploy-breadcrumb">(.*?)</nav>', switched, re.S
    )
    assert ">batch</a>" in crumb.group(1) and ">web</a>" not in crumb.group(1)


def test_field_errors_and_the_preview_read_as_sentences(client, login_as, owner, cluster):
    login_as(client, owner)
    page = text(
        client.post(
            "/deployments/new",
            data={"cluster_id": cluster.id, "image": "nginx:1", "resource_cpu": "0"},
        )
    )
    error = re.search(r'<small id="resource_cpu-error" class="field-error">([^<]+)</small>', page)
    assert error.group(1).endswith(".") and error.group(1).startswith("cpu ")
    preview = text(
        client.post(
            "/deployments/preview",
            data={"cluster_id": cluster.id, "image": "", "resource_cpu": "0", "resource_ram": "-1"},
        )
    )
    items = re.findall(r"<li>([^<]+)</li>", preview)
    assert len(items) >= 2 and all(item.endswith(".") for item in items)
    assert "(and" not in preview  # no summary repeating the first problem
    gpu = text(
        client.post(
            "/deployments/preview",
            data={"cluster_id": cluster.id, "image": "nginx:1", "resource_cpu": "5"},
        )
    )
    assert "could never run here: it needs" in gpu


# --- priority ------------------------------------------------------------------------------


def test_raising_a_priority_in_place_starts_it_with_one_banner(client, login_as, owner, cluster):
    member = make_user(owner.organization, role="member")
    low = submit(owner, cluster, "low", priority="low", cpu="2").deployment
    waiting = submit(owner, cluster, "waiting", priority="low", cpu="2").deployment
    login_as(client, owner)
    page = text(client.get(f"/deployments/{waiting.id}"))
    assert f'action="/deployments/{waiting.id}/priority"' in page
    preview = text(
        client.post(f"/deployments/{waiting.id}/priority/preview", data={"priority_preset": "high"})
    )
    assert "would start it" in preview and "preempting" in preview
    response = client.post(f"/deployments/{waiting.id}/priority", data={"priority_preset": "high"})
    assert response.status_code == 302
    after = text(client.get(f"/deployments/{waiting.id}"))
    assert after.count('class="flash flash-') == 1  # the summary, no notice about its own victim
    assert "went from priority low (100) to high (800); it started" in after
    assert deployments.get(owner, waiting.id).id == waiting.id  # same identity
    assert deployments.get(owner, low.id).status == "pending"
    # A member sees no priority form on someone else's deployment.
    login_as(client, member)
    assert "/priority" not in text(client.get(f"/deployments/{waiting.id}"))
    assert (
        client.post(f"/deployments/{waiting.id}/priority", data={"priority": "900"}).status_code
        == 403
    )


@pytest.mark.parametrize("value", ["1001", "-1", "high-ish"])
def test_a_bad_priority_is_shown_next_to_the_field_and_changes_nothing(
    client, login_as, owner, cluster, value
):
    target = submit(owner, cluster, "api").deployment
    login_as(client, owner)
    response = client.post(f"/deployments/{target.id}/priority", data={"priority": value})
    assert response.status_code == 422
    page = text(response)
    assert 'id="priority-error"' in page and "<details open>" in page
    assert deployments.get(owner, target.id).priority == 500
    preview = text(
        client.post(f"/deployments/{target.id}/priority/preview", data={"priority": value})
    )
    assert 'role="alert"' in preview
