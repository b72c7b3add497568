"""How a service starts a transaction that will write.

SQLite allows one writer at a time. A transaction that began with a plain (deferred) `BEGIN`
and read first cannot always be upgraded to a writer when another connection wrote
meanwhile: SQLite answers "database is locked" at once, without waiting for the busy timeout.
So every writing transaction starts with `BEGIN IMMEDIATE`, which takes the write lock up front
and waits for it (see `_configure_sqlite` in `app/__init__.py`). PostgreSQL needs no such step:
row locks (`SELECT ... FOR UPDATE`) taken by the callers serialize what must be serialized.
"""

from __future__ import annotations

from app.extensions import db


def begin_write() -> None:
    """End any read-only transaction of the request and begin the one that will write.

    Must be called before anything is added or changed in the session: pending changes would
    be committed by the read transaction's end, outside the caller's rules.
    """
    session = db.session()
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a write transaction must start with a clean session")
    if session.in_transaction():
        session.commit()  # ends the read-only transaction (loading the user, say)
    if db.engine.dialect.name == "sqlite":
        session.connection(execution_options={"kargo_immediate": True})
