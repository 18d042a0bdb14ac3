"""Topic-based notifications (backport-subscription-notification-r4): `history` Bundles whose first
entry is the SubscriptionStatus, a Parameters (backport-subscription-status-r4), then the focus of
each event as the subscription's payload content asks (empty: none; id-only: the entry's fullUrl
and request; full-resource: the version that was matched as well).

The same shapes answer `$status` and `$events` (api.operations.subscription_status), and carry
handshakes and heartbeats (exchange.heartbeats). Event numbers are the outbox's, per subscription;
`events-since-subscription-start` is the last one given out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from exchange import tables
from exchange.topics import BACKPORT
from storage import search_rows
from storage.tables import resource_history

STATUS_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription-status-r4"
FOCI_PER_QUERY = 200
NOTIFICATION_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription-notification-r4"


@dataclass(frozen=True)
class Event:
    number: int
    created_at: int  # ms since the epoch: when it was matched (in its write's transaction)
    resource_type: str | None
    resource_id: str | None
    version_id: int | None


@dataclass(frozen=True)
class Focus:
    """The version an event announces, as stored in the history."""

    method: str  # POST | PUT | DELETE
    content: str | None  # None for a deletion


def instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def url(path: str) -> str:
    base = search_rows.base_url()
    return f"{base}/{path}" if base else path


def status_parameters(subscription_id: str, topic: str, status: str, kind: str, events_since: int,
                      events: Sequence[Event] = (), *, content: str = "id-only") -> dict[str, Any]:
    """The SubscriptionStatus of R4 (a Parameters resource)."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": url(f"Subscription/{subscription_id}")}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        # The R4 profile carries the int64 counters as strings.
        {"name": "events-since-subscription-start", "valueString": str(events_since)},
    ]
    for event in events:
        parts: list[dict[str, Any]] = [{"name": "event-number", "valueString": str(event.number)},
                                       {"name": "timestamp", "valueInstant": instant(event.created_at)}]
        if content != "empty" and event.resource_type and event.resource_id:
            parts.append({"name": "focus",
                          "valueReference": {"reference": url(f"{event.resource_type}/{event.resource_id}")}})
        parameters.append({"name": "notification-event", "part": parts})
    return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}


def bundle(subscription_id: str, parameters: dict[str, Any], events: Sequence[Event],
           foci: dict[tuple[str, str, int], Focus], content: str) -> dict[str, Any]:
    """A notification Bundle: the status first (as if answered by $status), then each event's focus."""
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{parameters['id']}",
        "resource": parameters,
        "request": {"method": "GET", "url": url(f"Subscription/{subscription_id}/$status")},
        "response": {"status": "200"},
    }]
    if content != "empty":
        for event in events:
            if not (event.resource_type and event.resource_id and event.version_id):
                continue
            focus = foci.get((event.resource_type, event.resource_id, event.version_id))
            if focus is None:
                continue  # not to be shown (the caller may no longer read it): the status still numbers it
            path = f"{event.resource_type}/{event.resource_id}"
            entry: dict[str, Any] = {
                "fullUrl": url(path),
                "request": {"method": focus.method, "url": event.resource_type if focus.method == "POST" else path},
                "response": {"status": {"POST": "201", "DELETE": "204"}.get(focus.method, "200"),
                             "etag": f'W/"{event.version_id}"'},
            }
            if content == "full-resource" and focus.content is not None:
                entry["resource"] = orjson.Fragment(focus.content)
            entries.append(entry)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history", "timestamp": instant(int(datetime.now(tz=UTC).timestamp() * 1000)), "entry": entries}


async def foci(connection: AsyncConnection, events: Sequence[Event]) -> dict[tuple[str, str, int], Focus]:
    """The history versions the events announce: one query per type and `FOCI_PER_QUERY` ids."""
    h = resource_history
    wanted: set[tuple[str, str, int]] = set()
    by_type: dict[str, list[str]] = {}
    for e in events:
        if e.resource_type and e.resource_id and e.version_id:
            wanted.add((e.resource_type, e.resource_id, e.version_id))
            by_type.setdefault(e.resource_type, []).append(e.resource_id)
    found: dict[tuple[str, str, int], Focus] = {}
    for resource_type, ids in by_type.items():
        unique = sorted(set(ids))
        for start in range(0, len(unique), FOCI_PER_QUERY):
            rows = await connection.execute(select(h.c.id, h.c.version_id, h.c.deleted, h.c.content).where(
                h.c.resource_type == resource_type, h.c.id.in_(unique[start:start + FOCI_PER_QUERY])))
            for row in rows:
                key = (resource_type, row.id, row.version_id)
                if key in wanted:  # the ids' other versions are not what was announced
                    method = "DELETE" if row.deleted else ("POST" if row.version_id == 1 else "PUT")
                    found[key] = Focus(method, row.content)
    return found


@dataclass(frozen=True)
class Notification:
    body: bytes
    timeout_ms: int | None  # the subscription's backport-timeout


async def for_outbox_row(connection: AsyncConnection, subscription: Any, kind: str, event: Event) -> Notification:
    """The notification Bundle that carries one outbox row of a topic subscription."""
    t = tables.topic_subscriptions
    topic = (await connection.execute(select(t).where(t.c.id == subscription.id))).one()
    if kind == "handshake":
        parameters = status_parameters(subscription.id, topic.topic, subscription.status, "handshake",
                                       int(subscription.next_event))
        return Notification(orjson.dumps(bundle(subscription.id, parameters, [], {}, topic.content)),
                            topic.timeout_ms)
    events = [event]
    parameters = status_parameters(subscription.id, topic.topic, subscription.status, "event-notification",
                                   event.number, events, content=topic.content)
    shown = await foci(connection, events) if topic.content != "empty" else {}
    return Notification(orjson.dumps(bundle(subscription.id, parameters, events, shown, topic.content)),
                        topic.timeout_ms)


def heartbeat(subscription: Any, topic: str, content: str) -> bytes:
    parameters = status_parameters(subscription.id, topic, subscription.status, "heartbeat",
                                   int(subscription.next_event))
    return orjson.dumps(bundle(subscription.id, parameters, [], {}, content))


def carrying(request: httpx.Request, body: bytes, timeout_ms: int | None, server_timeout: float) -> httpx.Request:
    """The channel's POST (its headers as the rest-hook sends them) with a notification Bundle as body;
    the subscription's timeout when it is shorter than the server's."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "host")}
    headers["Content-Type"] = "application/fhir+json"
    seconds = server_timeout if timeout_ms is None else min(server_timeout, timeout_ms / 1000)
    return httpx.Request("POST", request.url, headers=headers, content=body,
                         extensions={"timeout": httpx.Timeout(seconds).as_dict()})
