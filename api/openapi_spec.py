"""The OpenAPI document integrators build on (served at /openapi.json, committed as openapi/openapi.json).

FastAPI describes the routes as declared; that is kept for the fixed routes (the authorization server,
batch/transaction, the clinical operations, health), and the generic `/fhir/{resource_type}/...`
routes are replaced by one path set per R4 type (`api.openapi_types`). Added: the R4 schemas as
components, OAuth 2.0 security schemes as SMART uses them, `servers`, tags, and an OperationOutcome
for every error. Built once per app: 147 types make it a few megabytes, served gzipped.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import services
from api.openapi_examples import FORECAST_REQUEST, HOUSEHOLD_VISIT
from api.openapi_schemas import REF, component_schemas, referenced
from api.openapi_types import INTERACTIONS, RESPONSE, shared_parameters, type_paths
from fhir_mappings.resource_types import R4_RESOURCE_TYPES
from settings import Settings

FHIR_JSON = "application/fhir+json"
OUTCOME = {"$ref": REF + "OperationOutcome"}
ERRORS = {
    "304": "Not modified: the client's copy (If-None-Match / If-Modified-Since) is current",
    "400": "Invalid request or resource; the OperationOutcome names the element in `expression`",
    "401": "No valid access token",
    "403": "The token's scopes do not allow this",
    "404": "Unknown resource type or id (or not visible to this caller)",
    "405": "Method not allowed",
    "406": "Only FHIR JSON can be returned",
    "409": "Version conflict",
    "410": "The resource was deleted",
    "412": "If-Match failed, or conditional criteria matched more than one resource",
    "413": "Body (after gzip inflation) or Bundle too large",
    "415": "Unsupported Content-Type or Content-Encoding",
    "422": "A business rule failed",
    "503": "Not ready, or the database was busy: retry",
}
PUBLIC_OPERATIONS = {
    "healthz", "readyz", "capabilities", "smart_configuration", "auth_jwks", "auth_token", "auth_authorize",
    "auth_authorize_post", "auth_introspect", "auth_revoke", "openid_configuration",
}
SCOPES = {
    "system/*.rs": "Backend service: read and search everything it is allowed to see",
    "system/*.cruds": "Backend service: full access",
    "system/ServiceRequest.rs": "A clinic: the referrals addressed to it",
    "system/Task.rus": "A clinic: read and update the referrals' tasks",
    "user/*.cruds": "A CHW or supervisor app: the user's patients and work",
    "user/*.rs": "Read-only access as the user",
    "patient/*.rs": "Read the patient in context",
    "launch/patient": "Ask for a patient in context",
    "offline_access": "A refresh token that survives days offline",
    "openid": "An OpenID Connect id_token",
    "fhirUser": "The id_token names the user's Practitioner",
}
_DESCRIPTION = """FHIR R4 (4.0.1) interoperability API for community health worker programmes.

Every R4 resource type is served at `/fhir/{type}` (create, read, update, patch, delete, history,
search, `$validate`); bodies are `application/fhir+json` and every error is an `OperationOutcome`.
A CHW app uploads a household visit as one transaction Bundle (`POST /fhir`); a clinic pulls the
referrals addressed to it (`GET /fhir/ServiceRequest?performer=...`).

Authorization is SMART on FHIR: backend services (clinics, integrators) use the client credentials
grant with a signed client assertion (`private_key_jwt`, RS384 or ES384); apps use the authorization
code grant with PKCE (S256). See `/fhir/.well-known/smart-configuration`. Responses are gzipped for
clients that accept it, and request bodies may be sent with `Content-Encoding: gzip`.

