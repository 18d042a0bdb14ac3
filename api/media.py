"""Content negotiation: FHIR JSON in, FHIR JSON out; anything else is a clear 406 or 415."""

from __future__ import annotations

from fastapi import Request

from fhir_mappings.outcomes import NotAcceptable, UnsupportedMediaType

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
FORM = "application/x-www-form-urlencoded"
_JSON_FORMATS = {"json", FHIR_JSON, "application/json", "application/json+fhir", "text/json"}
_XML_FORMATS = {"xml", "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"}


def response_media_type(request: Request) -> str:
    """The Content-Type we answer with, from `_format` first and `Accept` second."""
    requested = request.query_params.get("_format")
    if requested is not None:
        if requested.split(";")[0].strip() in _JSON_FORMATS:
            return FHIR_JSON if requested != "application/json" else "application/json"
        raise NotAcceptable(f"_format={requested} is not supported: this server speaks FHIR JSON")
    accept = request.headers.get("accept")
    if not accept:
        return FHIR_JSON
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if any(k in (FHIR_JSON, "application/json+fhir", "*/*", "application/*") for k in kinds):
        return FHIR_JSON
    if "application/json" in kinds:
        return "application/json"
    if any(k in _XML_FORMATS or k.startswith("text/html") for k in kinds) and not any("json" in k for k in kinds):
        raise NotAcceptable(f"Accept: {accept} cannot be served: this server speaks FHIR JSON")
    return FHIR_JSON


def require_json_body(request: Request, *, allowed: tuple[str, ...] = (FHIR_JSON, "application/json")) -> None:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not content_type:
        # A body of unknown type is not guessed at: a client that sends none is broken or probing.
        raise UnsupportedMediaType(f"The request has no Content-Type; send {' or '.join(allowed)}")
    if content_type not in allowed and content_type != "application/json+fhir":
        raise UnsupportedMediaType(f"Content-Type {content_type} is not supported here; send {' or '.join(allowed)}")
