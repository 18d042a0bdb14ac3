"""Who wrote each version, and what an authorization code issued

`resources.created_by` names the author of a resource's first version (a Practitioner, an
Organization a clinic client is bound to, or a client): access rules let an author see and match
its own writes, so a CHW's retried upload finds the Patients it created. `resource_history` records
who wrote every version (the author, the OAuth client and the signed-in user).

`auth_codes` keeps a used code (instead of deleting it) with the tokens issued from it, so that a
replayed code revokes them (RFC 6749 4.1.2), and the authorization request's OpenID Connect
`nonce`, which the id_token must echo.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("created_by", sa.String(128), nullable=True))
    op.create_index(
        "ix_resources_created_by",
        "resources",
        ["resource_type", "created_by", "pk"],
        postgresql_where=sa.text("created_by IS NOT NULL"),
        sqlite_where=sa.text("created_by IS NOT NULL"),
    )
    with op.batch_alter_table("resource_history") as batch:
        batch.add_column(sa.Column("author", sa.String(128), nullable=True))
        batch.add_column(sa.Column("author_client", sa.String(64), nullable=True))
        batch.add_column(sa.Column("author_user", sa.String(128), nullable=True))
    with op.batch_alter_table("auth_codes") as batch:
        batch.add_column(sa.Column("used_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("replayed_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("token_family", sa.String(64), nullable=True))
        batch.add_column(sa.Column("access_jti", sa.String(64), nullable=True))
        batch.add_column(sa.Column("access_expires_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("keep_until", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("nonce", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_codes") as batch:
        for column in ("nonce", "keep_until", "access_expires_at", "access_jti", "token_family", "replayed_at",
                       "used_at"):
            batch.drop_column(column)
    with op.batch_alter_table("resource_history") as batch:
        for column in ("author_user", "author_client", "author"):
            batch.drop_column(column)
    op.drop_index("ix_resources_created_by", table_name="resources")
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("created_by")