Search parameters are typed as FHIR types (in each parameter's description); their values are written:
- token: `[system]|[code]`, `[code]` or `[system]|`; modifiers `:not`, `:missing`, `:text`
- string: starts with, case- and accent-insensitive; `:exact`, `:contains`, `:missing`
- date: `[prefix]YYYY[-MM[-DD[Thh:mm:ss[Z|±hh:mm]]]]`, prefixes `eq ne gt lt ge le sa eb ap`
- reference: `[type]/[id]`, `[id]` or an absolute URL; `:[type]`, `:identifier`, `:missing`
- quantity: `[prefix][number]|[system]|[code]`, compared in UCUM-canonical units
- number: `[prefix][number]`, prefixes `eq ne gt lt ge le ap`
- uri: exact; `:above`, `:below`, `:missing`
- composite: `[value]$[value]`, the components in order

Repeat a parameter for AND; separate values with commas for OR."""


def install(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _routes_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's own description of the routes as declared (its routers nest, so it is the one census)."""
    shared = services.of_app(app)
    if shared.routes_openapi is None:
        shared.routes_openapi = get_openapi(title=app.title, version=app.version, routes=app.routes)
    return shared.routes_openapi


def served_operations(app: FastAPI) -> set[str]:
    """The operation ids of the routes the app really serves (`read`, `search`, `transaction`, ...)."""
    return {
        op["operationId"]
        for item in _routes_document(app)["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }


def build(app: FastAPI, settings: Settings) -> dict[str, Any]:
    base = _routes_document(app)
    served = served_operations(app)
    paths: dict[str, Any] = {}
    for path, item in base["paths"].items():
        if "{resource_type}" in path:
            continue  # spelled out per type below
        paths[path] = {method: _tidy(method, op) for method, op in item.items()}
    if "transaction" in served:
        body = paths["/fhir"]["post"]["requestBody"]["content"]
        for media in body.values():
            media["schema"] = {"$ref": REF + "Bundle"}
            media["examples"] = {"household-visit": {"summary": "A household visit", "value": HOUSEHOLD_VISIT}}
        paths["/fhir"]["post"]["responses"]["200"]["content"][FHIR_JSON]["schema"] = {"$ref": REF + "Bundle"}
    forecast = paths.get("/fhir/$immds-forecast", {}).get("post")
    if forecast is not None:
        for media in forecast["requestBody"]["content"].values():
            media["schema"] = {"$ref": REF + "Parameters"}
            media["examples"] = {"forecast": {"summary": "A child's forecast", "value": FORECAST_REQUEST}}
    types = sorted(R4_RESOURCE_TYPES)
    for resource_type in types:
        paths.update(type_paths(resource_type, served & set(INTERACTIONS)))
    _auth_endpoints(paths)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Puente FHIR R4 API",
            "version": app.version,
            "summary": "FHIR R4 API for community health worker programmes",
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "contact": {"name": "Puente", "url": "https://puente.example.org"},
        },
        "servers": [{"url": settings.public_base_url.removesuffix("/fhir"), "description": "This Puente"}],
        "security": [{"smart_backend": []}, {"smart_app": []}],
        "tags": _tags(paths, types),
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": _security_schemes(),
            "parameters": shared_parameters(),
            "responses": {code: _error_response(code) for code in ERRORS},
            "headers": _headers(),
        },
    }
    roots = referenced(document) | {"OperationOutcome"}
    schemas = component_schemas(roots)
    schemas["JsonPatch"] = _JSON_PATCH
    document["components"]["schemas"] = schemas
    _drop_unused(document)
    return document


def _tidy(method: str, operation: dict[str, Any]) -> dict[str, Any]:
    """A FastAPI-made operation as FHIR answers it: errors are OperationOutcomes, never FastAPI's 422."""
    op = copy.deepcopy(operation)
    responses = op.setdefault("responses", {})
    invalid = responses.get("422", {})
    if "HTTPValidationError" in str(invalid):
        del responses["422"]
    for code in list(responses):
        if code in ERRORS and code != "304":
            responses[code] = {"$ref": RESPONSE + code}
    if not any(code.startswith("4") for code in responses):
        responses["400"] = {"$ref": RESPONSE + "400"}
    ok = responses.get("200", {})
    for media in ok.get("content", {}).values():
        if media.get("schema") == {}:
            media["schema"] = {"type": "object"}
        elif "Parameters" in ok.get("description", "") and "FHIR R4 resource" in str(media.get("schema")):
            media["schema"] = {"$ref": REF + "Parameters"}  # an operation's output
    if op.get("operationId") in PUBLIC_OPERATIONS:
        op["security"] = []
    return op


