"""The outbox by resource: which subscriptions were told of a resource, when it is deleted

A deletion is announced to the subscriptions that were notified of the resource before
(exchange.deletions); this index finds their outbox rows without reading the whole outbox.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 21:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_exchange_outbox_resource", "exchange_outbox", ["resource_type", "resource_id"])


def downgrade() -> None:
    op.drop_index("ix_exchange_outbox_resource", table_name="exchange_outbox")
