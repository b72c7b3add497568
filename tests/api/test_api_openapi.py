"""The OpenAPI document: served, well-formed, covering every route, and able to catch a lie.

The conformance of real responses is checked for every request of every API test by the
`openapi_recorder` fixture (tests/api/conftest.py); these tests check the document itself.
"""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from tests.support.openapi import check_response, document, documented_path, resolve


def api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((documented_path(rule.rule), method.lower()))
    return routes


def documented_operations(doc) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }


def test_the_document_is_served_without_auth(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    body = response.get_json()
    assert body["openapi"].startswith("3.1")
    assert body["servers"] == [{"url": "/api/v1"}]


def test_every_route_is_documented_and_every_documented_route_exists(app):
    assert api_routes(app) == documented_operations(document())


def test_every_schema_is_valid_draft_2020_12(app):
    doc = document()
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_reference_resolves(app):
    doc = document()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(doc, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)


def test_every_operation_documents_its_errors(app):
    doc = document()
    for path, method in documented_operations(doc):
        operation = doc["paths"][path][method]
        if operation["security"]:
            assert "401" in operation["responses"], (path, method)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(operation["responses"]), (path, method)


def test_the_checker_rejects_an_undocumented_status(app):
    with pytest.raises(AssertionError, match="not documented"):
        check_response("GET", "/api/v1/user/", "/api/v1/user/", 418, b"{}", "application/json")


def test_the_checker_rejects_a_body_that_breaks_the_schema(app):
    body = b'{"id": "one", "username": "x"}'
    with pytest.raises(AssertionError, match="does not match"):
        check_response("GET", "/api/v1/user/", "/api/v1/user/", 200, body, "application/json")


def test_the_checker_rejects_a_server_error(app):
    with pytest.raises(AssertionError, match="server error"):
        check_response("GET", "/api/v1/user/", "/api/v1/user/", 500, b"{}", "application/json")
