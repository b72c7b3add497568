"""Cluster pages: list, create, detail with the live utilization partial, delete."""

from flask import Blueprint

bp = Blueprint("clusters", __name__)

from app.blueprints.clusters import routes  # noqa: E402,F401
