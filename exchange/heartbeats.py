"""Heartbeats of topic-based subscriptions (backport-heartbeat-period): when nothing was sent to an
active subscription within its period, a `heartbeat` notification tells the receiver that the
channel is alive and how many events there have been (so it can see one it missed).

Shared through the database like delivery: `exchange_topic_subscriptions.next_heartbeat_at` is
claimed with one conditional UPDATE (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, under SQLite's
single writer otherwise), which moves it a period on; only the worker whose UPDATE took the row
sends, so several workers in several processes never send the same heartbeat twice. A heartbeat
takes no event number and is not queued: one that fails is not retried (the next one comes a
period later), and it is not recorded in `exchange_attempts`, which is the notifications' record.
A subscription with a notification waiting, or one sent (queued) within the period, gets none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exchange import notifications, tables
from exchange.endpoints import EndpointPolicy, EndpointRefused, pinned
from storage.database import transaction
from storage.versions import now_ms

log = logging.getLogger("puente.exchange")
CLAIM_BATCH = 20


class _Policy(Protocol):
    @property
    def poll_seconds(self) -> float: ...

    @property
    def timeout_seconds(self) -> float: ...

    @property
    def endpoints(self) -> EndpointPolicy: ...


def _epoch_ms() -> int:
    return int(now_ms().timestamp() * 1000)


class HeartbeatWorker:
    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient, request_for: Callable[[Any], httpx.Request],
                 policy: _Policy) -> None:
        self.engine = engine
        self.http = http
        self.request_for = request_for  # the channel's POST for a subscription row (exchange.delivery)
        self.policy = policy

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the database restarting: wait and go on, as delivery does
                log.warning("exchange heartbeats: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), max(self.policy.poll_seconds, 0.1))

    async def run_once(self) -> int:
        """Send the heartbeats that are due; how many were sent."""
        t = tables.topic_subscriptions
        now = _epoch_ms()
        async with transaction(self.engine, write=False) as connection:  # a plain read: idle polling takes no lock
            if (await connection.execute(select(t.c.id).where(t.c.next_heartbeat_at <= now).limit(1))).first() is None:
                return 0
        sent = 0
        for claimed in await self._claim(now):
            if await self._beat(claimed, now):
                sent += 1
        return sent

    async def _claim(self, now: int) -> list[Any]:
        t = tables.topic_subscriptions
        due = select(t.c.id).where(t.c.next_heartbeat_at <= now).order_by(t.c.next_heartbeat_at).limit(CLAIM_BATCH)
        async with transaction(self.engine, write=True) as connection:
            if connection.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            return list((await connection.execute(
                update(t).where(t.c.id.in_(due.scalar_subquery()), t.c.next_heartbeat_at <= now)
                .values(next_heartbeat_at=now + t.c.heartbeat_ms)
                .returning(t.c.id, t.c.topic, t.c.content, t.c.heartbeat_ms, t.c.timeout_ms)
            )).all())

    async def _beat(self, claimed: Any, now: int) -> bool:
        s, o, t = tables.subscriptions, tables.outbox, tables.topic_subscriptions
        async with transaction(self.engine, write=False) as connection:
            subscription = (await connection.execute(select(s).where(s.c.id == claimed.id))).first()
            latest, waiting = (await connection.execute(
                select(func.max(o.c.created_at), func.count().filter(o.c.state == "pending"))
                .where(o.c.subscription_id == claimed.id))).one()
        if subscription is None or subscription.status != "active" or waiting:
            return False
        if latest is not None and latest + claimed.heartbeat_ms > now:
            # Something was sent within the period: the next heartbeat is due a period after it.
            async with transaction(self.engine, write=True) as connection:
                await connection.execute(update(t).where(t.c.id == claimed.id, t.c.next_heartbeat_at.is_not(None))
                                         .values(next_heartbeat_at=latest + claimed.heartbeat_ms))
            return False
        body = notifications.heartbeat(subscription, claimed.topic, claimed.content)
        request = notifications.carrying(self.request_for(subscription), body, claimed.timeout_ms,
                                         self.policy.timeout_seconds)
        try:
            # Checked on the address connected to, as every delivery is (exchange.endpoints).
            response = await self.http.send(await pinned(request, self.policy.endpoints))
            await response.aclose()
        except EndpointRefused as exc:
            log.info("exchange heartbeat to %s: refused by the endpoint policy: %s", claimed.id, exc)
            return False
        except httpx.HTTPError as exc:
            log.info("exchange heartbeat to %s: %s", claimed.id, type(exc).__name__)
            return False
        return 200 <= response.status_code < 300
