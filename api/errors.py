"""Every failure leaves as an OperationOutcome with the right status; never FastAPI's default body."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError, Issue, operation_outcome

log = logging.getLogger("puente.api")

_HTTP_ISSUE_CODES = {404: "not-found", 405: "not-supported", 401: "login", 403: "forbidden", 413: "too-costly"}


def outcome_response(status: int, outcome: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(fhir_json.dumps(outcome), status_code=status, media_type="application/fhir+json", headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return outcome_response(exc.status, exc.outcome(), exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_request: Request, exc: RequestValidationError) -> Response:
        issues = [
            Issue(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}", "invalid") for e in exc.errors()[:10]
        ]
        return outcome_response(400, operation_outcome(issues or [Issue("Invalid request", "invalid")]))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_ISSUE_CODES.get(exc.status_code, "processing")
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such endpoint: FHIR resources live under /fhir"
        return outcome_response(exc.status_code, operation_outcome([Issue(detail, code)]), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
        return outcome_response(500, operation_outcome([issue]))
