"""GET /api/v1/cluster/<id>/usage/: a cluster's usage and queued demand over time.

`since` (ISO 8601 or a duration back from now such as 1h or 7d) and `step` (seconds or a
duration such as 5m) are checked by the service: a bad value, or a window of more than
USAGE_MAX_POINTS steps, answers 422 naming the field.
"""

from __future__ import annotations

from app import quantities
from app.blueprints.api import ID, route, serialize
from app.blueprints.api.auth import api_user, token_required
from app.blueprints.api.schema import query_text
from app.services import clusters


@route(f"/cluster/<{ID}:cluster_id>/usage/", "GET")
@token_required
def cluster_usage(cluster_id: int):
    user = api_user()
    view = clusters.usage_view(
        user.organization_id, cluster_id, query_text("since"), query_text("step")
    )
    kinds = [line.kind for line in view.kinds]
    return {
        "cluster_id": view.cluster_id,
        "since": serialize.timestamp(view.since),
        "until": serialize.timestamp(view.until),
        "step": view.step,
        "kinds": [
            {
                "kind": line.kind,
                "unit": quantities.unit_label(line.kind),
                "capacity": quantities.to_display(line.kind, line.capacity),
            }
            for line in view.kinds
        ],
        "points": [
            {
                "at": serialize.timestamp(point.at),
                "covered_seconds": round(point.covered),
                "used": serialize.amounts({k: point.used.get(k, 0) for k in kinds}),
                "peak": serialize.amounts({k: point.peak.get(k, 0) for k in kinds}),
                "queued": serialize.amounts({k: point.queued.get(k, 0) for k in kinds}),
                "utilization": {
                    kind: None if (pct := point.utilization(kind)) is None else round(pct, 2)
                    for kind in kinds
                },
            }
            for point in view.points
        ],
    }
