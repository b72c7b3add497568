"""GET /api/v1/audit/: the audit log, filtered and paged, as the history page shows it.

Owners and admins read the whole organization's log; members read the history of their own
deployments and account. The filters are the page's (`services.audit.parse_filter`); a bad
value answers 422 with the field named.
"""

from __future__ import annotations

from typing import Any

from app.blueprints.api import route
from app.blueprints.api.auth import api_user, token_required
from app.blueprints.api.pagination import page_body, page_request
from app.blueprints.api.schema import query_text
from app.blueprints.api.serialize import timestamp
from app.services import audit, history

FILTERS = ("actor", "action", "subject_kind", "subject_id", "since", "until")


def entry(view: history.EventView) -> dict[str, Any]:
    return {
        "id": view.id,
        "at": timestamp(view.at),
        "actor": {"kind": view.actor_kind, "id": view.actor_id, "name": view.actor_name},
        "action": view.action,
        "subject": {"kind": view.subject_kind, "id": view.subject_id, "name": view.subject_name},
        "cluster_id": view.cluster_id,
        "message": view.message,
        "data": view.data,
    }


@route("/audit/", "GET")
@token_required
def audit_log():
    user = api_user()
    wanted = audit.parse_filter(user, {name: query_text(name) for name in FILTERS})
    paging = page_request()
    log = audit.entries(user, wanted, paging.page, paging.offset)
    return page_body((entry(item) for item in log.items), log.total, paging)
