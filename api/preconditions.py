"""HTTP conditional headers: If-Match, If-None-Match, If-Modified-Since, If-None-Exist."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from fastapi import Request

from fhir_mappings.outcomes import Invalid, Issue
from fhir_mappings.search.dates import parse_date_range
from storage.versions import StoredVersion

_RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_total", "_summary", "_elements", "_format", "_pretty", "_include", "_revinclude", "_cursor"}
)
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def version_from_etag(value: str | None, header: str = "If-Match") -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value)
    if not match:
        raise Invalid(f'{header}: "{value}" is not a version ETag such as W/"3"')
    return int(match.group(1))


def not_modified(request: Request, version: StoredVersion) -> bool:
    """HTTP If-None-Match / If-Modified-Since; an unreadable date is ignored, as HTTP says."""
    try:
        return unchanged_since(version, request.headers.get("if-none-match"), request.headers.get("if-modified-since"))
    except ValueError:
        return False


def unchanged_since(version: StoredVersion, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """Does the client already have `version`? (a request's headers, or a Bundle entry's fields)

    `if_modified_since` is an HTTP date or a FHIR instant; ValueError when it is neither.
    """
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return "*" in tags or any(
            (match := _ETAG.match(t)) is not None and int(match.group(1)) == version.version_id for t in tags
        )
    if not if_modified_since:
        return False
    try:
        moment = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return version.last_updated <= parse_date_range(if_modified_since).low  # InvalidDate is a ValueError
    return version.last_updated.replace(microsecond=0) <= moment


def criteria(query: str) -> list[tuple[str, str]]:
    """Search criteria from an If-None-Exist header or a conditional URL's query string."""
    query = query.split("?", 1)[1] if "?" in query else query
    return checked_criteria(parse_qsl(query, keep_blank_values=True))


def checked_criteria(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The criteria of a conditional interaction, if they select something."""
    # `=`, `identifier=` or `_count=1` alone select nothing, so they would match every resource.
    if not any(name and value and name.split(":", 1)[0] not in _RESULT_PARAMS for name, value in pairs):
        shown = "&".join(f"{name}={value}" for name, value in pairs)
        raise Invalid(
            f"Conditional criteria {shown[:100]!r} select nothing: name at least one search parameter with a value",
            issues=[Issue("Conditional criteria need a search parameter with a value (e.g. identifier=system|value)",
                          "invalid")],
        )
    return pairs
