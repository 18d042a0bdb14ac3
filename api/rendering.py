"""Turning stored versions and Bundles into HTTP responses (with _summary, _elements and _pretty)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from api import audit
from api.media import response_media_type
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, information
from fhir_mappings.summary import apply_elements, apply_summary
from storage.versions import StoredVersion


def wants_pretty(request: Request) -> bool:
    return request.query_params.get("_pretty", "").lower() == "true"


def json_response(request: Request, body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        fhir_json.dumps(body, pretty=wants_pretty(request)),
        status_code=status,
        media_type=response_media_type(request),
        headers=headers,
    )


def version_headers(version: StoredVersion, base_url: str) -> dict[str, str]:
    return {
        "ETag": version.etag,
        "Last-Modified": version.last_modified_http,
        "Location": f"{base_url}/{version.resource_type}/{version.id}/_history/{version.version_id}",
    }


def shaped_content(request: Request, content: str) -> str | dict[str, Any]:
    """The stored JSON as is, unless _summary / _elements ask for less."""
    summary = request.query_params.get("_summary")
    elements = request.query_params.get("_elements")
    if summary is None and elements is None and not wants_pretty(request):
        return content
    resource = fhir_json.loads_stored(content)
    if summary is not None and summary != "false":
        if summary not in ("true", "text", "data", "count"):
            raise Invalid(f"_summary={summary} is not one of true, text, data, count, false")
        resource = apply_summary(resource, summary)
    elif elements:
        resource = apply_elements(resource, [e.strip() for e in elements.split(",") if e.strip()])
    return resource


def resource_response(
    request: Request, version: StoredVersion, *, status: int = 200, extra_headers: dict[str, str] | None = None
) -> Response:
    assert version.content is not None
    headers = {"ETag": version.etag, "Last-Modified": version.last_modified_http, **(extra_headers or {})}
    shaped = shaped_content(request, version.content)
    if isinstance(shaped, str):
        return Response(shaped, status_code=status, media_type=response_media_type(request), headers=headers)
    return json_response(request, shaped, status=status, headers=headers)


def write_response(request: Request, version: StoredVersion, *, status: int, base_url: str) -> Response:
    """A create/update answer shaped by `Prefer: return=minimal | representation | OperationOutcome`."""
    headers = version_headers(version, base_url)
    audit.note_outcome(request, status, headers["Location"])
    prefer = _prefer_return(request)
    if prefer == "minimal":
        return Response(status_code=status, headers=headers)
    if prefer == "OperationOutcome":
        outcome = information(f"{version.reference} stored as version {version.version_id}")
        return json_response(request, outcome, status=status, headers=headers)
    return resource_response(request, version, status=status, extra_headers=headers)


def prefers_minimal(request: Request) -> bool:
    return _prefer_return(request) == "minimal"


def _prefer_return(request: Request) -> str:
    for part in (request.headers.get("prefer") or "").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() == "return":
                return value.strip().strip('"')
    return "representation"
