"""The CapabilityStatement (FHIR R4 http.html#capabilities), generated from what the app really serves.

It is half a megabyte (147 types with their search parameters) and only changes with the code, so it
is built once per app, with an ETag: a client that has it gets 304, one that takes gzip gets the bytes
compressed once.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from api import services
from api.media import response_media_type
from api.openapi_docs import fhir_responses
from api.openapi_spec import served_operations
from api.rendering import json_response, wants_pretty
from api.search_service import search_capabilities
from exchange import CAPABILITY_EXTENSIONS, CAPABILITY_NOTES
from fhir_mappings import fhir_json
from fhir_mappings.resource_types import FHIR_VERSION, R4_RESOURCE_TYPES
from storage.access import SERVER_WRITTEN
from storage.versions import fhir_instant, now_ms

router = APIRouter(tags=["capabilities"])

# Which route (by operation id) implements which CapabilityStatement interaction code.
TYPE_INTERACTIONS = {
    "read": "read",
    "vread": "vread",
    "update": "update",
    "conditional_update": None,
    "patch": "patch",
    "delete": "delete",
    "history_instance": "history-instance",
    "history_type": "history-type",
    "create": "create",
    "search": "search-type",
}
_WRITES = {"create", "update", "patch", "delete"}
REST_DOCUMENTATION = (
    "Access follows the token's SMART scopes and Puente's access rules in every clause: a chain or `_has` "
    "into a type the token may not search is refused (403); `_include`/`_revinclude` leave out types it may "
    "not read. A write may not add a reference that would let its caller (or anyone) see more than an "
    "administrator granted (403/404). Callers see and match what they created themselves. "
    "Update-as-create takes a client-assigned UUID id (callers other than administrators). A conditional "
    "create matches only what the caller may see; a match it may not see is never revealed. "
    "Polling: `Bundle.meta.lastUpdated` of every search and history answer is a watermark: poll with "
    "`_lastUpdated=gt<it>` (or `_history?_since=<it>`) and nothing is missed or repeated. "
    "AuditEvents are written by the server only, one per interaction, before the answer is sent."
)
SYSTEM_INTERACTIONS = {
    "transaction": ("transaction", "batch"),  # one route serves both Bundle types
    "history_system": ("history-system",),
    "search_system": ("search-system",),
}


@router.get(
    "/metadata",
    operation_id="capabilities",
    summary="The server's CapabilityStatement",
    responses=fhir_responses(200, "CapabilityStatement"),
)
async def capabilities(request: Request) -> Response:
    built = _built(request)
    headers = {"ETag": built.etag, "Vary": "Accept-Encoding"}
    if _has(request.headers.get("if-none-match"), built.etag):
        return Response(status_code=304, headers=headers)
    if wants_pretty(request):
        return json_response(request, built.statement, headers=headers)
    media_type = response_media_type(request)
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        return Response(built.gzipped, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(built.body, media_type=media_type, headers=headers)


@dataclass(frozen=True)
class _Built:
    statement: dict[str, Any]
    body: bytes
    gzipped: bytes
    etag: str


def _built(request: Request) -> _Built:
    shared = services.of(request)
    built: _Built | None = shared.capability_statement
    if built is None:
        statement = capability_statement(request)
        body = fhir_json.dumps(statement)
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:16]}"'
        built = _Built(statement, body, gzip.compress(body, compresslevel=9, mtime=0), etag)
        shared.capability_statement = built
    return built


def _has(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)


def capability_statement(request: Request) -> dict[str, Any]:
    app = request.app
    shared = services.of(request)
    settings = shared.settings
    implemented = served_operations(app)  # the routes the app really serves
    interactions = [{"code": code} for op, code in TYPE_INTERACTIONS.items() if code and op in implemented]
    read_only = [i for i in interactions if i["code"] not in _WRITES]
    operations = shared.operations
    resources = []
    for resource_type in sorted(R4_RESOURCE_TYPES):
        entry: dict[str, Any] = {
            "type": resource_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            "interaction": read_only if resource_type in SERVER_WRITTEN else interactions,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": "update" in implemented,
            "conditionalCreate": "create" in implemented,
            "conditionalRead": "modified-since",
            "conditionalUpdate": "conditional_update" in implemented,
            "conditionalDelete": "single" if "conditional_delete" in implemented else "not-supported",
        }
        if resource_type in CAPABILITY_NOTES:
            entry["documentation"] = CAPABILITY_NOTES[resource_type]
        if resource_type in CAPABILITY_EXTENSIONS:
            entry["extension"] = CAPABILITY_EXTENSIONS[resource_type]
        params = search_capabilities(resource_type)
        if params:
            entry["searchParam"] = params
        type_operations = [
            op for op in operations if op.get("type") in (None, resource_type) and op.get("level") != "system"
        ]
        if type_operations:
            entry["operation"] = [{"name": op["name"], "definition": op["definition"]} for op in type_operations]
        resources.append(entry)
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": REST_DOCUMENTATION,
        "resource": resources,
        "interaction": [
            {"code": code} for op, codes in SYSTEM_INTERACTIONS.items() if op in implemented for code in codes
        ],
    }
    if shared.auth is not None:
        rest["security"] = shared.auth.security_capability
    system_ops = [op for op in operations if op.get("level") == "system"]
    if system_ops:
        rest["operation"] = [{"name": op["name"], "definition": op["definition"]} for op in system_ops]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": fhir_instant(now_ms()),
        "kind": "instance",
        "software": {"name": "Puente", "version": app.version},
        "implementation": {"description": "Puente FHIR R4 server for CHW programmes", "url": settings.public_base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [rest],
    }
