"""Cluster repack settings, and an index of recent events per cluster and action

Revision ID: 7d2b91c4e5a3
Revises: 3c8e1f0a9b27
Create Date: 2026-11-30 11:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d2b91c4e5a3'
down_revision = '3c8e1f0a9b27'
branch_labels = None
depends_on = None

# The check constraints make SQLite recreate the table: keep it AUTOINCREMENT (5b7e2d9c4a10).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('repack_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('repack_threshold_bp', sa.Integer(), server_default='200', nullable=False))
        batch_op.add_column(sa.Column('repack_max_per_hour', sa.Integer(), server_default='6', nullable=False))
        batch_op.add_column(sa.Column('repack_cooldown_minutes', sa.Integer(), server_default='60', nullable=False))
        batch_op.create_check_constraint(
            op.f('ck_clusters_repack_threshold_range'), 'repack_threshold_bp > 0 AND repack_threshold_bp <= 10000'
        )
        batch_op.create_check_constraint(op.f('ck_clusters_repack_max_per_hour_positive'), 'repack_max_per_hour > 0')
        batch_op.create_check_constraint(op.f('ck_clusters_repack_cooldown_not_negative'), 'repack_cooldown_minutes >= 0')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_cluster_action_at'), ['cluster_id', 'action', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_cluster_action_at'))
    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f('ck_clusters_repack_cooldown_not_negative'), type_='check')
        batch_op.drop_constraint(op.f('ck_clusters_repack_max_per_hour_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_clusters_repack_threshold_range'), type_='check')
        batch_op.drop_column('repack_cooldown_minutes')
        batch_op.drop_column('repack_max_per_hour')
        batch_op.drop_column('repack_threshold_bp')
        batch_op.drop_column('repack_enabled')
