"""JSON API v1 under /api/v1, for scripts and CI pipelines.

One blueprint, routes split by resource (users, organizations, clusters, deployments). Every
route is thin: check the JSON shape (`schema`), authenticate the bearer token (`auth`), call one
service function, serialize the result. Business rules live in `app.services` and reach the
client as domain errors (see `errors`). Session cookies are never accepted here, and the
blueprint is CSRF-exempt (see `app.register_blueprints`) because a bearer token cannot be sent
by a cross-site form.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)

# Object ids in paths: any run of digits. The services answer 404 for an id no row can have
# (0, or beyond the 32-bit id columns: `models.valid_id`) before it reaches the database, so
# an impossible id answers like a missing one for every method. A converter that refused
# them (int(min=1, max=...)) made werkzeug answer 405 to DELETE /cluster/0/ but 404 to GET.
ID = "int"


def route(rule: str, *methods: str) -> Callable:
    """Register `rule` (written with its trailing slash) and the same path without the slash.

    Both rules are needed: with only the slashed one, a wrong method on the bare path would be
    a 404 instead of a 405, and `strict_slashes=False` keeps werkzeug from answering a PUT with
    a redirect that curl would not follow.
    """

    def register(view: Callable) -> Callable:
        for path in dict.fromkeys((rule, rule.rstrip("/"))):
            bp.add_url_rule(path, view.__name__, view, methods=list(methods), strict_slashes=False)
        return view

    return register


from app.blueprints.api import (  # noqa: E402,F401
    audit,
    clusters,
    deployments,
    errors,
    openapi,
    organizations,
    seed,
    usage,
    users,
    webhooks,
)
