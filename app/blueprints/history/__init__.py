"""The history pages: the organization's audit log (owners and admins) or one's own (members),
filtered and paged, and its CSV export."""

from flask import Blueprint

bp = Blueprint("history", __name__)

from app.blueprints.history import routes  # noqa: E402,F401
