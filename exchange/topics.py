"""Topic-based Subscriptions (the Subscriptions R5 Backport IG for R4): the referral topic, and what a
backport Subscription asks for, checked and stored when it is written.

**The topic.** Puente serves one SubscriptionTopic, `REFERRAL_TOPIC`: a referral (a Task or its
ServiceRequest) created or changed, filtered by the organisation it is addressed to (`Task.owner`,
`ServiceRequest.performer`). In R4 a topic is only a canonical; Puente does not serve it as a
resource (nor as a Basic), it advertises it in the CapabilityStatement
(`capabilitystatement-subscriptiontopic-canonical`) and documents it there and in the README.

**A subscription to it** (`backport-subscription`): `criteria` is the topic's canonical; the filter
is a `backport-filter-criteria` extension on `criteria`, `Task?owner=Organization/x` or
`ServiceRequest?performer=Organization/x` (one organisation: either spelling filters both
triggers; none: every referral the owner may read); the channel is `rest-hook` with an
`application/fhir+json` payload whose `backport-payload-content` is empty, id-only (the default) or
full-resource; `backport-heartbeat-period`, `backport-timeout` and `backport-max-count` on the
channel. What cannot be served is refused (422, naming the element).

**Stored as the matcher already understands it.** The Subscription's row of `exchange_subscriptions`
carries the channel, the status and the event counter as for any rest-hook, with `resource_type`
`TOPIC_ROW` so that it is never matched itself; each trigger is a row of that table too, with id
`{subscription}/{type}` and the filter as its criteria, which the matcher runs like any other
criteria (within the owner's access). `enqueue` numbers a trigger's events on its subscription
(`numbered_on`), so they are the subscription's event numbers, in commit order. What the backport
adds (topic, content, heartbeat, timeout, max count) is a row of `exchange_topic_subscriptions`.

The handshake is event 0 of the outbox: it comes first and leaves the event numbers to events only
(`events-since-subscription-start` counts notifications, as the IG says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from auth.principal import Principal
from exchange import tables
from exchange.refusals import BusinessRule, refusal
from exchange.subscriptions import RestHook, owner_from_json, owner_json, rest_hook
from fhir_mappings.code_systems import PUENTE_FHIR_BASE
from storage.repository import FhirRepository
from storage.versions import now_ms
from storage.write_events import WriteEvent

# exchange.matching.enqueue, passed in by the matcher (which imports this module).

REFERRAL_TOPIC = f"{PUENTE_FHIR_BASE}/SubscriptionTopic/referral"
TOPICS = frozenset({REFERRAL_TOPIC})
TOPIC_ROW = "(topic)"  # exchange_subscriptions.resource_type of a topic subscription: never a type to match
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription"
FILTER_CRITERIA = f"{BACKPORT}/StructureDefinition/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/StructureDefinition/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/StructureDefinition/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/StructureDefinition/backport-timeout"
MAX_COUNT = f"{BACKPORT}/StructureDefinition/backport-max-count"
TOPIC_CANONICAL = f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"

# The topic's triggers and the search parameter that filters each by the organisation addressed.
TRIGGERS = {"Task": "owner", "ServiceRequest": "performer"}
CONTENTS = ("empty", "id-only", "full-resource")
HEARTBEAT_SECONDS = (1, 86_400)
TIMEOUT_SECONDS = (1, 600)
MAX_ID = 64 - 1 - max(len(t) for t in TRIGGERS)  # a trigger row's id, "{id}/{type}", fits exchange_subscriptions.id


@dataclass(frozen=True)
class TopicSubscription:
    topic: str
    organization: str | None  # "Organization/x"; None: every referral the owner may read
    content: str
    heartbeat_ms: int | None
    timeout_ms: int | None
    max_count: int
    hook: RestHook  # the channel (endpoint, headers), checked as any rest-hook's


def is_topic(resource: dict[str, Any] | None) -> bool:
    """A backport Subscription: a topic canonical as criteria (a search URL never starts with a scheme)."""
    if resource is None:
        return False
    criteria = resource.get("criteria")
    claims = PROFILE in ((resource.get("meta") or {}).get("profile") or ())
    return claims or (isinstance(criteria, str) and criteria.startswith(("http://", "https://")))


def numbered_on(subscription_id: str) -> str:
    """The subscription whose event numbers a matched row uses: a trigger's, `{id}/{type}`, its topic
    subscription's (FHIR ids never contain '/'); any other row's, its own."""
    return subscription_id.split("/", 1)[0]


def trigger_ids(subscription_id: str) -> list[str]:
    return [f"{subscription_id}/{resource_type}" for resource_type in TRIGGERS]


def _extensions(element: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(element, dict):
        return []
    return [e for e in element.get("extension") or () if isinstance(e, dict) and e.get("url") == url]


def _one_number(channel: dict[str, Any], url: str, field: str, bounds: tuple[int, int], element: str) -> int | None:
    found = _extensions(channel, url)
    if not found:
        return None
    value = found[-1].get(field)
    low, high = bounds
    if len(found) > 1 or not isinstance(value, int) or not low <= value <= high:
        raise refusal(BusinessRule, f"One {url.rsplit('/', 1)[-1]} of {low} to {high} is served", element)
    return value


def _organization(resource: dict[str, Any]) -> str | None:
    """The one organisation the filter criteria name, or None when there are none."""
    organizations: set[str] = set()
    for extension in _extensions(resource.get("_criteria"), FILTER_CRITERIA):
        value = extension.get("valueString")
        resource_type, _, query = value.partition("?") if isinstance(value, str) else ("", "", "")
        name, _, reference = query.partition("=")
        parts = reference.split("/")
        if TRIGGERS.get(resource_type) != name or len(parts) != 2 or parts[0] != "Organization" or not parts[1]:
            allowed = " or ".join(f"{t}?{p}=Organization/[id]" for t, p in TRIGGERS.items())
            raise refusal(BusinessRule, f"The referral topic filters by the organisation addressed: {allowed}, "
                                        f"not '{value}'", "Subscription.criteria.extension")
        organizations.add(reference)
    if len(organizations) > 1:
        raise refusal(BusinessRule, "The filter criteria name one organisation", "Subscription.criteria.extension")
    return organizations.pop() if organizations else None


def parse(resource: dict[str, Any], owner: Principal, subscription_id: str) -> TopicSubscription:
    """What a backport Subscription asks for, or a 422 (403 for what its owner may not search)."""
    topic = resource.get("criteria")
    if topic not in TOPICS:
        raise refusal(BusinessRule, f"Unknown SubscriptionTopic '{topic}'; this server serves {REFERRAL_TOPIC}",
                      "Subscription.criteria")
    if len(subscription_id) > MAX_ID:
        raise refusal(BusinessRule, f"A topic-based Subscription's id has at most {MAX_ID} characters",
                      "Subscription.id")
    organization = _organization(resource)
    channel = resource.get("channel") or {}
    contents = _extensions(channel.get("_payload"), PAYLOAD_CONTENT)
    content = contents[-1].get("valueCode") if contents else "id-only"
    if len(contents) > 1 or content not in CONTENTS:
        raise refusal(BusinessRule, f"The payload content is one of {', '.join(CONTENTS)}, not '{content}'",
                      "Subscription.channel.payload.extension")
    if not channel.get("payload"):
        raise refusal(BusinessRule, "A topic-based rest-hook carries a Bundle: payload application/fhir+json",
                      "Subscription.channel.payload")
    heartbeat = _one_number(channel, HEARTBEAT_PERIOD, "valueUnsignedInt", HEARTBEAT_SECONDS,
                            "Subscription.channel.extension")
    timeout = _one_number(channel, TIMEOUT, "valueUnsignedInt", TIMEOUT_SECONDS, "Subscription.channel.extension")
    max_count = _one_number(channel, MAX_COUNT, "valuePositiveInt", (1, 1_000_000),
                            "Subscription.channel.extension") or 1
    hook: RestHook | None = None
    for resource_type, name in TRIGGERS.items():
        # Each trigger is checked as a rest-hook with its criteria: the channel, and that the owner
        # may search the type (403 otherwise).
        criteria = f"{resource_type}?{name}={organization}" if organization else resource_type
        hook = rest_hook({**resource, "criteria": criteria}, owner)
    assert hook is not None
    return TopicSubscription(str(topic), organization, str(content), None if heartbeat is None else heartbeat * 1000,
                             None if timeout is None else timeout * 1000, max_count, hook)


async def register(repository: FhirRepository, event: WriteEvent, resource: dict[str, Any] | None) -> None:
    """Keep a topic subscription's rows in step with its resource (`resource`: the written one with
    its header values as sent, see exchange.header_secrets); a new or changed channel is handshaken."""
    s, t, o = tables.subscriptions, tables.topic_subscriptions, tables.outbox
    connection = repository.connection
    subscription_id = event.version.id
    row = (await connection.execute(select(s).where(s.c.id == subscription_id))).first()
    if resource is None or resource.get("status") == "off":
        await connection.execute(update(s).where(s.c.id.in_([subscription_id, *trigger_ids(subscription_id)]))
                                 .values(status="off"))
        await connection.execute(update(t).where(t.c.id == subscription_id).values(next_heartbeat_at=None))
        return
    if not is_topic(resource):
        raise refusal(BusinessRule, "A topic-based Subscription stays one: create another for other criteria",
                      "Subscription.criteria")
    if row is not None and row.resource_type != TOPIC_ROW:
        raise refusal(BusinessRule, "A rest-hook Subscription cannot become topic-based: create another",
                      "Subscription.criteria")
    owner = owner_from_json(row.owner) if row is not None else repository.principal
    asked = parse(resource, owner, subscription_id)
    topic_row = (await connection.execute(select(t).where(t.c.id == subscription_id))).first()
    now = int(now_ms().timestamp() * 1000)
    headers = json.dumps(list(asked.hook.headers))
    values = {"resource_type": TOPIC_ROW, "criteria": asked.topic, "endpoint": asked.hook.endpoint,
              "headers": headers, "payload": "", "status": "requested", "error": None}
    unchanged = (row is not None and topic_row is not None and row.status != "off"
                 and (row.endpoint, row.headers, topic_row.content) == (asked.hook.endpoint, headers, asked.content))
    if row is None:
        await connection.execute(insert(s).values(id=subscription_id, owner=owner_json(owner), next_event=0, **values))
    else:
        if unchanged:
            values["status"], values["error"] = row.status, row.error
        await connection.execute(update(s).where(s.c.id == subscription_id).values(**values))
    next_heartbeat_at = None if asked.heartbeat_ms is None else now + asked.heartbeat_ms
    if topic_row is not None and topic_row.heartbeat_ms == asked.heartbeat_ms and topic_row.next_heartbeat_at:
        next_heartbeat_at = topic_row.next_heartbeat_at  # a status change (the server's own write) keeps the beat
    await connection.execute(delete(t).where(t.c.id == subscription_id))
    await connection.execute(insert(t).values(
        id=subscription_id, topic=asked.topic, content=asked.content, heartbeat_ms=asked.heartbeat_ms,
        timeout_ms=asked.timeout_ms, max_count=asked.max_count, next_heartbeat_at=next_heartbeat_at))
    await connection.execute(delete(s).where(s.c.id.in_(trigger_ids(subscription_id))))
    await connection.execute(insert(s), [
        {"id": f"{subscription_id}/{resource_type}", "resource_type": resource_type,
         "criteria": f"{name}={asked.organization}" if asked.organization else "", "endpoint": asked.hook.endpoint,
         "headers": "[]", "payload": "", "owner": owner_json(owner), "status": "active", "error": None,
         "next_event": 0}
        for resource_type, name in TRIGGERS.items()
    ])
    if unchanged:
        return
    # A new channel: what was waiting for the old one is not sent to the new one; the handshake goes first.
    await connection.execute(update(o).where(o.c.subscription_id == subscription_id, o.c.state == "pending")
                             .values(state="gave-up", done_at=now))
    await connection.execute(delete(o).where(o.c.subscription_id == subscription_id, o.c.event_number == 0))
    await connection.execute(insert(o).values(
        subscription_id=subscription_id, event_number=0, kind="handshake", resource_type=None, resource_id=None,
        version_id=None, created_at=now, state="pending", attempts=0, next_attempt_at=now, lease_until=None,
        lease_owner=None, done_at=None))
