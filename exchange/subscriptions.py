"""R4 rest-hook Subscriptions (subscription.html): what one asks for, checked when it is written.

A Subscription names a search (`criteria`, e.g. `ServiceRequest?performer=Organization/x`) and a
`rest-hook` channel: an `endpoint`, `header`s to send, and a `payload` (absent: a ping with no body;
`application/fhir+json`: the resource itself). It notifies within what its owner (whoever created it)
may read, so its owner is recorded with it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from auth.principal import Principal
from exchange.refusals import BusinessRule, refusal
from fhir_mappings.outcomes import Forbidden
from fhir_mappings.search import SearchError, parse_query
from fhir_mappings.search.registry import registry
from storage import access, search_rows

LIVE = ("requested", "active", "error")  # the statuses of a subscription that still notifies
FULL_PAYLOADS = frozenset({"application/fhir+json", "application/json"})
MAX_HEADERS = 20


@dataclass(frozen=True)
class RestHook:
    resource_type: str
    criteria: str  # the query string
    endpoint: str
    headers: tuple[str, ...]
    payload: str  # "" (ping) or a full-resource MIME type

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.criteria, keep_blank_values=True)


def rest_hook(subscription: dict[str, Any], owner: Principal) -> RestHook:
    """The channel and criteria of a Subscription, or a 422/403 naming what cannot be served."""
    channel = subscription.get("channel") or {}
    if channel.get("type") != "rest-hook":
        raise refusal(BusinessRule, f"Only rest-hook channels are served, not '{channel.get('type')}'",
                      "Subscription.channel.type")
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise refusal(BusinessRule, "A rest-hook needs an absolute http(s) endpoint", "Subscription.channel.endpoint")
    payload = channel.get("payload") or ""
    if payload and payload not in FULL_PAYLOADS:
        raise refusal(BusinessRule, f"The payload is absent (a ping) or application/fhir+json, not '{payload}'",
                      "Subscription.channel.payload")
    headers = tuple(channel.get("header") or ())
    if len(headers) > MAX_HEADERS or any(":" not in h or "\n" in h or "\r" in h for h in headers):
        raise refusal(BusinessRule, f"Each header is 'Name: value' (at most {MAX_HEADERS})",
                      "Subscription.channel.header")
    criteria = subscription.get("criteria") or ""
    resource_type, _, query = criteria.partition("?")
    if resource_type not in registry().resource_types:
        raise refusal(BusinessRule, "The criteria are a search URL of a resource type: 'Type?param=value'",
                      "Subscription.criteria")
    try:
        parsed = parse_query(resource_type, parse_qsl(query, keep_blank_values=True),
                             base_url=search_rows.base_url())
    except SearchError as exc:
        raise refusal(BusinessRule, f"The criteria are not a valid search: {exc}", "Subscription.criteria") from exc
    if parsed.problems:
        names = ", ".join(p.name for p in parsed.problems)
        raise refusal(BusinessRule, f"The criteria use parameters this server cannot apply: {names}",
                      "Subscription.criteria")
    if not (access.allowed(owner, resource_type, "r") and access.allowed(owner, resource_type, "s")):
        raise refusal(Forbidden, f"The access token's scopes do not allow searching {resource_type}",
                      "Subscription.criteria")
    return RestHook(resource_type, query, str(endpoint), headers, payload)


def owner_json(principal: Principal) -> str:
    fields = asdict(principal)
    fields["scopes"] = sorted(principal.scopes)
    return json.dumps(fields, sort_keys=True)


def owner_from_json(text: str) -> Principal:
    fields = json.loads(text)
    fields["scopes"] = frozenset(fields.get("scopes") or ())
    return Principal(**fields)


@functools.lru_cache(maxsize=4096)
def owner_of(text: str) -> Principal:
    """owner_from_json, once per distinct owner: every write reads every live subscription's owner."""
    return owner_from_json(text)


def access_shape(owner: Principal) -> tuple[Any, ...]:
    """What access.visible and the scopes read of a Principal: owners alike here see alike."""
    return (owner.is_admin, owner.organization, owner.practitioner, owner.role, owner.patient, owner.author,
            owner.scopes)
