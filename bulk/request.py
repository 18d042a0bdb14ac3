"""An $export kick-off's parameters (SMART Bulk Data Access v2, "Query Parameters"), checked.

Anything this server cannot honour exactly is refused with a 400 OperationOutcome at kick-off,
never ignored: an export silently widened (a `_typeFilter` dropped) would hand out more than asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

from auth.principal import Principal
from bulk.compartment import in_compartment
from fhir_mappings.outcomes import Invalid, Issue
from fhir_mappings.resource_types import R4_RESOURCE_TYPES
from fhir_mappings.search import SearchError, SearchQuery, parse_query
from fhir_mappings.search.dates import InvalidDate, parse_date_range
from storage import access

NDJSON = "application/fhir+ndjson"
# The spec's abbreviations of the one format a server must support.
OUTPUT_FORMATS = frozenset({NDJSON, "application/ndjson", "ndjson"})
SYSTEM, PATIENT, GROUP = "system", "patient", "group"
# Kick-off parameters this server does not support: refused rather than ignored.
UNSUPPORTED = ("patient", "includeAssociatedData")


@dataclass(frozen=True)
class ExportRequest:
    level: str  # system | patient | group
    request_url: str  # echoed in the manifest's `request`
    types: tuple[str, ...]  # what will be exported, in this order
    since: str | None = None  # a FHIR instant, as sent
    type_filters: dict[str, list[str]] = field(default_factory=dict)  # type -> query strings, OR-ed
    elements: tuple[str, ...] = ()
    group_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExportRequest:
        values = json.loads(text)
        values["types"] = tuple(values["types"])
        values["elements"] = tuple(values["elements"])
        return cls(**values)

    @property
    def since_instant(self) -> datetime | None:
        return None if self.since is None else parse_date_range(self.since).low

    def filters_for(self, resource_type: str) -> list[SearchQuery]:
        return [_filter_query(resource_type, q) for q in self.type_filters.get(resource_type, [])]

    def elements_for(self, resource_type: str) -> list[str]:
        """The `_elements` that apply to this type (`Observation.value` or plain `value`)."""
        kept = []
        for name in self.elements:
            kind, dot, element = name.rpartition(".")
            if not dot:
                kept.append(name)
            elif kind == resource_type:
                kept.append(element)
        return kept


def parse_export(
    principal: Principal,
    level: str,
    params: Sequence[tuple[str, str]],
    *,
    request_url: str,
    prefer: str | None,
    group_id: str | None = None,
) -> ExportRequest:
    if "respond-async" not in (prefer or "").lower():
        raise Invalid("An $export kick-off needs the header 'Prefer: respond-async'")
    values: dict[str, list[str]] = {}
    for name, value in params:
        values.setdefault(name, []).append(value)
    for name in UNSUPPORTED:
        if name in values:
            raise Invalid(
                f"The $export parameter '{name}' is not supported by this server",
                issues=[Issue(f"'{name}' is not supported", "not-supported")],
            )
    output_format = _single(values, "_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise Invalid(
            f"_outputFormat '{output_format}' is not supported: this server writes {NDJSON}",
            issues=[Issue(f"_outputFormat must be {NDJSON}", "not-supported")],
        )
    since = _single(values, "_since")
    if since is not None:
        since = since.replace(" ", "+")  # a '+' in an unencoded query string arrives as a space
        try:
            parse_date_range(since)
        except InvalidDate as exc:
            raise Invalid(f"_since={since} is not a valid FHIR instant: {exc}") from exc
    requested = _csv(values.get("_type", []))
    for resource_type in requested:
        if resource_type not in R4_RESOURCE_TYPES:
            raise Invalid(f"_type names '{resource_type}', which is not a FHIR R4 resource type")
        if level != SYSTEM and not in_compartment(resource_type):
            raise Invalid(
                f"_type names '{resource_type}', which is not in the Patient compartment: "
                "a Patient or Group export has only patients' records"
            )
        access.require(principal, resource_type, "r")
        access.require(principal, resource_type, "s")
    candidates = requested or sorted(t for t in R4_RESOURCE_TYPES if level == SYSTEM or in_compartment(t))
    types = tuple(t for t in candidates if access.allowed(principal, t, "r") and access.allowed(principal, t, "s"))
    if not types:
        raise Invalid("The access token's scopes allow reading none of the types asked for")
    type_filters = _type_filters(values.get("_typeFilter", []), types)
    elements = tuple(_csv(values.get("_elements", [])))
    return ExportRequest(level, request_url, types, since, type_filters, elements, group_id)


def _single(values: dict[str, list[str]], name: str) -> str | None:
    given = values.get(name)
    if not given:
        return None
    if len(given) > 1:
        raise Invalid(f"{name} may be given once")
    return given[0]


def _csv(values: Iterable[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _type_filters(values: list[str], types: tuple[str, ...]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for value in values:
        resource_type, mark, query = value.partition("?")
        if not mark or resource_type not in R4_RESOURCE_TYPES:
            raise Invalid(f"_typeFilter '{value}' is not of the form [type]?[search parameters]")
        if resource_type not in types:
            raise Invalid(f"_typeFilter names {resource_type}, which this export does not include")
        _filter_query(resource_type, query)  # refused now, not when the job runs
        filters.setdefault(resource_type, []).append(query)
    return filters


def _filter_query(resource_type: str, query: str) -> SearchQuery:
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(
        name.startswith("_") and name not in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source")
        for name, _ in pairs
    ):
        raise Invalid(
            f"_typeFilter {resource_type}?{query}: only search parameters may be used, not result "
            "parameters such as _count, _sort or _include"
        )
    try:
        parsed = parse_query(resource_type, pairs)
    except SearchError as exc:
        raise Invalid(f"_typeFilter {resource_type}?{query} is not a valid search: {exc}") from exc
    if parsed.problems:
        raise Invalid(
            f"_typeFilter {resource_type}?{query} uses parameters this server cannot apply",
            issues=[Issue(f"{p.name}: {p.message}", "not-supported") for p in parsed.problems],
        )
    return parsed
