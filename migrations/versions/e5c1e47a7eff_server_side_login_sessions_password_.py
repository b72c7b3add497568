"""Server-side login sessions, password resets, named tokens, invite label and role

Logins become rows (login_sessions) that logout, a password change and deactivation delete;
users.session_version, which only the deactivation bumped, goes. Existing cookies name no row,
so everyone logs in once more after this upgrade.

Revision ID: e5c1e47a7eff
Revises: 5b7e2d9c4a10
Create Date: 2026-11-30 10:14:51.427946

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5c1e47a7eff'
down_revision = '5b7e2d9c4a10'
branch_labels = None
depends_on = None

# Ids are never reused (revision 5b7e2d9c4a10): new tables say AUTOINCREMENT on SQLite, and a
# table recreated in batch mode keeps it.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def upgrade():
    op.create_table('login_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_sessions')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_login_sessions_key_hash')),
    **NEVER_REUSE_IDS,
    )
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('password_resets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_password_resets_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_password_resets_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_password_resets_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_resets')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_password_resets_code_hash')),
    **NEVER_REUSE_IDS,
    )
    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_resets_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_password_resets_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('api_tokens', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=80), server_default='API login', nullable=False))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('invites', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=80), server_default='', nullable=False))
        batch_op.add_column(sa.Column('role', sa.String(length=10), server_default='member', nullable=False))
        batch_op.create_check_constraint('role_known', "role IN ('owner', 'admin', 'member')")

    with op.batch_alter_table('organizations', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column('members_can_create_clusters', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column('session_version')

    # ### end Alembic commands ###


def downgrade():
    with op.batch_alter_table('users', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.INTEGER(), server_default='0', nullable=False))

    with op.batch_alter_table('organizations', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column('members_can_create_clusters')

    with op.batch_alter_table('invites', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_constraint('role_known', type_='check')
        batch_op.drop_column('role')
        batch_op.drop_column('label')

    with op.batch_alter_table('api_tokens', schema=None, table_kwargs=NEVER_REUSE_IDS) as batch_op:
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('name')

    with op.batch_alter_table('password_resets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_resets_user_id'))
        batch_op.drop_index(batch_op.f('ix_password_resets_organization_id'))

    op.drop_table('password_resets')
    with op.batch_alter_table('login_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_sessions_user_id'))

    op.drop_table('login_sessions')
    # ### end Alembic commands ###
