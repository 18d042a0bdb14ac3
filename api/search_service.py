"""Search results as searchset Bundles (used by the search routes and by Bundle entries).

Parsing (fhir_mappings.search) -> the repository's keyset page (storage.search) -> a Bundle whose
entries embed the stored JSON as is, unless `_summary` / `_elements` ask for less. Links carry only
the parameters that were understood (lenient handling drops the rest from `self`), plus the cursor.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from api.bundles import bundle, raw
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, Issue, operation_outcome
from fhir_mappings.search import SearchError, SearchQuery, parse_query, registry
from fhir_mappings.summary import apply_elements, apply_summary
from settings import Settings, get_settings
from storage.clock import fhir_watermark
from storage.repository import FhirRepository
from storage.search import Found

CURSOR = "_cursor"


async def search_bundle(
    repository: FhirRepository,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    *,
    settings: Settings | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """The searchset Bundle for `resource_type?query`; `strict` (Prefer: handling=strict) refuses what it cannot apply.

    Malformed values are a 400 (Invalid) either way. Without `settings` the process settings are used.
    """
    settings = settings or get_settings()
    base = settings.public_base_url
    parsed = parse(resource_type, query, settings)
    if strict and parsed.problems:
        raise Invalid(
            "The search uses parameters this server does not support (Prefer: handling=strict)",
            issues=[Issue(f"{p.name}={p.value}: {p.message}", "not-supported") for p in parsed.problems],
        )
    cursors = [value for name, value in parsed.passthrough if name == CURSOR]
    if len(cursors) > 1:
        raise Invalid(f"{CURSOR} given more than once")
    cursor = cursors[0] if cursors else None
    count = settings.default_page_size if parsed.count is None else parsed.count
    try:
        page = await repository.search(parsed, count=count, cursor=cursor)
    except SearchError as exc:
        raise _invalid(exc) from exc

    def link(extra: str | None) -> str:
        pairs = list(parsed.accepted) + ([(CURSOR, extra)] if extra else [])
        query_string = urlencode(pairs, safe="|,:/$")
        return f"{base}/{resource_type}" + (f"?{query_string}" if query_string else "")

    links = [("self", link(cursor))]
    if cursor is not None:
        links.append(("first", link(None)))
    if page.previous_cursor:
        links.append(("previous", link(page.previous_cursor)))
    if page.next_cursor:
        links.append(("next", link(page.next_cursor)))
    entries = [_entry(found, "match", base, parsed) for found in page.matches]
    entries.extend(_entry(found, "include", base, None) for found in page.included)
    warnings = [
        Issue(f"{p.name}={p.value}: {p.message}; ignored (Prefer: handling=lenient)", "not-supported",
              severity="warning")
        for p in parsed.problems
    ]
    if page.includes_truncated:
        warnings.append(Issue(
            f"_include/_revinclude stopped at {len(page.included)} resources for this page; "
            "ask for smaller pages (_count) to get them all", "incomplete", severity="warning"))
    if warnings:
        # FHIR search.html#errors: what the server did not do is said in an 'outcome' entry.
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": operation_outcome(warnings),
                        "search": {"mode": "outcome"}})
    watermark = fhir_watermark(page.watermark) if page.watermark is not None else None
    return bundle("searchset", entries, links, page.total, last_updated=watermark)


def parse(resource_type: str, query: Sequence[tuple[str, str]], settings: Settings) -> SearchQuery:
    try:
        return parse_query(
            resource_type,
            query,
            base_url=settings.public_base_url,
            max_count=settings.max_page_size,
            reserved=(CURSOR,),
        )
    except SearchError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: SearchError) -> Invalid:
    expression = (exc.param,) if exc.param else ()
    return Invalid(f"Invalid search: {exc}", issues=[Issue(str(exc), "invalid", expression=expression)])


def _entry(found: Found, mode: str, base: str, shape: SearchQuery | None) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{found.resource_type}/{found.id}",
        "resource": _shaped(found.content, shape),
        "search": {"mode": mode},
    }


def _shaped(content: str, query: SearchQuery | None) -> Any:
    """The stored JSON as is, or the subset `_summary` / `_elements` ask for (matches only)."""
    if query is None:
        return raw(content)
    if query.summary in ("true", "text", "data"):
        return apply_summary(fhir_json.loads_stored(content), query.summary)
    if query.elements:
        return apply_elements(fhir_json.loads_stored(content), list(query.elements))
    return raw(content)


@functools.cache
def _capabilities(resource_type: str) -> tuple[dict[str, str], ...]:
    params = registry().params_for(resource_type)
    return tuple(
        {"name": code, "definition": p.url, "type": p.type, "documentation": p.description}
        for code, p in sorted(params.items())
    )


def search_capabilities(resource_type: str) -> list[dict[str, str]]:
    """The CapabilityStatement `searchParam` list of a type: every parameter search accepts."""
    return [dict(p) for p in _capabilities(resource_type)]
