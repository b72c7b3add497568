"""ids are never reused: AUTOINCREMENT on SQLite

Revision ID: 5b7e2d9c4a10
Revises: c8241a9172f9
Create Date: 2026-11-30 10:40:00.000000

SQLite gives a new row the largest rowid plus one, so deleting the newest deployment (or
cluster, user, ...) handed its id to the next one. A table declared AUTOINCREMENT never reuses
an id; SQLite cannot add that to an existing table, so each table with an integer key is
recreated in batch mode (copy, drop, rename), keeping its rows, ids, constraints and indexes.
Foreign keys are off during SQLite migrations (migrations/env.py) so that dropping a parent
does not cascade; they are checked before this migration commits. PostgreSQL sequences never
reuse a value: nothing to do there. (The events table was created AUTOINCREMENT already.)
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b7e2d9c4a10'
down_revision = 'c8241a9172f9'
branch_labels = None
depends_on = None

TABLES = ("organizations", "users", "invites", "api_tokens", "clusters", "deployments")


def _recreate(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass
    problems = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"foreign keys broken by recreating tables: {problems[:10]}")


def upgrade():
    _recreate(autoincrement=True)


def downgrade():
    _recreate(autoincrement=False)
