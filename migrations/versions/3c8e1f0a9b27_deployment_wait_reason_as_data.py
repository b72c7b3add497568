"""Deployment wait reason as data

Revision ID: 3c8e1f0a9b27
Revises: c8241a9172f9
Create Date: 2026-11-30 10:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c8e1f0a9b27'
down_revision = 'c8241a9172f9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wait', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_column('wait')
