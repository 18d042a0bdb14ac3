"""read and vread (FHIR R4 http.html#read, #vread)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.dependencies import RepositoryDep
from api.openapi_docs import fhir_responses
from api.preconditions import not_modified
from api.rendering import resource_response
from fhir_mappings.validation import check_resource_type

router = APIRouter(tags=["read"])


@router.get(
    "/{resource_type}/{resource_id}",
    operation_id="read",
    summary="Read the current version of a resource",
    responses=fhir_responses(200, "The resource", 304, 404, 410),
)
async def read(request: Request, resource_type: str, resource_id: str, repository: RepositoryDep) -> Response:
    check_resource_type(resource_type)
    version = await repository.read(resource_type, resource_id)
    if not_modified(request, version):
        return Response(status_code=304, headers={"ETag": version.etag, "Last-Modified": version.last_modified_http})
    return resource_response(request, version)


@router.get(
    "/{resource_type}/{resource_id}/_history/{version_id}",
    operation_id="vread",
    summary="Read one version of a resource",
    responses=fhir_responses(200, "That version of the resource", 404, 410),
)
async def vread(
    request: Request, resource_type: str, resource_id: str, version_id: str, repository: RepositoryDep
) -> Response:
    check_resource_type(resource_type)
    version = await repository.vread(resource_type, resource_id, version_id)
    return resource_response(request, version)
