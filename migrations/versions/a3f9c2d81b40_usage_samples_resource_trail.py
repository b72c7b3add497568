"""usage_samples: the resource trail of every cluster

Revision ID: a3f9c2d81b40
Revises: bba2bce9f908
Create Date: 2026-11-30 13:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3f9c2d81b40'
down_revision = 'bba2bce9f908'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('usage_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('step', sa.Integer(), server_default='0', nullable=False),
    sa.Column('used', sa.JSON(), nullable=False),
    sa.Column('peak', sa.JSON(), nullable=False),
    sa.Column('queued', sa.JSON(), nullable=False),
    sa.Column('capacity', sa.JSON(), nullable=False),
    sa.Column('settled', sa.JSON(), nullable=True),
    sa.CheckConstraint('step IN (0, 60, 3600)', name=op.f('ck_usage_samples_step_known')),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_usage_samples_cluster_id_clusters'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_samples')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('usage_samples', schema=None) as batch_op:
        batch_op.create_index('ix_usage_samples_cluster_at', ['cluster_id', 'at'], unique=False)


def downgrade():
    with op.batch_alter_table('usage_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_samples_cluster_at')

    op.drop_table('usage_samples')
