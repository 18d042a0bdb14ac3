"""Bulk data: $export jobs shared by every `serve` process, and `puente import` progress

Export jobs are claimed through the database (a lease that a live worker renews), so several
processes share the work and a job whose worker died is resumed by another. Import progress is
written in the transaction that stores each batch, so an interrupted import resumes exactly.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bulk_export_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("transaction_time", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bulk_export_jobs"),
    )
    op.create_index("ix_bulk_export_jobs_status", "bulk_export_jobs", ["status", "lease_until"])
    op.create_table(
        "bulk_import_progress",
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("lines_done", sa.Integer(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_bulk_import_progress"),
    )


def downgrade() -> None:
    op.drop_table("bulk_import_progress")
    op.drop_index("ix_bulk_export_jobs_status", table_name="bulk_export_jobs")
    op.drop_table("bulk_export_jobs")
