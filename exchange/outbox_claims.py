"""Claiming an outbox's next events, shared by the subscription and partner-clinic workers.

An outbox is a table of numbered events per stream (a subscription, a partner clinic). A worker
claims only the oldest pending event of each stream, under a lease, so a stream's events leave in
order; several workers in several processes share the work through the database: `FOR UPDATE SKIP
LOCKED` on PostgreSQL, one atomic UPDATE under SQLite's single writer. A worker that dies holding a
lease loses it when the lease runs out, and the event is claimed again (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Row, Table, and_, exists, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exchange.matching import epoch_ms
from storage.database import transaction

LEASE_MS = 60_000  # longer than any one attempt (the HTTP timeout), so a live worker keeps its event
CLAIM_BATCH = 20


async def anything_due(engine: AsyncEngine, outbox: Table) -> bool:
    """A plain read first: on SQLite a claim takes the write lock, which idle polling must not."""
    async with transaction(engine, write=False) as connection:
        row = (await connection.execute(
            select(outbox.c.pk).where(outbox.c.state == "pending", outbox.c.next_attempt_at <= epoch_ms()).limit(1)
        )).first()
    return row is not None


async def claim_heads(
    engine: AsyncEngine, outbox: Table, stream: str, worker: str, returning: Sequence[Column[Any]]
) -> list[Row[Any]]:
    """Lease up to CLAIM_BATCH due events to `worker`, each the oldest pending one of its `stream`."""
    o = outbox
    earlier = outbox.alias("earlier")
    now = epoch_ms()
    heads = (
        select(o.c.pk)
        .where(
            o.c.state == "pending",
            o.c.next_attempt_at <= now,
            (o.c.lease_until.is_(None)) | (o.c.lease_until < now),
            ~exists().where(and_(earlier.c[stream] == o.c[stream], earlier.c.state == "pending",
                                 earlier.c.event_number < o.c.event_number)),
        )
        .order_by(o.c.next_attempt_at, o.c.pk)
        .limit(CLAIM_BATCH)
    )
    async with transaction(engine, write=True) as connection:
        if connection.dialect.name == "postgresql":
            heads = heads.with_for_update(skip_locked=True, of=o)
        return list((await connection.execute(
            update(o).where(o.c.pk.in_(heads.scalar_subquery()))
            .values(lease_until=now + LEASE_MS, lease_owner=worker)
            .returning(*returning)
        )).all())
