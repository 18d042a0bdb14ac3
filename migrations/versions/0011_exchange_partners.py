"""Partner clinics: the FHIR servers Puente pushes referrals to, their outbox and their attempts

`exchange_partners` registers each clinic server (`puente partners add`): its FHIR base, token
endpoint, Puente's client id there, the path of Puente's private key file (not the key), the
Organization whose referrals go to it, and the cursor of the Task updates brought back from it;
`exchange_partner_outbox` holds one row per referral to push, written in the transaction of the
write that addressed it; `exchange_partner_attempts` records every token request, push and pull.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchange_partners",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("organization", sa.String(200), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("token_url", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("key_file", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("next_event", sa.BigInteger(), nullable=False),
        sa.Column("pull_cursor", sa.String(64), nullable=True),
        sa.Column("next_pull_at", sa.BigInteger(), nullable=False),
        sa.Column("pull_lease_until", sa.BigInteger(), nullable=True),
        sa.Column("pull_lease_owner", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_partners"),
        sa.UniqueConstraint("name", name="uq_exchange_partners_name"),
        sa.UniqueConstraint("organization", name="uq_exchange_partners_organization"),
    )
    op.create_table(
        "exchange_partner_outbox",
        sa.Column("pk", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("event_number", sa.BigInteger(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("done_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_exchange_partner_outbox"),
        sa.UniqueConstraint("partner_id", "event_number",
                            name="uq_exchange_partner_outbox_partner_id_event_number"),
    )
    op.create_index("ix_exchange_partner_outbox_pending", "exchange_partner_outbox", ["partner_id", "event_number"],
                    postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
    op.create_table(
        "exchange_partner_attempts",
        sa.Column("pk", BigId, autoincrement=True, nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("outbox_pk", sa.BigInteger(), nullable=True),
        sa.Column("event_number", sa.BigInteger(), nullable=True),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("attempted_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_exchange_partner_attempts"),
    )
    op.create_index("ix_exchange_partner_attempts_partner_id_attempted_at", "exchange_partner_attempts",
                    ["partner_id", "attempted_at"])


def downgrade() -> None:
    op.drop_index("ix_exchange_partner_attempts_partner_id_attempted_at", table_name="exchange_partner_attempts")
    op.drop_table("exchange_partner_attempts")
    op.drop_index("ix_exchange_partner_outbox_pending", table_name="exchange_partner_outbox")
    op.drop_table("exchange_partner_outbox")
    op.drop_table("exchange_partners")
