"""search (FHIR R4 search.html): GET /{type}?... and POST /{type}/_search with a form body."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from api.body import read_body
from api.dependencies import RepositoryDep, SettingsDep
from api.media import FORM, response_media_type
from api.openapi_docs import fhir_responses
from api.search_service import search_bundle
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, Issue, LimitExceeded, UnsupportedMediaType
from fhir_mappings.validation import check_resource_type

router = APIRouter(tags=["search"])
_DOC = fhir_responses(200, "A searchset Bundle", 404)


@router.get("/{resource_type}", operation_id="search", summary="Search resources of a type", responses=_DOC)
async def search(request: Request, resource_type: str, repository: RepositoryDep, settings: SettingsDep) -> Response:
    check_resource_type(resource_type)
    pairs = request.query_params.multi_items()
    body = await search_bundle(repository, resource_type, pairs, settings=settings, strict=_strict(request))
    return _respond(request, body, pairs)


@router.post(
    "/{resource_type}/_search",
    operation_id="search_post",
    summary="Search resources of a type, parameters in a form body",
    responses=fhir_responses(200, "A searchset Bundle", 404, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": False,
            "description": "Search parameters, as in a query string",
            "content": {FORM: {"schema": {"type": "string"}}},
        }
    },
)
async def search_post(
    request: Request, resource_type: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    check_resource_type(resource_type)
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    raw = await read_body(request)
    if raw.strip() and content_type != FORM:
        raise UnsupportedMediaType(f"POST _search takes a {FORM} body, not {content_type or 'an untyped one'}")
    try:
        # Counting '&' first: 50,000 parameters are refused before any is decoded.
        form = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=settings.max_search_params)
    except UnicodeDecodeError as exc:
        raise Invalid("The form body is not UTF-8") from exc
    except ValueError as exc:
        limit = settings.max_search_params
        raise LimitExceeded(
            f"The search exceeds a limit (PUENTE_MAX_SEARCH_PARAMS): more than {limit} search parameters",
            issues=[Issue(f"more than {limit} search parameters (limit PUENTE_MAX_SEARCH_PARAMS)", "too-costly")],
        ) from exc
    pairs = [*request.query_params.multi_items(), *form]
    body = await search_bundle(repository, resource_type, pairs, settings=settings, strict=_strict(request))
    return _respond(request, body, pairs)


def _strict(request: Request) -> bool:
    for part in (request.headers.get("prefer") or "").split(","):
        for item in part.split(";"):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() == "handling":
                return value.strip().strip('"').lower() == "strict"
    return False


def _respond(request: Request, body: dict, pairs: list[tuple[str, str]]) -> Response:
    pretty = ("_pretty", "true") in pairs
    return Response(fhir_json.dumps(body, pretty=pretty), media_type=response_media_type(request))
