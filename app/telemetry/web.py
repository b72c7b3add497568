"""Telemetry for requests: a request id, one JSON log line and two metrics per request.

`init_app(app)` installs:
- a request id per request: the caller's `X-Request-ID` when it is a sane token (a load
  balancer's), a new random one otherwise; echoed in the `X-Request-ID` response header, shown
  on error pages and in JSON errors (`error.request_id`), and carried by every log line written
  during the request;
- the request counter and latency histogram, labelled by route template (`/deployments/<int:id>`),
  never by raw path, so an invite code or a scanner's random paths never become labels;
- one access log line per request (logger `kargo.request`), replacing gunicorn's access log;
- `log_exception`: an unhandled error is logged once, with its traceback and the request id
  the user saw, and without the raw path.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request

from app.telemetry import logs, metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")

access_log = logging.getLogger("kargo.request")
error_log = logging.getLogger("kargo.error")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SANE_REQUEST_ID.match(incoming) else secrets.token_hex(8)
    return g.request_id


def _endpoint() -> str:
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


def _identity() -> dict[str, Any]:
    """User and organization ids of the request, read once (None for anonymous requests)."""
    if "log_identity" in g:
        return g.log_identity
    identity: dict[str, Any] = {}
    user = g.get("api_user") or g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False):
        try:
            identity = {"user_id": user.id, "organization_id": user.organization_id}
        except Exception:  # a failed transaction cannot reload the user: log without ids
            identity = {}
    g.log_identity = identity
    return identity


def log_context() -> dict[str, Any]:
    if not has_request_context():
        return {}
    return {
        "request_id": request_id(),
        "method": request.method,
        "endpoint": _endpoint(),
        **g.get("log_identity", {}),
    }


def init_app(app: Flask) -> None:
    logs.install_context(log_context)
    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    @app.before_request
    def start_clock() -> None:
        g.request_started = time.perf_counter()
        request_id()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id() or ""
        started = g.get("request_started")
        elapsed = time.perf_counter() - started if started is not None else 0.0
        endpoint = _endpoint()
        metrics.HTTP_REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        metrics.HTTP_LATENCY.labels(endpoint, request.method).observe(elapsed)
        if app.config["LOG_REQUESTS"]:
            _identity()  # read once, then carried by this and any later line of the request
            access_log.info(
                "%s %s %s",
                request.method,
                endpoint,
                response.status_code,
                extra={
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 2),
                    "remote_addr": request.remote_addr,
                },
            )
        return response

    def log_exception(exc_info: Any) -> None:
        _identity()
        error_log.error("unhandled error in %s %s", request.method, _endpoint(), exc_info=exc_info)

    app.log_exception = log_exception  # type: ignore[method-assign]
