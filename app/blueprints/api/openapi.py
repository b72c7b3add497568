"""The OpenAPI 3.1 document of the API, served at GET /api/v1/openapi.json.

Written by hand next to the routes it describes, as plain Python data, but every enum, bound
and default in it is read from the code or configuration that enforces it: roles, statuses,
invite states and priority presets from the models and services; id, name, priority, quota and
page bounds from the constants the services and the schema layer check; page sizes, the body
limit, the password length, resource kinds, lifetimes and rate limits from `current_app.config`.
The document is built per request, so a changed limit is described at once and nothing here
repeats a number (tests/api/test_api_openapi.py changes limits and reads the document).

It is kept true by tests/api too: every API response the test suite receives is validated
against the response schema documented here for its path, method and status (an undocumented
status fails), and every route of the blueprint must be documented. Request schemas may be
stricter than the server (it also trims spaces and ignores case where the pages do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from app import quantities
from app.blueprints.api import route
from app.blueprints.api.pagination import MAX_PAGE
from app.blueprints.api.schema import QUERY_ALIASES
from app.models import DEPLOYMENT_STATUSES, MAX_ID, QUOTA_SCOPES, ROLES
from app.services import accounts, audit, clusters, deployments, history, notifications, outbox

JSON = "application/json"
Config = Mapping[str, Any]


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


def enum(values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


def text(maximum: int, minimum: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": minimum, "maxLength": maximum, **extra}


def between(minimum: int, maximum: int, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
ID = between(1, MAX_ID)
ID_IN = {
    "anyOf": [ID, {"type": "string", "pattern": "^[0-9]{1,10}$"}],
    "description": "an id, as an integer or as a string of its decimal digits",
    "examples": [12, "12"],
}
COUNT = {"type": "integer", "minimum": 0}
TIMESTAMP = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}


def priority_presets() -> str:
    return ", ".join(f"{name} ({value})" for name, value in deployments.PRIORITY_PRESETS.items())


def priority_schema() -> dict[str, Any]:
    return between(deployments.MIN_PRIORITY, deployments.MAX_PRIORITY)


def priority_request() -> dict[str, Any]:
    default = deployments.priority_label(deployments.DEFAULT_PRIORITY)
    return {
        "anyOf": [priority_schema(), enum(deployments.PRIORITY_PRESETS), {"type": "null"}],
        "description": f"{deployments.MIN_PRIORITY}-{deployments.MAX_PRIORITY} or a preset: "
        f"{priority_presets()}; default {default}. Higher preempts strictly lower.",
        "default": deployments.DEFAULT_PRIORITY,
    }


def page_of(item: str, config: Config) -> dict[str, Any]:
    return obj(
        {
            "items": {"type": "array", "items": ref(item)},
            "page": between(0, MAX_PAGE),
            "offset": between(1, config["API_MAX_PAGE_SIZE"]),
            "total": COUNT,
        }
    )


def account_request(config: Config) -> dict[str, Any]:
    """username, password, display_name: the rules of `services.accounts`."""
    return {
        "username": text(
            accounts.USERNAME_MAX_LENGTH,
            3,
            pattern=f"^{accounts.USERNAME_PATTERN.pattern}$",
            description="letters, digits, dots, dashes and underscores; unique, ignoring case",
        ),
        "password": text(
            accounts.PASSWORD_MAX_LENGTH,
            config["PASSWORD_MIN_LENGTH"],
            description="must not contain the username",
        ),
        "display_name": text(accounts.DISPLAY_NAME_MAX_LENGTH),
    }


def member_properties(role: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ID,
        "username": text(accounts.USERNAME_MAX_LENGTH),
        "display_name": text(accounts.DISPLAY_NAME_MAX_LENGTH),
        "role": role,
        "active": BOOLEAN,
        "last_login_at": nullable(TIMESTAMP),
    }


def settings_properties(config: Config) -> dict[str, Any]:
    return {
        "name": text(accounts.ORGANIZATION_NAME_MAX_LENGTH),
        "deployment_quota": between(0, config["MAX_ORGANIZATION_QUOTA"]),
        "members_can_create_clusters": BOOLEAN,
        "member_max_priority": {
            **priority_schema(),
            "description": "the highest priority members may use",
        },
        "admin_max_priority": {
            **priority_schema(),
            "description": "the highest priority admins may use (owners: any)",
        },
    }


def schemas(config: Config) -> dict[str, Any]:
    role = enum(ROLES)
    return {
        "Error": obj(
            {
                "error": obj(
                    {
                        "code": {
                            **STRING,
                            "description": "machine-readable, e.g. validation_error",
                        },
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
            'with a unit suffix ("0.5", " 1", "500m" cpu, "512Mi" or "2Gi" ram); null means '
            "none",
            "propertyNames": {"pattern": quantities.KIND_PATTERN.pattern},
            "additionalProperties": {"type": ["number", "string", "null"]},
            "examples": [{"cpu": "2", "ram": " 4", "gpu": 1}],
        },
        "Quantities": {
            "type": "object",
            "description": "resource kind -> amount in display units (cpu cores, ram GiB, others "
            "whole units)",
            "additionalProperties": NUMBER,
        },
        "OrganizationSummary": obj({"id": ID, "name": text(accounts.ORGANIZATION_NAME_MAX_LENGTH)}),
        "User": obj(
            {
                "id": ID,
                "username": text(accounts.USERNAME_MAX_LENGTH),
                "display_name": text(accounts.DISPLAY_NAME_MAX_LENGTH),
                "role": role,
                "organization": ref("OrganizationSummary"),
            }
        ),
        "Account": obj({"user": ref("User"), "organization": ref("OrganizationSummary")}),
        "Token": obj({"token": STRING, "expires_at": TIMESTAMP}),
        "Member": obj(member_properties(role)),
        "MemberList": obj({"items": {"type": "array", "items": ref("Member")}}),
        "Deactivated": obj(
            {**member_properties(role), "ended_sessions": COUNT, "ended_tokens": COUNT}
        ),
        "RoleRequest": obj({"role": role}),
        "PasswordReset": obj(
            {
                "reset_url": {**STRING, "format": "uri", "description": "shown once; works once"},
                "expires_at": {
                    **TIMESTAMP,
                    "description": f"{config['PASSWORD_RESET_TTL_SECONDS']} seconds after creation",
                },
            }
        ),
        "InviteRow": obj(
            {
                "id": ID,
                "label": {
                    **text(accounts.LABEL_MAX_LENGTH, 0),
                    "description": "who it is for, in the inviter's words",
                },
                "role": role,
                "state": enum(s for s in accounts.INVITE_STATES if s != "invalid"),
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
                "label": text(accounts.LABEL_MAX_LENGTH, 0),
                "role": {**role, "description": "default member; only owners invite owners"},
            },
            required=[],
        ),
        "Settings": obj(settings_properties(config)),
        "SettingsRequest": obj(
            {
                "name": text(accounts.ORGANIZATION_NAME_MAX_LENGTH),
                "deployment_quota": {
                    "anyOf": [
                        between(0, config["MAX_ORGANIZATION_QUOTA"]),
                        {"type": "string", "pattern": "^ *[0-9]{1,9} *$"},
                    ],
                    "description": "at most the operator's MAX_ORGANIZATION_QUOTA",
                },
                "members_can_create_clusters": BOOLEAN,
                "member_max_priority": {
                    **priority_request(),
                    "description": "the highest priority members may use",
                },
                "admin_max_priority": {
                    **priority_request(),
                    "description": "the highest priority admins may use (owners: any)",
                },
            },
            required=[],
        ),
        "SettingsSaved": obj(
            {
                **settings_properties(config),
                "deployments": {**COUNT, "description": "deployments the organization has now"},
                "message": {**STRING, "description": "what a quota at or below use means"},
            }
        ),
        "ProfileRequest": obj({"display_name": text(accounts.DISPLAY_NAME_MAX_LENGTH)}),
        "PasswordRequest": obj(
            {
                "current_password": STRING,
                "new_password": text(accounts.PASSWORD_MAX_LENGTH, config["PASSWORD_MIN_LENGTH"]),
            }
        ),
        "PasswordChanged": obj({"ended_sessions": COUNT, "ended_tokens": COUNT}),
        "ApiToken": obj(
            {
                "id": ID,
                "name": text(accounts.TOKEN_NAME_MAX_LENGTH),
                "created_at": TIMESTAMP,
                "expires_at": TIMESTAMP,
                "last_used_at": nullable(TIMESTAMP),
                "current": {**BOOLEAN, "description": "the token of this request"},
            }
        ),
        "ApiTokenList": obj({"items": {"type": "array", "items": ref("ApiToken")}}),
        "NewTokenRequest": obj(
            {
                "name": text(accounts.TOKEN_NAME_MAX_LENGTH),
                "expires_in_days": {
                    "anyOf": [
                        between(1, config["API_TOKEN_MAX_TTL_DAYS"]),
                        {"type": "string", "pattern": "^ *[0-9]{1,5} *$"},
                    ],
                    "description": "at most the operator's API_TOKEN_MAX_TTL_DAYS",
                },
            }
        ),
        "NewToken": obj(
            {"token": ref("ApiToken"), "secret": {**STRING, "description": "shown only now"}}
        ),
        "Organization": obj(
            {
                "id": ID,
                "name": text(accounts.ORGANIZATION_NAME_MAX_LENGTH),
                "deployment_quota": between(0, config["MAX_ORGANIZATION_QUOTA"]),
                "members": {"type": "array", "items": ref("Member")},
            }
        ),
        "Invite": obj(
            {
                "code": {**STRING, "description": "shown once; only its hash is stored"},
                "invite_url": {**STRING, "format": "uri"},
                "expires_at": {
                    **TIMESTAMP,
                    "description": f"{config['INVITE_TTL_SECONDS']} seconds after creation",
                },
                "invite": ref("InviteRow"),
            }
        ),
        "InviteStatus": obj(
            {
                "valid": BOOLEAN,
                "status": enum(accounts.INVITE_STATES),
                "organization": nullable(obj({"name": STRING})),
            }
        ),
        "Resources": {
            "type": "object",
            "description": "resource kind -> capacity, used and available, in display units",
            "additionalProperties": obj({"capacity": NUMBER, "used": NUMBER, "available": NUMBER}),
        },
        "Counts": obj({"running": COUNT, "pending": COUNT}),
        "ClusterSummary": obj(
            {
                "id": ID,
                "name": text(clusters.NAME_MAX),
                "max_deployments": between(1, config["MAX_DEPLOYMENTS_PER_CLUSTER"]),
                "created_at": TIMESTAMP,
                "resources": ref("Resources"),
                "engine": {
                    **nullable(text(63)),
                    "description": "the operator-declared engine running its containers; null: "
                    "simulated (resources are accounting only)",
                },
            }
        ),
        "Engine": obj(
            {
                "name": text(63),
                "driver": {
                    **nullable(enum(["docker", "swarm", "simulated"])),
                    "description": "null when the engine is no longer declared",
                },
                "state": {
                    **enum(["unknown", "ok", "unreachable", "undeclared"]),
                    "description": "as the reconciler last saw it; unreachable: its containers "
                    "are left as they are and converge when it answers again",
                },
                "error": nullable(STRING),
                "checked_at": nullable(TIMESTAMP),
                "nodes": {
                    "type": "array",
                    "items": obj(
                        {
                            "hostname": nullable(STRING),
                            "state": nullable(STRING),
                            "availability": nullable(STRING),
                            "resources": ref("Quantities"),
                        }
                    ),
                    "description": "the engine's machines (a swarm's ready and other nodes)",
                },
            }
        ),
        "Cluster": obj(
            {
                "id": ID,
                "name": text(clusters.NAME_MAX),
                "max_deployments": between(1, config["MAX_DEPLOYMENTS_PER_CLUSTER"]),
                "created_by": {**nullable(STRING), "description": "display name of the creator"},
                "created_at": TIMESTAMP,
                "resources": ref("Resources"),
                "deployments": ref("Counts"),
                "repack": ref("Repack"),
                "engine": nullable(ref("Engine")),
                "fair_use": ref("FairUse"),
            }
        ),
        "FairUse": obj(
            {
                "min_run_minutes": between(
                    0,
                    clusters.FAIR_USE_MAX_MINUTES,
                    description="running work younger than this is preempted only when no "
                    "other choice makes room (0: off)",
                ),
                "starvation_minutes": {
                    **nullable(between(1, clusters.FAIR_USE_MAX_MINUTES)),
                    "description": "a deployment waiting longer gets a reservation (null: off)",
                },
                "description": STRING,
            }
        ),
        "FairUseIn": obj(
            {
                "min_run_minutes": {
                    "anyOf": [between(0, clusters.FAIR_USE_MAX_MINUTES), STRING],
                    "description": "whole minutes, 0 turns it off",
                },
                "starvation_minutes": {
                    "anyOf": [between(0, clusters.FAIR_USE_MAX_MINUTES), STRING],
                    "description": 'whole minutes; 0 or "off" turns the guard off',
                },
            }
        ),
        "Repack": obj(
            {
                "enabled": {
                    **BOOLEAN,
                    "description": "may running work be moved back to the queue for queued work "
                    "of its own priority (off by default)",
                },
                "threshold": {
                    **NUMBER,
                    "description": "the gain in mean utilization each move must bring, percent",
                },
                "max_per_hour": between(
                    1, clusters.MAX_REPACK_PER_HOUR, description="moves an hour"
                ),
                "cooldown_minutes": between(
                    0,
                    clusters.MAX_REPACK_COOLDOWN_MINUTES,
                    description="a moved deployment is not moved again sooner",
                ),
            }
        ),
        "RepackIn": obj(
            {
                "enabled": nullable(BOOLEAN),
                "threshold": {
                    **nullable({"type": ["number", "string"]}),
                    "description": 'percent, 0.01 to 100 (such as 2 or "0.5"); default '
                    f"{config['REPACK_THRESHOLD_PERCENT']}",
                },
                "max_per_hour": {
                    **nullable(between(1, clusters.MAX_REPACK_PER_HOUR)),
                    "description": f"default {config['REPACK_MAX_PER_HOUR']}",
                },
                "cooldown_minutes": {
                    **nullable(between(0, clusters.MAX_REPACK_COOLDOWN_MINUTES)),
                    "description": f"default {config['REPACK_COOLDOWN_MINUTES']}",
                },
            },
            required=[],
        ),
        "ClusterPage": page_of("ClusterSummary", config),
        "FitCheck": obj(
            {
                "fits": BOOLEAN,
                "available": ref("Quantities"),
                "short": {**ref("Quantities"), "description": "kind -> amount missing"},
            }
        ),
        "Deployment": obj(
            {
                "id": ID,
                "name": text(deployments.NAME_MAX),
                "image": STRING,
                "cluster_id": ID,
                "cluster_name": nullable(text(clusters.NAME_MAX)),
                "priority": priority_schema(),
                "status": enum(DEPLOYMENT_STATUSES),
                "resource": ref("Quantities"),
                "queue_position": {
                    **nullable({"type": "integer", "minimum": 1}),
                    "description": "1-based place in the cluster's queue",
                },
                "reason": {**nullable(STRING), "description": "why it waits, naming the resource"},
                "wait": {
                    **nullable(ref("Wait")),
                    "description": "the same reason as data, for clients to word; null while "
                    "running",
                },
                "preemptions": COUNT,
                "preempted_by": {
                    **nullable(ID),
                    "description": "deployment that last preempted it",
                },
                "last_event": nullable(STRING),
                "created_by": {**nullable(STRING), "description": "display name of the creator"},
                "created_at": {**TIMESTAMP, "description": "submission time (UTC)"},
                "started_at": nullable(TIMESTAMP),
                "preemption_policy": {
                    **enum(deployments.PREEMPTION_POLICIES),
                    "description": "preempt_lower: may preempt lower priority (the default); "
                    "never: waits for free room instead",
                },
                "max_run_minutes": {
                    **nullable({"type": "integer", "minimum": 1}),
                    "description": "maximum run time from its latest start; null: none",
                },
                "ends_at": {
                    **nullable(TIMESTAMP),
                    "description": "when a running deployment with a maximum run time finishes",
                },
                "ports": {"type": "array", "items": ref("Port")},
                "env": {
                    "type": "object",
                    "additionalProperties": STRING,
                    "description": "variable names; the values are never shown back",
                },
                "command": {**nullable(STRING), "description": "the command, shell-quoted"},
                "runtime": {
                    **nullable(ref("Runtime")),
                    "description": "what the reconciler last observed of its container; null "
                    "on a simulated cluster or before the first look",
                },
                "estimate": {
                    **nullable(ref("Estimate")),
                    "description": "a queued deployment's start-time estimate (shown by GET "
                    "/deployment/{id}/; null elsewhere and while running)",
                },
            }
        ),
        "Estimate": obj(
            {
                "at": {
                    **nullable(TIMESTAMP),
                    "description": "the simulated start over the known end times; null: unknown",
                },
                "text": {
                    **STRING,
                    "examples": ["expected to start in about 40 min (at the latest 14:20)"],
                },
            }
        ),
        "Port": obj(
            {
                "container": between(1, 65535),
                "host": {**nullable(between(1, 65535)), "description": "null: engine-chosen"},
                "protocol": enum(["tcp", "udp"]),
            }
        ),
        "Runtime": obj(
            {
                "status": enum(
                    ["starting", "pulling", "running", "restarting", "failed", "exited", "stopped"]
                ),
                "description": {
                    **STRING,
                    "examples": ["container up 3 min", "restarting, 4 restarts"],
                },
                "exit_code": nullable(INTEGER),
                "restart_count": COUNT,
                "error": {**nullable(STRING), "description": "the last error in words"},
                "container_id": nullable(STRING),
                "started_at": {**nullable(TIMESTAMP), "description": "the container's own"},
                "observed_at": TIMESTAMP,
                "ports": {
                    "type": "array",
                    "items": obj(
                        {
                            "container": between(1, 65535),
                            "host": between(1, 65535),
                            "address": STRING,
                            "protocol": STRING,
                        }
                    ),
                    "description": "published ports as the engine bound them",
                },
            }
        ),
        "Logs": obj(
            {
                "lines": {"type": "array", "items": STRING},
                "available": BOOLEAN,
                "reason": {**nullable(STRING), "description": "why there are no lines"},
            }
        ),
        "HistoryEvent": obj(
            {
                "id": {"type": "integer", "minimum": 1},
                "at": TIMESTAMP,
                "actor_kind": enum(["user", "scheduler", "reconciler", "system"]),
                "actor_name": nullable(STRING),
                "action": {**STRING, "examples": ["deployment.preempted"]},
                "message": STRING,
                "data": {"type": "object"},
            }
        ),
        "Events": obj({"items": {"type": "array", "items": ref("HistoryEvent")}}),
        "Wait": obj(
            {
                "cause": {
                    **enum(
                        [
                            "blocked",
                            "preempted",
                            "repacked",
                            "infeasible",
                            "quota",
                            "no_preempt",
                            "reserved",
                        ]
                    ),
                    "description": "blocked: room is held by deployments of at least its "
                    "priority; preempted / repacked: sent back to the queue for `preempted_by`; "
                    "infeasible: can never run on this cluster (see `message`); quota: over a "
                    "resource quota; no_preempt: never preempts and waits for free room; "
                    "reserved: behind a starving deployment's reservation",
                },
                "kind": {**nullable(STRING), "description": "the resource kind most short"},
                "needed": {**NUMBER, "description": "how much of `kind` it asks (display unit)"},
                "free": {**NUMBER, "description": "how much of `kind` is free now"},
                "held": {
                    **NUMBER,
                    "description": "how much of `kind` running deployments of priority >= "
                    "`priority` hold",
                },
                "priority": {**priority_schema(), "description": "the waiting deployment's"},
                "blocking_ids": {
                    "type": "array",
                    "items": ID,
                    "description": "running deployments of priority >= `priority` holding "
                    "`kind`, largest first (a few)",
                },
                "blocking_more": {**COUNT, "description": "how many more such deployments"},
                "preempted_by": {**nullable(ID), "description": "who sent it back to the queue"},
                "preemptor_priority": nullable(priority_schema()),
                "message": {**nullable(STRING), "description": "why it can never run (infeasible)"},
            }
        ),
        "DeploymentPage": page_of("Deployment", config),
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
        "PlannedLine": obj(
            {
                "id": {**nullable(ID), "description": "null for the deployment being planned"},
                "name": text(deployments.NAME_MAX),
                "priority": priority_schema(),
                "queue_position": nullable({"type": "integer", "minimum": 1}),
                "reason": nullable(STRING),
            }
        ),
        "PreemptedLine": obj(
            {
                "id": ID,
                "name": text(deployments.NAME_MAX),
                "priority": priority_schema(),
                "owner": {**nullable(STRING), "description": "display name of its creator"},
            }
        ),
        "Plan": obj(
            {
                "deployment": obj(
                    {
                        "name": {
                            **text(deployments.NAME_MAX),
                            "description": "as given, or an example of a generated name",
                        },
                        "cluster_id": ID,
                        "priority": priority_schema(),
                        "resource": ref("Quantities"),
                        "status": enum(DEPLOYMENT_STATUSES),
                        "queue_position": nullable({"type": "integer", "minimum": 1}),
                        "reason": nullable(STRING),
                    }
                ),
                "start": {
                    "type": "array",
                    "items": ref("PlannedLine"),
                    "description": "every deployment that would start, this one included",
                },
                "wait": {
                    "type": "array",
                    "items": ref("PlannedLine"),
                    "description": "this deployment if it would wait, and every deployment it "
                    "would send back to the queue, with position and reason",
                },
                "preempt": {
                    "type": "array",
                    "items": ref("PreemptedLine"),
                    "description": "running deployments it would preempt",
                },
                "queue_length": {**COUNT, "description": "the cluster's queue afterwards"},
                "message": STRING,
            }
        ),
        "PriorityRequest": obj({"priority": priority_request()}),
        "PriorityChanged": obj(
            {
                "deployment": ref("Deployment"),
                "previous_priority": priority_schema(),
                "preempted": {
                    "type": "array",
                    "items": ID,
                    "description": "deployments it preempted (raised above them)",
                },
                "preempted_by": {
                    **nullable(ID),
                    "description": "set when it was lowered and a waiting deployment preempted it",
                },
                "started": {
                    "type": "array",
                    "items": ID,
                    "description": "deployments the change started (itself included)",
                },
                "message": STRING,
            }
        ),
        "CloneRequest": obj(
            {
                "cluster_id": {**ID_IN, "description": "default: the source's cluster"},
                "image": {**STRING, "description": "default: the source's image"},
                "name": {
                    **text(deployments.NAME_MAX),
                    "description": "default: generated (names are unique in a cluster)",
                },
                "priority": priority_request(),
                "resource": {
                    **ref("QuantitiesIn"),
                    "description": "merged over the source's requests kind by kind; null "
                    "removes a kind",
                },
            },
            required=[],
        ),
        "Deleted": obj({"deleted": COUNT}),
        "SignupRequest": obj(
            {
                "user": obj(account_request(config)),
                "organization": obj({"name": text(accounts.ORGANIZATION_NAME_MAX_LENGTH)}),
            }
        ),
        "LoginRequest": obj({"username": STRING, "password": STRING}),
        "RedeemRequest": obj(
            {"code": STRING, **account_request(config)},
            required=["username", "password", "display_name"],
        ),
        "ClusterRequest": obj(
            {
                "cluster_name": text(
                    clusters.NAME_MAX,
                    pattern=clusters.NAME_PATTERN.pattern,
                    description="a DNS label, unique in the organization",
                ),
                "resource": {
                    **ref("QuantitiesIn"),
                    "description": "capacity per kind, fixed for the cluster's life; at most "
                    f"{config['MAX_RESOURCE_KINDS']} kinds",
                },
                "max_deployments": {
                    **nullable(between(1, config["MAX_DEPLOYMENTS_PER_CLUSTER"])),
                    "description": "running plus pending; at most the operator's "
                    "MAX_DEPLOYMENTS_PER_CLUSTER",
                    "default": min(
                        config["DEFAULT_MAX_DEPLOYMENTS"], config["MAX_DEPLOYMENTS_PER_CLUSTER"]
                    ),
                },
                "repack": {
                    **nullable(ref("RepackIn")),
                    "description": "turning it on is for owners and admins (403 otherwise)",
                },
                "engine": {
                    **nullable(text(63)),
                    "description": "an engine the operator declared for your organization: its "
                    "cpu and ram become the capacity (read from the engine, never typed)",
                },
            },
            required=["cluster_name"],
        ),
        "ClusterSettingsRequest": obj({"repack": ref("RepackIn"), "fair_use": ref("FairUseIn")}),
        "FitRequest": obj({"resource": ref("QuantitiesIn")}),
        "Quota": obj(
            {
                "id": ID,
                "scope": enum(QUOTA_SCOPES),
                "user_id": {**nullable(ID), "description": "the member of a member quota"},
                "member": nullable(STRING),
                "cluster_id": {**nullable(ID), "description": "null: across all clusters"},
                "cluster_name": nullable(STRING),
                "kind": STRING,
                "amount": {**NUMBER, "description": "display units (cpu cores, ram GiB)"},
                "min_priority": priority_schema(),
                "max_priority": priority_schema(),
                "description": STRING,
                "use": {
                    "type": "array",
                    "items": obj({"who": STRING, "used": NUMBER, "limit": NUMBER, "full": BOOLEAN}),
                },
            }
        ),
        "QuotaList": obj({"items": {"type": "array", "items": ref("Quota")}}),
        "QuotaRequest": obj(
            {
                "scope": enum(QUOTA_SCOPES),
                "user_id": {"anyOf": [ID_IN, STRING], "description": "for scope member"},
                "cluster_id": {"anyOf": [ID_IN, STRING], "description": "absent: all clusters"},
                "kind": STRING,
                "amount": {"anyOf": [NUMBER, STRING], "examples": [8, "2.5", "16Gi"]},
                "min_priority": {"anyOf": [priority_schema(), STRING]},
                "max_priority": {"anyOf": [priority_schema(), STRING]},
            },
            required=["scope", "kind", "amount"],
        ),
        "DeploymentRequest": obj(
            {
                "cluster_id": ID_IN,
                "image": {**STRING, "examples": ["registry.example.com:5000/team/api:1.4"]},
                "name": {
                    **nullable(text(deployments.NAME_MAX)),
                    "description": "DNS label, unique in the cluster; generated when absent",
                },
                "priority": priority_request(),
                "resource": ref("QuantitiesIn"),
                "preemption_policy": {
                    **enum(deployments.PREEMPTION_POLICIES),
                    "default": deployments.POLICY_PREEMPT_LOWER,
                },
                "max_run": {
                    "anyOf": [{"type": "integer", "minimum": 1}, STRING],
                    "description": 'maximum run time: minutes, or "90m", "2h", "1d"',
                },
                "ports": {
                    "anyOf": [
                        {"type": "array", "items": {"type": ["integer", "string"]}},
                        STRING,
                        {"type": "null"},
                    ],
                    "description": "container ports to publish: 80 (engine-chosen host port), "
                    f'"8080:80", "53/udp"; at most {config["DEPLOYMENT_MAX_PORTS"]}',
                    "examples": [[80, "8443:443"]],
                },
                "env": {
                    **nullable({"type": "object", "additionalProperties": STRING}),
                    "description": "environment variables; values are never shown back; at "
                    f"most {config['DEPLOYMENT_MAX_ENV']}",
                },
                "command": {
                    "anyOf": [STRING, {"type": "array", "items": STRING}, {"type": "null"}],
                    "description": "overrides the image's command; a string is split like a "
                    "shell would",
                },
            },
            required=["cluster_id", "image", "resource"],
        ),
    }


def errors(config: Config) -> dict[str, str]:
    """Status -> what it means, for the shared error responses."""
    return {
        "400": "Malformed: not JSON, wrong Content-Type, wrong JSON types, unknown fields or a "
        "query parameter that is not an integer",
        "401": "Missing, unknown, expired or revoked token (or wrong credentials at login)",
        "403": "Your role does not allow this",
        "404": "No such object in your organization (another organization's objects are 404 too)",
        "409": "Conflict with the current state",
        "410": "The invite was used, has expired or was revoked",
        "413": f"The body is larger than {config['API_MAX_BODY_BYTES']} bytes (API_MAX_BODY_BYTES)",
        "422": "Well-formed but invalid values, limits, quotas or infeasible requests",
        "429": "Too many attempts: failed logins "
        f"({config['LOGIN_RATE_LIMIT_PER_CLIENT']} per client address, "
        f"{config['LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME']} per client address and username, "
        f"{config['LOGIN_RATE_LIMIT_PER_USERNAME']} per username), wrong current passwords "
        f"({config['LOGIN_RATE_LIMIT_PER_CLIENT_USERNAME']} per user) or accounts created "
        f"({config['SIGNUP_RATE_LIMIT_PER_CLIENT']} per client address); Retry-After says when "
        "to try again",
        "503": "The database is unreachable for a moment; try again after Retry-After "
        f"({config['RETRY_AFTER_SECONDS']}) seconds",
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


def with_aliases(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each query parameter followed by its other spellings (`schema.QUERY_ALIASES`)."""
    expanded = []
    for parameter in parameters:
        expanded.append(parameter)
        if parameter["in"] != "query":
            continue
        for alias in QUERY_ALIASES.get(parameter["name"], ()):
            description = f"alias of {parameter['name']}: {parameter['description']}"
            expanded.append(
                {
                    **parameter,
                    "name": alias,
                    "required": False,
                    "deprecated": True,
                    "description": description,
                }
            )
    return expanded


