"""A transport-independent FHIR router for Bundle entries: method + relative URL -> repository call.

The HTTP routes serve single requests; this serves the same interactions for the entries of a
batch or transaction Bundle, with the same repository (so the same validation, access rules and
hooks apply).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from api.preconditions import criteria, unchanged_since, version_from_etag
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, MethodNotAllowed, NotImplementedYet
from fhir_mappings.validation import check_resource_type
from storage.repository import FhirRepository, WriteResult
from storage.versions import StoredVersion, fhir_instant

_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified"}


@dataclass
class EntryRequest:
    method: str
    url: str
    resource: dict[str, Any] | None = None
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: str | None = None
    assigned_id: str | None = None  # for a POST whose id was chosen before processing (urn:uuid targets)


@dataclass
class EntryResult:
    status: int
    version: StoredVersion | None = None
    body: dict[str, Any] | None = None  # a non-resource answer (e.g. a searchset Bundle)
    headers: dict[str, str] = field(default_factory=dict)

    def response(self, base_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {"status": _STATUS_TEXT.get(self.status, str(self.status))}
        if self.version is not None:
            v = self.version
            if self.status in (200, 201) and v.content is not None:
                out["location"] = f"{v.resource_type}/{v.id}/_history/{v.version_id}"
            out["etag"] = v.etag
            out["lastModified"] = fhir_instant(v.last_updated)
        return out


def split_url(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    parts = urlsplit(url)
    path = parts.path
    for prefix in ("/fhir/", "fhir/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    segments = [s for s in path.strip("/").split("/") if s]
    return segments, parse_qsl(parts.query, keep_blank_values=True)


def _version_tag(value: str | None) -> int | None:
    return version_from_etag(value, "ifMatch")


async def dispatch(repository: FhirRepository, request: EntryRequest, search: Any = None) -> EntryResult:
    segments, query = split_url(request.url)
    if not segments:
        raise Invalid(f"entry.request.url '{request.url}' names no resource type")
    resource_type = segments[0]
    check_resource_type(resource_type)
    method = request.method.upper()
    if method in ("GET", "HEAD"):
        return await _read(repository, segments, query, request, search)
    if method == "POST":
        if len(segments) != 1:
            raise Invalid("A POST entry's url is the resource type")
        resource = _resource(request)
        if request.if_none_exist:
            result = await repository.conditional_create(resource, criteria(request.if_none_exist))
        else:
            result = await repository.create(resource, resource_id=request.assigned_id)
        return written(result)
    if method == "PUT":
        resource = _resource(request)
        if len(segments) == 1:
            if not query:
                raise Invalid("A conditional PUT entry needs search criteria")
            return written(
                await repository.conditional_update(
                    resource_type, query, resource, if_match=_version_tag(request.if_match)
                )
            )
        return written(
            await repository.update(resource_type, segments[1], resource, if_match=_version_tag(request.if_match))
        )
    if method == "PATCH":
        if len(segments) != 2:
            raise Invalid("A PATCH entry's url is Type/id")
        operations = _patch_document(request.resource)
        return written(
            await repository.patch(resource_type, segments[1], operations, if_match=_version_tag(request.if_match))
        )
    if method == "DELETE":
        if len(segments) == 1:
            if not query:
                raise Invalid("A conditional DELETE entry needs search criteria")
            await repository.conditional_delete(resource_type, query)
            return EntryResult(204)
        version = await repository.delete(resource_type, segments[1], if_match=_version_tag(request.if_match))
        return EntryResult(204, headers={"ETag": version.etag} if version else {})
    raise MethodNotAllowed(f"entry.request.method {request.method} is not supported")


async def _read(
    repository: FhirRepository, segments: list[str], query: list[tuple[str, str]], request: EntryRequest, search: Any
) -> EntryResult:
    resource_type = segments[0]
    if len(segments) == 1:
        if search is None:
            raise NotImplementedYet("Search inside a Bundle is not available")
        return EntryResult(200, body=await search(repository, resource_type, query))
    if len(segments) == 2:
        version = await repository.read(resource_type, segments[1])
        if _not_modified(version, request):
            return EntryResult(304, version=version)
        return EntryResult(200, version=version)
    if len(segments) == 4 and segments[2] == "_history":
        return EntryResult(200, version=await repository.vread(resource_type, segments[1], segments[3]))
    raise NotImplementedYet(f"GET {request.url} is not supported inside a Bundle")


def _not_modified(version: StoredVersion, request: EntryRequest) -> bool:
    version_from_etag(request.if_none_match, "ifNoneMatch")  # a malformed tag is a 400 inside a Bundle
    try:
        return unchanged_since(version, request.if_none_match, request.if_modified_since)
    except ValueError as exc:
        raise Invalid(f"ifModifiedSince '{request.if_modified_since}' is not a date") from exc


def written(result: WriteResult) -> EntryResult:
    """The entry answer for a write: 201 for a new resource, 200 for a new version."""
    return EntryResult(201 if result.created else 200, version=result.version)


def _resource(request: EntryRequest) -> dict[str, Any]:
    if not isinstance(request.resource, dict):
        raise Invalid(f"{request.method} entry has no resource")
    return request.resource


def _patch_document(resource: dict[str, Any] | None) -> Any:
    """R4 carries a JSON Patch in a Binary resource inside a Bundle."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
        raise Invalid(
            "A PATCH entry carries its JSON Patch as a Binary resource (contentType application/json-patch+json)"
        )
    try:
        return fhir_json.loads(base64.b64decode(resource.get("data") or ""))
    except (ValueError, fhir_json.MalformedJson) as exc:
        raise Invalid(f"The Binary's data is not a JSON Patch document: {exc}") from exc
