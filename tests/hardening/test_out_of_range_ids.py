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
