"""Every failure leaves as an OperationOutcome with the right status; never FastAPI's default body."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.safe_log import log_failure
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
        transient = transient_reason(exc)
        if transient is not None:
            log.warning("transient database condition: %s", transient)
            return unavailable(transient)
        log_failure("database error", exc, log)
        issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
        return outcome_response(500, operation_outcome([issue]))

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_request: Request, _exc: PoolTimeout) -> Response:
        log.warning("transient database condition: no pooled connection was free in time")
        return unavailable("every database connection of this worker is in use")

    @app.exception_handler(ConnectionError)
    async def _unreachable(_request: Request, exc: ConnectionError) -> Response:
        log.warning("transient database condition: %s", type(exc).__name__)
        return unavailable("the database cannot be reached")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        log_failure("unhandled error", exc, log)
        issue = Issue("Internal server error; the request was rolled back", "exception", "fatal")
        return outcome_response(500, operation_outcome([issue]))


def unavailable(reason: str) -> Response:
    """503 with Retry-After: the request was rolled back whole and can simply be sent again."""
    issue = Issue(f"The server is temporarily unable to answer ({reason}); nothing was written. Retry.", "transient")
    return outcome_response(503, operation_outcome([issue]), {"Retry-After": "1"})


# SQLSTATEs a retry can cure (PostgreSQL appendix A): serialization failure, deadlock, lock not
# available, the time budget (statement_timeout, idle in transaction), too many connections, a
# server starting or shutting down, and a lost connection.
_TRANSIENT_SQLSTATES = {
    "40001": "a conflicting concurrent change",
    "40P01": "a deadlock with a concurrent change",
    "55P03": "a lock held by a concurrent change",
    "57014": "the request's time budget (PUENTE_REQUEST_TIME_BUDGET) ran out",
    "25P03": "the request's time budget (PUENTE_REQUEST_TIME_BUDGET) ran out",
    "53300": "the database has too many connections",
    "53400": "the database is over a configured limit",
    "57P01": "the database is shutting down",
    "57P02": "the database is restarting",
    "57P03": "the database is starting",
    "08000": "the database connection was lost",
    "08003": "the database connection was lost",
    "08006": "the database connection was lost",
}


def transient_reason(exc: DBAPIError) -> str | None:
    """Why a retry may succeed, or None when the failure is not transient."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state in _TRANSIENT_SQLSTATES:
        return _TRANSIENT_SQLSTATES[state]
    message = str(exc.orig)
    if "database is locked" in message:
        return "the SQLite database was busy with a conflicting change"
    if message == "interrupted":  # our progress handler (storage.database)
        return "the request's time budget (PUENTE_REQUEST_TIME_BUDGET) ran out"
    if exc.connection_invalidated:
        return "the database connection was lost"
    return None
