"""The partner clinics' tables: who Puente pushes referrals to, what must leave, what was tried.

Kept apart from the subscriptions' tables (exchange/tables.py) on purpose: a partner's outbox is
ordered per partner, carries no subscription event number, and its attempts include the token
requests and the pulls that a subscription has none of. The rules are the same (an outbox row in
the writing transaction, claimed after the commit under a lease, retried with backoff for 24 hours,
every attempt recorded). Times are milliseconds since the epoch, as in exchange/tables.py.

A partner row holds the *path* of the private key file, never the key (README, "Partner clinics").
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint, text

from storage.tables import BigId, metadata

partners = Table(
    "exchange_partners",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("organization", String(200), nullable=False),  # "Organization/ID": the referrals pushed to it
    Column("base_url", Text, nullable=False),  # the clinic's FHIR base (transaction Bundles are POSTed there)
    Column("token_url", Text, nullable=False),  # the clinic's token endpoint (SMART Backend Services)
    Column("client_id", String(200), nullable=False),  # Puente's client id at the clinic
    Column("key_file", Text, nullable=False),  # path of Puente's private key for this clinic (never the key)
    Column("scope", Text, nullable=False),  # what Puente asks the clinic's token endpoint for
    Column("created_at", BigInteger, nullable=False),
    Column("next_event", BigInteger, nullable=False),  # the last event number given out (order per partner)
    Column("pull_cursor", String(64), nullable=True),  # the clinic's newest Task meta.lastUpdated brought back
    Column("next_pull_at", BigInteger, nullable=False),
    Column("pull_lease_until", BigInteger, nullable=True),
    Column("pull_lease_owner", String(64), nullable=True),
    Column("last_error", Text, nullable=True),  # the latest failure (token, push or pull), for `partners list`
    UniqueConstraint("name"),
    UniqueConstraint("organization"),
)

partner_outbox = Table(
    "exchange_partner_outbox",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("partner_id", String(64), nullable=False),
    Column("event_number", BigInteger, nullable=False),
    Column("resource_type", String(64), nullable=False),  # the referral's ServiceRequest or Task
    Column("resource_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # pending | delivered | gave-up
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("done_at", BigInteger, nullable=True),
    UniqueConstraint("partner_id", "event_number"),
    # The workers' claim: the oldest pending push of each partner.
    Index("ix_exchange_partner_outbox_pending", "partner_id", "event_number",
          postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
)

partner_attempts = Table(
    "exchange_partner_attempts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("partner_id", String(64), nullable=False),
    Column("outbox_pk", BigInteger, nullable=True),  # None for a pull
    Column("event_number", BigInteger, nullable=True),
    Column("phase", String(8), nullable=False),  # token | push | pull | apply
    Column("attempted_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no answer (refused, timed out)
    Column("error", String(500), nullable=True),
    Column("worker", String(64), nullable=False),
    Index("ix_exchange_partner_attempts_partner_id_attempted_at", "partner_id", "attempted_at"),
)
