"""What the OpenAPI document says about FHIR routes: media types, bodies and OperationOutcome errors."""

from __future__ import annotations

from typing import Any

from api.media import FHIR_JSON

_RESOURCE = {"type": "object", "description": "A FHIR R4 resource", "properties": {"resourceType": {"type": "string"}}}
_OUTCOME = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome",
    "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]}, "issue": {"type": "array"}},
}
_REASONS = {
    304: "Not modified (If-None-Match / If-Modified-Since)",
    400: "Invalid request or resource (OperationOutcome names the element in `expression`)",
    401: "Missing or invalid access token",
    403: "The token's scopes do not allow this",
    404: "Unknown resource type or id",
    405: "Method not allowed",
    406: "Only FHIR JSON can be returned",
    409: "Version conflict",
    410: "The resource was deleted",
    412: "If-Match / conditional criteria failed",
    413: "Body or Bundle too large",
    415: "Unsupported Content-Type",
    422: "Business rule failed",
    500: "The operation failed (OperationOutcome says why)",
}


def fhir_responses(success: int, description: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    responses: dict[int | str, dict[str, Any]] = {
        success: {"description": description, "content": {FHIR_JSON: {"schema": _RESOURCE}}}
    }
    for status in (400, 401, 403, 406, *errors):
        if status == 304:
            responses[status] = {"description": _REASONS[status]}
        else:
            responses[status] = {"description": _REASONS[status], "content": {FHIR_JSON: {"schema": _OUTCOME}}}
    return responses


def fhir_body(description: str, media_type: str = FHIR_JSON) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": _RESOURCE}, "application/json": {"schema": _RESOURCE}},
        }
    }
