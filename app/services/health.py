"""Liveness of the application's dependencies, for `/healthz` and the container HEALTHCHECK."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db


def check_database() -> tuple[bool, str]:
    """Run a trivial query; never raises."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        return True, "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        return False, exc.__class__.__name__
