"""Every failure leaves as an OperationOutcome with the right status; never FastAPI's default body."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fhir_mappings import fhir_json
from fhir_mappings.outcomes import FhirError, Issue, operation_outcome

log = logging.getLogger("puente.api")

_HTTP_ISSUE_CODES = {404: "not-found", 405: "not-supported", 401: "login", 403: "forbidden", 413: "too-costly"}


def outcome_response(status: int, outcome: dict, headers: Mapping[str, str] | None = None) -> Response:
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

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: DBAPIError) -> Response:
        # Two transactions that locked the same rows in opposite orders, or a busy SQLite file: the
        # request was rolled back whole and can simply be sent again.
        if _is_transient(exc):
            log.warning("transient database conflict: %s", type(exc.orig).__name__)
            issue = Issue("The database was busy with a conflicting change; nothing was written. Retry.", "transient")
            return outcome_response(503, operation_outcome([issue]), {"Retry-After": "1"})
        log.exception("database error", exc_info=exc)
        issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
        return outcome_response(500, operation_outcome([issue]))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
        return outcome_response(500, operation_outcome([issue]))


_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def _is_transient(exc: DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig)
