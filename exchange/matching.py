"""Subscription matching, in the writing transaction: each write that a subscription's criteria match,
and that its owner may read, leaves an outbox row with the subscription's next event number.

The match is the search engine's own, run with the owner's Principal against the index rows this
transaction just wrote (`_id` narrows it to the written resources): a subscription notifies exactly
what its owner would find by searching, never more. Taking the next event number locks the
subscription's row until the commit, so a subscription's events are numbered in commit order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import parse_qsl

from sqlalchemy import insert, select, update

from exchange import tables, topics
from exchange.subscriptions import owner_from_json, owner_json, rest_hook
from fhir_mappings.outcomes import FhirError
from storage import access
from storage import search as search_engine
from storage.repository import FhirRepository, WriteEvent
from storage.versions import now_ms

LIVE = ("requested", "active", "error")
IDS_PER_MATCH = 100  # the `_id` values of one matching query (below PUENTE_MAX_SEARCH_VALUES)


def epoch_ms() -> int:
    return int(now_ms().timestamp() * 1000)


class SubscriptionMatcher:
    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        written: dict[str, list[WriteEvent]] = {}
        for event in events:
            if event.version.resource_type == "Subscription":
                await _register(repository, event)
            elif event.resource is not None:  # deletions are not announced (R4 rest-hook: matches only)
                written.setdefault(event.version.resource_type, []).append(event)
        if written:
            await _match(repository, written)
        await topics.announce_deletions(repository, list(events), enqueue)  # topic subscriptions hear of deletions too


async def _register(repository: FhirRepository, event: WriteEvent) -> None:
    """Keep the subscription's row in step with its resource; a new or changed channel is handshaken."""
    if topics.is_topic(event.resource) or await topics.is_registered(repository, event.version.id):
        await topics.register(repository, event)  # topic-based (the R5 Backport IG): exchange.topics
        return
    s = tables.subscriptions
    connection = repository.connection
    row = (await connection.execute(select(s).where(s.c.id == event.version.id))).first()
    if event.resource is None or event.resource.get("status") == "off":
        if row is not None:
            await connection.execute(update(s).where(s.c.id == row.id).values(status="off"))
        return
    owner = owner_from_json(row.owner) if row is not None else repository.principal
    hook = rest_hook(event.resource, owner)
    values = {"resource_type": hook.resource_type, "criteria": hook.criteria, "endpoint": hook.endpoint,
              "headers": json.dumps(list(hook.headers)), "payload": hook.payload, "status": "requested",
              "error": None}
    if row is None:
        await connection.execute(insert(s).values(id=event.version.id, owner=owner_json(owner), next_event=0,
                                                  **values))
    else:
        unchanged = (row.endpoint, row.headers, row.payload) == (values["endpoint"], values["headers"],
                                                                 values["payload"])
        if unchanged and row.status != "off":
            values["status"], values["error"] = row.status, row.error
        await connection.execute(update(s).where(s.c.id == row.id).values(**values))
        if unchanged and row.status != "off":
            return
        # A new channel: what was waiting for the old one is not sent to the new one.
        o = tables.outbox
        await connection.execute(update(o).where(o.c.subscription_id == row.id, o.c.state == "pending")
                                 .values(state="gave-up", done_at=epoch_ms()))
    await enqueue(repository, event.version.id, [("handshake", None, None, None)])


async def _match(repository: FhirRepository, written: dict[str, list[WriteEvent]]) -> None:
    s = tables.subscriptions
    rows = (await repository.connection.execute(
        select(s.c.id, s.c.resource_type, s.c.criteria, s.c.owner)
        .where(s.c.resource_type.in_(sorted(written)), s.c.status.in_(LIVE)).order_by(s.c.id)
    )).all()
    for row in rows:
        owner = owner_from_json(row.owner)
        if not (access.allowed(owner, row.resource_type, "r") and access.allowed(owner, row.resource_type, "s")):
            continue
        events = written[row.resource_type]
        latest = {e.version.id: e for e in events}  # written twice in one batch: announce the last
        matched: set[str] = set()
        ids = sorted(latest)
        for start in range(0, len(ids), IDS_PER_MATCH):
            chunk = ids[start:start + IDS_PER_MATCH]
            pairs = [*_criteria(row.criteria), ("_id", ",".join(chunk))]
            try:
                found = await search_engine.find_matches(repository.connection, owner, row.resource_type, pairs)
            except FhirError:  # checked when the subscription was written; its owner's rights may have changed
                break
            matched.update(resource_id for _, resource_id in found)
        announced = [latest[i] for i in ids if i in matched]
        if announced:
            announced.sort(key=lambda e: (e.version.last_updated, e.version.id))
            await enqueue(repository, row.id, [("notification", e.version.resource_type, e.version.id,
                                                e.version.version_id) for e in announced])


def _criteria(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


async def enqueue(
    repository: FhirRepository, subscription_id: str, items: list[tuple[str, str | None, str | None, int | None]]
) -> None:
    """Outbox rows for `items` (kind, type, id, version), numbered after the subscription's last event."""
    subscription_id = topics.numbered_on(subscription_id)  # a topic trigger's events are its subscription's
    s = tables.subscriptions
    last = (await repository.connection.execute(
        update(s).where(s.c.id == subscription_id).values(next_event=s.c.next_event + len(items))
        .returning(s.c.next_event)
    )).scalar_one()
    first = last - len(items) + 1
    now = epoch_ms()
    await repository.connection.execute(insert(tables.outbox), [
        {"subscription_id": subscription_id, "event_number": first + n, "kind": kind, "resource_type": rtype,
         "resource_id": rid, "version_id": vid, "created_at": now, "state": "pending", "attempts": 0,
         "next_attempt_at": now, "lease_until": None, "lease_owner": None, "done_at": None}
        for n, (kind, rtype, rid, vid) in enumerate(items)
    ])

