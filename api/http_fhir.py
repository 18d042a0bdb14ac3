"""An HTTP request as a `FhirRequest` for api.fhir_router, and its `FhirResult` as the HTTP answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response

from api import audit
from api.fhir_router import FhirRequest, FhirResult
from api.rendering import resource_response, write_response


def fhir_request(request: Request, *segments: str, resource: Any = None, patch: Any = None) -> FhirRequest:
    headers = request.headers
    scope = request.scope
    # From the scope, not `request.url`: building the URL object was 2 % of a read by id.
    return FhirRequest(
        request.method,
        list(segments),
        parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True),  # as Starlette decodes it
        resource=resource,
        patch=patch,
        if_match=headers.get("if-match"),
        if_none_match=headers.get("if-none-match"),
        if_none_exist=headers.get("if-none-exist"),
        if_modified_since=headers.get("if-modified-since"),
        url=scope["path"],
    )


def http_response(request: Request, result: FhirResult, *, base_url: str) -> Response:
    version = result.version
    if result.status == 204:
        audit.note_outcome(request, 204)
        return Response(status_code=204, headers=result.headers or None)
    assert version is not None
    if result.status == 304:
        return Response(status_code=304, headers={"ETag": version.etag, "Last-Modified": version.last_modified_http})
    if request.method in ("GET", "HEAD"):
        return resource_response(request, version)
    return write_response(request, version, status=result.status, base_url=base_url)
