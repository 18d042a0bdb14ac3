"""index rows without foreign keys: the search_* tables and deleted_reference

Every index row was checked against `resources` by a foreign-key trigger. The rows are derived from
the resource (`puente reindex` rebuilds them) and the server only writes them joined to their resource
row in the same statement, so the check guarded nothing the code does not already guarantee, and it
cost ~3 ms of PostgreSQL CPU per 8-entry household visit (~90 index rows), 40 % of the database's
share. Resources are never removed from `resources` (a deletion is a new version), so nothing relied
on ON DELETE CASCADE. resource_history keeps its key: one check per version, and it is the record.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 01:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "search_string", "search_token", "search_date", "search_reference", "search_quantity", "search_number",
    "search_uri", "search_composite", "deleted_reference",
)


def _constraint(table: str) -> str:
    return f"fk_{table}_resource_pk_resources"


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:  # SQLite rebuilds the table; PostgreSQL alters it
            batch.drop_constraint(_constraint(table), type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(_constraint(table), "resources", ["resource_pk"], ["pk"], ondelete="CASCADE")
