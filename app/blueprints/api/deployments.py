"""Deployments: submit (run now or queue, preempting lower priorities), plan (a dry run of a
submission), list, show, change the priority, clone, delete.

Every decision (validation, feasibility, limits, scheduling, who may change or delete) is taken
by `services.deployments`; this module only maps JSON to its arguments and its views to JSON.
"""

from __future__ import annotations

from typing import Any

from app.blueprints.api import ID, route, serialize
from app.blueprints.api.auth import api_user, token_required
from app.blueprints.api.pagination import page_body, page_request
from app.blueprints.api.schema import (
    Id,
    IntegerOrString,
    Object,
    Quantities,
    Raw,
    String,
    json_body,
    optional_json_body,
    query_choice,
    query_int,
)
from app.models import DEPLOYMENT_STATUSES, MAX_ID
from app.services import deployments, engines, history
from app.services.errors import BadRequest

SUBMIT = Object(
    {
        "cluster_id": Id(),
        "image": String(),
        "name": String(required=False),
        "priority": IntegerOrString(required=False),
        "resource": Quantities(),
        "ports": Raw(required=False),
        "env": Raw(required=False),
        "command": Raw(required=False),
        "preemption_policy": String(required=False),
        "max_run": IntegerOrString(required=False),
    }
)

PRIORITY = Object({"priority": IntegerOrString()})
CLONE = Object(
    {
        "cluster_id": Id(required=False),
        "image": String(required=False),
        "name": String(required=False),
        "priority": IntegerOrString(required=False),
        "resource": Quantities(required=False),
    }
)


def deployment_json(
    view: deployments.DeploymentView, estimate: deployments.Estimate | None = None
) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "image": view.image,
        "cluster_id": view.cluster_id,
        "cluster_name": view.cluster_name,
        "priority": view.priority,
        "status": view.status,
        "resource": serialize.amounts(view.requests),
        "queue_position": view.queue_position,
        "reason": view.reason,
        "wait": serialize.wait(view.wait),
        "preemptions": view.preemptions,
        "preempted_by": view.preempted_by_id,
        "last_event": view.last_event,
        "created_by": view.created_by_name,
        "created_at": serialize.timestamp(view.submitted_at),
        "started_at": serialize.timestamp(view.started_at),
        "preemption_policy": view.preemption_policy,
        "max_run_minutes": view.max_run_minutes,
        "ends_at": serialize.timestamp(view.ends_at),
        "estimate": None
        if estimate is None
        else {"at": serialize.timestamp(estimate.at), "text": estimate.text},
        "ports": [
            {
                "container": p["container"],
                "host": p.get("host"),
                "protocol": p.get("protocol", "tcp"),
            }
            for p in view.ports
        ],
        "env": dict(view.env),
        "command": view.command,
        "runtime": runtime_json(view.runtime),
    }


def runtime_json(observed: engines.RuntimeView | None) -> dict[str, Any] | None:
    if observed is None:
        return None
    return {
        "status": observed.status,
        "description": observed.describe(),
        "exit_code": observed.exit_code,
        "restart_count": observed.restart_count,
        "error": observed.error,
        "container_id": observed.container_id,
        "started_at": serialize.timestamp(observed.started_at),
        "observed_at": serialize.timestamp(observed.observed_at),
        "ports": [dict(port) for port in observed.ports],
    }


def event_json(event: history.EventView) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": serialize.timestamp(event.at),
        "actor_kind": event.actor_kind,
        "actor_name": event.actor_name,
        "action": event.action,
        "message": event.message,
        "data": event.data,
    }


def submitted_json(result: deployments.SubmitResult) -> dict[str, Any]:
    assert result.deployment is not None  # not a dry run
    return {
        "deployment": deployment_json(result.deployment),
        "preempted": [victim.id for victim in result.preempted],
        "message": result.message,
    }


def preempted_json(victim: deployments.Preempted) -> dict[str, Any]:
    return {
        "id": victim.id,
        "name": victim.name,
        "priority": victim.priority,
        "owner": victim.owner,
    }


def planned_json(line: deployments.Planned) -> dict[str, Any]:
    return {
        "id": line.id,
        "name": line.name,
        "priority": line.priority,
        "queue_position": line.position,
        "reason": line.reason,
    }


