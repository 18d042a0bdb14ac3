"""update, update-as-create and conditional update (FHIR R4 http.html#update, #cond-update)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.body import ResourceBody
from api.dependencies import RepositoryDep, SettingsDep
from api.openapi_docs import fhir_body, fhir_responses
from api.preconditions import criteria, version_from_etag
from api.rendering import write_response
from fhir_mappings.outcomes import Invalid
from fhir_mappings.validation import check_resource_type

router = APIRouter(tags=["update"])


@router.put(
    "/{resource_type}/{resource_id}",
    operation_id="update",
    summary="Update a resource, or create it with this id; If-Match guards against lost updates",
    responses=fhir_responses(200, "Updated (201 when created)", 404, 409, 412, 413, 415, 422),
    openapi_extra=fhir_body("The new version of the resource, with its id"),
)
async def update(
    request: Request,
    resource_type: str,
    resource_id: str,
    resource: ResourceBody,
    repository: RepositoryDep,
    settings: SettingsDep,
) -> Response:
    check_resource_type(resource_type)
    if_match = version_from_etag(request.headers.get("if-match"))
    result = await repository.update(resource_type, resource_id, resource, if_match=if_match)
    return write_response(
        request, result.version, status=201 if result.created else 200, base_url=settings.public_base_url
    )


@router.put(
    "/{resource_type}",
    operation_id="conditional_update",
    summary="Conditional update: PUT /fhir/Patient?identifier=system|value",
    responses=fhir_responses(200, "Updated (201 when created)", 404, 409, 412, 413, 415),
    openapi_extra=fhir_body("The resource to store for the single match of the criteria"),
)
async def conditional_update(
    request: Request, resource_type: str, resource: ResourceBody, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    check_resource_type(resource_type)
    if not request.url.query:
        raise Invalid("A conditional update needs search criteria in the URL (e.g. ?identifier=system|value)")
    if_match = version_from_etag(request.headers.get("if-match"))
    result = await repository.conditional_update(
        resource_type, criteria(request.url.query), resource, if_match=if_match
    )
    return write_response(
        request, result.version, status=201 if result.created else 200, base_url=settings.public_base_url
    )
