"""resource_history without its foreign key to resources

The history row of every version was checked against `resources` by a foreign-key trigger, which
also takes a KEY SHARE lock on the resource row the same statement has just written. The server
only ever writes history in the statement that writes (or locks) the resource row, and never
removes a row from `resources` (a deletion is a new version), so the check guarded nothing and
ON DELETE CASCADE never fired. It cost ~5 % of PostgreSQL's CPU for a household visit (12 versions).
Migration 0005 dropped the index tables' keys for the same reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "fk_resource_history_resource_pk_resources"


def upgrade() -> None:
    with op.batch_alter_table("resource_history") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
        batch.drop_constraint(CONSTRAINT, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("resource_history") as batch:
        batch.create_foreign_key(CONSTRAINT, "resources", ["resource_pk"], ["pk"], ondelete="CASCADE")