def submitted_body(body: dict[str, Any], dry_run: bool) -> deployments.SubmitResult:
    """Submit (or plan) what a SUBMIT-shaped body asks for."""
    return deployments.submit(
        api_user(),
        body["cluster_id"],
        body["image"],
        name=body.get("name"),
        priority=body.get("priority"),
        requests_raw=body["resource"],
        dry_run=dry_run,
        ports=body.get("ports"),
        env=body.get("env"),
        command=body.get("command"),
        preemption_policy=body.get("preemption_policy"),
        max_run=body.get("max_run"),
    )


@route("/deployment/", "PUT")
@token_required
def submit():
    return submitted_json(submitted_body(json_body(SUBMIT), dry_run=False)), 201


@route("/deployment/plan/", "POST")
@token_required
def plan():
    body = json_body(SUBMIT)
    result = submitted_body(body, dry_run=True)
    return {
        "deployment": {
            "name": result.name,
            "cluster_id": body["cluster_id"],
            "priority": result.priority,
            "resource": serialize.amounts(result.requests),
            "status": result.status,
            "queue_position": result.position,
            "reason": result.reason,
        },
        "start": [planned_json(line) for line in result.started],
        "wait": [planned_json(line) for line in result.waiting],
        "preempt": [preempted_json(victim) for victim in result.preempted],
        "queue_length": result.queue_length,
        "message": result.message,
    }


@route("/deployment/", "GET")
@token_required
def list_deployments():
    wanted = page_request()
    cluster_id = query_int("cluster_id", minimum=1, maximum=MAX_ID)
    deployment_id = query_int("id", minimum=1, maximum=MAX_ID)
    status = query_choice("status", DEPLOYMENT_STATUSES)
    # A filter by id lists that one deployment when it is the caller's and matches the other
    # filters; anything else is an empty list, never a 404.
    listing = deployments.list_deployments(
        api_user(),
        cluster_id,
        status,
        page=wanted.page + 1,
        per_page=wanted.offset,
        deployment_id=deployment_id,
    )
    return page_body(map(deployment_json, listing.items), listing.total, wanted)


@route("/deployment/", "DELETE")
@token_required
def delete_all():
    cluster_id = query_int("cluster_id", minimum=1, maximum=MAX_ID)
    if cluster_id is None:
        raise BadRequest(
            "Say which cluster to empty: DELETE /api/v1/deployment/?cluster_id=<id>.",
            {"cluster_id": "is required"},
        )
    return {"deleted": deployments.delete_all(api_user(), cluster_id)}


@route(f"/deployment/<{ID}:deployment_id>/", "GET")
@token_required
def show(deployment_id: int):
    """One deployment; a queued one with its start-time estimate."""
    view = deployments.get(api_user(), deployment_id)
    estimate = deployments.start_estimates(api_user(), [view]).get(view.id)
    return deployment_json(view, estimate)


@route(f"/deployment/<{ID}:deployment_id>/", "PATCH")
@token_required
def change_priority(deployment_id: int):
    body = json_body(PRIORITY)
    change = deployments.change_priority(api_user(), deployment_id, body["priority"])
    assert change.deployment is not None  # not a dry run
    return {
        "deployment": deployment_json(change.deployment),
        "previous_priority": change.previous,
        "preempted": [victim.id for victim in change.preempted],
        "preempted_by": change.preempted_by,
        "started": [line.id for line in change.started],
        "message": change.message,
    }


@route(f"/deployment/<{ID}:deployment_id>/clone/", "POST")
@token_required
def clone(deployment_id: int):
    body = optional_json_body(CLONE)
    result = deployments.clone(
        api_user(),
        deployment_id,
        cluster_id=body.get("cluster_id"),
        image=body.get("image"),
        name=body.get("name"),
        priority=body.get("priority"),
        requests_raw=body.get("resource"),
    )
    return submitted_json(result), 201


@route(f"/deployment/<{ID}:deployment_id>/", "DELETE")
@token_required
def delete(deployment_id: int):
    deployments.delete(api_user(), deployment_id)
    return "", 204


@route(f"/deployment/<{ID}:deployment_id>/logs/", "GET")
@token_required
def logs(deployment_id: int):
    view = deployments.logs(api_user(), deployment_id)
    return {"lines": view.lines, "available": view.available, "reason": view.reason}


@route(f"/deployment/<{ID}:deployment_id>/events/", "GET")
@token_required
def events(deployment_id: int):
    timeline = deployments.timeline(api_user(), deployment_id)
    return {"items": [event_json(event) for event in timeline]}
