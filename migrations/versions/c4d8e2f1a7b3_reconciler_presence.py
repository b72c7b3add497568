"""reconciler presence: live reconcilers share the clusters' leases

Revision ID: c4d8e2f1a7b3
Revises: b7e4d2a9c613
Create Date: 2026-11-30 17:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d8e2f1a7b3'
down_revision = 'b7e4d2a9c613'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reconciler_presence',
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('holder', name=op.f('pk_reconciler_presence')),
    )


def downgrade():
    op.drop_table('reconciler_presence')
