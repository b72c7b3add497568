"""Quantities of any size get a clear 422 with the documented bound, never a 500.

Issue: a ram quantity with 26 or more digits (or 1e25 as a JSON number) answered 500 on both
databases from the API and the HTML forms: `decimal.InvalidOperation` in the parser. Every
quantity is at most `quantities.MAX_BASE_UNITS` base units (the BIGINT columns hold it), and
anything larger is refused as too large, for every kind and in every entry point.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import quantities
from app.models import Cluster, Deployment
from tests.api.conftest import make_member
from tests.factories import make_cluster, make_org, make_user

HUGE = [
    10**30,
    1e25,
    1e300,
    "99999999999999999999999999",
    "12345678901234567890123456789012",
    "99999999999999999999999999Ti",
    "1000000000001",
]


@pytest.mark.parametrize("kind", ["cpu", "ram", "gpu", "disk_gb"])
@pytest.mark.parametrize("value", HUGE)
def test_the_parser_refuses_huge_amounts_with_the_bound(kind, value):
    if isinstance(value, str) and value.endswith("Ti") and kind != "ram":
        value = value.removesuffix("Ti")
    with pytest.raises(quantities.QuantityError, match="too large"):
        quantities.parse(kind, value)


def test_the_bound_itself_is_accepted_and_fits_a_bigint():
    for kind, unit in (("cpu", "m"), ("ram", "Mi"), ("gpu", "")):
        assert quantities.parse(kind, f"{quantities.MAX_BASE_UNITS}{unit}")
    assert quantities.MAX_BASE_UNITS < 2**63 - 1


def _api(client, method, path, token, body):
    return client.open(
        f"/api/v1{path}", method=method, json=body, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize("value", HUGE)
def test_the_api_answers_422_everywhere_a_quantity_is_read(app, client, db, value):
    owner = make_member(role="owner")
    cluster = make_cluster(owner.org, "small", created_by=owner.user)
    body = {"cluster_name": "x1", "resource": {"ram": value}}
    response = _api(client, "PUT", "/cluster/", owner.token, body)
    assert response.status_code == 422, response.data
    assert "too large" in response.get_json()["error"]["fields"]["resource.ram"]

    body = {"cluster_id": cluster.id, "image": "nginx", "resource": {"ram": value}}
    response = _api(client, "PUT", "/deployment/", owner.token, body)
    assert response.status_code == 422, response.data

    body = {"resource": {"ram": value}}
    response = _api(client, "PATCH", f"/cluster/{cluster.id}/resource/", owner.token, body)
    assert response.status_code == 422, response.data
    assert db.session.scalar(sa.select(sa.func.count(Cluster.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Deployment.id))) == 0


@pytest.mark.parametrize("value", ["99999999999999999999999999", "1e25", "99999999999999999999Ti"])
def test_the_forms_explain_instead_of_failing(app, client, db, login_as, value):
    owner = make_user(make_org())
    cluster = make_cluster(owner.organization, "small", created_by=owner)
    login_as(client, owner)
    data = {"name": "big", "cpu": "1", "ram": value, "max_deployments": "10"}
    response = client.post("/clusters/new", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "too large" in page or "is not a number" in page

    form = {"cluster_id": str(cluster.id), "image": "nginx", "resource_ram": value}
    for path in ("/deployments/new", "/deployments/preview"):
        response = client.post(path, data=form)
        assert response.status_code in (200, 422), (path, response.status_code)
        page = response.get_data(as_text=True)
        assert "too large" in page or "is not a number" in page, path
    assert db.session.scalar(sa.select(sa.func.count(Cluster.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Deployment.id))) == 0
