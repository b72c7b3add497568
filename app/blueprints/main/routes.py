"""The landing page and `/healthz`."""

from __future__ import annotations

from flask import current_app, redirect, render_template, url_for
from flask_login import current_user

from app.blueprints.main import bp
from app.extensions import limiter
from app.services import health


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
