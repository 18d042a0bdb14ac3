"""delete and conditional delete (FHIR R4 http.html#delete): versioned, idempotent."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.dependencies import RepositoryDep, SettingsDep
from api.fhir_router import dispatch
from api.http_fhir import fhir_request, http_response
from api.openapi_docs import fhir_responses

router = APIRouter(tags=["delete"])


@router.delete(
    "/{resource_type}/{resource_id}",
    operation_id="delete",
    summary="Delete a resource (a later read answers 410 Gone); deleting twice is harmless",
    status_code=204,
    responses=fhir_responses(204, "Deleted (or already absent)", 404, 412),
)
async def delete(
    request: Request, resource_type: str, resource_id: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    result = await dispatch(repository, fhir_request(request, resource_type, resource_id))
    return http_response(request, result, base_url=settings.public_base_url)


@router.delete(
    "/{resource_type}",
    operation_id="conditional_delete",
    summary="Conditional delete: DELETE /fhir/Patient?identifier=system|value (at most one match)",
    status_code=204,
    responses=fhir_responses(204, "Deleted (or nothing matched)", 404, 412),
)
async def conditional_delete(
    request: Request, resource_type: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    result = await dispatch(repository, fhir_request(request, resource_type))
    return http_response(request, result, base_url=settings.public_base_url)
