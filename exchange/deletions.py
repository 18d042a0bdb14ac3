"""Deletions, announced to the subscriptions that told of the resource before.

R4 rest-hook subscriptions announce matches only ("there is no notification when a resource is
deleted", subscription.html), which leaves a clinic holding a referral that no longer exists.
Puente announces a deletion to each live subscription that was notified of that resource before
(an outbox notification for it: its criteria matched one of its versions, within its owner's
access, while the subscription was live) and still watches its type (a rest-hook's criteria, a
topic's trigger), if its owner may still read the type and could see the resource before the
deletion (access.visible with deleted resources, as a read answering 410). A type no live
subscription watches costs its deletions no lookup (exchange.live_subscriptions).

Criteria are not run against the deleted version: its index rows are gone with it, and a
subscription that never announced a resource has nothing to retract at its receiver.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal, select, union_all

from auth.principal import Principal
from exchange import live_subscriptions, tables, topics
from exchange.outbox_items import Timed, timed
from exchange.subscriptions import LIVE, access_shape, owner_of
from storage import access
from storage.repository import FhirRepository, WriteEvent
from storage.tables import resources

IDS_PER_LOOKUP = 100  # per statement; each non-administrator owner repeats them in its arm
OWNERS_PER_STATEMENT = 200  # SQLite allows 500 SELECTs in one compound statement


async def announced(repository: FhirRepository, deleted: dict[str, list[WriteEvent]]) -> dict[str, list[Timed]]:
    """The deletion items of each subscription to be told (by subscription id): per deleted type and
    chunk of ids, one statement for who was told before, one for what non-administrator owners saw."""
    out: dict[str, list[Timed]] = {}
    watched = {row.resource_type for row in await live_subscriptions.of_types(repository, deleted)}
    for resource_type, events in sorted(deleted.items()):
        if resource_type not in watched:  # no live subscription (or topic trigger) of the type: none to tell
            continue
        by_id = {e.version.id: e for e in events}
        ids = sorted(by_id)
        for start in range(0, len(ids), IDS_PER_LOOKUP):
            chunk = ids[start:start + IDS_PER_LOOKUP]
            for subscription_id, resource_id in await _told(repository, resource_type, chunk):
                out.setdefault(subscription_id, []).append(timed("deletion", by_id[resource_id]))
    return out


async def _told(repository: FhirRepository, resource_type: str, ids: list[str]) -> list[tuple[str, str]]:
    o, s = tables.outbox, tables.subscriptions
    rows = (await repository.connection.execute(
        select(o.c.subscription_id, o.c.resource_id, s.c.owner).distinct()
        .join(s, s.c.id == o.c.subscription_id)
        .where(o.c.resource_type == resource_type, o.c.resource_id.in_(ids), o.c.kind == "notification",
               s.c.status.in_(LIVE), s.c.resource_type.in_((resource_type, topics.TOPIC_ROW)))
    )).all()
    told: list[tuple[str, str]] = []
    unsure: dict[tuple[Any, ...], tuple[Principal, list[tuple[str, str]]]] = {}  # by access shape
    for row in rows:
        owner = owner_of(row.owner)
        if not access.allowed(owner, resource_type, "r"):
            continue
        if owner.is_admin:
            told.append((row.subscription_id, row.resource_id))
        else:
            unsure.setdefault(access_shape(owner), (owner, []))[1].append((row.subscription_id, row.resource_id))
    shapes = list(unsure.values())
    for first in range(0, len(shapes), OWNERS_PER_STATEMENT):
        some = shapes[first:first + OWNERS_PER_STATEMENT]
        seen = await _seen(repository, resource_type, ids, [owner for owner, _ in some])
        for n, (_, pairs) in enumerate(some):
            told.extend(pair for pair in pairs if pair[1] in seen.get(n, set()))
    return sorted(told)


async def _seen(repository: FhirRepository, resource_type: str, ids: list[str],
                owners: list[Principal]) -> dict[int, set[str]]:
    """Of `ids`, the deleted resources each owner could see (by the owner's position)."""
    arms = []
    for n, owner in enumerate(owners):
        r = resources.alias(f"r{n}")
        arms.append(select(literal(n).label("owner"), r.c.id).where(
            r.c.resource_type == resource_type, r.c.id.in_(ids),
            *access.visible(owner, resource_type, r, deleted_too=True, each=True)))
    statement = arms[0] if len(arms) == 1 else union_all(*arms)
    seen: dict[int, set[str]] = {}
    for row in (await repository.connection.execute(statement)).all():
        seen.setdefault(row.owner, set()).add(row.id)
    return seen
