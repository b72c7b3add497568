"""Priority rights: the highest priority members and admins may use

Revision ID: a1f3c5e7b901
Revises: 51073516073f
Create Date: 2026-11-30 13:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a1f3c5e7b901'
down_revision = '51073516073f'
branch_labels = None
depends_on = None

# The check constraints make SQLite recreate the table: keep it AUTOINCREMENT (5b7e2d9c4a10).
KEEP_AUTOINCREMENT = {'sqlite_autoincrement': True}


def upgrade():
    with op.batch_alter_table('organizations', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('member_max_priority', sa.Integer(), server_default='800', nullable=False))
        batch_op.add_column(sa.Column('admin_max_priority', sa.Integer(), server_default='1000', nullable=False))
        batch_op.create_check_constraint(
            op.f('ck_organizations_member_max_priority_range'),
            'member_max_priority >= 0 AND member_max_priority <= 1000',
        )
        batch_op.create_check_constraint(
            op.f('ck_organizations_admin_max_priority_range'),
            'admin_max_priority >= 0 AND admin_max_priority <= 1000',
        )


def downgrade():
    with op.batch_alter_table('organizations', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_constraint(op.f('ck_organizations_admin_max_priority_range'), type_='check')
        batch_op.drop_constraint(op.f('ck_organizations_member_max_priority_range'), type_='check')
        batch_op.drop_column('admin_max_priority')
        batch_op.drop_column('member_max_priority')
