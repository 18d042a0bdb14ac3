"""patch with JSON Patch (FHIR R4 http.html#patch).

The body is a JSON Patch (RFC 6902) array, sent as application/json-patch+json or, as many HTTP
clients and generated SDKs do, as application/json. FHIRPath Patch (a Parameters resource) is not
supported: application/fhir+json is a 415."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.body import PatchBody
from api.dependencies import RepositoryDep, SettingsDep
from api.media import JSON_PATCH
from api.openapi_docs import fhir_body, fhir_responses
from api.preconditions import version_from_etag
from api.rendering import write_response
from fhir_mappings.validation import check_resource_type

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
    check_resource_type(resource_type)
    if_match = version_from_etag(request.headers.get("if-match"))
    result = await repository.patch(resource_type, resource_id, operations, if_match=if_match)
    return write_response(request, result.version, status=200, base_url=settings.public_base_url)
