"""create and conditional create (FHIR R4 http.html#create, #ccreate)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import audit
from api.body import ResourceBody
from api.dependencies import RepositoryDep, SettingsDep
from api.fhir_router import dispatch
from api.http_fhir import fhir_request, http_response
from api.openapi_docs import fhir_body, fhir_responses

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
    # The request's transaction holds this create and, when audited, its AuditEvent, which a create
    # that commits by its own statement stores in that statement (one round trip for both).
    repository.create_is_whole_transaction = True
    if audit.enabled(request):
        repository.record_with_create = audit.record_of_create(request)
    result = await dispatch(repository, fhir_request(request, resource_type, resource=resource))
    return http_response(request, result, base_url=settings.public_base_url)
