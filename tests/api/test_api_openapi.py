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


# --------------------------------------------------------------------------------------------
# The document is built from the code and configuration that enforce each rule.


def test_enums_come_from_the_code(app):
    from app.models import DEPLOYMENT_STATUSES, ROLES
    from app.services import accounts, deployments

    schemas = document()["components"]["schemas"]
    assert schemas["User"]["properties"]["role"]["enum"] == list(ROLES)
    assert schemas["Member"]["properties"]["role"]["enum"] == list(ROLES)
    assert schemas["Deployment"]["properties"]["status"]["enum"] == list(DEPLOYMENT_STATUSES)
    assert schemas["InviteStatus"]["properties"]["status"]["enum"] == list(accounts.INVITE_STATES)
    priority = schemas["DeploymentRequest"]["properties"]["priority"]
    number, presets, _ = priority["anyOf"]
    assert presets["enum"] == list(deployments.PRIORITY_PRESETS)
    assert (number["minimum"], number["maximum"]) == (
        deployments.MIN_PRIORITY,
        deployments.MAX_PRIORITY,
    )
    assert priority["default"] == deployments.DEFAULT_PRIORITY


def test_a_new_priority_preset_appears_in_the_document(app, api, monkeypatch):
    from app.services import deployments

    monkeypatch.setitem(deployments.PRIORITY_PRESETS, "urgent", 900)
    body = api.get("/openapi.json").get_json()
    priority = body["components"]["schemas"]["DeploymentRequest"]["properties"]["priority"]
    assert "urgent" in priority["anyOf"][1]["enum"]
    assert "urgent (900)" in priority["description"]


def offset_parameter(doc, path: str) -> dict:
    (offset,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == "offset"]
    return offset["schema"]


@pytest.mark.parametrize(
    "app_config",
    [
        {
            "PAGE_SIZE": 3,
            "API_MAX_PAGE_SIZE": 7,
            "API_MAX_BODY_BYTES": 1234,
            "PASSWORD_MIN_LENGTH": 14,
            "MAX_RESOURCE_KINDS": 5,
            "DEFAULT_MAX_DEPLOYMENTS": 9,
            "API_TOKEN_TTL_SECONDS": 600,
        }
    ],
)
def test_the_document_follows_the_configured_limits(app, api, owner):
    doc = api.get("/openapi.json").get_json()
    for path in ("/cluster/", "/deployment/"):
        assert offset_parameter(doc, path) == {
            "type": "integer",
            "minimum": 1,
            "maximum": 7,
            "default": 3,
        }
    schemas = doc["components"]["schemas"]
    assert schemas["DeploymentPage"]["properties"]["offset"]["maximum"] == 7
    assert (
        schemas["SignupRequest"]["properties"]["user"]["properties"]["password"]["minLength"] == 14
    )
    assert "at most 5 kinds" in schemas["ClusterRequest"]["properties"]["resource"]["description"]
    assert schemas["ClusterRequest"]["properties"]["max_deployments"]["default"] == 9
    assert "1234 bytes" in doc["components"]["responses"]["Error413"]["description"]
    assert "600 seconds" in doc["components"]["securitySchemes"]["bearer"]["description"]

    # ... and the API behaves as documented.
    assert api.get("/deployment/?offset=7", token=owner.token).status_code == 200
    assert api.get("/cluster/?offset=7", token=owner.token).status_code == 200
    assert api.get("/deployment/?offset=8", token=owner.token).status_code == 422
    assert api.get("/deployment/", token=owner.token).get_json()["offset"] == 3
    big = {"cluster_name": "x" * 1300, "resource": {"cpu": 1}}
    assert api.put("/cluster/", json=big, token=owner.token).status_code == 413


@pytest.mark.parametrize("app_config", [{"API_MAX_PAGE_SIZE": 250}])
def test_a_larger_page_size_is_served_by_every_list(app, api, owner):
    doc = api.get("/openapi.json").get_json()
    assert offset_parameter(doc, "/deployment/")["maximum"] == 250
    assert api.get("/deployment/?offset=250", token=owner.token).status_code == 200
    assert api.get("/cluster/?offset=250", token=owner.token).status_code == 200
