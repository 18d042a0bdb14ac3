"""One error vocabulary for the whole server, each mapped once to an HTTP status and FHIR issue code.

Raised anywhere (storage, validation, operations); rendered as an OperationOutcome at the HTTP edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Issue:
    diagnostics: str
    code: str = "processing"
    severity: str = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass
class FhirError(Exception):
    """Base of every error a client can cause; `status` and `issue_code` say how it is rendered."""

    diagnostics: str
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    status: ClassVar[int] = 400
    issue_code: ClassVar[str] = "processing"

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)
        if not self.issues:
            self.issues = [Issue(self.diagnostics, code=self.issue_code)]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class Invalid(FhirError):
    status = 400
    issue_code = "invalid"


class NotFound(FhirError):
    status = 404
    issue_code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    issue_code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    issue_code = "not-supported"


class Conflict(FhirError):
    status = 409
    issue_code = "conflict"


class Gone(FhirError):
    status = 410
    issue_code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    issue_code = "conflict"


class TooLarge(FhirError):
    status = 413
    issue_code = "too-costly"


class LimitExceeded(FhirError):
    """A request over one of the server's explicit limits (README "Limits"); the diagnostics name it."""

    status = 400
    issue_code = "too-costly"


class RequestTimeout(FhirError):
    status = 408
    issue_code = "timeout"


class TooManyRequests(FhirError):
    """Rate limited: `headers` carries Retry-After."""

    status = 429
    issue_code = "throttled"


class Unavailable(FhirError):
    """A transient condition (the database busy, out of connections, over the time budget); retry later."""

    status = 503
    issue_code = "transient"


class UnsupportedMediaType(FhirError):
    status = 415
    issue_code = "not-supported"


class BusinessRule(FhirError):
    status = 422
    issue_code = "business-rule"


class Unauthorized(FhirError):
    status = 401
    issue_code = "login"


class Forbidden(FhirError):
    status = 403
    issue_code = "forbidden"


class NotImplementedYet(FhirError):
    status = 501
    issue_code = "not-supported"


class ServiceUnavailable(FhirError):
    """The server cannot answer now (e.g. the audit trail cannot be written); the client retries later."""

    status = 503
    issue_code = "transient"


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


def information(diagnostics: str, code: str = "informational") -> dict[str, Any]:
    return operation_outcome([Issue(diagnostics, code=code, severity="information")])
