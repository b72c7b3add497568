"""Clusters: list, create, show, delete, and the "does it fit" check of a request.

`POST` and `DELETE` on `/cluster/<id>/resource/` were the seed's utilize and free calls. Usage
is now changed only by the scheduler, inside the deployments service's locked transactions, so
over HTTP they always answer 403 (after the token check and after the 404 for a cluster that is
not the caller's, so they reveal nothing about other organizations' clusters).
"""

from __future__ import annotations

from typing import Any

from app import quantities
from app.blueprints.api import ID, route, serialize
from app.blueprints.api.auth import api_user, token_required
from app.blueprints.api.pagination import page_body, page_request
from app.blueprints.api.schema import (
    Boolean,
    Integer,
    IntegerOrString,
    NumberOrString,
    Object,
    Quantities,
    String,
    json_body,
)
from app.blueprints.api.users import body_paths
from app.services import clusters, dashboards, deployments, engines
from app.services.errors import BadRequest, DomainError, Forbidden

REPACK = Object(
    {
        "enabled": Boolean(required=False),
        "threshold": NumberOrString(required=False),
        "max_per_hour": Integer(required=False),
        "cooldown_minutes": Integer(required=False),
    },
    required=False,
)
CREATE = Object(
    {
        "cluster_name": String(),
        "resource": Quantities(required=False),
        "max_deployments": Integer(required=False),
        "repack": REPACK,
        "engine": String(required=False),
    }
)
FAIR_USE = Object(
    {
        "min_run_minutes": IntegerOrString(required=False),
        "starvation_minutes": IntegerOrString(required=False),
    },
    required=False,
)
SETTINGS = Object({"repack": REPACK, "fair_use": FAIR_USE})
CHECK = Object({"resource": Quantities()})

# The clusters service names fields after its arguments; clients know them by body paths.
CREATE_FIELDS = {"name": "cluster_name", "resources": "resource"}


def resources_of(snap: clusters.ClusterSnapshot) -> dict[str, dict[str, int | float]]:
    return {
        usage.kind: {
            "capacity": quantities.to_display(usage.kind, usage.capacity),
            "used": quantities.to_display(usage.kind, usage.used),
            "available": quantities.to_display(usage.kind, usage.available),
        }
        for usage in snap.resources
    }


def fair_use_of(settings: clusters.FairUseSettings) -> dict[str, Any]:
    return {
        "min_run_minutes": settings.min_run_minutes,
        "starvation_minutes": settings.starvation_minutes,
        "description": settings.describe(),
    }


def repack_of(settings: clusters.RepackSettings) -> dict[str, Any]:
    return {
        "enabled": settings.enabled,
        "threshold": settings.threshold_bp / 100,
        "max_per_hour": settings.max_per_hour,
        "cooldown_minutes": settings.cooldown_minutes,
    }


def cluster_summary(snap: clusters.ClusterSnapshot) -> dict[str, Any]:
    return {
        "id": snap.id,
        "name": snap.name,
        "max_deployments": snap.max_deployments,
        "created_at": serialize.timestamp(snap.created_at),
        "resources": resources_of(snap),
        "engine": snap.engine,
    }


@route("/cluster/", "GET")
@token_required
def list_clusters():
    wanted = page_request()
    snapshots, total = clusters.list_clusters(
        api_user().organization_id, wanted.page + 1, wanted.offset
    )
    return page_body((cluster_summary(snap) for snap in snapshots), total, wanted)


