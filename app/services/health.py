"""Liveness of the application's dependencies, for `/healthz` and the container HEALTHCHECK."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db

# What a request meets when the database is away for a moment: a connection killed between
# the pool's pre-ping and its use (or mid-transaction), a server restart, an exhausted pool, a
# deadlock victim, SQLite's busy timeout. Answered 503 with Retry-After, never a 500 page;
# the pool replaces the dead connection on its next checkout by itself.
UNAVAILABLE_ERRORS = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    exc.PendingRollbackError,
)


def recover() -> None:
    """Give the failed request's connection back (rolled back) so the pool can replace it."""
    try:
        db.session.rollback()
    except SQLAlchemyError:
        db.session.close()


def check_database() -> tuple[bool, str]:
    """Run a trivial query; never raises."""
    try:
        db.session.execute(sa.text("SELECT 1"))
        db.session.rollback()
        return True, "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        return False, exc.__class__.__name__
