"""patch with JSON Patch (FHIR R4 http.html#patch).

The body is a JSON Patch (RFC 6902) array, sent as application/json-patch+json or, as many HTTP
clients and generated SDKs do, as application/json. FHIRPath Patch (a Parameters resource) is not
supported: application/fhir+json is a 415."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.body import PatchBody
from api.dependencies import RepositoryDep, SettingsDep
from api.fhir_router import dispatch
from api.http_fhir import fhir_request, http_response
from api.media import JSON_PATCH
from api.openapi_docs import fhir_body, fhir_responses

router = APIRouter(tags=["patch"])


@router.patch(
    "/{resource_type}/{resource_id}",
    operation_id="patch",
    summary="Patch a resource with a JSON Patch document",
    responses=fhir_responses(200, "Patched", 404, 410, 412, 413, 415, 422),
    openapi_extra=fhir_body("A JSON Patch (RFC 6902) document", JSON_PATCH),
)
async def patch(
    request: Request,
    resource_type: str,
    resource_id: str,
    operations: PatchBody,
    repository: RepositoryDep,
    settings: SettingsDep,
) -> Response:
    result = await dispatch(repository, fhir_request(request, resource_type, resource_id, patch=operations))
    return http_response(request, result, base_url=settings.public_base_url)
