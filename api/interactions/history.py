"""history at instance, type and system level (FHIR R4 http.html#history), newest first, keyset-paged."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response

from api.bundles import bundle, history_entry, page_url
from api.dependencies import RepositoryDep, SettingsDep
from api.openapi_docs import fhir_responses
from api.rendering import json_response
from fhir_mappings.outcomes import Invalid
from fhir_mappings.search.dates import InvalidDate, parse_date_range
from fhir_mappings.validation import check_resource_type
from settings import Settings
from storage.clock import fhir_watermark
from storage.repository import FhirRepository

router = APIRouter(tags=["history"])
_DOC = fhir_responses(200, "A history Bundle, newest version first", 404)


@router.get("/_history", operation_id="history_system", summary="History of every resource", responses=_DOC)
async def history_system(request: Request, repository: RepositoryDep, settings: SettingsDep) -> Response:
    return await _history(request, repository, settings, None, None)


@router.get("/{resource_type}/_history", operation_id="history_type", summary="History of a type", responses=_DOC)
async def history_type(
    request: Request, resource_type: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    check_resource_type(resource_type)
    return await _history(request, repository, settings, resource_type, None)


@router.get(
    "/{resource_type}/{resource_id}/_history",
    operation_id="history_instance",
    summary="History of one resource",
    responses=_DOC,
)
async def history_instance(
    request: Request, resource_type: str, resource_id: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    check_resource_type(resource_type)
    if not await repository.exists(resource_type, resource_id):
        page = await repository.history(resource_type, resource_id, count=1, with_total=False)
        if not page.versions:
            await repository.read(resource_type, resource_id)  # raises 404
    return await _history(request, repository, settings, resource_type, resource_id)


async def _history(
    request: Request,
    repository: FhirRepository,
    settings: Settings,
    resource_type: str | None,
    resource_id: str | None,
) -> Response:
    params = request.query_params
    count = page_size(params.get("_count"), settings)
    cursor, watermark = _cursor(params.get("_cursor"))
    since = instant_param(params.get("_since"), "_since")
    at = instant_param(params.get("_at"), "_at")
    page = await repository.history(
        resource_type, resource_id, since=since, at=at, count=count, cursor=cursor, watermark=watermark
    )
    base = settings.public_base_url
    links = [("self", page_url(request, base))]
    if cursor is not None:
        links.append(("first", page_url(request, base, drop=["_cursor"])))
    if page.next_cursor is not None:
        next_cursor = f"{page.next_cursor}.{_micros(page.watermark)}"
        links.append(("next", page_url(request, base, _cursor=next_cursor)))
    entries = [history_entry(v, base) for v in page.versions]
    body = bundle("history", entries, links, page.total, last_updated=fhir_watermark(page.watermark))
    return json_response(request, body)


# A page cursor: the last pk shown and the first page's watermark (every page answers as of it).
_CURSOR = re.compile(r"^([0-9]{1,18})(?:\.([0-9]{1,17}))?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(value: str | None) -> tuple[int | None, datetime | None]:
    if value is None:
        return None, None
    match = _CURSOR.match(value)
    if match is None:
        raise Invalid("_cursor is not a valid paging cursor")
    pk, micros = match.groups()
    return int(pk), None if micros is None else _EPOCH + timedelta(microseconds=int(micros))


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def page_size(value: str | None, settings: Settings) -> int:
    """`_count`: the default page size when absent, clamped to the maximum (history, $everything)."""
    if value is None:
        return settings.default_page_size
    if not value.isdigit():
        raise Invalid(f"_count={value} is not a whole number")
    return max(1, min(int(value), settings.max_page_size))


def instant_param(value: str | None, name: str) -> datetime | None:
    """A `_since` / `_at` parameter as an instant (400 when it is not one)."""
    if value is None:
        return None
    try:
        return parse_date_range(value.replace(" ", "+")).low
    except InvalidDate as exc:
        raise Invalid(f"{name}={value} is not a valid FHIR instant or dateTime: {exc}") from exc
