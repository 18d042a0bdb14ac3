"""One path set per resource type for the OpenAPI document: typed bodies, typed search parameters.

The app serves every type through generic routes (`/fhir/{resource_type}/...`), which a client
generator can only turn into untyped calls. Integrators want `search_patient(birthdate=...)` returning
a Bundle and `create_patient(body=Patient)`, so the document spells the generic routes out per R4
type, with the type's JSON schema and its search parameters from the registry, referring to shared
components (parameters, responses, headers) so that 147 types stay a document of a few megabytes.
Only interactions whose generic route the app really serves are written (see `INTERACTIONS`).
"""

from __future__ import annotations

from typing import Any

from api.openapi_examples import REQUEST_EXAMPLES
from api.openapi_schemas import REF
from fhir_mappings.ids import ID_PATTERN
from fhir_mappings.search.registry import SearchParam, registry

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
PARAM = "#/components/parameters/"
RESPONSE = "#/components/responses/"
HEADER = "#/components/headers/"

# The generic routes (by operation id) and what each becomes per type: (path suffix, method, verb).
INTERACTIONS: dict[str, tuple[str, str, str]] = {
    "search": ("", "get", "search"),
    "create": ("", "post", "create"),
    "conditional_update": ("", "put", "conditionalUpdate"),
    "conditional_delete": ("", "delete", "conditionalDelete"),
    "search_post": ("/_search", "post", "searchPost"),
    "history_type": ("/_history", "get", "historyType"),
    "validate": ("/$validate", "post", "validate"),
    "read": ("/{id}", "get", "read"),
    "update": ("/{id}", "put", "update"),
    "patch": ("/{id}", "patch", "patch"),
    "delete": ("/{id}", "delete", "delete"),
    "history_instance": ("/{id}/_history", "get", "historyInstance"),
    "vread": ("/{id}/_history/{vid}", "get", "vread"),
    "validate_instance": ("/{id}/$validate", "post", "validateInstance"),
}

# Search result parameters and Resource-level parameters: shared components, one definition each.
# How each parameter type is written is said once, in the document's description (SEARCH_HELP).
RESULT_PARAMETERS = ("_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total")
_PREFIXED = r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?"
_PATTERNS = {
    "date": _PREFIXED
    + r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$",
    "number": _PREFIXED + r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$",
}
_SEARCH_EXAMPLES = {
    ("Patient", "birthdate"): "ge2021-12-01",
    ("Patient", "name"): "Quispe",
    ("Patient", "identifier"): "https://puente.example.org/fhir/sid/pe-dni|45871236",
    ("Observation", "code"): "http://loinc.org|718-7",
    ("Observation", "subject"): "Patient/chw-child-0003",
    ("Observation", "date"): "ge2026-11-01",
    ("ServiceRequest", "performer"): "Organization/cs-la-esperanza",
    ("ServiceRequest", "status"): "active",
    ("Task", "status"): "requested",
    ("Immunization", "patient"): "Patient/chw-child-0003",
}


def operation_id(verb: str, resource_type: str) -> str:
    return f"{verb}{resource_type}"


def type_paths(resource_type: str, served: set[str]) -> dict[str, dict[str, Any]]:
    """The path items of one resource type, for the generic operations in `served`."""
    paths: dict[str, dict[str, Any]] = {}
    for generic, (suffix, method, verb) in INTERACTIONS.items():
        if generic not in served:
            continue
        path = f"/fhir/{resource_type}{suffix}"
        operation = _operation(generic, resource_type)
        operation["operationId"] = operation_id(verb, resource_type)
        operation["tags"] = [resource_type]
        item = paths.setdefault(path, {})
        item[method] = operation
        if "{id}" in path:
            item.setdefault("parameters", [{"$ref": PARAM + "id"}])
            if "{vid}" in path:
                item["parameters"] = [{"$ref": PARAM + "id"}, {"$ref": PARAM + "vid"}]
    return paths


def _resource(resource_type: str) -> dict[str, str]:
    return {"$ref": REF + resource_type}


def _body(resource_type: str, description: str) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _resource(resource_type)}
    example = REQUEST_EXAMPLES.get(resource_type)
    if example is not None:
        media["examples"] = {example[0]: {"summary": example[1], "value": example[2]}}
    return {"required": True, "description": description, "content": {FHIR_JSON: media, "application/json": media}}


def _ok(resource_type: str, description: str, *headers: str) -> dict[str, Any]:
    content = {FHIR_JSON: {"schema": _resource(resource_type)}}
    response: dict[str, Any] = {"description": description, "content": content}
    if headers:
        response["headers"] = {h: {"$ref": HEADER + h} for h in headers}
    return response


def _errors(*statuses: int) -> dict[str, dict[str, str]]:
    return {str(s): {"$ref": RESPONSE + str(s)} for s in (400, 401, 403, *statuses)}


