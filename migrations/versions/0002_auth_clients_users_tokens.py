"""authorization server: clients, users, authorization codes, refresh tokens, used assertions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('auth_clients',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('auth_method', sa.String(length=32), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('jwks', sa.Text(), nullable=True),
    sa.Column('jwks_url', sa.String(length=1024), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('redirect_uris', sa.Text(), nullable=False),
    sa.Column('grant_types', sa.String(length=200), nullable=False),
    sa.Column('organization', sa.String(length=128), nullable=True),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_auth_clients'))
    )
    op.create_table('auth_users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('practitioner', sa.String(length=128), nullable=True),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_users')),
    sa.UniqueConstraint('username', name=op.f('uq_auth_users_username'))
    )
    op.create_table('auth_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('redirect_uri', sa.String(length=1024), nullable=True),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=False),
    sa.Column('code_challenge_method', sa.String(length=8), nullable=False),
    sa.Column('patient', sa.String(length=128), nullable=True),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_auth_codes'))
    )
    with op.batch_alter_table('auth_codes', schema=None) as batch_op:
        batch_op.create_index('ix_auth_codes_expires_at', ['expires_at'], unique=False)

    op.create_table('auth_refresh_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('family_id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('patient', sa.String(length=128), nullable=True),
    sa.Column('issued_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('rotated_at', sa.BigInteger(), nullable=True),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_auth_refresh_tokens'))
    )
    with op.batch_alter_table('auth_refresh_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_auth_refresh_tokens_client_id', ['client_id'], unique=False)
        batch_op.create_index('ix_auth_refresh_tokens_family_id', ['family_id'], unique=False)
        batch_op.create_index('ix_auth_refresh_tokens_user_id', ['user_id'], unique=False)

    op.create_table('auth_used_assertions',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=255), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'jti', name=op.f('pk_auth_used_assertions'))
    )
    with op.batch_alter_table('auth_used_assertions', schema=None) as batch_op:
        batch_op.create_index('ix_auth_used_assertions_expires_at', ['expires_at'], unique=False)

    op.create_table('auth_revoked_access_tokens',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_auth_revoked_access_tokens'))
    )
    with op.batch_alter_table('auth_revoked_access_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_auth_revoked_access_tokens_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    for table in ('auth_revoked_access_tokens', 'auth_used_assertions', 'auth_refresh_tokens', 'auth_codes',
                  'auth_users', 'auth_clients'):
        op.drop_table(table)
