"""The webhooks API: owners and admins add, read, test and delete webhooks, read deliveries."""

from __future__ import annotations

import pytest

from app.services import notifications
from tests.api.conftest import make_member


@pytest.fixture
def app_config() -> dict:
    return {"WEBHOOK_ALLOWED_HOSTS": ["hooks.example.com"]}


URL = "https://hooks.example.com/kargo"


def test_add_list_test_resend_and_delete(api, owner) -> None:
    created = api.post(
        "/webhooks/", {"url": URL, "events": ["deployment.preempted"]}, token=owner.token
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_")
    hook = body["webhook"]
    assert (hook["url"], hook["events"], hook["pending"]) == (URL, ["deployment.preempted"], 0)
    assert api.get("/webhooks/", token=owner.token).get_json()["items"] == [hook]

    queued = api.post(f"/webhooks/{hook['id']}/test/", token=owner.token)
    assert queued.status_code == 202
    delivery = queued.get_json()
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == (
        "webhook.test",
        "pending",
        0,
    )
    assert delivery["payload"]["event"] == "webhook.test"
    again = api.post(f"/webhooks/deliveries/{delivery['id']}/resend/", token=owner.token)
    assert again.status_code == 202 and again.get_json()["id"] > delivery["id"]
    log = api.get(f"/webhooks/{hook['id']}/deliveries/", token=owner.token).get_json()["items"]
    assert [item["id"] for item in log] == [again.get_json()["id"], delivery["id"]]
    assert api.get(f"/webhooks/{hook['id']}/", token=owner.token).get_json()["pending"] == 2

    assert api.delete(f"/webhooks/{hook['id']}/", token=owner.token).status_code == 204
    assert api.get(f"/webhooks/{hook['id']}/", token=owner.token).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"url": "http://evil.example.net/x", "events": ["invite.redeemed"]}, 422, "url"),
        ({"url": "https://u:p@hooks.example.com/", "events": ["invite.redeemed"]}, 422, "url"),
        ({"url": URL, "events": ["deployment.exploded"]}, 422, "events"),
        ({"url": URL, "events": []}, 422, "events"),
        ({"url": URL, "events": "invite.redeemed"}, 400, "events"),
        ({"url": URL}, 400, "events"),
        ({"url": 5, "events": ["invite.redeemed"]}, 400, "url"),
        ({"url": URL, "events": ["invite.redeemed"], "extra": 1}, 400, "extra"),
    ],
)
def test_bad_webhooks_are_refused(api, owner, body, status, field) -> None:
    answer = api.post("/webhooks/", body, token=owner.token)
    assert answer.status_code == status
    assert field in answer.get_json()["error"]["fields"]
    assert notifications.list_webhooks(owner.user) == []


def test_members_and_other_organizations_are_refused(api, owner, outsider) -> None:
    member = make_member(owner.org, role="member")
    assert api.get("/webhooks/", token=member.token).status_code == 403
    hook = api.post(
        "/webhooks/", {"url": URL, "events": ["invite.redeemed"]}, token=owner.token
    ).get_json()["webhook"]
    assert api.get(f"/webhooks/{hook['id']}/", token=outsider.token).status_code == 404
    assert api.post(f"/webhooks/{hook['id']}/test/", token=outsider.token).status_code == 404
    assert api.delete(f"/webhooks/{hook['id']}/", token=outsider.token).status_code == 404
    assert api.post("/webhooks/deliveries/1/resend/", token=outsider.token).status_code == 404
