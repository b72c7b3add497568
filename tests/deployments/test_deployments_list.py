"""The deployments list as people work with it: search by name or image, filters by cluster,
status and owner, sortable columns, and paging that keeps all of them in the URL; bad values
are dropped with a message, never an error page."""

from __future__ import annotations

import re

import pytest

from app.services import deployments
from app.services.errors import ValidationError
from tests.factories import make_cluster, make_user


@pytest.fixture
def ada(app):
    return make_user(role="owner", display_name="Ada")


@pytest.fixture
def bob(ada):
    return make_user(ada.organization, role="member", display_name="Bob")


@pytest.fixture
def world(ada, bob):
    web = make_cluster(ada.organization, name="web", resources={"cpu": 4000})
    gpu = make_cluster(ada.organization, name="gpu", resources={"cpu": 4000, "gpu": 1})
    deployments.submit(ada, web.id, "nginx:1.27", "front", "high", {"cpu": "1"})
    deployments.submit(bob, web.id, "Registry.Example.com/api:2", "api", "low", {"cpu": "1"})
    deployments.submit(bob, gpu.id, "trainer:5", "train", "normal", {"gpu": "1"})
    deployments.submit(ada, gpu.id, "trainer:6", "train-2", "normal", {"gpu": "1"})  # queued
    return {"web": web, "gpu": gpu}


def names(response) -> list[str]:
    html = response.get_data(as_text=True)
    return re.findall(
        r'<th scope="row" data-label="Name"><a href="/deployments/\d+">([^<]+)</a>', html
    )


def test_search_by_name_or_image_in_any_case(client, login_as, ada, world):
    login_as(client, ada)
    assert sorted(names(client.get("/deployments/?q=TRAIN"))) == ["train", "train-2"]
    assert names(client.get("/deployments/?q=EXAMPLE.com/api")) == ["api"]
    assert names(client.get("/deployments/?q=%25")) == []  # a wildcard is only a character
    assert "No deployments match." in client.get("/deployments/?q=zzz").get_data(as_text=True)


def test_filters_combine(client, login_as, ada, bob, world):
    login_as(client, ada)
    assert sorted(names(client.get(f"/deployments/?owner={bob.id}"))) == ["api", "train"]
    gpu = world["gpu"].id
    assert names(client.get(f"/deployments/?owner={ada.id}&cluster_id={gpu}")) == ["train-2"]
    assert names(client.get("/deployments/?status=pending")) == ["train-2"]


def test_sorting_by_a_column_and_back(client, login_as, ada, world):
    login_as(client, ada)
    assert names(client.get("/deployments/?sort=name")) == ["api", "front", "train", "train-2"]
    assert names(client.get("/deployments/?sort=name&dir=desc")) == [
        "train-2",
        "train",
        "front",
        "api",
    ]
    assert names(client.get("/deployments/?sort=priority"))[0] == "api"  # low first
    assert names(client.get("/deployments/?sort=cluster"))[:2] == ["train", "train-2"]
    html = client.get("/deployments/?sort=name&q=t").get_data(as_text=True)
    # The sorted column says so and its heading reverses it, keeping the search.
    assert 'aria-sort="ascending"><a href="/deployments/?q=t&amp;sort=name&amp;dir=desc"' in html
    assert 'aria-sort="none"><a href="/deployments/?q=t&amp;sort=priority"' in html


def test_paging_keeps_the_filters_in_the_url(client, login_as, ada, app, world):
    app.config["PAGE_SIZE"] = 1
    login_as(client, ada)
    html = client.get("/deployments/?q=train&sort=name").get_data(as_text=True)
    assert 'href="/deployments/?page=2&amp;q=train&amp;sort=name" rel="next"' in html
    second = client.get("/deployments/?q=train&sort=name&page=2")
    assert names(second) == ["train-2"]
    # The poll of the list asks for the same page and filters.
    assert 'hx-get="/deployments/live?q=train&amp;sort=name&amp;page=2"' in second.get_data(
        as_text=True
    )


def test_filters_apply_as_you_type_without_a_filter_button(client, login_as, ada, world):
    login_as(client, ada)
    html = client.get("/deployments/").get_data(as_text=True)
    form = re.search(r'<form[^>]*class="filters"[^>]*>', html, re.S).group(0)
    assert 'hx-get="/deployments/"' in form and 'hx-push-url="true"' in form
    assert 'hx-select="#deployments-live"' in form
    assert "input changed delay:300ms" in form
    assert ">Filter</button>" not in html
    for label in ("Search", "Cluster", "Status", "Created by"):
        assert f">{label} " in html or f">{label}<" in html or f"{label} <" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=size", "Cannot sort by &#39;size&#39;; showing the usual order."),
        (
            "owner=abc",
            "&#39;abc&#39; is not a member of your organization; showing everyone&#39;s.",
        ),
        ("owner=999999", "&#39;999999&#39; is not a member of your organization"),
        ("q=" + "x" * 201, "A search has at most 200 characters"),
    ],
)
def test_a_bad_query_value_is_dropped_with_a_message(client, login_as, ada, world, query, message):
    login_as(client, ada)
    response = client.get("/deployments/?" + query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(names(response)) in (0, 4)


def test_the_service_refuses_an_unknown_sort_and_a_huge_search(ada, world):
    with pytest.raises(ValidationError) as caught:
        deployments.list_deployments(ada, sort="size", search="x" * 201)
    assert set(caught.value.fields) == {"sort", "search"}
