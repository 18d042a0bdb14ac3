"""deleted_reference: a deleted resource's references, so access rules still find who may see it

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "deleted_reference",
        sa.Column("resource_pk", big_id, nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("param", sa.String(100), nullable=False),
        sa.Column("target_type", sa.String(64), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_pk"], ["resources.pk"], name="fk_deleted_reference_resource_pk_resources", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_deleted_reference_resource", "deleted_reference", ["resource_pk"])
    op.create_index(
        "ix_deleted_reference_value",
        "deleted_reference",
        ["resource_type", "param", "target_id", "target_type", "resource_pk"],
    )
    # Resources deleted before this revision left no references behind: they stay visible to
    # administrators only, as they were.


def downgrade() -> None:
    op.drop_index("ix_deleted_reference_value", table_name="deleted_reference")
    op.drop_index("ix_deleted_reference_resource", table_name="deleted_reference")
    op.drop_table("deleted_reference")
