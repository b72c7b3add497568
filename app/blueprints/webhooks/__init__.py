"""Webhook pages (owners and admins): add, send a test, delete; the delivery log, re-send."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from app.blueprints.webhooks import routes  # noqa: E402,F401
