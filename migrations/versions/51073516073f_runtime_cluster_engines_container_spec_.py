"""runtime: cluster engines, container spec, observed runtime state and leases

Revision ID: 51073516073f
Revises: 7d2b91c4e5a3
Create Date: 2026-11-30 13:35:55.934039

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '51073516073f'
down_revision = '7d2b91c4e5a3'
branch_labels = None
depends_on = None

# Dropping a column makes SQLite recreate the table: keep it AUTOINCREMENT (5b7e2d9c4a10).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    op.create_table('cluster_runtime',
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('engine_state', sa.String(length=12), nullable=False),
    sa.Column('engine_error', sa.String(length=500), nullable=True),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.Column('nodes', sa.JSON(), nullable=True),
    sa.Column('capacity', sa.JSON(), nullable=True),
    sa.Column('last_pass_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_cluster_runtime_cluster_id_clusters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cluster_id', name=op.f('pk_cluster_runtime')),
    )
    op.create_table('deployment_runtime',
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('exit_code', sa.Integer(), nullable=True),
    sa.Column('restart_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('container_id', sa.String(length=80), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('generation', sa.String(length=32), nullable=True),
    sa.Column('ports', sa.JSON(), nullable=True),
    sa.Column('retry_at', sa.DateTime(), nullable=True),
    sa.Column('observed_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('starting', 'pulling', 'running', 'restarting', 'failed', 'exited', 'stopped')", name=op.f('ck_deployment_runtime_runtime_status_known')),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_deployment_runtime_cluster_id_clusters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], name=op.f('fk_deployment_runtime_deployment_id_deployments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('deployment_id', name=op.f('pk_deployment_runtime')),
    )
    with op.batch_alter_table('deployment_runtime', schema=None) as batch_op:
        batch_op.create_index('ix_deployment_runtime_cluster', ['cluster_id'], unique=False)

    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('engine', sa.String(length=63), nullable=True))

    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('ports', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('env', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('command', sa.JSON(), nullable=True))



def downgrade():
    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('command')
        batch_op.drop_column('env')
        batch_op.drop_column('ports')

    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('engine')

    with op.batch_alter_table('deployment_runtime', schema=None) as batch_op:
        batch_op.drop_index('ix_deployment_runtime_cluster')

    op.drop_table('deployment_runtime')
    op.drop_table('cluster_runtime')