def path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def paging(config: Config) -> list[dict[str, Any]]:
    """`page` and `offset` as `pagination.page_request` reads them."""
    size, largest = config["PAGE_SIZE"], config["API_MAX_PAGE_SIZE"]
    return [
        query("page", "0-based page number", between(0, MAX_PAGE, default=0)),
        query(
            "offset",
            f"items per page (default {size}, at most {largest})",
            between(1, largest, default=size),
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
    optional_body: bool = False,
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
        result["requestBody"] = {**body(request), "required": not optional_body}
    if parameters:
        result["parameters"] = with_aliases(parameters)
    return result


NO_CONTENT = {"description": "Done; no body"}


def paths(config: Config) -> dict[str, Any]:
    return {
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
                description="Every other login session and API token of yours ends; the token "
                "of this request stays valid.",
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
                description="An earlier unused link for the same member stops working. Using "
                "the link ends every session and API token of the member.",
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
            ),
        },
        "/organization/quotas/": {
            "get": operation(
                "Every resource quota with the use against it (owners)",
                ("200", json_response("Quotas", "QuotaList")),
                ["403"],
            ),
            "post": operation(
                "Add a resource quota (owners); quotas never preempt: work over one waits",
                ("201", json_response("The quota with its use", "Quota")),
                ["403", "422"],
                request="QuotaRequest",
            ),
        },
        "/organization/quotas/{quota_id}/": {
            "parameters": [path_id("quota_id")],
            "delete": operation(
                "Remove a resource quota (owners)", ("204", NO_CONTENT), ["403", "404"]
            ),
        },
        "/organization/invites/": {
            "get": operation(
                "Every invite, newest first, with its label, role, state and times",
                ("200", json_response("Invites", "InviteList")),
                ["403"],
            )
        },
        "/organization/invites/{invite_id}/revoke/": {
            "parameters": [path_id("invite_id")],
            "post": operation(
                "Revoke an active invite (owners and admins)",
                ("200", json_response("The invite", "InviteRow")),
                ["403", "404", "409"],
                description="409 names what happened instead, e.g. it was redeemed by someone "
                "just now.",
            ),
        },
        "/organization/invites/{invite_id}/reopen/": {
            "parameters": [path_id("invite_id")],
            "post": operation(
                "Give an unused, expired invite a fresh expiry (owners and admins)",
                ("200", json_response("The invite", "InviteRow")),
                ["403", "404", "409"],
            ),
        },
        "/organization/invite/": {
            "patch": operation(
                "Create a single-use invite (owners and admins; only owners invite owners)",
                ("201", json_response("The invite; its code is shown only now", "Invite")),
                ["403", "422"],
                request="InviteRequest",
                optional_body=True,
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
                description="Give the code in the body, as ?code= or as the bearer token "
                "(Authorization: Bearer <code>, as the seed's example does). Accounts created "
                "are rate-limited per client address (with sign-ups).",
                parameters=[query("code", "the invite code, if not in the body", STRING)],
                secured=False,
            ),
        },
        "/cluster/": {
            "get": operation(
                "Your organization's clusters, by name",
                ("200", json_response("One page of clusters", "ClusterPage")),
                ["400", "422"],
                parameters=paging(config),
            ),
            "put": operation(
                "Create a cluster with a fixed capacity per resource kind",
                ("201", json_response("The cluster", "Cluster")),
                ["403", "422"],
                request="ClusterRequest",
                description="Owners and admins (members too when the organization allows it); "
                "422 quota_exceeded beyond the operator's MAX_CLUSTERS_PER_ORGANIZATION "
                f"({config['MAX_CLUSTERS_PER_ORGANIZATION']}).",
            ),
        },
        "/cluster/{cluster_id}/": {
            "parameters": [path_id("cluster_id")],
            "get": operation(
                "One cluster: capacity, usage and deployment counts",
                ("200", json_response("The cluster", "Cluster")),
                ["404"],
            ),
            "patch": operation(
                "Change a cluster's settings: its repack (owners and admins)",
                ("200", json_response("The cluster", "Cluster")),
                ["403", "404", "422"],
                request="ClusterSettingsRequest",
                description="Settings not given keep their values. See docs/scheduling.md, "
                '"Repack".',
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
                    query("status", "only this status", enum(DEPLOYMENT_STATUSES)),
                    *paging(config),
                ],
            ),
            "delete": operation(
                "Delete every deployment of a cluster (owners and admins)",
                ("200", json_response("How many were deleted", "Deleted")),
                ["400", "403", "404", "422"],
                description="Name the cluster as cluster_id or as its alias clusterId (one is "
                "required).",
                parameters=[query("cluster_id", "the cluster to empty (required)", ID)],
            ),
        },
        "/deployment/plan/": {
            "post": operation(
                "Plan a deployment: what would start, wait and be preempted (a dry run)",
                ("200", json_response("The plan; nothing is written", "Plan")),
                ["404", "422"],
                request="DeploymentRequest",
                description="The same decision a PUT /deployment/ would take now, from the same "
                "code as the deploy form's preview; answers the same errors.",
            )
        },
        "/deployment/{deployment_id}/": {
            "parameters": [path_id("deployment_id")],
            "get": operation(
                "One deployment", ("200", json_response("The deployment", "Deployment")), ["404"]
            ),
            "patch": operation(
                "Change a deployment's priority (its creator, owners and admins)",
                ("200", json_response("The deployment after the change", "PriorityChanged")),
                ["403", "404", "422"],
                request="PriorityRequest",
                description="A scheduling event: raised, it may start or preempt strictly lower "
                "priorities; lowered, a waiting deployment that now outranks it may preempt it. "
                "It keeps its id, submission time and history.",
            ),
            "delete": operation(
                "Delete a deployment (its creator, owners and admins); the queue is served at once",
                ("204", NO_CONTENT),
                ["403", "404"],
            ),
        },
        "/deployment/{deployment_id}/logs/": {
            "parameters": [path_id("deployment_id")],
            "get": operation(
                "The last lines of the deployment's container output",
                ("200", json_response("The lines, oldest first", "Logs")),
                ["404"],
                description=f"At most {config['RUNTIME_LOG_LINES']} lines (RUNTIME_LOG_LINES); "
                "none on a simulated cluster, before a container exists or while its engine "
                "does not answer (`reason` says which).",
            ),
        },
        "/deployment/{deployment_id}/events/": {
            "parameters": [path_id("deployment_id")],
            "get": operation(
                "The deployment's history: submitted, started, container events, preempted...",
                ("200", json_response("The newest 100 events, oldest first", "Events")),
                ["404"],
            ),
        },
        "/deployment/{deployment_id}/clone/": {
            "parameters": [path_id("deployment_id")],
            "post": operation(
                "Submit a copy of a deployment, optionally with overrides",
                ("201", json_response("The copy and whom it preempted", "Submitted")),
                ["404", "422"],
                request="CloneRequest",
                optional_body=True,
                description="The body is optional. The copy is a new deployment scheduled like "
                "any submission; you are its creator.",
            ),
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": NO_AUTH,
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {}}}}
                },
            }
        },
    }


