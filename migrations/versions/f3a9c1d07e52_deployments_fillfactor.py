"""deployments: leave room in PostgreSQL pages for the queue's rewrites (fillfactor 70)

A decision rewrites the place, reason and wait of every queued deployment behind a change,
thousands of rows on a large cluster. None of those columns is indexed, so PostgreSQL can
update a row in its own page without touching an index (a HOT update), but only when the page
has room; at the default fillfactor of 100 it has none. Existing pages take the setting when
they are next rewritten (VACUUM FULL); new ones at once. SQLite has no such setting.

Revision ID: f3a9c1d07e52
Revises: c4d8e2f1a7b3
Create Date: 2026-11-30 19:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3a9c1d07e52'
down_revision = 'c4d8e2f1a7b3'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deployments SET (fillfactor = 70)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deployments RESET (fillfactor)")
