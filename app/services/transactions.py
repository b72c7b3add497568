"""How a service starts a transaction that will write.

SQLite allows one writer at a time. A transaction that began with a plain (deferred) `BEGIN`
and read first cannot always be upgraded to a writer when another connection wrote
meanwhile: SQLite answers "database is locked" at once, without waiting for the busy timeout.
So every writing transaction starts with `BEGIN IMMEDIATE`, which takes the write lock up front
and waits for it (see `_configure_sqlite` in `app/__init__.py`). PostgreSQL needs no such step:
row locks (`SELECT ... FOR UPDATE`) taken by the callers serialize what must be serialized.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import Organization


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


def lock_organization(organization_id: int) -> None:
    """Serialize read-then-write rules of one organization (the last owner, cluster counts).

    PostgreSQL: lock the organization row FOR NO KEY UPDATE, which does not conflict with the
    KEY SHARE locks that inserting rows referencing it takes. SQLite: `begin_write` already
    took the database's write lock. Call it right after `begin_write`.
    """
    if db.engine.dialect.name != "sqlite":
        db.session.execute(
            sa.select(Organization.id)
            .where(Organization.id == organization_id)
            .with_for_update(key_share=True)
        )