def history_schemas(config: Config) -> dict[str, Any]:
    """The audit log's entries (GET /audit/)."""
    return {
        "AuditEntry": obj(
            {
                "id": {"type": "integer", "minimum": 1},
                "at": TIMESTAMP,
                "actor": obj(
                    {
                        "kind": enum(("user", *history.COMPONENTS)),
                        "id": nullable(ID),
                        "name": nullable(STRING),
                    }
                ),
                "action": {**STRING, "examples": ["deployment.preempted", "invite.revoked"]},
                "subject": obj({"kind": STRING, "id": nullable(INTEGER), "name": nullable(STRING)}),
                "cluster_id": nullable(ID),
                "message": STRING,
                "data": {
                    "type": "object",
                    "description": "details; changes carry before and after values",
                },
            }
        ),
        "AuditPage": page_of("AuditEntry", config),
        "UsageAmounts": {
            "type": "object",
            "additionalProperties": NUMBER,
            "description": "by resource kind, in display units (cores, GiB, whole units)",
        },
        "UsagePoint": obj(
            {
                "at": TIMESTAMP,
                "covered_seconds": COUNT,
                "used": ref("UsageAmounts"),
                "peak": ref("UsageAmounts"),
                "queued": ref("UsageAmounts"),
                "utilization": {
                    "type": "object",
                    "additionalProperties": nullable(NUMBER),
                    "description": "mean use over the step in percent of capacity, by kind; "
                    "null where nothing is recorded",
                },
            }
        ),
        "Webhook": obj(
            {
                "id": ID,
                "url": text(notifications.URL_MAX_LENGTH),
                "events": {"type": "array", "items": enum(outbox.SUBSCRIBABLE)},
                "active": BOOLEAN,
                "created_at": TIMESTAMP,
                "pending": COUNT,
                "failed": COUNT,
            }
        ),
        "WebhookList": obj({"items": {"type": "array", "items": ref("Webhook")}}),
        "NewWebhook": obj(
            {
                "webhook": ref("Webhook"),
                "secret": {**STRING, "description": "the signing secret, shown only now"},
            }
        ),
        "WebhookRequest": obj(
            {
                "url": {
                    **text(notifications.URL_MAX_LENGTH),
                    "description": "http(s), no credentials; the operator may restrict hosts "
                    "(WEBHOOK_ALLOWED_HOSTS)",
                },
                "events": {
                    "type": "array",
                    "items": enum(outbox.SUBSCRIBABLE),
                    "minItems": 1,
                },
            }
        ),
        "Delivery": obj(
            {
                "id": {"type": "integer", "minimum": 1},
                "webhook_id": nullable(ID),
                "event": STRING,
                "status": enum(("pending", "delivered", "failed")),
                "attempts": COUNT,
                "created_at": TIMESTAMP,
                "next_attempt_at": nullable(TIMESTAMP),
                "delivered_at": nullable(TIMESTAMP),
                "last_status_code": nullable(INTEGER),
                "last_error": nullable(STRING),
                "last_duration_ms": nullable(COUNT),
                "log": {
                    "type": "array",
                    "items": obj(
                        {
                            "at": TIMESTAMP,
                            "status_code": nullable(INTEGER),
                            "error": nullable(STRING),
                            "duration_ms": COUNT,
                        }
                    ),
                },
                "payload": {"type": "object", "description": "the JSON body sent"},
            }
        ),
        "DeliveryList": obj({"items": {"type": "array", "items": ref("Delivery")}}),
        "Usage": obj(
            {
                "cluster_id": ID,
                "since": TIMESTAMP,
                "until": TIMESTAMP,
                "step": {"type": "integer", "minimum": config["USAGE_MIN_STEP_SECONDS"]},
                "kinds": {
                    "type": "array",
                    "items": obj({"kind": STRING, "unit": STRING, "capacity": NUMBER}),
                },
                "points": {
                    "type": "array",
                    "items": ref("UsagePoint"),
                    "maxItems": config["USAGE_MAX_POINTS"],
                },
            }
        ),
    }


