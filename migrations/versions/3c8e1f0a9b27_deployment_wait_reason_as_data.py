"""Deployment wait reason as data

Revision ID: 3c8e1f0a9b27
Revises: e5c1e47a7eff
Create Date: 2026-11-30 10:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c8e1f0a9b27'
down_revision = 'e5c1e47a7eff'
branch_labels = None
depends_on = None

# Should SQLite recreate the table (dropping the column), keep it AUTOINCREMENT (5b7e2d9c4a10).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('wait', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('wait')
