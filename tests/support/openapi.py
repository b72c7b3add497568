"""Validation of real API responses against the OpenAPI document the API serves.

`check_response` finds the documented operation for a request (by the Flask URL rule that
matched it), requires the response status to be documented there, and validates the JSON body
with a Draft 2020-12 validator whose `$ref`s resolve into the document itself. Requests that
matched no rule (unknown path, wrong method) must still answer the documented Error shape.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:kargo:openapi"
PREFIX = "/api/v1"
_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>")


def _document_json() -> str:
    from app.blueprints.api.openapi import document

    return json.dumps(document(), sort_keys=True)


def document() -> dict[str, Any]:
    """The document as served by the current app (a fresh copy; it needs an app context: its
    limits come from the app's configuration, so tests with other limits get another one)."""
    return json.loads(_document_json())


@cache
def _validator(document_json: str, ref: str) -> Draft202012Validator:
    doc = json.loads(document_json)
    return Draft202012Validator({"$ref": DOCUMENT_URI + ref}, registry=registry(doc))


def registry(doc: dict[str, Any]) -> Registry:
    return Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )


def documented_path(rule: str) -> str:
    """Flask rule -> OpenAPI path: no prefix, `{name}` parameters, always the trailing slash."""
    path = _CONVERTER.sub(r"{\1}", rule.removeprefix(PREFIX))
    if not path.endswith("/") and not path.endswith(".json"):
        path += "/"
    return path


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def check_response(
    method: str,
    path: str,
    rule: str | None,
    status: int,
    body: bytes,
    content_type: str | None,
) -> None:
    where = f"{method} {path} -> {status}"
    assert status < 500, f"{where}: server error {body[:500]!r}"
    doc = document()
    if rule is None or not rule.startswith(PREFIX):
        # Routing errors (404 unknown path, 405 wrong method) answer the Error shape.
        _validate(doc, "#/components/schemas/Error", body, content_type, where)
        return
    if method in ("HEAD", "OPTIONS"):
        return
    operation = doc["paths"].get(documented_path(rule), {}).get(method.lower())
    assert operation is not None, f"{where}: {method} {documented_path(rule)} is not documented"
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{where}: status {status} is not documented (documented: {sorted(responses)})"
    )
    response = resolve(doc, responses[str(status)])
    content = response.get("content")
    if not content:
        assert body == b"", f"{where}: documented without a body but answered {body[:200]!r}"
        return
    schema = content["application/json"]["schema"]
    if "$ref" not in schema:
        assert content_type == "application/json", f"{where}: not JSON"
        return
    _validate(doc, schema["$ref"], body, content_type, where)


def _validate(doc: dict, ref: str, body: bytes, content_type: str | None, where: str) -> None:
    assert content_type == "application/json", f"{where}: answered {content_type}"
    value = json.loads(body)
    validator = _validator(json.dumps(doc, sort_keys=True), ref)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    assert not errors, f"{where}: does not match {ref}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )
