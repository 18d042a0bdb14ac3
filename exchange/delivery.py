"""Delivery workers: take outbox rows by id after their commit, send them with httpx, record every try.

- **Order per subscription.** A worker only ever claims the oldest pending event of a subscription,
  under a lease; the next one becomes claimable when it is acknowledged (a 2xx) or given up.
- **Shared through the database.** Any number of workers, in any number of `puente serve` or
  `puente exchange work` processes, claim with one statement: `FOR UPDATE SKIP LOCKED` on
  PostgreSQL, an atomic UPDATE under SQLite's single writer. A worker that dies holding a lease
  loses it when the lease runs out, and the event is sent again (at-least-once: receivers drop
  repeats by the event number in `X-Puente-Event-Number`).
- **Retries.** Exponential backoff from `PUENTE_EXCHANGE_BACKOFF_SECONDS`, capped at
  `PUENTE_EXCHANGE_BACKOFF_MAX_SECONDS`, for `PUENTE_EXCHANGE_RETRY_HOURS` (24) after the write;
  then the event is given up and the subscription's next one goes. Each attempt is a row of
  `exchange_attempts` (when, how long, the status or the error).
- **Subscription status** (R4): requested until its handshake is acknowledged, then active; error
  while its endpoint fails; active again when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from exchange import notifications, outbox_claims, tables
from exchange.endpoints import EndpointPolicy, EndpointRefused, pinned
from exchange.heartbeats import HeartbeatWorker
from exchange.lifecycle import EXCHANGE
from exchange.matching import epoch_ms
from exchange.topics import TOPIC_ROW
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError
from settings import Settings
from storage.database import transaction
from storage.repository import FhirRepository
from storage.tables import resource_history

log = logging.getLogger("puente.exchange")


@dataclass(frozen=True)
class Policy:
    poll_seconds: float
    timeout_seconds: float
    backoff_seconds: float
    backoff_max_seconds: float
    retry_ms: int
    endpoints: EndpointPolicy = field(default_factory=EndpointPolicy)  # where subscriptions may send

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.exchange_poll_seconds, settings.exchange_timeout_seconds,
                   settings.exchange_backoff_seconds, settings.exchange_backoff_max_seconds,
                   int(settings.exchange_retry_hours * 3600 * 1000),
                   EndpointPolicy.parse(settings.subscription_endpoints,
                                        public=settings.subscription_public_endpoints))

    def delay_ms(self, attempts: int) -> int:
        """After the `attempts`-th failure: base, 2 x base, 4 x base ... up to the cap."""
        return int(min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)) * 1000)


@dataclass(frozen=True)
class Claimed:
    pk: int
    subscription_id: str
    event_number: int
    kind: str
    resource_type: str | None
    resource_id: str | None
    version_id: int | None
    attempts: int
    created_at: int


class DeliveryWorker:
    def __init__(self, engine: AsyncEngine, policy: Policy, *, http: httpx.AsyncClient | None = None) -> None:
        self.engine = engine
        self.policy = policy
        self.name = f"worker-{uuid.uuid4().hex[:12]}"
        self.http = http or httpx.AsyncClient(timeout=policy.timeout_seconds, follow_redirects=False)

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; a failure of the database is logged and retried, never fatal.

        Stopping waits for the current round to end rather than cancelling it: a database call cut
        off in the middle (aiosqlite's thread, a pooled connection) could leave the engine unable
        to close."""
        while not stopping.is_set():
            try:
                delivered = await self.run_once()
            except Exception as exc:  # the database restarting, a pool timeout: wait and go on
                log.warning("exchange worker: %s", type(exc).__name__)
                delivered = 0
            if not delivered:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.policy.poll_seconds)

    async def run_once(self) -> int:
        """Claim what is due and deliver it; how many events were tried."""
        if not await self._anything_due():
            return 0
        claimed = await self._claim()
        await asyncio.gather(*(self._deliver(c) for c in claimed))  # different subscriptions: in parallel
        return len(claimed)

    async def close(self) -> None:
        await self.http.aclose()

    async def _anything_due(self) -> bool:
        return await outbox_claims.anything_due(self.engine, tables.outbox)

    async def _claim(self) -> list[Claimed]:
        o = tables.outbox
        rows = await outbox_claims.claim_heads(self.engine, o, "subscription_id", self.name, (
            o.c.pk, o.c.subscription_id, o.c.event_number, o.c.kind, o.c.resource_type, o.c.resource_id,
                   o.c.version_id, o.c.attempts, o.c.created_at))
        return [Claimed(**row._mapping) for row in rows]

    async def _deliver(self, event: Claimed) -> None:
        s = tables.subscriptions
        async with transaction(self.engine, write=False) as connection:
            subscription = (await connection.execute(select(s).where(s.c.id == event.subscription_id))).first()
            content = await _content(connection, event) if subscription is not None and subscription.payload else None
            topic = None
            if subscription is not None and subscription.resource_type == TOPIC_ROW:  # exchange.notifications
                topic = await notifications.for_outbox_row(connection, subscription, event.kind, notifications.Event(
                    event.event_number, event.created_at, event.resource_type, event.resource_id, event.version_id))
        if subscription is None or subscription.status == "off":
            await self._finish(event, "gave-up", None, None, 0)
            return
        request = _request(subscription, event, content)
        if topic is not None:  # a topic-based subscription: the channel's POST carries a notification Bundle
            request = notifications.carrying(request, topic.body, topic.timeout_ms, self.policy.timeout_seconds)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            request = await pinned(request, self.policy.endpoints)
            response = await self.http.send(request)
            status_code = response.status_code
            await response.aclose()
        except EndpointRefused as exc:  # not sent: recorded as a failed attempt, tried again later
            error = f"refused by the endpoint policy: {exc}"[:500]
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        elapsed = int((time.monotonic() - started) * 1000)
        ok = status_code is not None and 200 <= status_code < 300
        if ok:
            state = "delivered"
        elif epoch_ms() - event.created_at >= self.policy.retry_ms:
            state = "gave-up"
        else:
            state = "pending"
        await self._finish(event, state, status_code, error, elapsed, subscription_status=(
            "active" if ok else "error"), problem=None if ok else (error or f"HTTP {status_code}"))

    async def _finish(self, event: Claimed, state: str, status_code: int | None, error: str | None, elapsed: int,
                      *, subscription_status: str | None = None, problem: str | None = None) -> None:
        o, s = tables.outbox, tables.subscriptions
        now = epoch_ms()
        attempts = event.attempts + (1 if subscription_status else 0)
        values: dict[str, Any] = {"state": state, "attempts": attempts, "lease_until": None, "lease_owner": None}
        if state == "pending":
            values["next_attempt_at"] = now + self.policy.delay_ms(attempts)
        else:
            values["done_at"] = now
        async with transaction(self.engine, write=True) as connection:
            await connection.execute(update(o).where(o.c.pk == event.pk).values(**values))
            if subscription_status is None:
                return
            await connection.execute(insert(tables.attempts).values(
                outbox_pk=event.pk, subscription_id=event.subscription_id, event_number=event.event_number,
                attempted_at=now, duration_ms=elapsed, status_code=status_code, error=error, worker=self.name))
            changed = (await connection.execute(
                update(s).where(s.c.id == event.subscription_id, s.c.status != "off",
                                s.c.status != subscription_status)
                .values(status=subscription_status, error=problem).returning(s.c.id)
            )).first()
            if changed is not None:
                await _show_status(FhirRepository(connection, EXCHANGE), event.subscription_id,
                                   subscription_status, problem)


