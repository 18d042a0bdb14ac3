"""`$status` and `$events` of topic-based Subscriptions (the Subscriptions R5 Backport IG for R4).

- `Subscription/{id}/$status`, `Subscription/$status?id=a,b&status=error` (GET or POST with a
  Parameters; no id: every one the caller owns): a searchset Bundle with one SubscriptionStatus
  (a Parameters, type `query-status`) per subscription: its status, topic and
  `events-since-subscription-start`.
- `Subscription/{id}/$events?eventsSinceNumber=&eventsUntilNumber=&content=`: a `history` Bundle, the
  notification the client would have got for those events (type `query-event`), from the stored
  outbox: a client that was down catches up, then delivery goes on in order. At most `MAX_EVENTS`
  a call: ask again from the last number + 1. Delivered outbox rows are kept as long as the
  subscription's rows are (the outbox is never pruned today), so every event can be asked again.

Only the subscription's owner (whoever created it) or an administrator may ask; anyone else gets
404, as for a resource they may not read. A focus the caller may no longer read is left out
(its event keeps its number and timestamp).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from api.dependencies import RepositoryDep
from api.openapi_docs import fhir_responses
from api.rendering import json_response
from auth.principal import Principal
from exchange import notifications, tables, topics
from exchange.subscriptions import owner_from_json
from fhir_mappings.outcomes import FhirError, Invalid, NotFound
from storage.repository import FhirRepository

router = APIRouter(tags=["subscriptions"])
MAX_EVENTS = 500
MAX_IDS = 50
MAX_LISTED = 1000  # Subscription/$status without ids: the caller's first this many, by id
_DEFINITION = f"{topics.BACKPORT}/OperationDefinition"
OPERATIONS: list[dict[str, Any]] = [
    {"name": "status", "definition": f"{_DEFINITION}/backport-subscription-status", "type": "Subscription",
     "level": "type"},
    {"name": "events", "definition": f"{_DEFINITION}/backport-subscription-events", "type": "Subscription",
     "level": "instance"},
]
_STATUS_DOC = fhir_responses(200, "A searchset Bundle: one SubscriptionStatus (query-status) per subscription", 404)
_EVENTS_DOC = fhir_responses(200, "A history Bundle: the SubscriptionStatus (query-event), then the events' focus", 404)


async def _parameters(request: Request) -> list[tuple[str, str]]:
    """The operation's parameters: the query's, and a POSTed Parameters resource's."""
    found = list(request.query_params.multi_items())
    if request.method != "POST":
        return found
    body = await request.body()
    if not body.strip():
        return found
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid("The body is not JSON") from exc
    if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
        raise Invalid("The body of a POSTed operation is a Parameters resource")
    for parameter in resource.get("parameter") or ():
        value = next((v for k, v in parameter.items() if k.startswith("value")), None) if isinstance(
            parameter, dict) else None
        if isinstance(value, (str, int)) and isinstance(parameter.get("name"), str):
            found.append((parameter["name"], str(value)))
    return found


def _owns(caller: Principal, owner: Principal) -> bool:
    return caller.is_admin or (caller.subject, caller.client_id) == (owner.subject, owner.client_id)


async def _own_subscription(repository: FhirRepository, subscription_id: str) -> tuple[Any, Any]:
    """The subscription's rows, if it is topic-based and the caller's (404 otherwise, as for a read)."""
    s, t = tables.subscriptions, tables.topic_subscriptions
    connection = repository.connection
    row = (await connection.execute(select(s).where(s.c.id == subscription_id))).first()
    topic = (await connection.execute(select(t).where(t.c.id == subscription_id))).first()
    if row is None or topic is None or not _owns(repository.principal, owner_from_json(row.owner)):
        raise NotFound(f"There is no topic-based Subscription/{subscription_id}")
    await repository.read("Subscription", subscription_id)  # and the caller may read it (404 / 410)
    return row, topic


def _status_entry(row: Any, topic: Any) -> dict[str, Any]:
    parameters = notifications.status_parameters(row.id, topic.topic, row.status, "query-status",
                                                 int(row.next_event))
    return {"fullUrl": f"urn:uuid:{parameters['id']}", "resource": parameters, "search": {"mode": "match"}}


async def _all_own(repository: FhirRepository) -> list[tuple[Any, Any]]:
    """Every topic-based subscription the caller owns (an administrator: every one), up to `MAX_LISTED`."""
    s, t = tables.subscriptions, tables.topic_subscriptions
    rows = (await repository.connection.execute(
        select(s, t.c.topic).join(t, t.c.id == s.c.id).where(s.c.resource_type == topics.TOPIC_ROW)
        .order_by(s.c.id))).all()
    mine = [row for row in rows if _owns(repository.principal, owner_from_json(row.owner))][:MAX_LISTED]
    readable = await repository.read_many("Subscription", [row.id for row in mine])
    return [(row, row) for row in mine if row.id in readable]