def _operation(generic: str, t: str) -> dict[str, Any]:
    if generic == "search":
        return {
            "summary": f"Search {t} resources",
            "description": "Every R4 search parameter of the type, plus the result parameters. Repeat a "
            "parameter for AND, separate values with commas for OR; modifiers follow the name (`name:exact`).",
            "parameters": search_parameters(t),
            "responses": {"200": _ok("Bundle", f"A searchset Bundle of {t} resources"), **_errors()},
        }
    if generic == "search_post":
        return {
            "summary": f"Search {t} resources, parameters in a form body",
            "requestBody": {
                "required": False,
                "content": {"application/x-www-form-urlencoded": {"schema": _search_form(t)}},
            },
            "responses": {"200": _ok("Bundle", f"A searchset Bundle of {t} resources"), **_errors(413, 415)},
        }
    if generic == "create":
        return {
            "summary": f"Create a {t}",
            "description": "With `If-None-Exist`, a conditional create: an existing match is returned (200), "
            "nothing is created.",
            "parameters": [{"$ref": PARAM + "If-None-Exist"}, {"$ref": PARAM + "Prefer"}],
            "requestBody": _body(t, f"The new {t} (an id in it is replaced)"),
            "responses": {
                "201": _ok(t, f"The {t} as stored", "Location", "ETag", "Last-Modified"),
                "200": _ok(t, "Conditional create: the existing match", "Location", "ETag"),
                **_errors(412, 413, 415, 422),
            },
        }
    if generic == "read":
        return {
            "summary": f"Read a {t}",
            "parameters": [
                {"$ref": PARAM + p} for p in ("If-None-Match", "If-Modified-Since", "_summary", "_elements")
            ],
            "responses": {
                "200": _ok(t, f"The current version of the {t}", "ETag", "Last-Modified"),
                "304": {"$ref": RESPONSE + "304"},
                **_errors(404, 410),
            },
        }
    if generic == "vread":
        return {
            "summary": f"Read one version of a {t}",
            "responses": {"200": _ok(t, "That version", "ETag", "Last-Modified"), **_errors(404, 410)},
        }
    if generic in ("update", "conditional_update"):
        conditional = generic == "conditional_update"
        parameters = [{"$ref": PARAM + "If-Match"}, {"$ref": PARAM + "Prefer"}]
        if conditional:
            parameters.insert(0, {"$ref": PARAM + "criteria"})
        return {
            "summary": f"Update the {t} matching the criteria" if conditional else f"Update (or create) a {t}",
            "description": "`If-Match` with the version last read makes a lost update a 412.",
            "parameters": parameters,
            "requestBody": _body(t, f"The whole new {t}, with its id"),
            "responses": {
                "200": _ok(t, "Updated", "Location", "ETag", "Last-Modified"),
                "201": _ok(t, "Created with the client's id", "Location", "ETag", "Last-Modified"),
                **_errors(404, 409, 412, 413, 415, 422),
            },
        }
    if generic == "patch":
        return {
            "summary": f"Patch a {t} with JSON Patch",
            "parameters": [{"$ref": PARAM + "If-Match"}, {"$ref": PARAM + "Prefer"}],
            "requestBody": {
                "required": True,
                "description": "A JSON Patch (RFC 6902) array",
                "content": {
                    media: {
                        "schema": {"$ref": REF + "JsonPatch"},
                        "examples": {"deactivate": {"summary": "Mark inactive", "value": _PATCH_EXAMPLE}},
                    }
                    for media in (JSON_PATCH, "application/json")
                },
            },
            "responses": {"200": _ok(t, "Patched", "ETag", "Last-Modified"), **_errors(404, 410, 412, 413, 415, 422)},
        }
    if generic in ("delete", "conditional_delete"):
        conditional = generic == "conditional_delete"
        return {
            "summary": f"Delete the {t} matching the criteria" if conditional else f"Delete a {t}",
            "description": "Deletion is versioned: a later read is 410, and the deletion is in the history.",
            "parameters": [{"$ref": PARAM + "criteria"}] if conditional else [],
            "responses": {"204": {"description": "Deleted (or already gone)"}, **_errors(404, 412)},
        }
    if generic in ("history_type", "history_instance"):
        return {
            "summary": f"History of {'all ' + t + ' resources' if generic == 'history_type' else 'a ' + t}",
            "parameters": [{"$ref": PARAM + p} for p in ("_since", "_at", "_count")],
            "responses": {"200": _ok("Bundle", "A history Bundle, newest first"), **_errors(404)},
        }
    if generic in ("validate", "validate_instance"):
        instance = generic == "validate_instance"
        return {
            "summary": f"Validate {'an update or deletion of a ' if instance else 'a '}{t} without storing it",
            "parameters": [{"$ref": PARAM + "mode"}, {"$ref": PARAM + "profile"}],
            "requestBody": {
                "required": not instance,
                "description": f"The {t}, or a Parameters with `resource`, `mode` and `profile`",
                "content": {FHIR_JSON: {"schema": _resource(t) if t == "Parameters" else {
                    "oneOf": [_resource(t), _resource("Parameters")]
                }}},
            },
            "responses": {"200": _ok("OperationOutcome", "The resource's problems, or none"), **_errors(404, 413, 415)},
        }
    raise KeyError(generic)


