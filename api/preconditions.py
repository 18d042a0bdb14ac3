"""HTTP conditional headers: If-Match, If-None-Match, If-Modified-Since, If-None-Exist."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from fastapi import Request

from fhir_mappings.outcomes import Invalid
from storage.versions import StoredVersion

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def version_from_etag(value: str | None, header: str = "If-Match") -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise Invalid(f'{header}: "{value}" is not a version ETag such as W/"3"')
    return int(match.group(1))


def not_modified(request: Request, version: StoredVersion) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(_ETAG.match(t) and int(_ETAG.match(t).group(1)) == version.version_id for t in tags)  # type: ignore[union-attr]
    since = request.headers.get("if-modified-since")
    if since:
        try:
            moment = parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return version.last_updated.replace(microsecond=0) <= moment
    return False


def criteria(query: str) -> list[tuple[str, str]]:
    """Search criteria from an If-None-Exist header or a conditional URL's query string."""
    query = query.split("?", 1)[1] if "?" in query else query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise Invalid("Conditional criteria are empty")
    return pairs
