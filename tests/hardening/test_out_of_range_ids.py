"""Ids beyond the 32-bit id columns are plain 404s on the admin routes (they were 500s)."""

from __future__ import annotations

import pytest

from tests.factories import make_org, make_user

HUGE_IDS = ["2147483648", "9223372036854775808", "99999999999999999999999", "0"]
ROUTES = [
    "/admin/members/{id}/role",
    "/admin/members/{id}/deactivate",
    "/admin/members/{id}/reactivate",
    "/admin/invites/{id}/revoke",
    "/admin/invites/{id}/reopen",
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("user_id", HUGE_IDS)
def test_admin_routes_answer_404_for_ids_no_row_can_have(client, login_as, route, user_id):
    owner = make_user(make_org(), role="owner")
    login_as(client, owner)
    response = client.post(route.format(id=user_id), data={"role": "admin"})
    assert response.status_code == 404


API_PATHS = ["/api/v1/cluster/{id}/", "/api/v1/cluster/{id}/resource/", "/api/v1/deployment/{id}/"]
METHODS = ["GET", "DELETE", "POST", "PUT", "PATCH"]


@pytest.mark.parametrize("path", API_PATHS)
def test_api_ids_no_row_can_have_answer_like_a_missing_row_for_every_method(client, path):
    """`DELETE /api/v1/cluster/0/` answered 405 while GET answered 404: for every method an
    impossible id answers exactly what an id that names no row answers."""
    from app.services import accounts

    owner = make_user(make_org(), role="owner")
    _, token = accounts.issue_token(owner)
    headers = {"Authorization": f"Bearer {token}"}
    for method in METHODS:
        missing = client.open(path.format(id=2147483647), method=method, headers=headers, json={})
        for impossible in ("0", "2147483648", "99999999999999999999999"):
            response = client.open(
                path.format(id=impossible), method=method, headers=headers, json={}
            )
            assert response.status_code == missing.status_code, (method, impossible)
            if method in ("GET", "DELETE") and not path.endswith("resource/"):
                assert response.status_code == 404
