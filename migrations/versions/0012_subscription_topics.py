"""Topic-based subscriptions (Subscriptions R5 Backport): topic, content, heartbeat, timeout, max count

`exchange_topic_subscriptions` holds what a backport Subscription adds to its row of
`exchange_subscriptions`; its triggers are ordinary rows of that table, so no column changes there.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_topic_subscriptions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("content", sa.String(16), nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger(), nullable=True),
        sa.Column("timeout_ms", sa.BigInteger(), nullable=True),
        sa.Column("max_count", sa.Integer(), nullable=False),
        sa.Column("next_heartbeat_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_topic_subscriptions"),
    )
    op.create_index("ix_exchange_topic_subscriptions_next_heartbeat_at", "exchange_topic_subscriptions",
                    ["next_heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_exchange_topic_subscriptions_next_heartbeat_at", table_name="exchange_topic_subscriptions")
    op.drop_table("exchange_topic_subscriptions")