async def _content(connection: Any, event: Claimed) -> str | None:
    if event.kind != "notification":
        return None
    h = resource_history
    row = (await connection.execute(select(h.c.content).where(
        h.c.resource_type == event.resource_type, h.c.id == event.resource_id, h.c.version_id == event.version_id,
    ))).first()
    return None if row is None else row.content


def _request(subscription: Any, event: Claimed, content: str | None) -> httpx.Request:
    headers = {"X-Puente-Subscription": event.subscription_id, "X-Puente-Event-Number": str(event.event_number)}
    for header in json.loads(subscription.headers):
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    endpoint = subscription.endpoint
    if event.kind == "deletion":
        # Puente's own (R4 announces no deletions): a FHIR base is told with a DELETE of the resource,
        # a ping endpoint with a ping naming it.
        if subscription.payload:
            return httpx.Request("DELETE", f"{endpoint.rstrip('/')}/{event.resource_type}/{event.resource_id}",
                                 headers=headers)
        headers["X-Puente-Deleted"] = f"{event.resource_type}/{event.resource_id}"
        return httpx.Request("POST", endpoint, headers=headers)
    if event.kind == "notification" and content is not None:
        # R4 rest-hook with a payload: the endpoint is a FHIR base, and the resource is PUT there.
        url = f"{endpoint.rstrip('/')}/{event.resource_type}/{event.resource_id}"
        headers["Content-Type"] = "application/fhir+json"
        return httpx.Request("PUT", url, headers=headers, content=content.encode())
    if event.kind == "handshake":
        headers["X-Puente-Handshake"] = "true"
    return httpx.Request("POST", endpoint, headers=headers)


def heartbeat_request(subscription: Any) -> httpx.Request:
    """A heartbeat goes down the channel as an event would (its headers); it takes no event number."""
    return _request(subscription, Claimed(0, subscription.id, int(subscription.next_event), "heartbeat", None, None,
                                          None, 0, 0), None)


async def _show_status(repository: FhirRepository, subscription_id: str, status: str, problem: str | None) -> None:
    """The Subscription resource says what its row says (R4: the server owns `status` and `error`)."""
    try:
        current = await repository.read("Subscription", subscription_id)
    except FhirError:
        return  # deleted meanwhile
    if current.content is None:
        return
    resource = fhir_json.loads_stored(current.content)
    if resource.get("status") == "off":
        return
    resource["status"] = status
    if problem:
        resource["error"] = problem
    else:
        resource.pop("error", None)
    await repository.update("Subscription", subscription_id, resource, if_match=current.version_id)


class Workers:
    """The delivery workers of one process, started and stopped with it."""

    STOP_SECONDS = 20.0  # a round in progress (an attempt's HTTP timeout) may finish before it is cut off

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        delivering = [DeliveryWorker(engine, Policy.from_settings(settings))
                      for _ in range(max(0, settings.exchange_workers))]
        # Topic subscriptions' heartbeats (exchange.heartbeats): one sender per process that delivers.
        self.heartbeats = [HeartbeatWorker(engine, delivering[0].http, heartbeat_request, delivering[0].policy)
                           for _ in delivering[:1]]
        # Partner clinics (exchange.push, exchange.pull_back): as many workers, beside these.
        from exchange.push import PartnerWorker

        self.workers: list[Any] = [*delivering,
                                   *(PartnerWorker(engine, settings) for _ in range(max(0, settings.exchange_workers)))]
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()

    def start(self) -> None:
        self.stopping = asyncio.Event()
        self.tasks = [asyncio.create_task(w.run(self.stopping), name=w.name) for w in self.workers]
        self.tasks += [asyncio.create_task(h.run(self.stopping), name="heartbeats") for h in self.heartbeats]

    async def stop(self) -> None:
        self.stopping.set()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=self.STOP_SECONDS)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for worker in self.workers:
            await worker.close()
