"""create and conditional create (FHIR R4 http.html#create, #ccreate)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.body import ResourceBody
from api.dependencies import RepositoryDep, SettingsDep
from api.openapi_docs import fhir_body, fhir_responses
from api.preconditions import criteria
from api.rendering import write_response
from fhir_mappings.validation import check_body_type, check_resource_type

router = APIRouter(tags=["create"])


@router.post(
    "/{resource_type}",
    operation_id="create",
    summary="Create a resource (server-assigned id); If-None-Exist makes it conditional",
    responses=fhir_responses(201, "Created", 404, 412, 413, 415, 422),
    openapi_extra=fhir_body("The resource to create"),
)
async def create(
    request: Request, resource_type: str, resource: ResourceBody, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    check_resource_type(resource_type)
    check_body_type(resource, resource_type)  # the repository validates the rest
    if_none_exist = request.headers.get("if-none-exist")
    if if_none_exist:
        result = await repository.conditional_create(resource, criteria(if_none_exist))
    else:
        result = await repository.create(resource)
    status = 201 if result.created else 200
    return write_response(request, result.version, status=status, base_url=settings.public_base_url)
