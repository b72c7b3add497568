"""Fair use: resource quotas, preemption policy, run times, starvation guard

Revision ID: bba2bce9f908
Revises: a1f3c5e7b901
Create Date: 2026-11-30 13:48:24.383266

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bba2bce9f908'
down_revision = 'a1f3c5e7b901'
branch_labels = None
depends_on = None

# The check constraints make SQLite recreate the tables: keep them AUTOINCREMENT (5b7e2d9c4a10).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    op.create_table('resource_quotas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('cluster_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('min_priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_priority', sa.Integer(), server_default='1000', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("(scope = 'member') = (user_id IS NOT NULL)", name=op.f('ck_resource_quotas_member_scope_names_user')),
    sa.CheckConstraint("scope IN ('organization', 'each_member', 'member')", name=op.f('ck_resource_quotas_scope_known')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_resource_quotas_amount_not_negative')),
    sa.CheckConstraint('min_priority >= 0 AND min_priority <= max_priority AND max_priority <= 1000', name=op.f('ck_resource_quotas_priority_range')),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_resource_quotas_cluster_id_clusters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_resource_quotas_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_resource_quotas_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_quotas')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('resource_quotas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resource_quotas_organization_id'), ['organization_id'], unique=False)

    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('min_run_minutes', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('starvation_minutes', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_clusters_min_run_not_negative'), 'min_run_minutes >= 0')
        batch_op.create_check_constraint(
            op.f('ck_clusters_starvation_positive'), 'starvation_minutes IS NULL OR starvation_minutes > 0'
        )

    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('may_preempt', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('max_run_minutes', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_deployments_max_run_positive'), 'max_run_minutes IS NULL OR max_run_minutes > 0'
        )


def downgrade():
    with op.batch_alter_table('deployments', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f('ck_deployments_max_run_positive'), type_='check')
        batch_op.drop_column('max_run_minutes')
        batch_op.drop_column('may_preempt')

    with op.batch_alter_table('clusters', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f('ck_clusters_starvation_positive'), type_='check')
        batch_op.drop_constraint(op.f('ck_clusters_min_run_not_negative'), type_='check')
        batch_op.drop_column('starvation_minutes')
        batch_op.drop_column('min_run_minutes')

    with op.batch_alter_table('resource_quotas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_resource_quotas_organization_id'))

    op.drop_table('resource_quotas')
