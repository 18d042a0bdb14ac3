"""Subscription header values are write-only: the receiver's secrets never come back out of Puente.

`channel.header` often carries the receiver's bearer token. Whoever may read the Subscription
(its history, a bulk export, `$everything`) must not learn it, so the resource is stored with each
value replaced by `***` (`Authorization: ***`: the names stay, so a reader sees what is sent) and
the values as sent live only in the `exchange_subscriptions` row that delivery reads.

`HeaderMasking` (an EnrichHook) masks the resource before storage stamps it and hands the values
to the matcher's WriteHook in the same transaction (`sent_headers`). An update that sends a header
back masked (`Name: ***`, as a client that read the Subscription does) keeps the stored value of
that header; a new value replaces it.
"""

from __future__ import annotations

import time
from typing import Any

from storage.repository import FhirRepository

MASK = "***"
FORGET_AFTER_SECONDS = 600.0  # a write that failed between masking and its hook leaves its entry behind

# id(resource) -> (the resource, its headers as sent, when): the resource is held, so the id stays its own.
_sent: dict[int, tuple[dict[str, Any], tuple[str, ...], float]] = {}


class HeaderMasking:
    async def __call__(self, repository: FhirRepository, resource: dict[str, Any]) -> None:
        if resource.get("resourceType") != "Subscription":
            return
        channel = resource.get("channel")
        if not isinstance(channel, dict):
            return
        headers = channel.get("header")
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers):
            return
        now = time.monotonic()
        for key in [k for k, (_, _, at) in _sent.items() if now - at > FORGET_AFTER_SECONDS]:
            _sent.pop(key, None)
        _sent[id(resource)] = (resource, tuple(headers), now)
        channel["header"] = [mask(h) for h in headers]


def mask(header: str) -> str:
    name, colon, _ = header.partition(":")
    return f"{name.strip()}: {MASK}" if colon else MASK


def sent_headers(resource: dict[str, Any]) -> tuple[str, ...] | None:
    """The headers `resource` carried before HeaderMasking masked them (None if it did not)."""
    entry = _sent.get(id(resource))
    if entry is None or entry[0] is not resource:
        return None
    del _sent[id(resource)]
    return entry[1]


def is_masked(header: str) -> bool:
    return header.partition(":")[2].strip() == MASK


def unmask(headers: tuple[str, ...], stored: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """`headers` with each masked value replaced by the stored value of the same header (in order);
    and the names of masked headers that have no stored value."""
    kept: dict[str, list[str]] = {}
    for header in stored:
        kept.setdefault(header.partition(":")[0].strip().lower(), []).append(header)
    out: list[str] = []
    missing: list[str] = []
    for header in headers:
        if not is_masked(header):
            out.append(header)
            continue
        name = header.partition(":")[0].strip()
        values = kept.get(name.lower())
        if values:
            out.append(values.pop(0))
        else:
            missing.append(name)
    return tuple(out), missing
