"""Webhooks of the caller's organization (owners and admins): list, add, delete, send a test,
read the delivery log and re-send. Sending is the notify worker's job: these only queue."""

from __future__ import annotations

from typing import Any

from app.blueprints.api import ID, route
from app.blueprints.api.auth import api_user, token_required
from app.blueprints.api.schema import Field, Object, String, json_body
from app.blueprints.api.serialize import timestamp
from app.services import notifications


class Strings(Field):
    """A JSON array of strings (the event names)."""

    json_type = "an array of strings"

    def check(self, value: Any, path: str, errors: dict[str, str]) -> Any:
        if not isinstance(value, list):
            errors[path] = f"must be {self.json_type}"
            return None
        return [
            String().check(item, f"{path}[{index}]", errors) for index, item in enumerate(value)
        ]


NEW_WEBHOOK = Object({"url": String(), "events": Strings()})


def webhook(view: notifications.WebhookView) -> dict[str, Any]:
    return {
        "id": view.id,
        "url": view.url,
        "events": view.events,
        "active": view.active,
        "created_at": timestamp(view.created_at),
        "pending": view.pending,
        "failed": view.failed,
    }


def delivery(view: notifications.DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "webhook_id": view.webhook_id,
        "event": view.event,
        "status": view.status,
        "attempts": view.attempts,
        "created_at": timestamp(view.created_at),
        "next_attempt_at": timestamp(view.next_attempt_at),
        "delivered_at": timestamp(view.delivered_at),
        "last_status_code": view.last_status_code,
        "last_error": view.last_error,
        "last_duration_ms": view.last_duration_ms,
        "log": [
            {
                "at": timestamp(attempt.at),
                "status_code": attempt.status_code,
                "error": attempt.error,
                "duration_ms": attempt.duration_ms,
            }
            for attempt in view.log
        ],
        "payload": notifications.payload(view),
    }


@route("/webhooks/", "GET")
@token_required
def list_webhooks():
    return {"items": [webhook(view) for view in notifications.list_webhooks(api_user())]}


@route("/webhooks/", "POST")
@token_required
def create_webhook():
    """{"url", "events"}: the URL rules and the event names are the service's (422)."""
    body = json_body(NEW_WEBHOOK)
    view, secret = notifications.create_webhook(api_user(), body["url"], body["events"])
    return {"webhook": webhook(view), "secret": secret}, 201


@route(f"/webhooks/<{ID}:webhook_id>/", "GET")
@token_required
def show_webhook(webhook_id: int):
    return webhook(notifications.get_webhook(api_user(), webhook_id))


@route(f"/webhooks/<{ID}:webhook_id>/", "DELETE")
@token_required
def delete_webhook(webhook_id: int):
    notifications.delete_webhook(api_user(), webhook_id)
    return "", 204


@route(f"/webhooks/<{ID}:webhook_id>/test/", "POST")
@token_required
def send_test(webhook_id: int):
    return delivery(notifications.send_test(api_user(), webhook_id)), 202


@route(f"/webhooks/<{ID}:webhook_id>/deliveries/", "GET")
@token_required
def list_deliveries(webhook_id: int):
    return {"items": [delivery(view) for view in notifications.deliveries(api_user(), webhook_id)]}


@route(f"/webhooks/deliveries/<{ID}:delivery_id>/resend/", "POST")
@token_required
def resend(delivery_id: int):
    return delivery(notifications.resend(api_user(), delivery_id)), 202
