"""search: the token table's multi-column statistics keep 100 common values, not 1,000

Migration 0003 gave search_token's extended statistics (resource_type, param, code, system) a
target of 1,000. Once analysed, their list of common values is ~1,000 long code strings (36 KB,
stored compressed), and PostgreSQL decompresses and matches the whole list every time it plans a
statement with a clause on that table: 7-18 ms a plan, against 0.07-0.4 ms with 100 entries
(bench/RESULTS.md, session 24). Every search with a token clause is planned afresh, and the
clinical rules' read of a child's day was too, under the child's lock. 100 is PostgreSQL's own
default; the hot statements do not need more (their plans are fixed by the query,
tests/storage/test_plans_without_statistics.py).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 22:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _target(100)


def downgrade() -> None:
    _target(1000)


def _target(entries: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER STATISTICS st_search_token SET STATISTICS {entries}")
    # A list already gathered stays until the next ANALYZE (autovacuum's, or Puente's own when
    # autovacuum is off): gather it again now (a sample of 300 x target rows, not the table). A
    # table never analysed stays so: its planner estimates are what the hot statements are tested on.
    op.execute(
        "DO $$ BEGIN"
        " IF EXISTS (SELECT FROM pg_statistic_ext s JOIN pg_statistic_ext_data d ON d.stxoid = s.oid"
        " WHERE s.stxname = 'st_search_token') THEN ANALYZE search_token; END IF;"
        " END $$"
    )