def history_paths(config: Config) -> dict[str, Any]:
    kinds = ", ".join(audit.SUBJECT_KINDS)
    return {
        "/audit/": {
            "get": operation(
                "The audit log, newest first: every change, who made it, before and after",
                ("200", json_response("One page of entries", "AuditPage")),
                ["400", "422"],
                parameters=[
                    query(
                        "actor",
                        "a user id, or " + ", ".join(history.COMPONENTS),
                        STRING,
                    ),
                    query(
                        "action", "an action (invite.revoked) or its first part (invite)", STRING
                    ),
                    query(
                        "subject_kind", f"the kind of object: {kinds}", enum(audit.SUBJECT_KINDS)
                    ),
                    query("subject_id", "the object's id", ID),
                    query("since", "from this time (ISO 8601; UTC without an offset)", STRING),
                    query("until", "before this time (ISO 8601)", STRING),
                    *paging(config),
                ],
                description="Owners and admins read the whole organization's log; members read "
                "the history of the deployments they submitted and of their own account. "
                f"Entries are kept {config['HISTORY_RETENTION_DAYS']} days "
                "(HISTORY_RETENTION_DAYS).",
            )
        },
        "/webhooks/": {
            "get": operation(
                "Your organization's webhooks (owners and admins)",
                ("200", json_response("Webhooks", "WebhookList")),
                ["403"],
            ),
            "post": operation(
                "Add a webhook: the URL and the events to send",
                ("201", json_response("The webhook and its signing secret", "NewWebhook")),
                ["403", "422"],
                request="WebhookRequest",
                description="Deliveries are POSTs signed with X-Kargo-Signature: v1=<hex "
                "HMAC-SHA256(secret, '<X-Kargo-Timestamp>.<body>')>, sent by the notify worker "
                f"and retried with backoff up to {config['WEBHOOK_MAX_ATTEMPTS']} times "
                "(docs/webhooks.md). 422 quota_exceeded beyond "
                f"{config['MAX_WEBHOOKS_PER_ORGANIZATION']} webhooks.",
            ),
        },
        "/webhooks/{webhook_id}/": {
            "parameters": [path_id("webhook_id")],
            "get": operation(
                "One webhook", ("200", json_response("The webhook", "Webhook")), ["403", "404"]
            ),
            "delete": operation(
                "Delete a webhook and its waiting deliveries", ("204", NO_CONTENT), ["403", "404"]
            ),
        },
        "/webhooks/{webhook_id}/test/": {
            "parameters": [path_id("webhook_id")],
            "post": operation(
                "Queue a webhook.test delivery",
                ("202", json_response("The queued delivery", "Delivery")),
                ["403", "404"],
            ),
        },
        "/webhooks/{webhook_id}/deliveries/": {
            "parameters": [path_id("webhook_id")],
            "get": operation(
                "The webhook's newest deliveries with every attempt's status and time",
                ("200", json_response("Deliveries, newest first", "DeliveryList")),
                ["403", "404"],
            ),
        },
        "/webhooks/deliveries/{delivery_id}/resend/": {
            "parameters": [path_id("delivery_id")],
            "post": operation(
                "Send a delivery again (a new delivery with the same body)",
                ("202", json_response("The queued copy", "Delivery")),
                ["403", "404"],
            ),
        },
        "/cluster/{cluster_id}/usage/": {
            "parameters": [path_id("cluster_id")],
            "get": operation(
                "A cluster's usage and queued demand over time, per kind",
                ("200", json_response("Evenly spaced points", "Usage")),
                ["400", "404", "422"],
                parameters=[
                    query(
                        "since",
                        "start: a time in ISO 8601 (UTC without an offset) or a duration back "
                        "from now such as 30m, 1h, 7d (default 1h)",
                        STRING,
                    ),
                    query(
                        "step",
                        "seconds per point, or a duration such as 5m (default 60; at least "
                        f"{config['USAGE_MIN_STEP_SECONDS']} seconds)",
                        STRING,
                    ),
                ],
                description="Each point is the time-weighted mean over its step, with the "
                "peak seen. Recorded at every change of usage or queue (not by polling); "
                f"older data is kept per minute after {config['USAGE_RAW_HOURS']} hours and per "
                f"hour after {config['USAGE_MINUTE_DAYS']} days. 422 for a bad since or step, "
                f"or more than {config['USAGE_MAX_POINTS']} points (USAGE_MAX_POINTS).",
            ),
        },
    }


def document() -> dict[str, Any]:
    """The whole document, built from the code's constants and the app's configuration."""
    config = current_app.config
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
        "paths": {**paths(config), **history_paths(config)},
        "components": {
            "schemas": {**schemas(config), **history_schemas(config)},
            "responses": {
                f"Error{status}": json_response(meaning, "Error")
                for status, meaning in errors(config).items()
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "token from POST /user/login/, valid for "
                    f"{config['API_TOKEN_TTL_SECONDS']} seconds unless revoked",
                }
            },
        },
    }


@route("/openapi.json", "GET")
def openapi_document():
    return document()
