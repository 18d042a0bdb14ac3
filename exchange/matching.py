"""Subscription matching, in the writing transaction: each write that a subscription's criteria match,
and that its owner may read, leaves an outbox row with the subscription's next event number.

A subscription notifies exactly what its owner would find by searching, never more; what that
costs a write does not grow with the number of subscriptions:

- the live subscriptions of the written types are read in one statement, and grouped by criteria
  and by what their owners may see (alike owners see alike), so a group is judged once;
- criteria are compiled once per process (exchange.criteria); equality criteria are judged on the
  index values of the written resources, without SQL, and an owner who sees everything needs no
  more;
- the rest (other criteria, the access rules of owners who see less) is the search engine's own
  conditions, with each owner's Principal, over the rows this transaction just wrote: all groups
  of a type in one UNION ALL, each arm tagged with its group;
- the outbox rows of every matched subscription are numbered and inserted in three statements.

Taking the next event number locks the subscription's row until the commit, so a subscription's
events are numbered in commit order.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, case, insert, literal, select, union_all, update

from auth.principal import Principal
from exchange import deletions, live_subscriptions, tables, topics
from exchange.criteria import Compiled, Index, compile_criteria, index_values, matches, row_keys
from exchange.endpoints import EndpointPolicy, EndpointRefused
from exchange.header_secrets import MASK, sent_headers, unmask
from exchange.outbox_items import Item, Timed, timed
from exchange.refusals import BusinessRule, refusal
from exchange.subscriptions import access_shape, owner_from_json, owner_json, owner_of, rest_hook
from fhir_mappings.outcomes import FhirError
from storage import access, search_rows
from storage.repository import FhirRepository, WriteEvent
from storage.search.clauses import Context
from storage.search.engine import match_conditions
from storage.search.sql import Aliases
from storage.tables import resources
from storage.versions import now_ms

IDS_PER_MATCH = 100  # the written ids one matching statement narrows to
ARMS_PER_STATEMENT = 200  # SQLite allows 500 SELECTs in one compound statement


def epoch_ms() -> int:
    return int(now_ms().timestamp() * 1000)


class SubscriptionMatcher:
    def __init__(self, endpoints: EndpointPolicy | None = None) -> None:
        self.endpoints = endpoints or EndpointPolicy()

    def quiet_creation(self, resource_type: str, resource_id: str, resource: dict[str, Any]) -> bool | str:
        """A creation nobody subscribes to is told to no one: while no subscription of its type is
        live (asked by the create's own statement). A Subscription registers itself."""
        return resource_type != "Subscription" and live_subscriptions.NONE_LIVE

    async def __call__(self, repository: FhirRepository, events: Sequence[WriteEvent]) -> None:
        last: dict[tuple[str, str], WriteEvent] = {}  # written twice in one batch: the last write counts
        for event in events:
            if event.version.resource_type == "Subscription":
                live_subscriptions.forget(repository)
                await _register(repository, event, self.endpoints)
            else:
                last[event.version.resource_type, event.version.id] = event
        written: dict[str, list[WriteEvent]] = {}
        deleted: dict[str, list[WriteEvent]] = {}
        for (resource_type, _), event in last.items():
            (written if event.resource is not None else deleted).setdefault(resource_type, []).append(event)
        batches = await _match(repository, written) if written else {}
        if deleted:
            for subscription_id, items in (await deletions.announced(repository, deleted)).items():
                batches.setdefault(subscription_id, []).extend(items)
        numbered: dict[str, list[Timed]] = {}
        for subscription_id, items in batches.items():  # a topic trigger's events are its subscription's
            numbered.setdefault(topics.numbered_on(subscription_id), []).extend(items)
        await enqueue_many(repository, {i: [item for *_, item in sorted(timed, key=lambda t: (t[0], t[1]))]
                                        for i, timed in numbered.items()})


async def _register(repository: FhirRepository, event: WriteEvent, endpoints: EndpointPolicy) -> None:
    """Keep the subscription's row in step with its resource; a new or changed channel is handshaken.

    Both kinds (rest-hook, topic-based) get their header values as sent (the stored resource has
    them masked) and their endpoint checked against the operator's policy here."""
    s = tables.subscriptions
    connection = repository.connection
    row = (await connection.execute(select(s).where(s.c.id == event.version.id))).first()
    resource = event.resource
    if resource is not None and resource.get("status") != "off":
        resource = _with_secrets(resource, row)
        await _check_endpoint(resource, endpoints)
    if topics.is_topic(resource) or (row is not None and row.resource_type == topics.TOPIC_ROW):
        await topics.register(repository, event, resource)  # topic-based (the R5 Backport IG): exchange.topics
        return
    if resource is None or resource.get("status") == "off":
        if row is not None:
            await connection.execute(update(s).where(s.c.id == row.id).values(status="off"))
        return
    owner = owner_from_json(row.owner) if row is not None else repository.principal
    hook = rest_hook(resource, owner)
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


async def _check_endpoint(resource: dict[str, Any], endpoints: EndpointPolicy) -> None:
    channel = resource.get("channel")
    endpoint = channel.get("endpoint") if isinstance(channel, dict) else None
    if not isinstance(endpoint, str):
        return  # absent or malformed: rest_hook and topics.parse name what is wrong
    try:
        await endpoints.check(endpoint)
    except EndpointRefused as exc:
        raise refusal(BusinessRule, str(exc), "Subscription.channel.endpoint") from exc


@dataclass
class _Group:
    """Subscriptions with the same criteria and owners who see alike: one judgement serves them all."""

    owner: Principal
    compiled: Compiled
    subscriptions: list[str]


def _with_secrets(resource: dict[str, Any], row: Any) -> dict[str, Any]:
    """The Subscription with its header values as sent (header_secrets), masked ones kept from `row`."""
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        return resource
    sent = sent_headers(resource)
    headers = sent if sent is not None else tuple(h for h in channel.get("header") or () if isinstance(h, str))
    headers, missing = unmask(headers, json.loads(row.headers) if row is not None else [])
    if missing:
        raise refusal(BusinessRule, f"'{missing[0]}: {MASK}' keeps the value stored for {missing[0]}, and there is "
                      "none: send the header's value", "Subscription.channel.header")
    return {**resource, "channel": {**channel, "header": list(headers)}}


async def _match(repository: FhirRepository, written: dict[str, list[WriteEvent]]) -> dict[str, list[Timed]]:
    """Outbox rows for each live subscription whose criteria match a written resource within its
    owner's access: one statement reads the subscriptions, then each written type costs at most one
    search statement (per `IDS_PER_MATCH` written ids), whatever the number of subscriptions."""
    rows = await live_subscriptions.of_types(repository, written)
    groups: dict[tuple[Any, ...], _Group] = {}
    for row in rows:
        judged = _judgeable(row.resource_type, row.criteria, row.owner, search_rows.base_url())
        if judged is not None:
            key, owner, compiled = judged
            groups.setdefault(key, _Group(owner, compiled, [])).subscriptions.append(row.id)
    batches: dict[str, list[Timed]] = {}
    for resource_type, events in sorted(written.items()):
        of_type = [g for (t, _, _), g in groups.items() if t == resource_type]
        if not of_type:
            continue
        latest = {e.version.id: e for e in events}
        matched: dict[str, set[str]] = {}
        for group, resource_ids in await _judge(repository, resource_type, latest, of_type):
            for subscription_id in group.subscriptions:
                matched.setdefault(subscription_id, set()).update(resource_ids)
        for subscription_id, resource_ids in matched.items():
            batches[subscription_id] = [timed("notification", latest[i]) for i in resource_ids]
    return batches


@functools.lru_cache(maxsize=8192)
def _judgeable(
    resource_type: str, criteria: str, owner_text: str, base_url: str | None
) -> tuple[tuple[Any, ...], Principal, Compiled] | None:
    """(group key, owner, compiled criteria) of a subscription row, or None if it cannot notify:
    its owner may no longer search the type, or the criteria are no longer a search this server
    applies (both were checked when it was written). Every write reads every row again: once per
    distinct row text (and base URL, which the criteria's absolute references are read against)."""
    owner = owner_of(owner_text)
    if not (access.allowed(owner, resource_type, "r") and access.allowed(owner, resource_type, "s")):
        return None
    compiled = compile_criteria(resource_type, criteria)
    if compiled is None:
        return None
    return (resource_type, criteria, access_shape(owner)), owner, compiled


async def _judge(
    repository: FhirRepository, resource_type: str, latest: dict[str, WriteEvent], groups: list[_Group]
) -> list[tuple[_Group, set[str]]]:
    """Which of the written resources each group's criteria match, within its owner's access.

    Equality criteria are judged on the index values the write produced; an owner who sees
    everything needs nothing more, others need to see the candidates: one visibility arm per access
    shape. Other criteria are the search engine's conditions, an arm per group, unless their
    equality clauses already rule out every written resource. The arms go in one
    UNION ALL per chunk of written ids (and of `ARMS_PER_STATEMENT` arms), tagged with their number."""
    found: list[tuple[_Group, set[str]]] = []
    in_sql: list[_Group] = []
    to_see: dict[tuple[Any, ...], tuple[Principal, list[tuple[_Group, set[str]]]]] = {}
    params = frozenset().union(*(g.compiled.params for g in groups))
    indexes: dict[str, Index] = {i: index_values(resource_type, e.resource, params)
                                 for i, e in latest.items() if e.resource is not None} if params else {}
    holders: dict[tuple[str, str, str | None], set[str]] = {}  # anchor key -> the written ids holding it
    for resource_id, index in indexes.items():
        for key in row_keys(index):
            holders.setdefault(key, set()).add(resource_id)
    for group in groups:
        compiled = group.compiled
        if not compiled.checkable:
            in_sql.append(group)
            continue
        if compiled.anchor is None:
            maybe: Iterable[str] = indexes
        else:  # only the resources holding one of its keys can match: most groups ask nothing more
            maybe = set().union(*(holders.get(k, ()) for k in compiled.anchor))
        candidates = {i for i in maybe if i in indexes and matches(compiled, i, indexes[i])}
        if not candidates:
            continue  # its equality clauses rule out every written resource
        if not compiled.direct:
            in_sql.append(group)  # the rest of the criteria is the search engine's to judge
        elif group.owner.is_admin:  # access.visible puts no condition on an administrator
            found.append((group, candidates))
        else:
            to_see.setdefault(access_shape(group.owner), (group.owner, []))[1].append((group, candidates))
    arms: list[tuple[Principal, Compiled | None]] = [(g.owner, g.compiled) for g in in_sql]
    arms += [(owner, None) for owner, _ in to_see.values()]
    if not arms:
        return found
    answers: list[set[str]] = [set() for _ in arms]
    ids = sorted(latest)
    for start in range(0, len(ids), IDS_PER_MATCH):
        for first in range(0, len(arms), ARMS_PER_STATEMENT):
            some = arms[first:first + ARMS_PER_STATEMENT]
            for n, resource_ids in (await _search(repository, resource_type, ids[start:start + IDS_PER_MATCH],
                                                  some)).items():
                answers[first + n].update(resource_ids)
    found.extend((group, answers[n]) for n, group in enumerate(in_sql) if answers[n])
    for n, (_, waiting) in enumerate(to_see.values(), start=len(in_sql)):
        found.extend((group, candidates & answers[n]) for group, candidates in waiting if candidates & answers[n])
    return found


async def _search(
    repository: FhirRepository, resource_type: str, ids: list[str], arms: list[tuple[Principal, Compiled | None]]
) -> dict[int, set[str]]:
    """Per arm (by position): the written resources among `ids` it finds. An arm with criteria
    applies them with its owner's access rules; one without, only the owner's access rules."""
    statement = _statement(resource_type, arms)
    if statement is None:
        return {}
    found: dict[int, set[str]] = {}
    for row in (await repository.connection.execute(statement, {"written_ids": ids})).all():
        found.setdefault(row.arm, set()).add(row.id)
    return found


# Built statements, by type and arms (criteria, owner's access shape): the same subscriptions give
# the same statement write after write, and building one is most of what it costs.
_statements: dict[tuple[Any, ...], Any] = {}
MAX_STATEMENTS = 256


def _statement(resource_type: str, arms: list[tuple[Principal, Compiled | None]]) -> Any:
    key = (resource_type, tuple((access_shape(owner), None if c is None else c.key) for owner, c in arms))
    cacheable = all(c is None or c.timeless for _, c in arms)
    if cacheable and key in _statements:
        return _statements[key]
    aliases = Aliases()  # one statement: every arm its own aliases
    written = select(resources.c.pk).where(resources.c.resource_type == resource_type,
                                           resources.c.id.in_(bindparam("written_ids", expanding=True))).cte("written")
    selects = []
    for n, (owner, compiled) in enumerate(arms):
        ctx = Context(owner, datetime.now(UTC), aliases)
        r = ctx.alias(resources)
        try:
            if compiled is not None:
                where = match_conditions(ctx, compiled.query, r)
            else:
                where = [r.c.resource_type == resource_type, r.c.deleted.is_(False),
                         *access.visible(owner, resource_type, r, each=True)]  # type: ignore[arg-type]
        except FhirError:  # a chain its owner may no longer search
            continue
        selects.append(select(literal(n).label("arm"), r.c.id).where(r.c.pk.in_(select(written.c.pk)), *where))
    statement = None if not selects else selects[0] if len(selects) == 1 else union_all(*selects)
    if cacheable:
        if len(_statements) >= MAX_STATEMENTS:
            _statements.clear()
        _statements[key] = statement
    return statement


async def enqueue(repository: FhirRepository, subscription_id: str, items: list[Item]) -> None:
    """Outbox rows for `items` (kind, type, id, version), numbered after the subscription's last event."""
    await enqueue_many(repository, {topics.numbered_on(subscription_id): items})


async def enqueue_many(repository: FhirRepository, batches: dict[str, list[Item]]) -> None:
    """`enqueue` for several subscriptions in three statements, whatever their number.

    On PostgreSQL the subscriptions' rows are locked first, in id order: two transactions that
    announce to the same subscriptions then wait for each other instead of deadlocking."""
    batches = {k: v for k, v in batches.items() if v}
    if not batches:
        return
    s = tables.subscriptions
    ids = sorted(batches)
    connection = repository.connection
    if connection.dialect.name == "postgresql":
        await connection.execute(select(s.c.id).where(s.c.id.in_(ids)).order_by(s.c.id).with_for_update())
    added = case({i: len(batches[i]) for i in ids}, value=s.c.id, else_=0)
    last: dict[str, int] = {row.id: row.next_event for row in await connection.execute(
        update(s).where(s.c.id.in_(ids)).values(next_event=s.c.next_event + added).returning(s.c.id, s.c.next_event)
    )}
    now = epoch_ms()
    await connection.execute(insert(tables.outbox), [
        {"subscription_id": i, "event_number": last[i] - len(batches[i]) + 1 + n, "kind": kind,
         "resource_type": rtype, "resource_id": rid, "version_id": vid, "created_at": now, "state": "pending",
         "attempts": 0, "next_attempt_at": now, "lease_until": None, "lease_owner": None, "done_at": None}
        for i in ids for n, (kind, rtype, rid, vid) in enumerate(batches[i])
    ])
