"""JSON API v1 under /api/v1: bearer tokens only, CSRF-exempt, errors as JSON."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from app.blueprints.api import routes  # noqa: E402,F401
