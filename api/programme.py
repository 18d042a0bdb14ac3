"""HTTP routes of the programme view: $worklist, Measure/$evaluate-measure, Puente's SearchParameters.

Thin: parse the parameters, call `programme`, render. Registered before the generic /{type}/{id}
routes, so `SearchParameter/puente-...` and `Measure/puente-...` are served from the package.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api import services
from api.dependencies import RepositoryDep, SettingsDep
from api.interactions.read import read
from api.openapi_docs import fhir_responses
from api.rendering import json_response
from clinical import codes
from fhir_mappings.outcomes import Invalid
from programme import measures, period, scope
from programme.records import load_records
from programme.search_parameters import puente_search_parameters
from programme.worklist import worklist
from programme.worklist_bundle import worklist_bundle
from storage.versions import fhir_instant, now_ms

router = APIRouter(tags=["programme"])

OPERATIONS: list[dict[str, Any]] = [
    {"name": "worklist", "definition": f"{codes.OPERATION_DEFINITION_BASE}/worklist", "type": None, "level": "system"},
    {
        "name": "evaluate-measure",
        "definition": "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
        "type": "Measure",
        "level": "instance",
    },
]
MAX_COUNT = 500


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _number(name: str, value: str | None, default: int, highest: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) > highest:
        raise Invalid(f"{name} must be a whole number from 0 to {highest}, not {value!r}")
    return int(value)


def _one_subject(**given: str | None) -> scope.Subject:
    named = {k: v for k, v in given.items() if v}
    if len(named) != 1:
        raise Invalid(f"give exactly one of {', '.join(given)} (got {len(named)})")
    ((name, value),) = named.items()
    subject = scope.parse_subject(value, name)
    expected = {
        "practitioner": "Practitioner",
        "careteam": "CareTeam",
        "location": "Location",
        "organization": "Organization",
    }[name]
    if subject.resource_type != expected:
        raise Invalid(f"{name} must be a {expected} reference, not {value!r}")
    return subject


@router.get(
    "/$worklist",
    operation_id="worklist",
    summary="A CHW's, care team's, sector's or facility's worklist for a month, with the reason for each patient",
    description="Exactly one of `practitioner`, `careteam`, `location`, `organization`. Returns a searchset "
    "Bundle of Patients; each entry's `search.extension` holds the reasons (worklist-reason extension). "
    "Paged with `_count` and `_offset`. Only what the caller may see is read.",
    responses=fhir_responses(200, "Bundle (searchset) of Patients with their reasons", 400, 403, 404),
)
async def worklist_operation(
    request: Request,
    repository: RepositoryDep,
    practitioner: Annotated[str | None, Query(description="Practitioner/[id]: the CHW's patients")] = None,
    careteam: Annotated[str | None, Query(description="CareTeam/[id]: its members' patients")] = None,
    location: Annotated[str | None, Query(description="Location/[id]: patients residing there or within")] = None,
    organization: Annotated[str | None, Query(description="Organization/[id]: patients it manages")] = None,
    month: Annotated[str | None, Query(description="YYYY-MM; default: the current month (UTC)")] = None,
    count: Annotated[str | None, Query(alias="_count", description="entries per page (default 50)")] = None,
    offset: Annotated[str | None, Query(alias="_offset", description="entries to skip")] = None,
) -> Response:
    subject = _one_subject(practitioner=practitioner, careteam=careteam, location=location, organization=organization)
    when = period.month(month) if month is not None else period.month(_today().strftime("%Y-%m"))
    page_size = _number("_count", count, 50, MAX_COUNT)
    skip = _number("_offset", offset, 0, 10**7)
    records = await load_records(repository, await scope.patients_in_scope(repository, subject))
    entries = worklist(records, when)
    base = services.of(request).settings.public_base_url
    body = worklist_bundle(
        entries,
        base_url=base,
        self_query=list(request.query_params.multi_items()),
        offset=skip,
        count=page_size,
        timestamp=fhir_instant(now_ms()),
    )
    return json_response(request, body)


# Documented by the per-type read paths of the OpenAPI document (api/openapi_spec): left out here.
@router.get(
    "/SearchParameter/{resource_id}",
    include_in_schema=False,
    operation_id="readSearchParameter",
    summary="Read a SearchParameter: Puente's own (`puente-...`) or a stored one",
    responses=fhir_responses(200, "The SearchParameter", 304, 404, 410),
)
async def search_parameter(
    request: Request, resource_id: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    own = puente_search_parameters().get(resource_id)
    if own is None:
        return await read(request, "SearchParameter", resource_id, repository, settings)
    return json_response(request, own)


@router.get(
    "/Measure/{resource_id}",
    include_in_schema=False,
    operation_id="readMeasure",
    summary="Read a Measure: Puente's programme indicators (`puente-...`) or a stored one",
    responses=fhir_responses(200, "The Measure", 304, 404, 410),
)
async def measure(request: Request, resource_id: str, repository: RepositoryDep, settings: SettingsDep) -> Response:
    own = measures.MEASURES.get(resource_id)
    if own is None:
        return await read(request, "Measure", resource_id, repository, settings)
    return json_response(request, measures.measure_resource(own))


@router.get(
    "/Measure/{resource_id}/$evaluate-measure",
    operation_id="evaluateMeasure",
    summary="Evaluate a programme indicator over a period and a subject: a MeasureReport",
    description="`periodStart`, `periodEnd` (YYYY-MM-DD, both included); `subject` a Location, Organization, "
    "CareTeam or Practitioner (default: every patient the caller can see via `organization`); `reportType` "
    "`population` (summary, the default) or `subject-list` (with the patients of each population in a "
    "contained List).",
    responses=fhir_responses(200, "MeasureReport", 400, 403, 404),
)
async def evaluate_measure(
    request: Request,
    resource_id: str,
    repository: RepositoryDep,
    period_start: Annotated[str | None, Query(alias="periodStart")] = None,
    period_end: Annotated[str | None, Query(alias="periodEnd")] = None,
    subject: Annotated[
        str | None, Query(description="Location/, Organization/, CareTeam/ or Practitioner/[id]")
    ] = None,
    report_type: Annotated[str | None, Query(alias="reportType")] = None,
) -> Response:
    definition = measures.MEASURES.get(resource_id)
    if definition is None:
        raise measures.unknown_measure(resource_id)
    when = period.between(period_start, period_end)
    if not subject:
        raise Invalid("subject is required: a Location, Organization, CareTeam or Practitioner reference")
    target = scope.parse_subject(subject)
    kind = report_type or "population"
    if kind not in ("population", "subject-list"):
        raise Invalid(f"reportType must be population or subject-list, not {kind!r}")
    records = await load_records(repository, await scope.patients_in_scope(repository, target))
    report = measures.evaluate(
        definition,
        records,
        when,
        target.reference,
        subject_list=kind == "subject-list",
        generated=fhir_instant(now_ms()),
    )
    return json_response(request, report)
