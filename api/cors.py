"""CORS for the origins in PUENTE_CORS_ORIGINS, so browser apps (SMART apps, dashboards) can call Puente.

Starlette's CORSMiddleware does the work; this module says what FHIR needs of it: the methods of the
RESTful API, the request headers of conditional and preference-driven interactions, and the response
headers an app must read (Location and ETag after a create, Content-Location of an async kick-off),
which a browser hides from scripts unless they are exposed. Credentials (cookies) are not allowed:
apps send bearer tokens. A refused preflight is answered as an OperationOutcome like every error.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import Issue, operation_outcome

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Content-Encoding",
    "Accept",
    "Accept-Encoding",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Prefer",
    "X-Request-Id",
)
EXPOSED_HEADERS = (
    "Location",
    "Content-Location",
    "ETag",
    "Last-Modified",
    "X-Request-Id",
    "X-Progress",
    "Retry-After",
    "WWW-Authenticate",
)


class FhirCorsMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        # Starlette says "Disallowed CORS origin, headers" as plain text; keep its CORS headers.
        reason = bytes(response.body).decode()
        outcome = operation_outcome([Issue(f"{reason}: see PUENTE_CORS_ORIGINS and the allowed headers", "forbidden")])
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith(("access-control-", "vary"))}
        return Response(fhir_json.dumps(outcome), 400, headers=headers, media_type="application/fhir+json")


def install(app: FastAPI, origins: list[str]) -> None:
    if not origins:
        return  # the default: no cross-origin access at all
    app.add_middleware(
        FhirCorsMiddleware,
        allow_origins=origins,
        allow_methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        allow_credentials=False,
        max_age=3600,
    )
