"""How the exchange refuses a write: an OperationOutcome naming the rule and the element at fault."""

from __future__ import annotations

from fhir_mappings.outcomes import FhirError, Forbidden, Issue


class BusinessRule(FhirError):
    """422: well-formed, but against a rule of the referral workflow or beyond what is served."""

    status = 422
    issue_code = "business-rule"


def refusal(kind: type[FhirError], diagnostics: str, element: str) -> FhirError:
    code = "forbidden" if kind is Forbidden else "business-rule"
    return kind(diagnostics, issues=[Issue(diagnostics, code, expression=(element,))])
