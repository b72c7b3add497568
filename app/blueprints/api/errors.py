"""How API errors look on the wire, and the headers every API response carries.

Every error is `{"error": {"code", "message", "fields"}}`. Domain errors raised by the services
(`app.services.errors`) carry their own status, code and fields; HTTP errors from routing (404,
405), from werkzeug (413) and from the rate limiter (429) are rendered in the same shape by the
application-wide handlers in `app.blueprints.main.errors`, which answer JSON for `/api/` paths.
"""

from __future__ import annotations

from flask import Response

from app.blueprints.api import bp


@bp.after_request
def api_headers(response: Response) -> Response:
    # Responses carry tokens and private data: no shared caches, no stale copies.
    response.headers["Cache-Control"] = "no-store"
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="kargo"'
    return response
