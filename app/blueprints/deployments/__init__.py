"""Deployment pages: deploy form with what-if preview, list, detail, delete."""

from flask import Blueprint

bp = Blueprint("deployments", __name__)

from app.blueprints.deployments import routes  # noqa: E402,F401
