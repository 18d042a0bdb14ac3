"""Bundles built around stored JSON: entries embed the stored text as is (no re-serialisation)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request

from storage.versions import StoredVersion, fhir_instant, now_ms

_METHOD_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def raw(content: str) -> orjson.Fragment:
    return orjson.Fragment(content)


def page_url(request: Request, base_url: str, drop: Iterable[str] = (), **extra: str) -> str:
    """This request's URL on our public base, without `drop` params, plus `extra` ones."""
    path = request.url.path.split("/fhir", 1)[-1]
    dropped = set(drop) | set(extra)
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in dropped]
    params.extend(extra.items())
    query = urlencode(params, safe="|,:/$")
    return f"{base_url}{path}" + (f"?{query}" if query else "")


def history_entry(version: StoredVersion, base_url: str) -> dict[str, Any]:
    url = f"{version.resource_type}/{version.id}"
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{url}"}
    if version.content is not None:
        entry["resource"] = raw(version.content)
    method = version.method if version.method in _METHOD_STATUS else "PUT"
    status = "201 Created" if method == "PUT" and version.version_id == 1 else _METHOD_STATUS[method]
    entry["request"] = {
        "method": method,
        "url": url if method != "POST" else version.resource_type,
    }
    entry["response"] = {
        "status": status,
        "etag": version.etag,
        "lastModified": fhir_instant(version.last_updated),
    }
    return entry


def bundle(
    kind: str,
    entries: list[dict[str, Any]],
    links: list[tuple[str, str]],
    total: int | None,
    *,
    last_updated: str | None = None,
) -> dict[str, Any]:
    """`last_updated`: a search's or history's watermark (storage.clock), which the next poll's
    `_lastUpdated=gt` or `_since` takes as is; other Bundles carry the time they were made."""
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": kind,
        "meta": {"lastUpdated": last_updated or fhir_instant(now_ms())},
    }
    if total is not None:
        body["total"] = total
    body["link"] = [{"relation": rel, "url": url} for rel, url in links]
    body["entry"] = entries
    return body