@route("/cluster/", "PUT")
@token_required
def create_cluster():
    body = json_body(CREATE)
    if body.get("resource") is None and body.get("engine") is None:
        # Only an engine cluster takes its capacity from elsewhere (the engine).
        raise BadRequest("The body is not what was expected.", {"resource": "is required"})
    try:
        snap = clusters.create_cluster(
            api_user(),
            body["cluster_name"],
            body.get("resource") or {},
            body.get("max_deployments"),
            {k: v for k, v in (body.get("repack") or {}).items() if v is not None},
            engine=body.get("engine"),
        )
    except DomainError as error:
        raise body_paths(error, CREATE_FIELDS) from None
    return {
        **cluster_summary(snap),
        "created_by": api_user().display_name,
        "deployments": {"running": 0, "pending": 0},
        "repack": repack_of(snap.repack),
        "engine": engine_json(engines.engine_view(snap.id, snap.engine)),
        "fair_use": fair_use_of(snap.fair_use),
    }, 201


@route(f"/cluster/<{ID}:cluster_id>/", "GET")
@token_required
def show_cluster(cluster_id: int):
    detail = dashboards.cluster_detail(api_user(), cluster_id)
    live = detail.live
    return {
        "id": detail.id,
        "name": detail.name,
        "max_deployments": detail.max_deployments,
        "created_by": detail.created_by_name,
        "created_at": serialize.timestamp(detail.created_at),
        "resources": {
            row.kind: {
                "capacity": quantities.to_display(row.kind, row.capacity),
                "used": quantities.to_display(row.kind, row.used),
                "available": quantities.to_display(row.kind, row.available),
            }
            for row in live.usage
        },
        "deployments": {"running": live.counts.running, "pending": live.counts.pending},
        "repack": repack_of(detail.repack),
        "fair_use": fair_use_of(detail.fair_use),
        "engine": engine_json(detail.engine),
    }


def engine_json(engine: engines.EngineView | None) -> dict[str, Any] | None:
    if engine is None:
        return None
    return {
        "name": engine.name,
        "driver": engine.driver,
        "state": engine.state,
        "error": engine.error,
        "checked_at": serialize.timestamp(engine.checked_at),
        "nodes": [
            {
                "hostname": node.get("hostname"),
                "state": node.get("state"),
                "availability": node.get("availability"),
                "resources": serialize.amounts(
                    {kind: node[kind] for kind in ("cpu", "ram", "gpu") if node.get(kind)}
                ),
            }
            for node in engine.nodes
        ],
    }


@route(f"/cluster/<{ID}:cluster_id>/", "PATCH")
@token_required
def change_settings(cluster_id: int):
    """Change a cluster's settings: its repack and its fair use (owners and admins)."""
    body = json_body(SETTINGS)
    if body.get("repack") is None and body.get("fair_use") is None:
        raise BadRequest(
            "Give the settings to change: repack, fair_use or both.",
            {"repack": "is required (or fair_use)"},
        )
    if body.get("repack") is not None:
        settings = {k: v for k, v in body["repack"].items() if v is not None}
        clusters.update_repack(api_user(), cluster_id, settings)
    if body.get("fair_use") is not None:
        clusters.update_fair_use(api_user(), cluster_id, body["fair_use"])
    return show_cluster(cluster_id)


@route(f"/cluster/<{ID}:cluster_id>/", "DELETE")
@token_required
def delete_cluster(cluster_id: int):
    deployments.delete_cluster(api_user(), cluster_id)
    return "", 204


@route(f"/cluster/<{ID}:cluster_id>/resource/", "PATCH")
@token_required
def check_fit(cluster_id: int):
    body = json_body(CHECK)
    requested = {kind: amount for kind, amount in body["resource"].items() if amount is not None}
    fit = clusters.check_request(cluster_id, api_user().organization_id, requested)
    return {
        "fits": fit.fits,
        "available": serialize.amounts(fit.available),
        "short": serialize.amounts(fit.short),
    }


@route(f"/cluster/<{ID}:cluster_id>/resource/", "POST", "DELETE")
@token_required
def change_usage(cluster_id: int):
    clusters.snapshot(cluster_id, api_user().organization_id)  # 404 for others' clusters
    raise Forbidden(
        "Resource usage is managed by the scheduler: deploy or delete deployments instead "
        "(PUT or DELETE /api/v1/deployment/).",
        code="usage_managed_by_scheduler",
    )
