"""read and vread (FHIR R4 http.html#read, #vread)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.dependencies import RepositoryDep, SettingsDep
from api.fhir_router import dispatch
from api.http_fhir import fhir_request, http_response
from api.openapi_docs import fhir_responses

router = APIRouter(tags=["read"])


@router.get(
    "/{resource_type}/{resource_id}",
    operation_id="read",
    summary="Read the current version of a resource",
    responses=fhir_responses(200, "The resource", 304, 404, 410),
)
async def read(
    request: Request, resource_type: str, resource_id: str, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    result = await dispatch(repository, fhir_request(request, resource_type, resource_id))
    return http_response(request, result, base_url=settings.public_base_url)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}",
    operation_id="vread",
    summary="Read one version of a resource",
    responses=fhir_responses(200, "That version of the resource", 404, 410),
)
async def vread(
    request: Request,
    resource_type: str,
    resource_id: str,
    version_id: str,
    repository: RepositoryDep,
    settings: SettingsDep,
) -> Response:
    result = await dispatch(repository, fhir_request(request, resource_type, resource_id, "_history", version_id))
    return http_response(request, result, base_url=settings.public_base_url)