_PATCH_EXAMPLE = [{"op": "replace", "path": "/active", "value": False}]


def _type_params(resource_type: str) -> list[SearchParam]:
    return [p for code, p in sorted(registry().params_for(resource_type).items()) if not p.common]


def _schema(param: SearchParam) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if param.type in _PATTERNS:
        schema["pattern"] = _PATTERNS[param.type]
    return schema


def search_parameters(resource_type: str) -> list[dict[str, Any]]:
    shared = ["_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", *RESULT_PARAMETERS]
    out: list[dict[str, Any]] = [{"$ref": PARAM + code} for code in shared]
    for param in _type_params(resource_type):
        entry: dict[str, Any] = {
            "name": param.code,
            "in": "query",
            "required": False,
            "description": f"{param.description} ({param.type})",
            "schema": _schema(param),
        }
        example = _SEARCH_EXAMPLES.get((resource_type, param.code))
        if example is not None:
            entry["example"] = example
        out.append(entry)
    return out


def _search_form(resource_type: str) -> dict[str, Any]:
    properties = {code: {"type": "string"} for code in ("_id", "_lastUpdated", "_count", "_sort", "_include")}
    properties.update({p.code: _schema(p) for p in _type_params(resource_type)})
    return {"type": "object", "properties": properties}


def shared_parameters() -> dict[str, dict[str, Any]]:
    """components/parameters: headers, path ids and the parameters every search shares."""

    def query(name: str, description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema or {"type": "string"}, **extra}

    def header(name: str, description: str, example: str) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": False, "description": description,
                "schema": {"type": "string"}, "example": example}

    date = {"type": "string", "pattern": _PATTERNS["date"]}
    return {
        "id": {"name": "id", "in": "path", "required": True, "description": "The resource's logical id",
               "schema": {"type": "string", "pattern": ID_PATTERN}},
        "vid": {"name": "vid", "in": "path", "required": True, "description": "A version id (meta.versionId)",
                "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        "_id": query("_id", "Logical id (token)"),
        "_lastUpdated": query("_lastUpdated", "When the resource last changed (date)", date, example="gt2026-11-24"),
        "_tag": query("_tag", "A tag in meta.tag (token)"),
        "_profile": query("_profile", "A profile in meta.profile (uri)"),
        "_security": query("_security", "A security label in meta.security (token)"),
        "_source": query("_source", "meta.source (uri)"),
        "_count": query("_count", "Page size (default 50, at most 1000)", {"type": "integer", "minimum": 0}),
        "_sort": query("_sort", "Sort keys, comma-separated, `-` for descending", example="-_lastUpdated"),
        "_include": query("_include", "Also return the resources a match refers to (`Type:param[:target]`)",
                          example="ServiceRequest:subject"),
        "_revinclude": query("_revinclude", "Also return the resources that refer to a match (`Type:param`)"),
        "_summary": query("_summary", "Return only a subset of each resource",
                          {"type": "string", "enum": ["true", "text", "data", "count", "false"]}),
        "_elements": query("_elements", "Return only these elements (comma-separated), plus the mandatory ones",
                           example="value,effective"),
        "_total": query("_total", "Whether to count all matches",
                        {"type": "string", "enum": ["none", "estimate", "accurate"]}),
        "_since": query("_since", "Only changes after this instant", date),
        "_at": query("_at", "The versions current at this instant", date),
        "mode": query("mode", "$validate: what the resource would be used for",
                      {"type": "string", "enum": ["create", "update", "delete"]}),
        "profile": query("profile", "$validate: a StructureDefinition URL (the base R4 profiles only)"),
        "criteria": query("criteria", "Search criteria of a conditional interaction, as in a search",
                          {"type": "object", "additionalProperties": {"type": "string"}},
                          style="form", explode=True),
        "If-Match": header("If-Match", "Only if the current version is this one (else 412)", 'W/"1"'),
        "If-None-Match": header("If-None-Match", "304 if the current version is this one", 'W/"1"'),
        "If-Modified-Since": header("If-Modified-Since", "304 unless changed since (HTTP date)",
                                    "Tue, 24 Nov 2026 09:40:00 GMT"),
        "If-None-Exist": header("If-None-Exist", "Conditional create: search criteria of an existing match",
                                "identifier=https://puente.example.org/fhir/sid/chw-app-patient|dev-LE-017/child-0003"),
        "Prefer": header("Prefer", "return=minimal | representation | OperationOutcome; handling=strict",
                         "return=representation"),
    }