def _error_response(code: str) -> dict[str, Any]:
    if code == "304":
        return {"description": ERRORS[code]}
    return {"description": ERRORS[code], "content": {FHIR_JSON: {"schema": OUTCOME}}}


def _headers() -> dict[str, Any]:
    return {
        "Location": {"description": "The version's URL: [base]/[type]/[id]/_history/[vid]",
                     "schema": {"type": "string", "format": "uri"}},
        "ETag": {"description": "The version, as a weak ETag (W/\"3\")", "schema": {"type": "string"}},
        "Last-Modified": {"description": "When the version was stored", "schema": {"type": "string"}},
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "smart_backend": {
            "type": "oauth2",
            "description": "SMART Backend Services: the client authenticates with a signed JWT assertion "
            "(private_key_jwt: RS384 or ES384, iss = sub = client_id, aud = the token URL, at most 5 minutes, "
            "unique jti) or, for clients that cannot hold keys, client_secret_basic.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": "/auth/token",
                    "scopes": {k: v for k, v in SCOPES.items() if k.startswith("system/")},
                }
            },
        },
        "smart_app": {
            "type": "oauth2",
            "description": "SMART App Launch (standalone): authorization code with PKCE (S256 required); "
            "offline_access gives a rotating refresh token.",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/auth/authorize",
                    "tokenUrl": "/auth/token",
                    "refreshUrl": "/auth/token",
                    "scopes": {k: v for k, v in SCOPES.items() if not k.startswith("system/")},
                }
            },
        },
    }


def _tags(paths: dict[str, Any], types: list[str]) -> list[dict[str, Any]]:
    operations = [op for item in paths.values() for op in item.values() if isinstance(op, dict)]
    used = {tag for op in operations for tag in op.get("tags", [])}
    tags = []
    for name in sorted(used - set(types)):
        tags.append({"name": name, "description": f"Puente's {name} endpoints"})
    for name in types:
        if name in used:
            tags.append({
                "name": name,
                "description": f"FHIR R4 {name} resources",
                "externalDocs": {"url": f"https://hl7.org/fhir/R4/{name.lower()}.html"},
            })
    return tags


_FORM = "application/x-www-form-urlencoded"


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": {k: {"type": "string", "description": v} for k, v in properties.items()},
              "required": required}
    return {"required": True, "content": {_FORM: {"schema": schema}}}


def _auth_endpoints(paths: dict[str, Any]) -> None:
    """The OAuth endpoints take forms and answer JSON (RFC 6749, 7662, 7009): say so."""
    token = paths.get("/auth/token", {}).get("post")
    if token is not None:
        token["requestBody"] = _form({
            "grant_type": "client_credentials | authorization_code | refresh_token",
            "scope": "Requested scopes, space-separated",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "The signed JWT (private_key_jwt)",
            "code": "authorization_code: the code",
            "redirect_uri": "authorization_code: the registered redirect URI",
            "code_verifier": "authorization_code: the PKCE verifier",
            "client_id": "Public clients: the client id",
            "refresh_token": "refresh_token: the refresh token (each works once)",
        }, ["grant_type"])
        token["responses"]["200"]["description"] = "An access token (and refresh token, id_token as granted)"
        token["responses"]["401"] = {"description": "Client authentication failed (invalid_client)",
                                     "content": {"application/json": {"schema": {"type": "object"}}}}
    for path, fields in (("/auth/introspect", {"token": "The token"}), ("/auth/revoke", {"token": "The token"})):
        op = paths.get(path, {}).get("post")
        if op is not None:
            op["requestBody"] = _form({**fields, "token_type_hint": "access_token | refresh_token"}, ["token"])


_JSON_PATCH = {
    "type": "array",
    "description": "A JSON Patch document (RFC 6902)",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
            "path": {"type": "string", "description": "A JSON Pointer, e.g. /active"},
            "from": {"type": "string"},
            "value": {},
        },
    },
}


def _drop_unused(document: dict[str, Any]) -> None:
    """Strict linters refuse components nothing refers to."""
    text = str(document["paths"]) + str(document["components"]["schemas"])
    for kind in ("parameters", "responses", "headers"):
        section = document["components"][kind]
        for name in list(section):
            if f"#/components/{kind}/{name}'" not in text:
                del section[name]
