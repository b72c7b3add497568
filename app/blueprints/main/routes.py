"""The landing page and `/healthz`."""

from __future__ import annotations

import hmac

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints.main import bp
from app.extensions import limiter
from app.services import dashboards, health
from app.telemetry import metrics


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("clusters.index"))
    return render_template("main/index.html")


@bp.get("/healthz")
@limiter.exempt
def healthz():
    ok, detail = health.check_database()
    body = {"status": "ok" if ok else "unavailable", "database": detail}
    if ok:
        return body, 200
    return body, 503, {"Retry-After": str(current_app.config["RETRY_AFTER_SECONDS"])}


@bp.get("/metrics")
@limiter.exempt
def prometheus_metrics():
    """Prometheus metrics, for a scraper holding METRICS_TOKEN (off, a 404, when it is empty)."""
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        response = Response(
            "metrics need the bearer token METRICS_TOKEN\n", 401, mimetype="text/plain"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="kargo-metrics"'
        return response
    body = metrics.exposition([metrics.Gauges(dashboards.metric_families)])
    return Response(body, mimetype=metrics.CONTENT_TYPE_LATEST)
