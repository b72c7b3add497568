"""The OpenAPI 3.1 document of the API, served at GET /api/v1/openapi.json.

Written by hand next to the routes it describes, as plain Python data. It is kept true by
tests/api: every API response the test suite receives is validated against the response schema
documented here for its path, method and status (an undocumented status fails), and every route
of the blueprint must be documented.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.blueprints.api import route

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict:
    """A closed object: `required` defaults to every property."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
ID = {"type": "integer", "minimum": 1}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"}
NUMBER = {"type": "number"}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": {**STRING, "description": "machine-readable, e.g. validation_error"},
                    "message": {**STRING, "description": "a sentence for a human"},
                    "fields": {
                        "type": "object",
                        "description": "field path (such as user.username or resource.cpu) "
                        "-> problem",
                        "additionalProperties": STRING,
                    },
                    "request_id": {
                        **STRING,
                        "description": "the X-Request-ID of this response: quote it when "
                        "reporting a problem (it is in the server's logs)",
                    },
                }
            )
        }
    ),
    "QuantitiesIn": {
        "type": "object",
        "description": "resource kind -> quantity: a number or a numeric string, padded or "
        'with a unit suffix ("0.5", " 1", "500m" cpu, "512Mi" or "2Gi" ram); null means none',
        "additionalProperties": {"type": ["number", "string", "null"]},
        "examples": [{"cpu": "2", "ram": " 4", "gpu": 1}],
    },
    "Quantities": {
        "type": "object",
        "description": "resource kind -> amount in display units (cpu cores, ram GiB, others "
        "whole units)",
        "additionalProperties": NUMBER,
    },
    "OrganizationSummary": obj({"id": ID, "name": STRING}),
    "User": obj(
        {
            "id": ID,
            "username": STRING,
            "display_name": STRING,
            "role": {"enum": ["owner", "admin", "member"]},
            "organization": ref("OrganizationSummary"),
        }
    ),
    "Account": obj({"user": ref("User"), "organization": ref("OrganizationSummary")}),
    "Token": obj({"token": STRING, "expires_at": TIMESTAMP}),
    "Member": obj(
        {
            "id": ID,
            "username": STRING,
            "display_name": STRING,
            "role": {"enum": ["owner", "admin", "member"]},
            "active": {"type": "boolean"},
            "last_login_at": nullable(TIMESTAMP),
        }
    ),
    "MemberList": obj({"items": {"type": "array", "items": ref("Member")}}),
    "Deactivated": obj(
        {
            "id": ID,
            "username": STRING,
            "display_name": STRING,
            "role": {"enum": ["owner", "admin", "member"]},
            "active": {"type": "boolean"},
            "last_login_at": nullable(TIMESTAMP),
            "ended_sessions": {"type": "integer", "minimum": 0},
            "ended_tokens": {"type": "integer", "minimum": 0},
        }
    ),
    "RoleRequest": obj({"role": {"enum": ["owner", "admin", "member"]}}),
    "PasswordReset": obj(
        {
            "reset_url": {**STRING, "format": "uri", "description": "shown once; works once"},
            "expires_at": TIMESTAMP,
        }
    ),
    "InviteRow": obj(
        {
            "id": ID,
            "label": {**STRING, "description": "who it is for, in the inviter's words"},
            "role": {"enum": ["owner", "admin", "member"]},
            "state": {"enum": ["active", "used", "expired", "revoked"]},
            "created_by": {**STRING, "description": "display name of the inviter"},
            "created_at": TIMESTAMP,
            "expires_at": TIMESTAMP,
            "used_by": nullable(STRING),
            "used_at": nullable(TIMESTAMP),
            "revoked_at": nullable(TIMESTAMP),
        }
    ),
    "InviteList": obj({"items": {"type": "array", "items": ref("InviteRow")}}),
    "InviteRequest": obj(
        {
            "label": {**STRING, "maxLength": 80},
            "role": {"enum": ["owner", "admin", "member"], "description": "default member"},
        },
        required=[],
    ),
    "Settings": obj(
        {
            "name": STRING,
            "deployment_quota": {"type": "integer", "minimum": 0},
            "members_can_create_clusters": {"type": "boolean"},
        }
    ),
    "SettingsRequest": obj(
        {
            "name": STRING,
            "deployment_quota": {"type": ["integer", "string"], "minimum": 0},
            "members_can_create_clusters": {"type": "boolean"},
        },
        required=[],
    ),
    "SettingsSaved": obj(
        {
            "name": STRING,
            "deployment_quota": {"type": "integer", "minimum": 0},
            "members_can_create_clusters": {"type": "boolean"},
            "deployments": {
                "type": "integer",
                "minimum": 0,
                "description": "deployments the organization has now",
            },
            "message": {**STRING, "description": "what a quota at or below use means"},
        }
    ),
    "ProfileRequest": obj({"display_name": STRING}),
    "PasswordRequest": obj({"current_password": STRING, "new_password": STRING}),
    "PasswordChanged": obj(
        {
            "ended_sessions": {"type": "integer", "minimum": 0},
            "ended_tokens": {"type": "integer", "minimum": 0},
        }
    ),
    "ApiToken": obj(
        {
            "id": ID,
            "name": STRING,
            "created_at": TIMESTAMP,
            "expires_at": TIMESTAMP,
            "last_used_at": nullable(TIMESTAMP),
            "current": {"type": "boolean", "description": "the token of this request"},
        }
    ),
    "ApiTokenList": obj({"items": {"type": "array", "items": ref("ApiToken")}}),
    "NewTokenRequest": obj(
        {
            "name": {**STRING, "maxLength": 80},
            "expires_in_days": {"type": ["integer", "string"], "minimum": 1},
        }
    ),
    "NewToken": obj(
        {"token": ref("ApiToken"), "secret": {**STRING, "description": "shown only now"}}
    ),
    "Organization": obj(
        {
            "id": ID,
            "name": STRING,
            "deployment_quota": {"type": "integer", "minimum": 0},
            "members": {"type": "array", "items": ref("Member")},
        }
    ),
    "Invite": obj(
        {
            "code": {**STRING, "description": "shown once; only its hash is stored"},
            "invite_url": {**STRING, "format": "uri"},
            "expires_at": TIMESTAMP,
            "invite": ref("InviteRow"),
        }
    ),
    "InviteStatus": obj(
        {
            "valid": {"type": "boolean"},
            "status": {"enum": ["active", "used", "expired", "revoked", "invalid"]},
            "organization": nullable(obj({"name": STRING})),
        }
    ),
    "Resources": {
        "type": "object",
        "description": "resource kind -> capacity, used and available, in display units",
        "additionalProperties": obj({"capacity": NUMBER, "used": NUMBER, "available": NUMBER}),
    },
    "Counts": obj({"running": {"type": "integer", "minimum": 0}, "pending": INTEGER}),
    "ClusterSummary": obj(
        {
            "id": ID,
            "name": STRING,
            "max_deployments": {"type": "integer", "minimum": 1},
            "created_at": TIMESTAMP,
            "resources": ref("Resources"),
        }
    ),
    "Cluster": obj(
        {
            "id": ID,
            "name": STRING,
            "max_deployments": {"type": "integer", "minimum": 1},
            "created_by": {**nullable(STRING), "description": "display name of the creator"},
            "created_at": TIMESTAMP,
            "resources": ref("Resources"),
            "deployments": ref("Counts"),
        }
    ),
    "ClusterPage": obj(
        {
            "items": {"type": "array", "items": ref("ClusterSummary")},
            "page": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 0},
        }
    ),
    "FitCheck": obj(
        {
            "fits": {"type": "boolean"},
            "available": ref("Quantities"),
            "short": {**ref("Quantities"), "description": "kind -> amount missing"},
        }
    ),
    "Deployment": obj(
        {
            "id": ID,
            "name": STRING,
            "image": STRING,
            "cluster_id": ID,
            "cluster_name": nullable(STRING),
            "priority": {"type": "integer", "minimum": 0, "maximum": 1000},
            "status": {"enum": ["running", "pending"]},
            "resource": ref("Quantities"),
            "queue_position": {
                **nullable({"type": "integer", "minimum": 1}),
                "description": "1-based place in the cluster's queue",
            },
            "reason": {**nullable(STRING), "description": "why it waits, naming the resource"},
            "preemptions": {"type": "integer", "minimum": 0},
            "preempted_by": {**nullable(ID), "description": "deployment that last preempted it"},
            "last_event": nullable(STRING),
            "created_by": {**nullable(STRING), "description": "display name of the creator"},
            "created_at": {**TIMESTAMP, "description": "submission time (UTC)"},
            "started_at": nullable(TIMESTAMP),
        }
    ),
    "DeploymentPage": obj(
        {
            "items": {"type": "array", "items": ref("Deployment")},
            "page": {"type": "integer", "minimum": 0},
            "offset": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 0},
        }
    ),
    "Submitted": obj(
        {
            "deployment": ref("Deployment"),
            "preempted": {
                "type": "array",
                "items": ID,
                "description": "ids of running deployments sent back to the queue",
            },
            "message": STRING,
        }
    ),
    "Deleted": obj({"deleted": {"type": "integer", "minimum": 0}}),
    "SignupRequest": obj(
        {
            "user": obj({"username": STRING, "password": STRING, "display_name": STRING}),
            "organization": obj({"name": STRING}),
        }
    ),
    "LoginRequest": obj({"username": STRING, "password": STRING}),
    "RedeemRequest": obj(
        {"code": STRING, "username": STRING, "password": STRING, "display_name": STRING},
        required=["username", "password", "display_name"],
    ),
    "ClusterRequest": obj(
        {
            "cluster_name": STRING,
            "resource": ref("QuantitiesIn"),
            "max_deployments": {**nullable(INTEGER), "description": "running plus pending"},
        },
        required=["cluster_name", "resource"],
    ),
    "FitRequest": obj({"resource": ref("QuantitiesIn")}),
    "DeploymentRequest": obj(
        {
            "cluster_id": ID,
            "image": {**STRING, "examples": ["registry.example.com:5000/team/api:1.4"]},
            "name": {**nullable(STRING), "description": "DNS label; generated when absent"},
            "priority": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 1000},
                    {"enum": ["low", "normal", "high", "critical"]},
                    {"type": "null"},
                ],
                "description": "0-1000 or a preset; default normal (500)",
            },
            "resource": ref("QuantitiesIn"),
        },
        required=["cluster_id", "image", "resource"],
    ),
}

