"""The referral exchange: subscriptions, the outbox written in each write's transaction, attempts

`exchange_subscriptions` mirrors each rest-hook Subscription (criteria, endpoint, owner, status and
its event counter); `exchange_outbox` holds one row per notification, written in the transaction of
the write it announces; `exchange_attempts` records every delivery attempt.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_subscriptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("payload", sa.String(64), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_event", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_subscriptions"),
    )
    op.create_index("ix_exchange_subscriptions_resource_type_status", "exchange_subscriptions",
                    ["resource_type", "status"])
    op.create_table(
        "exchange_outbox",
        sa.Column("pk", BigId, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("event_number", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=True),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_exchange_outbox"),
        sa.UniqueConstraint("subscription_id", "event_number", name="uq_exchange_outbox_subscription_id_event_number"),
    )
    op.create_index("ix_exchange_outbox_pending", "exchange_outbox", ["subscription_id", "event_number"],
                    postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.create_table(
        "exchange_attempts",
        sa.Column("pk", BigId, autoincrement=True, nullable=False),
        sa.Column("outbox_pk", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.String(64), nullable=False),
        sa.Column("event_number", sa.BigInteger(), nullable=False),
        sa.Column("attempted_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_exchange_attempts"),
    )
    op.create_index("ix_exchange_attempts_outbox_pk", "exchange_attempts", ["outbox_pk"])


def downgrade() -> None:
    op.drop_index("ix_exchange_attempts_outbox_pk", table_name="exchange_attempts")
    op.drop_table("exchange_attempts")
    op.drop_index("ix_exchange_outbox_pending", table_name="exchange_outbox")
    op.drop_table("exchange_outbox")
    op.drop_index("ix_exchange_subscriptions_resource_type_status", table_name="exchange_subscriptions")
    op.drop_table("exchange_subscriptions")
