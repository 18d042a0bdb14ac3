"""no index rows for union search parameters (Observation's combo-*)

`combo-code` and its siblings are unions of two other parameters (`code` and `component-code`, ...):
a search on them now reads their parts' rows (fhir_mappings.search.unions), so their own rows are
dead weight: ~4 of an Observation's ~14 index rows. They go here. A downgrade leaves them gone;
run `puente reindex` after it, as the older code reads them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 23:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As fhir_mappings.search.unions.UNIONS was when this ran (a migration does not follow later edits).
UNION_PARAMS = {
    "search_token": ("combo-code", "combo-value-concept", "combo-data-absent-reason"),
    "search_quantity": ("combo-value-quantity",),
    "search_composite": ("combo-code-value-quantity", "combo-code-value-concept"),
}


def upgrade() -> None:
    for table, params in UNION_PARAMS.items():
        listed = ", ".join(f"'{p}'" for p in params)
        op.execute(f"DELETE FROM {table} WHERE resource_type = 'Observation' AND param IN ({listed})")


def downgrade() -> None:
    pass  # rows derived from the resources: `puente reindex` writes them again
