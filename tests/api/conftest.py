"""Fixtures of the API tests: a JSON client, tokens, and the OpenAPI response check.

Every request any test of this folder sends to /api/ is recorded (through Flask's
`request_finished` signal, so the plain `client` fixture is covered too) and, when the test
ends, its response is validated against the OpenAPI document: the status must be documented
for that path and method, and the body must match the documented schema (Draft 2020-12, with
`$ref`s resolved into the document's components). A 5xx fails the test outright.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, Response, request, request_finished

from app.models import Organization, User
from app.services import accounts
from tests.factories import make_org, make_user
from tests.support.openapi import check_response

API = "/api/v1"


@dataclass
class Recorded:
    method: str
    path: str
    rule: str | None
    status: int
    body: bytes
    content_type: str | None


@pytest.fixture(autouse=True)
def openapi_recorder(app: Flask) -> Iterator[list[Recorded]]:
    records: list[Recorded] = []

    def record(sender: Flask, response: Response, **_: Any) -> None:
        if not request.path.startswith("/api/"):
            return
        records.append(
            Recorded(
                method=request.method,
                path=request.path,
                rule=request.url_rule.rule if request.url_rule else None,
                status=response.status_code,
                body=response.get_data(),
                content_type=response.mimetype,
            )
        )

    request_finished.connect(record, app)
    try:
        yield records
    finally:
        request_finished.disconnect(record, app)
    with app.test_request_context():
        for entry in records:
            check_response(
                entry.method, entry.path, entry.rule, entry.status, entry.body, entry.content_type
            )


class JsonClient:
    """The test client with JSON defaults: paths are relative to /api/v1, `token` is Bearer."""

    def __init__(self, client) -> None:
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str | None = None,
        **kwargs: Any,
    ):
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("/api/") else API + path
        if json is not None:
            kwargs["json"] = json
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any):
        return self.request("PUT", path, json=json, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any):
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any):
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture
def api(client) -> JsonClient:
    return JsonClient(client)


def token_for(user: User) -> str:
    """A live bearer token for `user`, issued by the service (no login rate limit involved)."""
    _, secret = accounts.issue_token(user)
    return secret


@dataclass
class Member:
    user: User
    org: Organization
    token: str

    @property
    def id(self) -> int:
        return self.user.id


def make_member(org: Organization | None = None, role: str = "owner", **kwargs: Any) -> Member:
    org = org or make_org()
    user = make_user(org, role=role, **kwargs)
    return Member(user=user, org=org, token=token_for(user))


@pytest.fixture
def owner(app) -> Member:
    return make_member(role="owner")


@pytest.fixture
def outsider(app) -> Member:
    """An owner of another organization."""
    return make_member(role="owner")


def error_of(response) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict) and "error" in body, response.data
    return body["error"]