ERRORS = {
    "400": "Malformed: not JSON, wrong Content-Type, wrong JSON types, unknown fields or a "
    "non-integer query parameter",
    "401": "Missing, unknown, expired or revoked token (or wrong credentials at login)",
    "403": "Your role does not allow this",
    "404": "No such object in your organization (another organization's objects are 404 too)",
    "409": "Conflict with the current state",
    "410": "The invite was used, has expired or was revoked",
    "413": "The body is larger than API_MAX_BODY_BYTES",
    "422": "Well-formed but invalid values, limits, quotas or infeasible requests",
    "429": "Too many attempts; Retry-After says when to try again",
    "503": "The database is unreachable for a moment; try again after Retry-After seconds",
}


def error_response(status: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/Error{status}"}


def json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


def query(name: str, description: str, schema: dict | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or INTEGER,
    }


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


PAGING = [
    query("page", "0-based page number (default 0)", {"type": "integer", "minimum": 0}),
    query(
        "offset",
        "items per page (default 20, at most 100)",
        {"type": "integer", "minimum": 1, "maximum": 100},
    ),
]
BEARER: list[dict[str, list]] = [{"bearer": []}]
NO_AUTH: list[dict[str, list]] = []


def operation(
    summary: str,
    ok: tuple[str, dict[str, Any]],
    errors: list[str],
    *,
    request: str | None = None,
    parameters: list[dict[str, Any]] | None = None,
    secured: bool = True,
    description: str | None = None,
) -> dict[str, Any]:
    status, response = ok
    errors = [*errors, "503"]
    if secured and "401" not in errors:
        errors = ["401", *errors]
    if request and "400" not in errors:
        errors = ["400", *errors]
    if request and "413" not in errors:
        errors = [*errors, "413"]
    result: dict[str, Any] = {
        "summary": summary,
        "security": BEARER if secured else NO_AUTH,
        "responses": {status: response, **{code: error_response(code) for code in errors}},
    }
    if description:
        result["description"] = description
    if request:
        result["requestBody"] = body(request)
    if parameters:
        result["parameters"] = parameters
    return result


NO_CONTENT = {"description": "Done; no body"}

PATHS: dict[str, Any] = {
    "/user/create/": {
        "put": operation(
            "Sign up: create an organization and its first user, its owner",
            ("201", json_response("The new user and organization", "Account")),
            ["409", "422", "429"],
            request="SignupRequest",
            secured=False,
            description="Accounts created are rate-limited per client address (with invites).",
        )
    },
    "/user/login/": {
        "post": operation(
            "Log in: get a bearer token",
            ("200", json_response("A token, valid until expires_at", "Token")),
            ["401", "429"],
            request="LoginRequest",
            secured=False,
            description="Failed attempts are rate-limited per client address and per username.",
        )
    },
    "/user/logout/": {
        "post": operation("Log out: revoke the token of this request", ("204", NO_CONTENT), [])
    },
    "/user/": {
        "get": operation("Who am I", ("200", json_response("The token's user", "User")), []),
        "patch": operation(
            "Change your display name",
            ("200", json_response("You", "User")),
            ["422"],
            request="ProfileRequest",
        ),
    },
    "/user/password/": {
        "post": operation(
            "Change your password (the current one is required)",
            ("200", json_response("What ended", "PasswordChanged")),
            ["422", "429"],
            request="PasswordRequest",
            description="Every other login session and API token of yours ends; the token of "
            "this request stays valid.",
        )
    },
    "/user/tokens/": {
        "get": operation(
            "Your live API tokens (never their secrets)",
            ("200", json_response("Tokens", "ApiTokenList")),
            [],
        ),
        "post": operation(
            "Create a named personal token for a pipeline",
            ("201", json_response("The token and its secret, shown only now", "NewToken")),
            ["422"],
            request="NewTokenRequest",
            description="expires_in_days is from 1 to the operator's API_TOKEN_MAX_TTL_DAYS.",
        ),
    },
    "/user/tokens/{token_id}/": {
        "parameters": [path_id("token_id")],
        "delete": operation("Revoke one of your tokens", ("204", NO_CONTENT), ["404"]),
    },
    "/organization/": {
        "get": operation(
            "Your organization and its members",
            ("200", json_response("The organization", "Organization")),
            [],
        )
    },
    "/organization/members/": {
        "get": operation(
            "The organization's members", ("200", json_response("Members", "MemberList")), []
        )
    },
    "/organization/members/{user_id}/role/": {
        "parameters": [path_id("user_id")],
        "put": operation(
            "Change a member's role (owners; never the last owner)",
            ("200", json_response("The member", "Member")),
            ["403", "404", "409", "422"],
            request="RoleRequest",
        ),
    },
    "/organization/members/{user_id}/deactivate/": {
        "parameters": [path_id("user_id")],
        "post": operation(
            "Deactivate a member: every session ends, every API token is revoked for good",
            ("200", json_response("The member and what ended", "Deactivated")),
            ["403", "404", "409"],
        ),
    },
    "/organization/members/{user_id}/reactivate/": {
        "parameters": [path_id("user_id")],
        "post": operation(
            "Let a deactivated member log in again (old tokens stay revoked)",
            ("200", json_response("The member", "Member")),
            ["403", "404"],
        ),
    },
    "/organization/members/{user_id}/password-reset/": {
        "parameters": [path_id("user_id")],
        "post": operation(
            "A single-use password reset link for a member (owners)",
            ("201", json_response("The link, shown only now", "PasswordReset")),
            ["403", "404", "409"],
            description="An earlier unused link for the same member stops working. Using the "
            "link ends every session and API token of the member.",
        ),
    },
    "/organization/settings/": {
        "get": operation(
            "The organization's settings (owners)",
            ("200", json_response("The settings", "Settings")),
            ["403"],
        ),
        "patch": operation(
            "Change the organization's settings (owners); fields left out are kept",
            ("200", json_response("The settings and the quota against use", "SettingsSaved")),
            ["403", "422"],
            request="SettingsRequest",
            description="deployment_quota is at most the operator's MAX_ORGANIZATION_QUOTA.",
        ),
    },
    "/organization/invites/": {
        "get": operation(
            "Every invite, newest first, with its label, role, state and times (owners, admins)",
            ("200", json_response("Invites", "InviteList")),
            ["403"],
        )
    },
    "/organization/invites/{invite_id}/revoke/": {
        "parameters": [path_id("invite_id")],
        "post": operation(
            "Revoke an active invite",
            ("200", json_response("The invite", "InviteRow")),
            ["403", "404", "409"],
            description="409 names what happened instead, e.g. it was redeemed by someone "
            "just now.",
        ),
    },
    "/organization/invites/{invite_id}/reopen/": {
        "parameters": [path_id("invite_id")],
        "post": operation(
            "Give an unused, expired invite a fresh expiry",
            ("200", json_response("The invite", "InviteRow")),
            ["403", "404", "409"],
        ),
    },
    "/organization/invite/": {
        "patch": operation(
            "Create a single-use invite (owners and admins; only owners invite owners)",
            ("201", json_response("The invite; its code is shown only now", "Invite")),
            ["400", "403", "413", "422"],
            description='An optional JSON body {"label", "role"} says who it is for and the '
            "role the invitee gets (default member).",
        ),
        "get": operation(
            "Check an invite code",
            ("200", json_response("The state of the code", "InviteStatus")),
            ["400"],
            parameters=[query("code", "the invite code", STRING)],
            secured=False,
        ),
        "post": operation(
            "Redeem an invite: join its organization as a member",
            ("201", json_response("The new member", "Account")),
            ["404", "409", "410", "422", "429"],
            request="RedeemRequest",
            description="Accounts created are rate-limited per client address (with sign-ups).",
            parameters=[query("code", "the invite code, if not in the body", STRING)],
            secured=False,
        ),
    },
    "/cluster/": {
        "get": operation(
            "Your organization's clusters, by name",
            ("200", json_response("One page of clusters", "ClusterPage")),
            ["400", "422"],
            parameters=PAGING,
        ),
        "put": operation(
            "Create a cluster with a fixed capacity per resource kind",
            ("201", json_response("The cluster", "Cluster")),
            ["403", "422"],
            request="ClusterRequest",
            description="Owners and admins (members too when the organization allows it); "
            "422 quota_exceeded beyond the operator's MAX_CLUSTERS_PER_ORGANIZATION.",
        ),
    },
    "/cluster/{cluster_id}/": {
        "parameters": [path_id("cluster_id")],
        "get": operation(
            "One cluster: capacity, usage and deployment counts",
            ("200", json_response("The cluster", "Cluster")),
            ["404"],
        ),
        "delete": operation(
            "Delete an empty cluster (owners and admins)",
            ("204", NO_CONTENT),
            ["403", "404", "409"],
            description="409 (the message gives the running and pending counts) while the "
            "cluster has deployments.",
        ),
    },
    "/cluster/{cluster_id}/resource/": {
        "parameters": [path_id("cluster_id")],
        "patch": operation(
            "Does a request fit in the free resources now?",
            ("200", json_response("Fit, availability and shortfall", "FitCheck")),
            ["404", "422"],
            request="FitRequest",
        ),
        "post": operation(
            "Reserve resources directly: refused, usage is managed by the scheduler",
            ("403", error_response("403")),
            ["404"],
        ),
        "delete": operation(
            "Release resources directly: refused, usage is managed by the scheduler",
            ("403", error_response("403")),
            ["404"],
        ),
    },
    "/deployment/": {
        "put": operation(
            "Deploy: runs now, or waits in the cluster's queue; may preempt lower priorities",
            ("201", json_response("The deployment and whom it preempted", "Submitted")),
            ["404", "422"],
            request="DeploymentRequest",
            description="404 for a cluster_id that is not your organization's; 422 for invalid "
            "fields, a request that could never fit the cluster (code infeasible) or a full "
            "cluster or organization quota (code quota_exceeded).",
        ),
        "get": operation(
            "Your organization's deployments: running first, then queued in queue order",
            ("200", json_response("One page of deployments", "DeploymentPage")),
            ["400", "404", "422"],
            parameters=[
                query("cluster_id", "only this cluster", ID),
                query("id", "only this deployment", ID),
                query("status", "running or pending", {"enum": ["running", "pending"]}),
                *PAGING,
            ],
        ),
        "delete": operation(
            "Delete every deployment of a cluster (owners and admins)",
            ("200", json_response("How many were deleted", "Deleted")),
            ["400", "403", "404", "422"],
            parameters=[{**query("cluster_id", "the cluster to empty", ID), "required": True}],
        ),
    },
    "/deployment/{deployment_id}/": {
        "parameters": [path_id("deployment_id")],
        "get": operation(
            "One deployment", ("200", json_response("The deployment", "Deployment")), ["404"]
        ),
        "delete": operation(
            "Delete a deployment (its creator, owners and admins); the queue is served at once",
            ("204", NO_CONTENT),
            ["403", "404"],
        ),
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "security": NO_AUTH,
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {}}}}},
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Kargo API",
            "version": "1.0.0",
            "description": "Deploy applications onto shared, simulated clusters with priorities "
            "and preemption. JSON in and out; authenticate with Authorization: Bearer <token> "
            'from POST /user/login/. Errors are {"error": {"code", "message", '
            '"fields"}}. Paths also work without their trailing slash.',
        },
        "servers": [{"url": "/api/v1"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                f"Error{status}": json_response(text, "Error") for status, text in ERRORS.items()
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "token from POST /user/login/, valid for "
                    f"{current_app.config['API_TOKEN_TTL_SECONDS']} seconds unless revoked",
                }
            },
        },
    }


@route("/openapi.json", "GET")
def openapi_document():
    return document()