async def _status(request: Request, repository: FhirRepository, found: list[tuple[Any, Any]]) -> Response:
    entries = [_status_entry(row, topic) for row, topic in found]
    return json_response(request, {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
                                   "link": [{"relation": "self", "url": str(request.url)}], "entry": entries})


@router.get("/Subscription/{subscription_id}/$status", operation_id="subscription_status",
            summary="A topic-based Subscription's status", responses=_STATUS_DOC)
@router.post("/Subscription/{subscription_id}/$status", operation_id="subscription_status_post",
             summary="A topic-based Subscription's status (POST)", responses=_STATUS_DOC)
async def subscription_status(request: Request, subscription_id: str, repository: RepositoryDep) -> Response:
    return await _status(request, repository, [await _own_subscription(repository, subscription_id)])


@router.get("/Subscription/$status", operation_id="subscriptions_status",
            summary="The status of topic-based Subscriptions named by id", responses=_STATUS_DOC)
@router.post("/Subscription/$status", operation_id="subscriptions_status_post",
             summary="The status of topic-based Subscriptions named by id (POST)", responses=_STATUS_DOC)
async def subscriptions_status(request: Request, repository: RepositoryDep) -> Response:
    parameters = await _parameters(request)
    ids = [i.strip() for name, value in parameters if name == "id" for i in value.split(",") if i.strip()]
    statuses = {v.strip() for name, value in parameters if name == "status" for v in value.split(",") if v.strip()}
    if len(ids) > MAX_IDS:
        raise Invalid(f"Name at most {MAX_IDS} subscriptions with the id parameter")
    # Named ones must be the caller's (404 otherwise); none named: all of the caller's (the IG's rule).
    found = [await _own_subscription(repository, i) for i in ids] if ids else await _all_own(repository)
    return await _status(request, repository, [(row, topic) for row, topic in found
                                               if not statuses or row.status in statuses])


def _number(parameters: dict[str, str], name: str) -> int | None:
    value = parameters.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Invalid(f"{name} is an event number (0, 1, 2 ...), not '{value}'")
    return int(value)


@router.get("/Subscription/{subscription_id}/$events", operation_id="subscription_events",
            summary="Events of a topic-based Subscription again, from the stored outbox", responses=_EVENTS_DOC)
@router.post("/Subscription/{subscription_id}/$events", operation_id="subscription_events_post",
             summary="Events of a topic-based Subscription again (POST)", responses=_EVENTS_DOC)
async def subscription_events(request: Request, subscription_id: str, repository: RepositoryDep) -> Response:
    parameters = dict(await _parameters(request))
    since, until = _number(parameters, "eventsSinceNumber"), _number(parameters, "eventsUntilNumber")
    content = parameters.get("content") or None
    if content is not None and content not in topics.CONTENTS:
        raise Invalid(f"content is one of {', '.join(topics.CONTENTS)}, not '{content}'")
    row, topic = await _own_subscription(repository, subscription_id)
    o = tables.outbox
    query = select(o.c.event_number, o.c.created_at, o.c.resource_type, o.c.resource_id, o.c.version_id).where(
        o.c.subscription_id == subscription_id, o.c.kind.in_(("notification", "deletion")))
    if since is not None:
        query = query.where(o.c.event_number >= since)
    if until is not None:
        query = query.where(o.c.event_number <= until)
    rows = (await repository.connection.execute(query.order_by(o.c.event_number).limit(MAX_EVENTS))).all()
    events = [notifications.Event(int(r.event_number), int(r.created_at), r.resource_type, r.resource_id,
                                  r.version_id) for r in rows]
    content = content or topic.content
    foci = await notifications.foci(repository.connection, events) if content != "empty" else {}
    visible = await _visible(repository, events)
    shown = {key: focus for key, focus in foci.items() if (key[0], key[1]) in visible}
    status = notifications.status_parameters(subscription_id, topic.topic, row.status, "query-event",
                                             int(row.next_event), events, content=content)
    return json_response(request, notifications.bundle(subscription_id, status, events, shown, content))


async def _visible(repository: FhirRepository, events: list[notifications.Event]) -> set[tuple[str, str]]:
    """The foci the caller may read now (a deleted one stays visible: its deletion is the event)."""
    by_type: dict[str, set[str]] = {}
    for event in events:
        if event.resource_type and event.resource_id:
            by_type.setdefault(event.resource_type, set()).add(event.resource_id)
    visible: set[tuple[str, str]] = set()
    for resource_type, ids in by_type.items():
        try:
            found = await repository.read_many(resource_type, sorted(ids))
        except FhirError:  # the caller may no longer read the type at all
            continue
        visible.update((resource_type, i) for i in found)
    return visible
