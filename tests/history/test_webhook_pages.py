"""The webhook pages: add (the secret shown once), send a test, the delivery log, re-send,
delete; bad URLs come back with their message; members are refused."""

from __future__ import annotations

import pytest

from app.services import notifications
from tests.factories import make_org, make_user


@pytest.fixture
def app_config() -> dict:
    return {"WEBHOOK_ALLOWED_HOSTS": ["hooks.example.com"]}


@pytest.fixture
def owner(app):
    return make_user(make_org(), role="owner")


def test_add_a_webhook_then_test_and_resend(client, login_as, owner) -> None:
    login_as(client, owner)
    answer = client.post(
        "/admin/webhooks/",
        data={"url": "https://hooks.example.com/k", "events": ["deployment.started"]},
    )
    assert answer.status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Signing secret" in page and "whsec_" in page
    again = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "whsec_" not in again  # shown once
    (hook,) = notifications.list_webhooks(owner)

    client.post(f"/admin/webhooks/{hook.id}/test")
    page = client.get(f"/admin/webhooks/{hook.id}").get_data(as_text=True)
    assert "webhook.test" in page and "not sent yet" in page
    (delivery,) = notifications.deliveries(owner, hook.id)
    resent = client.post(
        f"/admin/webhooks/deliveries/{delivery.id}/resend", data={"webhook_id": hook.id}
    )
    assert resent.headers["Location"].endswith(f"/admin/webhooks/{hook.id}")
    assert len(notifications.deliveries(owner, hook.id)) == 2

    assert client.post(f"/admin/webhooks/{hook.id}/delete").status_code == 302
    assert notifications.list_webhooks(owner) == []
    assert client.get(f"/admin/webhooks/{hook.id}").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"url": "ftp://hooks.example.com/", "events": ["invite.redeemed"]}, "Only http"),
        ({"url": "https://other.example.org/", "events": ["invite.redeemed"]}, "only to"),
        ({"url": "https://hooks.example.com/"}, "choose at least one event"),
    ],
)
def test_bad_input_is_shown_on_the_form(client, login_as, owner, data, message) -> None:
    login_as(client, owner)
    answer = client.post("/admin/webhooks/", data=data)
    assert answer.status_code == 422 and message in answer.get_data(as_text=True)
    assert notifications.list_webhooks(owner) == []


def test_members_cannot_see_webhooks(client, login_as, owner) -> None:
    member = make_user(owner.organization, role="member")
    login_as(client, member)
    assert client.get("/admin/webhooks/").status_code == 403
    assert (
        client.post("/admin/webhooks/", data={"url": "https://hooks.example.com/"}).status_code
        == 403
    )
