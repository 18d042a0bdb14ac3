"""One router for every FHIR interaction on stored resources, whether it came as an HTTP request or
as an entry of a batch or transaction Bundle (as Medplum's batch processor sends every entry through
its FhirRouter): method + type/id/version + conditions -> one repository call -> one result.

The HTTP routes (api/interactions/) only turn a request into a `FhirRequest` and the `FhirResult`
back into a response; api/bundle_processor only orders the entries, resolves their references and
turns results into response entries. What an interaction means (which call, which precondition,
which status) is decided here once, so an access rule, a scope check or a precondition cannot exist
for one transport and not the other.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from api.preconditions import checked_criteria, criteria, unchanged_since, version_from_etag
from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Invalid, MethodNotAllowed, NotImplementedYet
from fhir_mappings.validation import check_body_type, check_resource_type
from storage.repository import FhirRepository, WriteResult
from storage.versions import StoredVersion, fhir_instant

_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content", 304: "304 Not Modified"}

SearchFn = Callable[[FhirRepository, str, list[tuple[str, str]]], Awaitable[dict[str, Any]]]


class Spelling(Enum):
    """How the preconditions are named in errors: HTTP headers, or Bundle.entry.request elements."""

    HTTP = {"if_match": "If-Match", "if_none_match": "If-None-Match"}
    BUNDLE = {"if_match": "ifMatch", "if_none_match": "ifNoneMatch"}


@dataclass
class FhirRequest:
    method: str
    segments: list[str]  # [type], [type, id] or [type, id, "_history", version]
    query: list[tuple[str, str]] = field(default_factory=list)
    resource: dict[str, Any] | None = None
    patch: Any = None  # a JSON Patch document (an HTTP body, or a Bundle entry's Binary, decoded)
    if_match: str | None = None
    if_none_match: str | None = None
    if_none_exist: str | None = None
    if_modified_since: str | None = None
    assigned_id: str | None = None  # a POST whose id was chosen before processing (urn:uuid targets)
    spelling: Spelling = Spelling.HTTP
    url: str = ""  # as the client wrote it, for messages

    @classmethod
    def from_url(cls, method: str, url: str, **fields: Any) -> FhirRequest:
        """A Bundle entry's request: its url relative to the base (`Patient/1`, `Patient?identifier=x`)."""
        parts = urlsplit(url)
        path = parts.path
        for prefix in ("/fhir/", "fhir/"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
        segments = [s for s in path.strip("/").split("/") if s]
        query = parse_qsl(parts.query, keep_blank_values=True)
        return cls(method.upper(), segments, query, url=url, spelling=Spelling.BUNDLE, **fields)

    @property
    def resource_type(self) -> str:
        return self.segments[0]

    def point_at(self, resource_id: str) -> None:
        """A conditional write resolved to one id: from now on it is the plain interaction on that id."""
        self.segments = [self.resource_type, resource_id]
        self.query = []


@dataclass
class FhirResult:
    status: int
    version: StoredVersion | None = None
    body: dict[str, Any] | None = None  # a non-resource answer (e.g. a searchset Bundle)
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        """Bundle.entry.response for this result."""
        out: dict[str, Any] = {"status": _STATUS_TEXT.get(self.status, str(self.status))}
        if self.version is not None:
            v = self.version
            if self.status in (200, 201) and v.content is not None:
                out["location"] = f"{v.resource_type}/{v.id}/_history/{v.version_id}"
            out["etag"] = v.etag
            out["lastModified"] = fhir_instant(v.last_updated)
        return out


def written(result: WriteResult) -> FhirResult:
    """The answer to a write: 201 for a new resource, 200 for a new version (or a create that found its match)."""
    return FhirResult(201 if result.created else 200, version=result.version)


async def dispatch(repository: FhirRepository, request: FhirRequest, search: SearchFn | None = None) -> FhirResult:
    if not request.segments:
        raise Invalid(f"The request url '{request.url}' names no resource type")
    check_resource_type(request.resource_type)
    method = request.method
    if method in ("GET", "HEAD"):
        return await _read(repository, request, search)
    if method == "POST":
        return await _create(repository, request)
    if method == "PUT":
        return await _update(repository, request)
    if method == "PATCH":
        return await _patch(repository, request)
    if method == "DELETE":
        return await _delete(repository, request)
    raise MethodNotAllowed(f"{request.method} is not supported")


async def _create(repository: FhirRepository, request: FhirRequest) -> FhirResult:
    if len(request.segments) != 1:
        raise Invalid("A create (POST) goes to the resource type's URL")
    resource = _resource(request)
    check_body_type(resource, request.resource_type)  # the repository validates the rest
    if request.if_none_exist:
        return written(await repository.conditional_create(resource, criteria(request.if_none_exist)))
    return written(await repository.create(resource, resource_id=request.assigned_id))


async def _update(repository: FhirRepository, request: FhirRequest) -> FhirResult:
    resource = _resource(request)
    if_match = _version_tag(request)
    if len(request.segments) == 1:
        if not request.query:
            raise Invalid("A conditional update needs search criteria in the URL (e.g. ?identifier=system|value)")
        query = checked_criteria(request.query)
        return written(await repository.conditional_update(request.resource_type, query, resource, if_match=if_match))
    if len(request.segments) != 2:
        raise Invalid("An update (PUT) goes to Type/id, or to Type?criteria")
    return written(await repository.update(request.resource_type, request.segments[1], resource, if_match=if_match))


async def _patch(repository: FhirRepository, request: FhirRequest) -> FhirResult:
    if len(request.segments) != 2:
        raise Invalid("A patch goes to Type/id")
    operations = request.patch if request.patch is not None else _binary_patch(request.resource)
    result = await repository.patch(request.resource_type, request.segments[1], operations,
                                    if_match=_version_tag(request))
    return FhirResult(200, version=result.version)


async def _delete(repository: FhirRepository, request: FhirRequest) -> FhirResult:
    if len(request.segments) == 1:
        if not request.query:
            raise Invalid("A conditional delete needs search criteria in the URL")
        await repository.conditional_delete(request.resource_type, checked_criteria(request.query))
        return FhirResult(204)
    if len(request.segments) != 2:
        raise Invalid("A delete goes to Type/id, or to Type?criteria")
    version = await repository.delete(request.resource_type, request.segments[1], if_match=_version_tag(request))
    return FhirResult(204, headers={"ETag": version.etag} if version else {})


async def _read(repository: FhirRepository, request: FhirRequest, search: SearchFn | None) -> FhirResult:
    segments = request.segments
    if len(segments) == 1:
        if search is None:
            raise NotImplementedYet("Search is not available here")
        return FhirResult(200, body=await search(repository, request.resource_type, request.query))
    if len(segments) == 2:
        version = await repository.read(request.resource_type, segments[1])
        if _not_modified(version, request):
            return FhirResult(304, version=version)
        return FhirResult(200, version=version)
    if len(segments) == 4 and segments[2] == "_history":
        return FhirResult(200, version=await repository.vread(request.resource_type, segments[1], segments[3]))
    raise NotImplementedYet(f"GET {request.url} is not supported")


def _version_tag(request: FhirRequest) -> int | None:
    return version_from_etag(request.if_match, request.spelling.value["if_match"])


def _not_modified(version: StoredVersion, request: FhirRequest) -> bool:
    if request.spelling is Spelling.HTTP:
        try:
            return unchanged_since(version, request.if_none_match, request.if_modified_since)
        except ValueError:
            return False  # HTTP: an unreadable date is ignored
    version_from_etag(request.if_none_match, request.spelling.value["if_none_match"])  # malformed: a 400
    try:
        return unchanged_since(version, request.if_none_match, request.if_modified_since)
    except ValueError as exc:
        raise Invalid(f"ifModifiedSince '{request.if_modified_since}' is not a date") from exc


def _resource(request: FhirRequest) -> dict[str, Any]:
    if not isinstance(request.resource, dict):
        raise Invalid(f"{request.method} needs a resource")
    return request.resource


def _binary_patch(resource: dict[str, Any] | None) -> Any:
    """R4 carries a JSON Patch in a Binary resource inside a Bundle."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Binary":
        raise Invalid(
            "A PATCH entry carries its JSON Patch as a Binary resource (contentType application/json-patch+json)"
        )
    try:
        return fhir_json.loads(base64.b64decode(resource.get("data") or ""))
    except (ValueError, fhir_json.MalformedJson) as exc:
        raise Invalid(f"The Binary's data is not a JSON Patch document: {exc}") from exc
