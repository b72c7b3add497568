"""API routes."""

from app.blueprints.api import bp  # noqa: F401
