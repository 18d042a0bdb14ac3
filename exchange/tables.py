"""The exchange's tables: who listens (subscriptions), what must leave (outbox), what was tried (attempts).

They live in storage's MetaData, so the one Alembic lineage builds them and the schema-drift test
checks them. Times are milliseconds since the epoch (integers compare alike on both databases).

An outbox row is written in the transaction of the write it announces, with the next event number
of its subscription: nothing is announced for a write that rolled back, and nothing committed is
left unannounced, whatever happens to the process after the commit.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint, text

from storage.tables import BigId, metadata

subscriptions = Table(
    "exchange_subscriptions",
    metadata,
    Column("id", String(64), primary_key=True),  # the Subscription resource's id
    Column("resource_type", String(64), nullable=False),  # what its criteria search
    Column("criteria", Text, nullable=False),  # the query string of the criteria
    Column("endpoint", Text, nullable=False),
    Column("headers", Text, nullable=False),  # JSON list of "Name: value"
    Column("payload", String(64), nullable=False),  # "" = ping (no body); application/fhir+json = full
    Column("owner", Text, nullable=False),  # JSON of the Principal whose access rules it notifies within
    Column("status", String(16), nullable=False),  # requested | active | error | off
    Column("error", Text, nullable=True),
    Column("next_event", BigInteger, nullable=False),  # the last event number given out
    Index("ix_exchange_subscriptions_resource_type_status", "resource_type", "status"),
)

outbox = Table(
    "exchange_outbox",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("subscription_id", String(64), nullable=False),
    Column("event_number", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # handshake | notification | deletion
    Column("resource_type", String(64), nullable=True),
    Column("resource_id", String(64), nullable=True),
    Column("version_id", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),  # pending | delivered | gave-up
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("done_at", BigInteger, nullable=True),
    UniqueConstraint("subscription_id", "event_number"),
    # The workers' claim: the oldest pending event of each subscription.
    Index("ix_exchange_outbox_pending", "subscription_id", "event_number",
          postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    # A deletion's lookup: which subscriptions were told of this resource (exchange.deletions).
    Index("ix_exchange_outbox_resource", "resource_type", "resource_id"),
)

attempts = Table(
    "exchange_attempts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("outbox_pk", BigInteger, nullable=False),
    Column("subscription_id", String(64), nullable=False),
    Column("event_number", BigInteger, nullable=False),
    Column("attempted_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),  # None: no answer (refused, timed out)
    Column("error", String(500), nullable=True),
    Column("worker", String(64), nullable=False),
    Index("ix_exchange_attempts_outbox_pk", "outbox_pk"),
)

# Topic-based (Subscriptions R5 Backport) subscriptions: what the backport adds to a row of
# `exchange_subscriptions` (exchange.topics). Their triggers are rows of `exchange_subscriptions`
# too, which the matcher serves like any rest-hook criteria; `next_heartbeat_at` is claimed by one
# heartbeat worker at a time with a conditional UPDATE (exchange.heartbeats).
topic_subscriptions = Table(
    "exchange_topic_subscriptions",
    metadata,
    Column("id", String(64), primary_key=True),  # the Subscription resource's id
    Column("topic", Text, nullable=False),  # the SubscriptionTopic canonical
    Column("content", String(16), nullable=False),  # empty | id-only | full-resource
    Column("heartbeat_ms", BigInteger, nullable=True),  # None: no heartbeats
    Column("timeout_ms", BigInteger, nullable=True),  # None: the server's own timeout
    Column("max_count", Integer, nullable=False),
    Column("next_heartbeat_at", BigInteger, nullable=True),
    Index("ix_exchange_topic_subscriptions_next_heartbeat_at", "next_heartbeat_at"),
)
