"""search: prefix-friendly string/uri indexes and extended statistics on PostgreSQL; reference url and
identifier indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, index, value column): LIKE 'abc%' needs varchar_pattern_ops under a non-C collation
PATTERN_INDEXES = (
    ("search_string", "ix_search_string_value0", "value"),
    ("search_uri", "ix_search_uri_value0", "value"),
)

# The planner multiplies the selectivities of resource_type, param and code as if independent; they are
# not (param 'status' only exists on some types, code '718-7' only under param 'code'), so without these
# it guesses "1 row" for Observation?code=718-7 and drives a join from 15,000 rows. Not in tables.py:
# SQLAlchemy metadata cannot express statistics objects (and SQLite has none).
STATISTICS = {
    "search_token": ("resource_type", "param", "code", "system"),
    "search_reference": ("resource_type", "param", "target_type"),
    "search_string": ("resource_type", "param"),
    "search_date": ("resource_type", "param"),
    "search_quantity": ("resource_type", "param", "code"),
    "search_number": ("resource_type", "param"),
    "search_uri": ("resource_type", "param"),
    "search_composite": ("resource_type", "param", "key"),
}
STATISTICS_TARGET = 1000


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, index, column in PATTERN_INDEXES:
            op.drop_index(index, table_name=table)
            op.create_index(
                index,
                table,
                ["resource_type", "param", column, "resource_pk"],
                postgresql_ops={column: "varchar_pattern_ops"},
            )
        for table, columns in STATISTICS.items():
            op.execute(f"CREATE STATISTICS st_{table} (dependencies, mcv) ON {', '.join(columns)} FROM {table}")
            op.execute(f"ALTER STATISTICS st_{table} SET STATISTICS {STATISTICS_TARGET}")
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_reference_url",
            ["resource_type", "param", "url", "resource_pk"],
            postgresql_where=sa.text("url IS NOT NULL"),
            sqlite_where=sa.text("url IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_search_reference_identifier",
            ["resource_type", "param", "identifier_value", "resource_pk"],
            postgresql_where=sa.text("identifier_value IS NOT NULL"),
            sqlite_where=sa.text("identifier_value IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_search_reference_identifier")
        batch_op.drop_index("ix_search_reference_url")
    if op.get_bind().dialect.name == "postgresql":
        for table in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS st_{table}")
        for table, index, column in PATTERN_INDEXES:
            op.drop_index(index, table_name=table)
            op.create_index(index, table, ["resource_type", "param", column, "resource_pk"])
