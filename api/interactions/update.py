"""update, update-as-create and conditional update (FHIR R4 http.html#update, #cond-update)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.body import ResourceBody
from api.dependencies import RepositoryDep, SettingsDep
from api.fhir_router import dispatch
from api.http_fhir import fhir_request, http_response
from api.openapi_docs import fhir_body, fhir_responses

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
    result = await dispatch(repository, fhir_request(request, resource_type, resource_id, resource=resource))
    return http_response(request, result, base_url=settings.public_base_url)


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
    result = await dispatch(repository, fhir_request(request, resource_type, resource=resource))
    return http_response(request, result, base_url=settings.public_base_url)
