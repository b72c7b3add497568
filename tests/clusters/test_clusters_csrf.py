"""The cluster forms with CSRF protection on, as in production."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.models import Cluster
from tests.factories import make_cluster, make_user


@pytest.fixture
def app_config() -> dict:
    return {"WTF_CSRF_ENABLED": True}


def cluster_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Cluster))


def token_from(page: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)


def test_create_needs_the_form_token(client, login_as, db):
    login_as(client, make_user())
    refused = client.post("/clusters/new", data={"name": "prod", "cpu": "1"})
    assert refused.status_code == 400
    assert "Your form expired" in refused.get_data(as_text=True)
    assert cluster_count(db) == 0

    token = token_from(client.get("/clusters/new").get_data(as_text=True))
    accepted = client.post("/clusters/new", data={"csrf_token": token, "name": "prod", "cpu": "1"})
    assert accepted.status_code == 302
    assert cluster_count(db) == 1


def test_delete_needs_the_token(client, login_as, db):
    user = make_user()
    login_as(client, user)
    cluster = make_cluster(user.organization)
    assert client.post(f"/clusters/{cluster.id}/delete").status_code == 400
    assert cluster_count(db) == 1
    token = token_from(client.get(f"/clusters/{cluster.id}").get_data(as_text=True))
    response = client.post(f"/clusters/{cluster.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert cluster_count(db) == 0


def test_the_polling_partial_and_row_endpoint_are_plain_gets(client, login_as):
    user = make_user()
    login_as(client, user)
    cluster = make_cluster(user.organization)
    assert client.get(f"/clusters/{cluster.id}/utilization").status_code == 200
    assert client.get("/clusters/new/resource-row?index=0").status_code == 200
