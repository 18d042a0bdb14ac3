"""delete and conditional delete (FHIR R4 http.html#delete): versioned, idempotent."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api import audit
from api.dependencies import RepositoryDep
from api.openapi_docs import fhir_responses
from api.preconditions import criteria, version_from_etag
from fhir_mappings.outcomes import Invalid
from fhir_mappings.validation import check_resource_type

router = APIRouter(tags=["delete"])


@router.delete(
    "/{resource_type}/{resource_id}",
    operation_id="delete",
    summary="Delete a resource (a later read answers 410 Gone); deleting twice is harmless",
    status_code=204,
    responses=fhir_responses(204, "Deleted (or already absent)", 404, 412),
)
async def delete(request: Request, resource_type: str, resource_id: str, repository: RepositoryDep) -> Response:
    check_resource_type(resource_type)
    if_match = version_from_etag(request.headers.get("if-match"))
    version = await repository.delete(resource_type, resource_id, if_match=if_match)
    audit.note_outcome(request, 204)
    return Response(status_code=204, headers={"ETag": version.etag} if version else None)


@router.delete(
    "/{resource_type}",
    operation_id="conditional_delete",
    summary="Conditional delete: DELETE /fhir/Patient?identifier=system|value (at most one match)",
    status_code=204,
    responses=fhir_responses(204, "Deleted (or nothing matched)", 404, 412),
)
async def conditional_delete(request: Request, resource_type: str, repository: RepositoryDep) -> Response:
    check_resource_type(resource_type)
    if not request.url.query:
        raise Invalid("A conditional delete needs search criteria in the URL")
    await repository.conditional_delete(resource_type, criteria(request.url.query))
    audit.note_outcome(request, 204)
    return Response(status_code=204)
